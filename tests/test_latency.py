"""Latency on CPU for every registered model (tiny sizes): both modes agree, FLOPs, repeated passes and their
stability flag, record merging (never replacing a record's latency without --overwrite)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, as_overrides, fake_eval_record, tiny_builder

from bench.cli import main
from bench.config import load_config, to_dict
from bench.data.build import build_dataset
from bench.evaluation import latency
from bench.evaluation.latency import measure_latency, stream_frames, summarise_passes, summarise_times
from bench.models.registry import list_models
from bench.run import latency_run
from bench.run.fingerprint import code_fingerprint
from bench.run.latency_run import latency_command
from bench.run.model import build_model
from bench.run.rundir import RunDir

# one RAFT refinement keeps the RAFT baseline quick; its time is still counted
SETTINGS = {"data.synthetic.val_clips": 3, "model.flow.iters": 1}
LATENCY_TINY = as_overrides({**TINY, **SETTINGS})
tiny_config = tiny_builder(SETTINGS, "output_root")
# models that read a feature pyramid (s4..s32) run on the tiny Mix Transformer instead of the dilated resnet18
PYRAMID_TINY = {"segformer": ["model.backbone=mit_tiny", "model.decoder_channels=16"]}
PYRAMID_TINY["cffm"] = [*PYRAMID_TINY["segformer"], "model.cffm_depth=1"]


@pytest.mark.parametrize("name", [m for m in list_models() if not m.startswith("test_")])  # not test doubles
def test_latency_runs_for_every_registered_model_and_modes_agree(tmp_path: Path, name: str) -> None:
    cfg = tiny_config(tmp_path, f"model.name={name}", "model.memory_length=1", *PYRAMID_TINY.get(name, []))
    result = latency_command(cfg, frames=2, warmup=1, threads=1, repeats=2)
    modes = result["modes"]
    if result["memory_length"] == 0:
        assert list(modes) == ["streaming"] and "modes_note" in result
    else:
        assert list(modes) == ["streaming", "recompute"]
        assert result["modes_agree"] and result["max_abs_diff"] <= result["agreement_tolerance"]
        # recompute runs the backbone T+1 times per frame, streaming once
        assert modes["recompute"]["gflops"] > modes["streaming"]["gflops"]
    for stats in modes.values():
        assert stats["timed_frames"] == 2 and stats["median_ms"] > 0 and stats["cold_start_ms"] > 0
        assert stats["passes"] == len(stats["pass_medians_ms"]) >= 2 and stats["iqr_ms"] >= 0
        assert stats["p90_ms"] >= stats["frames_median_ms"] and stats["fps"] > 0
        assert stats["gflops"] > 0 and stats["gmacs"] == pytest.approx(stats["gflops"] / 2)
        assert stats["peak_memory_mb"] > 0 and stats["peak_memory_kind"].startswith("cpu_peak_rss")
    assert result["params"] == sum(p.numel() for p in build_model(cfg).parameters())
    assert "2 FLOPs per multiply-add" in result["flop_convention"]
    assert result["weights"].startswith("random init")
    saved = json.loads((RunDir.of(cfg).path / "latency.json").read_text())
    assert saved["modes"]["streaming"]["median_ms"] == pytest.approx(modes["streaming"]["median_ms"])


def test_recompute_flops_grow_with_memory_length_streaming_flops_do_not(tmp_path: Path) -> None:
    flops = {}
    for t in (1, 2, 3):
        cfg = tiny_config(tmp_path, "model.name=tmanet", f"model.memory_length={t}")
        dataset = build_dataset(cfg.data, "val", t, train=False)
        torch.manual_seed(0)
        model = build_model(cfg)
        frames = list(stream_frames(dataset, t + 3))
        result = measure_latency(model, frames, warmup=0, threads=1)
        flops[t] = {m: s["gflops"] for m, s in result["modes"].items()}
        assert result["modes_agree"]
    assert flops[1]["recompute"] < flops[2]["recompute"] < flops[3]["recompute"]
    backbone = flops[2]["recompute"] - flops[1]["recompute"]  # one more backbone pass (+ one slot's encoders)
    assert flops[3]["streaming"] - flops[1]["streaming"] < 0.5 * backbone  # only the memory read grows


def test_streaming_and_recompute_see_the_same_frames_with_checkpoint_weights(tmp_path: Path) -> None:
    from bench.engine.checkpoint import save_checkpoint

    cfg = tiny_config(tmp_path, "model.name=tmanet", "model.memory_length=2")
    torch.manual_seed(1)
    model = build_model(cfg)
    save_checkpoint(RunDir.of(cfg).path / "checkpoint.pt", {"model": model.state_dict()})
    fake_eval_record("x", 0, miou=0.5, config=to_dict(cfg), write_to=RunDir.of(cfg))
    result = latency_command(cfg, frames=3, warmup=2, threads=1, modes=["streaming", "recompute"], repeats=1)
    assert result["weights"].endswith("checkpoint.pt") and result["modes_agree"]
    merged = json.loads((RunDir.of(cfg).path / "record.json").read_text())
    assert merged["metrics"] == {"miou": 0.5} and merged["latency"]["modes"]["recompute"]["timed_frames"] == 3
    latency_command(cfg, frames=1, warmup=0, threads=1, modes=["streaming"], write_record=False, repeats=1)
    assert json.loads((RunDir.of(cfg).path / "record.json").read_text()) == merged  # --no-record: untouched
    assert json.loads((RunDir.of(cfg).path / "latency.json").read_text())["modes"]["streaming"]["timed_frames"] == 1


def test_summarise_times_matches_numpy() -> None:
    times = [5.0, 1.0, 3.0, 9.0, 2.0, 7.0, 4.0]
    stats = summarise_times(times)
    assert stats["median_ms"] == pytest.approx(np.median(times))
    assert stats["p90_ms"] == pytest.approx(np.percentile(times, 90))
    assert stats["p99_ms"] == pytest.approx(np.percentile(times, 99))
    assert stats["fps"] == pytest.approx(1000 / np.mean(times))


def test_stream_frames_walks_clips_in_time_order() -> None:
    cfg = load_config(None, LATENCY_TINY)
    dataset = build_dataset(cfg.data, "val", 2, train=False)
    frames = list(stream_frames(dataset, 7, needs_flow=True))
    assert len(frames) == 7
    assert torch.equal(frames[0][0][0], dataset[0]["frames"][0]) and torch.equal(
        frames[3][0][0], dataset[1]["frames"][0]
    )
    assert frames[0][1].shape == (1, 2, 2, 32, 32)


class DriftingModel(torch.nn.Module):
    """A contract model whose features change with every ``extract`` call: caching is then visible."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.memory_length = inner.memory_length
        self.calls = 0

    def extract(self, image):
        self.calls += 1
        return {k: v + self.calls for k, v in self.inner.extract(image).items()}

    def decode(self, current, memory, flow, image_size):
        return self.inner.decode(current, memory, flow, image_size)

    def forward(self, frames, flow=None):
        current = self.extract(frames[:, -1])
        memory = [self.extract(frames[:, i]) for i in range(self.memory_length)]
        return self.decode(current, memory, flow, frames.shape[-2:])


