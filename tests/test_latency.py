"""Latency on CPU for every registered model (tiny sizes): both modes agree, FLOPs, record merging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.config import load_config
from bench.data.build import build_dataset
from bench.run.latency import latency_command, measure_latency, stream_frames, summarise_times
from bench.models.registry import build_model, list_models
from tiny import TINY, as_overrides

# one RAFT refinement keeps the RAFT baseline quick; its time is still counted
TINY = as_overrides({**TINY, "data.synthetic.val_clips": 3, "model.flow.iters": 1})


def tiny_config(tmp_path: Path, *overrides: str):
    return load_config(None, TINY + [f"output_root={tmp_path / 'runs'}", *overrides])


@pytest.mark.parametrize("name", [m for m in list_models() if not m.startswith("test_")])  # not test doubles
def test_latency_runs_for_every_registered_model_and_modes_agree(tmp_path: Path, name: str) -> None:
    cfg = tiny_config(tmp_path, f"model.name={name}", "model.memory_length=1")
    result = latency_command(cfg, frames=2, warmup=1, threads=1)
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
        assert stats["p90_ms"] >= stats["median_ms"] and stats["fps"] > 0
        assert stats["gflops"] > 0 and stats["gmacs"] == pytest.approx(stats["gflops"] / 2)
        assert stats["peak_memory_mb"] > 0 and stats["peak_memory_kind"].startswith("cpu_peak_rss")
    assert result["params"] == sum(p.numel() for p in build_model(cfg.model, 6).parameters())
    assert "2 FLOPs per multiply-add" in result["flop_convention"]
    assert result["weights"].startswith("random init")
    saved = json.loads((cfg.resolved_run_dir() / "latency.json").read_text())
    assert saved["modes"]["streaming"]["median_ms"] == pytest.approx(modes["streaming"]["median_ms"])


def test_recompute_flops_grow_with_memory_length_streaming_flops_do_not(tmp_path: Path) -> None:
    flops = {}
    for t in (1, 2, 3):
        cfg = tiny_config(tmp_path, "model.name=tmanet", f"model.memory_length={t}")
        dataset = build_dataset(cfg.data, "val", t, train=False)
        torch.manual_seed(0)
        model = build_model(cfg.model, dataset.num_classes)
        frames = list(stream_frames(dataset, t + 3))
        result = measure_latency(model, frames, warmup=0, threads=1)
        flops[t] = {m: s["gflops"] for m, s in result["modes"].items()}
        assert result["modes_agree"]
    assert flops[1]["recompute"] < flops[2]["recompute"] < flops[3]["recompute"]
    backbone = flops[2]["recompute"] - flops[1]["recompute"]  # one more backbone pass (+ one slot's encoders)
    assert flops[3]["streaming"] - flops[1]["streaming"] < 0.5 * backbone  # only the memory read grows


def test_streaming_and_recompute_see_the_same_frames_with_checkpoint_weights(tmp_path: Path) -> None:
    from bench.run.checkpoint import save_checkpoint

    cfg = tiny_config(tmp_path, "model.name=tmanet", "model.memory_length=2")
    torch.manual_seed(1)
    model = build_model(cfg.model, 6)
    save_checkpoint(cfg.resolved_run_dir() / "checkpoint.pt", {"model": model.state_dict()})
    record = {"schema": 1, "run_id": "x", "status": "done", "metrics": {"miou": 0.5}}
    (cfg.resolved_run_dir() / "record.json").write_text(json.dumps(record))
    result = latency_command(cfg, frames=3, warmup=2, threads=1, modes=["streaming", "recompute"])
    assert result["weights"].endswith("checkpoint.pt") and result["modes_agree"]
    merged = json.loads((cfg.resolved_run_dir() / "record.json").read_text())
    assert merged["metrics"] == {"miou": 0.5} and merged["latency"]["modes"]["recompute"]["timed_frames"] == 3
    latency_command(cfg, frames=1, warmup=0, threads=1, modes=["streaming"], write_record=False)
    assert json.loads((cfg.resolved_run_dir() / "record.json").read_text()) == merged  # --no-record: untouched
    assert json.loads((cfg.resolved_run_dir() / "latency.json").read_text())["modes"]["streaming"]["timed_frames"] == 1


def test_summarise_times_matches_numpy() -> None:
    times = [5.0, 1.0, 3.0, 9.0, 2.0, 7.0, 4.0]
    stats = summarise_times(times)
    assert stats["median_ms"] == pytest.approx(np.median(times))
    assert stats["p90_ms"] == pytest.approx(np.percentile(times, 90))
    assert stats["p99_ms"] == pytest.approx(np.percentile(times, 99))
    assert stats["fps"] == pytest.approx(1000 / np.mean(times))


def test_stream_frames_walks_clips_in_time_order() -> None:
    cfg = load_config(None, TINY)
    dataset = build_dataset(cfg.data, "val", 2, train=False)
    frames = list(stream_frames(dataset, 7, needs_flow=True))
    assert len(frames) == 7
    assert torch.equal(frames[0][0][0], dataset[0]["frames"][0]) and torch.equal(frames[3][0][0], dataset[1]["frames"][0])
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
    from bench.run.latency import ModeMismatchError

    cfg = tiny_config(tmp_path, "model.name=tmanet", "model.memory_length=1")
    dataset = build_dataset(cfg.data, "val", 1, train=False)
    model = DriftingModel(build_model(cfg.model, dataset.num_classes))
    with pytest.raises(ModeMismatchError, match="differ"):
        measure_latency(model, list(stream_frames(dataset, 4)), warmup=0, threads=1)


def test_the_trainer_measures_its_in_memory_model_into_the_record(tmp_path: Path) -> None:
    from bench.run.trainer import train_and_evaluate

    cfg = tiny_config(tmp_path, "model.memory_length=1", "train.iters=2", "train.batch_size=2",
                      "launch.latency=true", "launch.latency_frames=2")
    record = train_and_evaluate(cfg, tmp_path / "run")
    latency = record["latency"]
    assert list(latency["modes"]) == ["streaming", "recompute"] and latency["modes_agree"]
    assert latency["modes"]["streaming"]["timed_frames"] == 2
    assert latency["weights"] == "the trained model in memory (iteration 2)"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "log.jsonl"]


def test_missing_latency_is_measured_once_into_a_finished_record(tmp_path: Path) -> None:
    from bench.run.latency import measure_missing_latency

    cfg = tiny_config(tmp_path, "model.name=per_frame")
    assert measure_missing_latency(cfg, frames=1, threads=1) is None  # no record yet: nothing to add to
    cfg.resolved_run_dir().mkdir(parents=True)
    (cfg.resolved_run_dir() / "record.json").write_text(json.dumps({"status": "done", "metrics": {"miou": 0.5}}))
    assert measure_missing_latency(cfg, frames=1, threads=1)["modes"]["streaming"]["timed_frames"] == 1
    assert "latency" in json.loads((cfg.resolved_run_dir() / "record.json").read_text())
    assert measure_missing_latency(cfg, frames=1, threads=1) is None  # measured once


def test_data_loader_bench_times_loading_next_to_the_model_step(tmp_path: Path) -> None:
    from bench.perf.data_loader_bench import measure, report

    cfg = tiny_config(tmp_path, "train.batch_size=2", "model.memory_length=1")
    result = measure(cfg, steps=2, warmup=1)
    assert len(result["data_ms"]) == len(result["model_ms"]) == 2 and result["num_workers"] == 0
    assert all(t > 0 for t in result["data_ms"] + result["model_ms"]) and result["batch_shape"][:2] == [2, 2]
    assert "data / model" in report(result)
