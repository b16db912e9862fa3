"""Which of the TMANet paper's tables the suite can regenerate, the specs that do it, and the commands (torch-free).

    bench paper              # the list, with local and SLURM commands
    bench paper --json       # the same as JSON (with every file each spec's runs read: "needs")

    from bench.report.paper_specs import paper_tables
    for table in paper_tables():
        print(table.title, table.specs, table.commands())

Only one table of the paper could be recovered (tmanet paper, repo ``images/sota.png``: the comparison with the
state of the art); ``results/paper_reference.yaml`` holds its numbers and lists the tables whose numbers are
missing (memory length, aggregation, encoding): the suite regenerates their trends with confidence intervals,
but there is no paper number to put beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.grid.spec import build_grid
from bench.run.identity import RunIdentity
from bench.run.preflight import check

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PaperTable:
    """A paper table: its specs (real data), the synthetic twin, what the report writes, and a caveat."""

    key: str
    title: str
    specs: tuple[str, ...]
    synthetic: tuple[str, ...]
    output: str
    paper_numbers: str

    def commands(self) -> dict[str, list[str]]:
        """The commands that regenerate the table: locally, on SLURM, and the synthetic twin (demo scale)."""
        specs = " ".join(self.specs)
        return {
            "local": [f"bench sweep {s} --launcher local" for s in self.specs] + [f"bench report {specs}"],
            "slurm": [f"bench sweep {s} --dry-run" for s in self.specs]
            + [f"bench sweep {s} launch.partition=<yours> [launch.account=<yours>]" for s in self.specs]
            + [f"bench status {s}" for s in self.specs]
            + [f"bench report {specs}"],
            "synthetic": [f"bench sweep {s} --launcher local --max-parallel 2" for s in self.synthetic]
            + [f"bench report {' '.join(self.synthetic)}"],
        }


PAPER_TABLES: tuple[PaperTable, ...] = (
    PaperTable(
        "sota",
        "comparison with the state of the art (Cityscapes val / CamVid mIoU)",
        ("ablations/cityscapes_sota.yaml", "ablations/camvid_sota.yaml"),
        ("ablations/synthetic_sota.yaml",),
        "reports/tables/sota_paper.md (paper layout) + one table per spec",
        "TMANet table numbers for every row; GRFP, LVS, TDNet listed as not reimplemented",
    ),
    PaperTable(
        "memory_length",
        "memory length T (trend only)",
        ("ablations/cityscapes_memory_length.yaml", "ablations/camvid_memory_length.yaml"),
        ("ablations/synthetic_memory_length.yaml",),
        "reports/tables/<spec>.md",
        "the paper's numbers could not be recovered: only T=2 (Cityscapes) / T=4 (CamVid) have one",
    ),
    PaperTable(
        "aggregation",
        "aggregation concat vs sum (trend only)",
        ("ablations/cityscapes_aggregation.yaml", "ablations/camvid_aggregation.yaml"),
        ("ablations/synthetic_aggregation.yaml",),
        "reports/tables/<spec>.md",
        "the paper's numbers could not be recovered",
    ),
    PaperTable(
        "encoding",
        "encoding layers (trend only)",
        ("ablations/cityscapes_encoding.yaml", "ablations/camvid_encoding.yaml"),
        ("ablations/synthetic_encoding.yaml",),
        "reports/tables/<spec>.md",
        "the paper's numbers could not be recovered",
    ),
)


# published-vs-reproduced tables from released weights (bench reproduce; bench.report.released): the image is the
# unit there, so they are listed apart from the paper's seed-level tables
RELEASED_SPECS: tuple[str, ...] = ("ablations/cityscapes_released.yaml", "ablations/camvid_released.yaml")


def render_released(specs: tuple[str, ...] = RELEASED_SPECS) -> str:
    """The ``bench paper`` section on released weights: each spec, what it writes, its commands."""
    lines = ["[released] published vs reproduced from released checkpoints (unit: the image; bench reproduce)"]
    for path in specs:
        data = yaml.safe_load((ROOT / path).read_text()) if (ROOT / path).is_file() else None
        if not isinstance(data, dict):
            lines.append(f"  spec: {path} (MISSING FILE)")
            continue
        names = ", ".join(str(c.get("name")) for c in data.get("checkpoints") or [])
        lines += [
            f"  spec: {path}: {names}",
            f"  writes: reports/tables/{data.get('name', Path(path).stem)}.md",
            f"    bench reproduce {path} --check      # which files are present, where to put the others",
            f"    bench reproduce {path}",
        ]
    return "\n".join(lines) + "\n"


def spec_needs(path: str | Path) -> list[dict[str, Any]]:
    """Every file and folder the runs of a spec read (``bench.run.preflight``), each once, and whether it is
    here: True, False, or None for a cache that ``bench sweep SPEC --check`` looks up."""
    grid = build_grid(path)
    idents = [RunIdentity.of(run.config) for run in grid.runs]
    found = check(idents, grid.launch.launcher, grid.launch.gpus_per_node, hide_below_missing=False)
    return [
        {
            "key": f.need.key,
            "what": f.need.what,
            "path": f.need.path,
            "alternatives": list(f.need.alternatives),
            "kind": f.need.kind,
            "present": f.present,
            "hint": f.need.hint,
            "runs": len(f.runs),
        }
        for f in found.findings
    ]


def _spec_summary(path: str) -> dict[str, Any]:
    """A spec's description, grid rows (model names or factor values), seeds and needs, read from its YAML."""
    file = ROOT / path
    if not file.is_file():
        return {"spec": path, "exists": False}
    data = yaml.safe_load(file.read_text()) or {}
    return {
        "spec": path,
        "exists": True,
        "description": data.get("description", ""),
        "factor": data.get("factor", ""),
        "seeds": data.get("seeds", []),
        "needs": spec_needs(file),
    }