def test_mode_disagreement_is_an_error(tmp_path: Path) -> None:
    from bench.evaluation.latency import ModeMismatchError

    cfg = tiny_config(tmp_path, "model.name=tmanet", "model.memory_length=1")
    dataset = build_dataset(cfg.data, "val", 1, train=False)
    model = DriftingModel(build_model(cfg))
    with pytest.raises(ModeMismatchError, match="differ"):
        measure_latency(model, list(stream_frames(dataset, 4)), warmup=0, threads=1)


def test_the_trainer_measures_its_in_memory_model_into_the_record(tmp_path: Path) -> None:
    from bench.run.execute import train_and_evaluate

    cfg = tiny_config(
        tmp_path,
        "model.memory_length=1",
        "train.iters=2",
        "train.batch_size=2",
        "launch.latency=true",
        "launch.latency_frames=2",
        "launch.latency_repeats=2",
    )
    record = train_and_evaluate(cfg, tmp_path / "run")
    latency = record["latency"]
    assert list(latency["modes"]) == ["streaming", "recompute"] and latency["modes_agree"]
    assert latency["modes"]["streaming"]["timed_frames"] == 2 and latency["repeats"] == 2
    assert latency["modes"]["streaming"]["passes"] >= 2
    assert latency["weights"] == "the trained model in memory (iteration 2)"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "log.jsonl"]


