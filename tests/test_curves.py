"""Training curves from fabricated log.jsonl files: the plotted data is the log, torn lines and runs without
validation are tolerated (and said), bad input is a one-line error, the PNG is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.report.curves import CurvesError, curves_figure, read_log


def write_log(
    run_dir: Path,
    iters: int,
    log_every: int,
    eval_every: int | None,
    aux: bool,
    torn: bool = False,
    run_id: str | None = None,
) -> dict[str, list[tuple[int, float]]]:
    """A trainer-like log.jsonl (and record.json when ``run_id``); returns the series written."""
    run_dir.mkdir(parents=True)
    series: dict[str, list[tuple[int, float]]] = {"loss": [], "aux_loss": [], "lr": [], "miou": []}
    lines = []
    for it in range(log_every, iters + 1, log_every):
        loss, lr = 2.0 / (1 + 0.05 * it), 0.01 * (1 - it / iters) ** 0.9
        aux_loss = 0.4 * loss if aux else 0.0
        lines.append(
            {
                "iter": it,
                "loss": loss,
                "aux_loss": aux_loss,
                "lr": lr,
                "throughput": 12.5,
                "max_memory_mb": 100.0,
                "elapsed_s": it * 0.1,
            }
        )
        series["loss"].append((it, loss))
        series["aux_loss"].append((it, aux_loss))
        series["lr"].append((it, lr))
        if eval_every and it % eval_every == 0:
            miou = 0.2 + it / (2 * iters)
            lines.append({"iter": it, "val": {"miou": miou, "pixel_acc": 0.9, "per_class_iou": {"a": miou}}})
            series["miou"].append((it, 100 * miou))
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if torn:
        text += '{"iter": 999, "loss": 0.1, "aux_lo'  # killed mid-write
    (run_dir / "log.jsonl").write_text(text)
    if run_id:
        (run_dir / "record.json").write_text(json.dumps({"run_id": run_id, "status": "done"}))
    return series


@pytest.fixture
def runs(tmp_path: Path) -> dict:
    return {
        "tmanet-aaa": (tmp_path / "a", write_log(tmp_path / "a", 60, 10, 20, aux=True, torn=True, run_id="tmanet-aaa")),
        "per-frame-dir": (tmp_path / "per-frame-dir", write_log(tmp_path / "per-frame-dir", 40, 5, None, aux=False)),
    }


def xy(line) -> list[tuple[int, float]]:
    return [(int(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata())]


def same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same iterations, and the same values to float precision."""
    return [i for i, _ in got] == [i for i, _ in want] and [v for _, v in got] == pytest.approx([v for _, v in want])


def test_read_log_returns_the_logged_series_and_skips_a_torn_last_line(runs: dict) -> None:
    run_dir, written = runs["tmanet-aaa"]
    log = read_log(run_dir)
    assert log.run_id == "tmanet-aaa"
    for key in ("loss", "aux_loss", "lr", "miou"):
        assert same(getattr(log, key), written[key])
    assert [it for it, _ in log.miou] == [20, 40, 60]
    assert any("torn last line" in n for n in log.notes) and 999 not in [it for it, _ in log.loss]
    no_val = read_log(runs["per-frame-dir"][0] / "log.jsonl")  # the file itself is accepted too
    assert no_val.run_id == "per-frame-dir" and no_val.miou == []
    assert any("no validation lines" in n for n in no_val.notes)


def test_figure_lines_are_the_log(runs: dict) -> None:
    logs = [read_log(run_dir) for run_dir, _ in runs.values()]
    fig = curves_figure(logs)
    ax_loss, ax_lr, ax_miou = fig.axes[:3]
    lines = {(ax.get_ylabel(), line.get_label()): xy(line) for ax in fig.axes for line in ax.get_lines()}
    for run_id, (_, written) in runs.items():
        assert same(lines[("loss (dashed: aux loss)", run_id)], written["loss"])
        assert same(lines[("learning rate", run_id)], written["lr"])
    assert same(lines[("loss (dashed: aux loss)", "tmanet-aaa aux")], runs["tmanet-aaa"][1]["aux_loss"])
    assert ("loss (dashed: aux loss)", "per-frame-dir aux") not in lines  # all-zero aux loss: no aux head
    assert [line.get_label() for line in ax_miou.get_lines()] == ["tmanet-aaa"]
    assert same(lines[("val mIoU (%)", "tmanet-aaa")], runs["tmanet-aaa"][1]["miou"])
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["tmanet-aaa", "tmanet-aaa aux", "per-frame-dir"]
    colours = {line.get_label(): line.get_color() for line in ax_lr.get_lines()}
    assert colours["tmanet-aaa"] != colours["per-frame-dir"]
    assert ax_miou.get_xlabel() == "iteration" and ax_loss.get_shared_x_axes().joined(ax_loss, ax_miou)


def test_no_validation_anywhere_is_said_on_the_axes(runs: dict) -> None:
    fig = curves_figure([read_log(runs["per-frame-dir"][0])])
    assert not fig.axes[2].get_lines()
    assert [t.get_text() for t in fig.axes[2].texts] == ["no validation lines in these logs"]


def test_bench_curves_writes_the_png_and_says_what_is_missing(runs: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "plots" / "curves.png"
    assert main(["curves", *(str(d) for d, _ in runs.values()), "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (960, 1080)  # 8 x 9 inches at 120 dpi
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50
    text = capsys.readouterr().out
    assert "tmanet-aaa: 6 training points, 3 validation points" in text
    assert "per-frame-dir: no validation lines" in text and "torn last line" in text
    assert text.strip().endswith(str(out))


def test_without_out_the_png_goes_into_the_first_run_folder(runs: dict, tmp_path: Path, monkeypatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    folders = [Path(d) for d, _ in runs.values()]
    assert main(["curves", *map(str, folders)]) == 0
    assert (folders[0] / "curves.png").stat().st_size > 0 and not list(cwd.iterdir())


def test_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["curves", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"bench: CurvesError: {tmp_path / 'nowhere'}: no log.jsonl; give run folders written by `bench train`"
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "log.jsonl").write_text('{"iter": 1, "loss": 1.0}\nnot json\n{"iter": 2, "loss": 0.5}\n')
    with pytest.raises(CurvesError, match=r"log.jsonl:2: not JSON .*remove or repair that line"):
        read_log(bad)


def test_import_and_drawing_keep_pyplot_and_the_backend_untouched(tmp_path: Path) -> None:
    # rcParams read raw: matplotlib.get_backend() would itself resolve the backend through pyplot
    code = (
        "import matplotlib, sys; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
        "before = raw(); import bench.report.curves as c; c.curves_figure([c.RunLog('x', None, loss=[(1, 1.0)])])"
        ".savefig(sys.argv[1]); assert 'matplotlib.pyplot' not in sys.modules; assert raw() == before"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
