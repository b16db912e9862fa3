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


CONFIGS = ABLATIONS.parent / "configs"


def _comment_claims(text: str) -> dict[str, list[int]]:
    """Numbers a config's comments state: iterations ("400 iterations", "80k iters") and memory lengths ("T=2")."""
    import re

    comments = " ".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
    # a schedule's length, not its warm-up ("linear warm-up 1500 iterations")
    iters = [
        int(n) * (1000 if k else 1) for n, k in re.findall(r"(?<!warm-up )\b(\d+)(k?) iter(?:ation)?s\b", comments)
    ]
    return {"train.iters": iters, "model.memory_length": [int(t) for t in re.findall(r"\bT ?= ?(\d+)", comments)]}


def test_config_comments_state_the_values_the_configs_set():
    from bench.config import load_config

    checked = 0
    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = load_config(path)
        for key, stated in _comment_claims(path.read_text()).items():
            actual = cfg.train.iters if key == "train.iters" else cfg.model.memory_length
            assert all(value == actual for value in stated), f"{path.name}: comments say {key} {stated}, it is {actual}"
            checked += len(stated)
    assert checked >= 3


def test_the_readme_names_the_memory_length_of_the_shared_default_run():
    """The default TMANet run shared by the synthetic grids has the base config's T."""
    import re

    from bench.config import load_config

    readme = (ABLATIONS / "README.md").read_text()
    stated = re.search(r"the default TMANet run of `synthetic_memory_length` \(T=(\d+)\b", readme)
    assert (
        stated is not None
        and int(stated.group(1)) == load_config(CONFIGS / "synthetic_tmanet.yaml").model.memory_length
    )