def test_missing_latency_is_measured_once_into_a_finished_record(tmp_path: Path) -> None:
    from bench.run.latency_run import measure_missing_latency

    cfg = tiny_config(tmp_path, "model.name=per_frame")
    assert measure_missing_latency(cfg, frames=1, threads=1) is None  # no record yet: nothing to add to
    RunDir.of(cfg).path.mkdir(parents=True)
    fake_eval_record(RunDir.of(cfg).path.name, 0, miou=0.5, config=to_dict(cfg), write_to=RunDir.of(cfg))
    assert measure_missing_latency(cfg, frames=1, threads=1)["modes"]["streaming"]["timed_frames"] == 1
    assert "latency" in json.loads((RunDir.of(cfg).path / "record.json").read_text())
    assert measure_missing_latency(cfg, frames=1, threads=1) is None  # measured once


def test_pass_statistics_and_the_stability_flag_on_fabricated_timings() -> None:
    steady = [[10.0, 10.4, 9.8], [10.2, 10.1, 10.0], [9.9, 10.3, 10.1], [10.0, 10.0, 10.6], [10.1, 9.9, 10.2]]
    stats = summarise_passes(steady)
    medians = [float(np.median(p)) for p in steady]
    assert stats["pass_medians_ms"] == medians and stats["passes"] == 5
    assert stats["median_ms"] == pytest.approx(np.median(medians))
    assert stats["iqr_ms"] == pytest.approx(np.percentile(medians, 75) - np.percentile(medians, 25))
    assert stats["spread"] == pytest.approx(stats["iqr_ms"] / stats["median_ms"]) and not stats["unstable"]
    every = [t for p in steady for t in p]
    assert stats["p99_ms"] == pytest.approx(np.percentile(every, 99))
    assert stats["frames_median_ms"] == pytest.approx(np.median(every))
    # a machine busy half the time: pass medians 10 and 20 ms; IQR 10 of median 15 -> spread 0.67
    busy = summarise_passes([[10.0], [20.0], [10.0], [20.0], [15.0]])
    assert busy["median_ms"] == 15.0 and busy["spread"] == pytest.approx(10 / 15) and busy["unstable"]
    # one slow pass among five does not move the median of medians, nor make it unstable
    spike = summarise_passes([[10.0], [10.0], [50.0], [10.0], [10.0]])
    assert spike["median_ms"] == 10.0 and not spike["unstable"] and spike["max_ms"] == 50.0
    assert not summarise_passes([[10.0], [11.0]], max_spread=0.5)["unstable"]


def _per_frame_model_and_frames(count: int):
    cfg = load_config(None, LATENCY_TINY + ["model.name=per_frame"])
    dataset = build_dataset(cfg.data, "val", 0, train=False)
    torch.manual_seed(0)
    return build_model(cfg), list(stream_frames(dataset, count))


