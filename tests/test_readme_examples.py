"""Every ```python block of README.md runs as written, in order, in one namespace (later blocks use earlier
names), on tiny settings: ``bench.load_config`` appends the tiny overrides of ``tests/helpers/configs.py`` (resnet18,
32x32 clips, 2 iterations), in a temporary folder that links the repository's configs, specs and examples."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import TINY, as_overrides

import bench
import bench.config

REPO = Path(__file__).resolve().parent.parent
TINY_RUN = {**TINY, "train.iters": 2, "train.log_every": 1, "train.batch_size": 2, "eval.max_images": 2}


def readme_blocks() -> list[str]:
    """The ```python blocks of README.md, in order."""
    return re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    blocks = readme_blocks()
    assert len(blocks) >= 3 and any("bench.execute" in b for b in blocks)


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch, capsys):
    for folder in ("configs", "ablations", "examples"):
        (tmp_path / folder).symlink_to(REPO / folder)
    monkeypatch.chdir(tmp_path)

    def tiny_load_config(path=None, overrides=()):
        return bench.config.load_config(path, [*overrides, *as_overrides(TINY_RUN)])

    monkeypatch.setattr(bench, "load_config", tiny_load_config)
    namespace: dict = {"__name__": "readme"}
    for k, block in enumerate(readme_blocks(), 1):
        exec(compile(block, f"README.md python block {k}", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["result"].record["iters"] == 2
    assert 0.0 <= namespace["metrics"]["miou"] <= 1.0
    out = capsys.readouterr().out
    assert re.search(r"^1 \d", out, re.M) and re.search(r"^2 \d", out, re.M), out  # the hook saw both log lines
