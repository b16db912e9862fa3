"""ablations/README.md agrees with the shipped specs: every spec is listed, and the synthetic grids run the
seeds the README states."""

from __future__ import annotations

from pathlib import Path

import yaml

ABLATIONS = Path(__file__).resolve().parent.parent / "ablations"


def test_every_spec_is_listed_with_the_seeds_it_runs():
    readme = (ABLATIONS / "README.md").read_text()
    specs = {path.stem: yaml.safe_load(path.read_text()) for path in ABLATIONS.glob("*.yaml")}
    for name in specs:
        family = name.split("_")[0] + "_{"  # cityscapes_{memory_length,...} lists a family at once
        assert f"`{name}`" in readme or (family in readme and name.split("_", 1)[1] in readme), name
    assert "seeds 0, 1 and 2 (n = 3 per row)" in readme
    for name, spec in specs.items():
        if name.endswith("_n5"):  # the deciding grids: five seeds, the README's row says so
            assert spec["seeds"] == [0, 1, 2, 3, 4] and f"`{name}` |" in readme, name
            assert "n = 5" in readme.split(f"`{name}` |", 1)[1].split("\n", 1)[0], name
        elif name.startswith("synthetic_"):
            assert spec["seeds"] == [0, 1, 2], name