def test_repeated_passes_give_one_median_per_pass() -> None:
    model, frames = _per_frame_model_and_frames(5)  # cold start, 3 timed, 1 for FLOPs
    result = measure_latency(model, frames, warmup=0, threads=1, repeats=3, max_extra_passes=0)
    stats = result["modes"]["streaming"]
    assert result["repeats"] == 3 and stats["passes"] == 3 and len(stats["pass_medians_ms"]) == 3
    assert stats["timed_frames"] == 3 and all(m > 0 for m in stats["pass_medians_ms"])
    assert stats["median_ms"] == pytest.approx(np.median(stats["pass_medians_ms"]))
    assert result["schema"] == latency.LATENCY_SCHEMA == 2 and result["stability"]["max_spread"] == 0.10


@pytest.mark.parametrize("extra, passes, unstable", [(5, 5, False), (1, 4, True)])
def test_unstable_measurements_are_repeated_then_flagged(monkeypatch, extra, passes, unstable) -> None:
    """Pass medians 10, 30, 20, 20, ...: three passes spread 50%, a fourth 25%, a fifth 0% (stable)."""
    model, frames = _per_frame_model_and_frames(4)  # cold start, 2 timed frames per pass, 1 for FLOPs
    real, calls = latency.timed_step, []
    script = [0.0, 10.0, 10.0, 30.0, 30.0] + [20.0] * 20  # per step: the cold start, then pass after pass

    def scripted(*args):
        _, gpu_ms, logits = real(*args)
        calls.append(1)
        return script[len(calls) - 1], gpu_ms, logits

    monkeypatch.setattr(latency, "timed_step", scripted)
    stats = measure_latency(model, frames, warmup=0, threads=1, repeats=3, max_extra_passes=extra)["modes"]["streaming"]
    assert stats["pass_medians_ms"] == [10.0, 30.0] + [20.0] * (passes - 2)
    assert stats["unstable"] is unstable and stats["median_ms"] == 20.0
    assert stats["spread"] == pytest.approx(0.0 if not unstable else 0.25)


