"""Numbers say which host and threads made them: records store the CPU's model, family / model number, ISA flags,
torch's kernel level and the torch thread count; a table's provenance names them; tables whose runs differ in them
are told apart in their notes and in the report's index."""

from __future__ import annotations

import json

import torch
from helpers import REPORT_BASE, fabricate_records, write_report_spec

from bench.evaluation.measure import ISA_FLAGS, cpu_details
from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.provenance import provenance_note, run_provenance
from bench.run.records import environment_info
from bench.run.rundir import RunDir

EPYC_MILAN = {
    "cpu_model": "AMD EPYC", "cpu": {"family": "25", "model": "1", "flags": ["avx", "avx2", "fma"]},
    "torch_cpu_capability": "AVX2", "torch_threads": 2,
}  # fmt: skip
EPYC_GENOA = {
    "cpu_model": "AMD EPYC", "cpu": {"family": "25", "model": "17", "flags": ["avx", "avx2", "fma", "avx512f"]},
    "torch_cpu_capability": "AVX512", "torch_threads": 1,
}  # fmt: skip


def test_a_record_names_the_cpu_its_kernels_and_threads():
    env = environment_info()
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu"] == cpu_details() and set(env["cpu"]["flags"]) <= set(ISA_FLAGS)
    assert list(env["cpu"]["flags"]) == [f for f in ISA_FLAGS if f in env["cpu"]["flags"]]  # a fixed order


def test_two_hosts_with_one_model_name_are_told_apart():
    """'AMD EPYC' on both: the family/model number, the flags, the kernel level and the threads differ."""
    milan = {"device": "cpu", "environment": EPYC_MILAN}
    genoa = {"device": "cpu", "environment": EPYC_GENOA}
    shown = run_provenance(milan)
    assert shown["hardware"] == "AMD EPYC (family 25, model 1)"
    assert shown["cpu_flags"] == "avx avx2 fma (torch AVX2)" and shown["threads"] == "2"
    assert "(AMD EPYC (family 25, model 1); CPU flags avx avx2 fma (torch AVX2); 2 torch threads)" in provenance_note(
        [milan, milan]
    )
    mixed = provenance_note([milan, genoa])
    assert mixed.startswith("MIXED ENVIRONMENTS: the runs of this table differ in hardware, cpu_flags, threads")
    assert run_provenance({"device": "cpu"})["threads"] == "unknown"  # older records do not say


def _stamp(spec, env):
    for run in build_grid(spec).runs:
        folder = RunDir(run.run_dir)
        record = folder.read_record().record
        folder.write_record({**record, "device": "cpu", "environment": env})


def test_tables_made_on_different_hosts_or_threads_say_so(tmp_path):
    aggregation = [{"product": {"model.aggregation": ["concat", "sum"]}}]
    encoding = [{"product": {"model.encoding": ["1x1", "3x3"]}}]
    one = write_report_spec(tmp_path, "on_milan", "aggregation", "model.aggregation", aggregation, REPORT_BASE, [0, 1])
    two = write_report_spec(tmp_path, "on_genoa", "encoding", "model.encoding", encoding, REPORT_BASE, [2, 3])
    for spec, env in ((one, EPYC_MILAN), (two, EPYC_GENOA)):
        fabricate_records(spec, lambda r: 0.5 + 0.01 * r.seed)
        _stamp(spec, env)
    build_report([str(one), str(two)], tmp_path / "reports")
    notes = (tmp_path / "reports" / "tables" / "on_milan.md").read_text()
    assert "machines differ between the tables of this report" in notes
    assert "this table: cpu, AMD EPYC (family 25, model 1), avx avx2 fma (torch AVX2), 2 threads" in notes
    assert "on_genoa: cpu, AMD EPYC (family 25, model 17), avx avx2 fma avx512f (torch AVX512), 1 threads" in notes
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "## Provenance" in index and "compare their conclusions, not their digits" in index
    assert "machines" in (tmp_path / "reports" / "index.html").read_text()
    entries = json.loads((tmp_path / "reports" / "index.json").read_text())["tables"]
    assert entries["on_milan"]["machine"] != entries["on_genoa"]["machine"]

    build_report([str(one)], tmp_path / "alone")  # one table: nothing to compare
    assert "machines differ" not in (tmp_path / "alone" / "tables" / "on_milan.md").read_text()
    assert "## Provenance" not in (tmp_path / "alone" / "index.md").read_text()