def _need_lines(needs: list[dict[str, Any]]) -> list[str]:
    """``    data.root: Cityscapes root folder data/cityscapes [MISSING here; 24 runs]``, one per need, grouped by
    config key; what to download follows each group (``-> ...``)."""
    states = {True: "here", False: "MISSING here", None: "a cache: bench sweep SPEC --check looks it up"}
    ordered = sorted(needs, key=lambda n: n["key"])
    lines = []
    for need, following in zip(ordered, [*ordered[1:], None]):
        where = " or ".join([need["path"], *need["alternatives"]])
        lines.append(f"    {need['key']}: {need['what']} {where} [{states[need['present']]}; {need['runs']} runs]")
        if following is None or following["hint"] != need["hint"]:
            lines.append(f"      -> {need['hint']}")
    return lines


def paper_tables() -> list[PaperTable]:
    """The paper tables the suite regenerates."""
    return list(PAPER_TABLES)


def describe(table: PaperTable) -> dict[str, Any]:
    """A table as plain data: title, specs (with their YAML summary), output, paper numbers, commands."""
    return {
        "key": table.key,
        "title": table.title,
        "output": table.output,
        "paper_numbers": table.paper_numbers,
        "specs": [_spec_summary(s) for s in table.specs],
        "synthetic": [_spec_summary(s) for s in table.synthetic],
        "commands": table.commands(),
    }


def render(tables: list[PaperTable]) -> str:
    """The text ``bench paper`` prints."""
    lines = [
        "Paper tables this suite regenerates (TMANet, Wang et al. ICIP 2021; numbers: results/paper_reference.yaml)",
        f"Run the commands from the repository root ({ROOT}).",
        "",
    ]
    for table in tables:
        info = describe(table)
        lines.append(f"[{table.key}] {table.title}")
        lines.append(f"  paper numbers: {table.paper_numbers}")
        for spec in info["specs"] + info["synthetic"]:
            seeds = f", seeds {spec['seeds']}" if spec.get("seeds") else ""
            missing = "" if spec["exists"] else " (MISSING FILE)"
            lines.append(f"  spec: {spec['spec']}{seeds}{missing}")
            needs = spec.get("needs")
            if needs is not None:
                lines.append("    needs: nothing to download" if not needs else "    needs (every file its runs read):")
                lines.extend(_need_lines(needs))
        lines.append(f"  writes: {table.output}")
        for where, commands in info["commands"].items():
            lines.append(f"  {where}:")
            lines.extend(f"    {c}" for c in commands)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