def test_bench_latency_checks_first_prints_always_and_never_replaces_a_record_latency(tmp_path, capsys, monkeypatch):
    """A record with a latency keeps it (said before measuring); the measurement is still printed and kept in
    latency.json; --overwrite replaces it."""
    args = [
        "latency",
        *LATENCY_TINY,
        "model.name=per_frame",
        f"output_root={tmp_path / 'runs'}",
        "--frames",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--repeats",
        "1",
    ]
    cfg = load_config(None, LATENCY_TINY + ["model.name=per_frame", f"output_root={tmp_path / 'runs'}"])
    run_dir = RunDir.of(cfg).path
    run_dir.mkdir(parents=True)
    old = fake_eval_record(
        run_dir.name,
        0,
        miou=0.5,
        config=to_dict(cfg),
        latency={"schema": 1, "modes": {"streaming": {"median_ms": 7.0}}},
    )
    (run_dir / "record.json").write_text(json.dumps(old))
    measure = latency_run.measure_model_latency

    def check_first(*args, **kwargs):
        told = capsys.readouterr().err  # what the user saw before the measurement started
        assert f"{run_dir / 'record.json'} already has a latency section and keeps it" in told
        return measure(*args, **kwargs)

    monkeypatch.setattr(latency_run, "measure_model_latency", check_first)
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "median ms" in out and "streaming" in out  # the table, always
    assert f"written to {run_dir / 'latency.json'} only" in err and "Traceback" not in err
    assert json.loads((run_dir / "record.json").read_text()) == old  # untouched
    fresh = json.loads((run_dir / "latency.json").read_text())  # the new measurement is kept next to it
    assert fresh["schema"] == 2 and fresh["modes"]["streaming"]["passes"] == 1

    monkeypatch.undo()
    assert main(args + ["--overwrite", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.endswith(f"bench: replaced the latency section of {run_dir / 'record.json'} (--overwrite)\n")
    merged = json.loads((run_dir / "record.json").read_text())
    assert merged["metrics"] == old["metrics"] and merged["latency"] == json.loads(out)
    assert merged["latency"]["repeats"] == 1


def test_bench_latency_needs_neither_the_dataset_nor_weight_files(tmp_path, capsys):
    """A Cityscapes config without its data or its ImageNet weights file: random frames of the evaluation size,
    a random init, and the table says so."""
    args = [
        "latency",
        *LATENCY_TINY,
        "data.dataset=cityscapes",
        f"data.root={tmp_path / 'no-cityscapes'}",
        "data.base_size=[32,64]",
        "model.name=tmanet",
        "model.memory_length=1",
        "model.pretrained=true",
        f"model.pretrained_path={tmp_path / 'no-weights.pth'}",
        f"output_root={tmp_path / 'runs'}",
        *("--frames", "1", "--warmup", "0", "--threads", "1", "--repeats", "1", "--modes", "streaming"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "input: random 32x64 frames (the cityscapes data was not read: Cityscapes root folder not found" in out
    assert "weights: random init (no checkpoint)" in out


def test_latency_frames_come_from_the_dataset_or_say_they_are_random(tmp_path):
    from bench.data.errors import DatasetError
    from bench.evaluation.latency_input import latency_frames

    synthetic = load_config(None, LATENCY_TINY).data
    frames, source = latency_frames(synthetic, 4, 1, needs_flow=True)
    assert len(frames) == 4 and source == {"frames": "dataset", "split": "val"} and frames[0][1] is not None
    missing = load_config(None, ["data.dataset=camvid", f"data.root={tmp_path}"]).data
    with pytest.raises(DatasetError, match="CamVid split file not found"):
        latency_frames(missing, 4, 1, needs_flow=False)
    frames, source = latency_frames(missing, 3, 1, needs_flow=False, missing_data="random")
    assert [f.shape for f, _ in frames] == [(1, 3, 360, 480)] * 3 and source["size"] == [360, 480]
    again, _ = latency_frames(missing, 3, 1, needs_flow=False, missing_data="random")
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(frames, again))  # seeded: the same input every time


def test_reports_mark_unstable_latencies(tmp_path: Path) -> None:
    from bench.report.build import report_command

    def record(run_id: str, model: str, latency: dict) -> str:
        return json.dumps(
            {
                "status": "done",
                "run_id": run_id,
                "model": model,
                "dataset": "synthetic",
                "seed": 0,
                "metrics": {"miou": 0.5},
                "config": {"model": {"name": model}},
                "code": code_fingerprint(),
                "latency": {"schema": 2, "modes": {"streaming": latency}},
            }
        )

    for run_id, model, stats in (
        ("a", "tmanet", {"median_ms": 12.3, "unstable": True, "spread": 0.4}),
        ("b", "per_frame", {"median_ms": 8.0}),
    ):  # b: a schema-1 block, no flag
        (tmp_path / "runs" / run_id).mkdir(parents=True)
        (tmp_path / "runs" / run_id / "record.json").write_text(record(run_id, model, stats))
    assert report_command([str(tmp_path / "runs")], out_dir=str(tmp_path / "out")) == 0
    table = (tmp_path / "out/tables/runs.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "~12.30" in rows["tmanet"] and " 8.00 " in rows["per_frame"] and "~8.00" not in table
    assert "- ~ marks a latency measured as unstable" in table


def test_data_loader_bench_times_loading_next_to_the_model_step(tmp_path: Path) -> None:
    from bench.perf.data_loader_bench import measure, report

    cfg = tiny_config(tmp_path, "train.batch_size=2", "model.memory_length=1")
    result = measure(cfg, steps=2, warmup=1)
    assert len(result["data_ms"]) == len(result["model_ms"]) == 2 and result["num_workers"] == 0
    assert all(t > 0 for t in result["data_ms"] + result["model_ms"]) and result["batch_shape"][:2] == [2, 2]
    assert "data / model" in report(result)
