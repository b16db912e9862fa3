"""How far one ``bench train`` wanders through the code: every project function it passes through, the files,
the returns to a file already left, and the files re-entered from a lower layer.

    python tools/config_walk.py                 # a tiny synthetic run (CPU, seconds) under a profiler
    python tools/config_walk.py --list          # ... and the file-to-file stops in order (caller -> callee)
    python tools/config_walk.py --config        # only the calls that receive the whole Config (the first measure)

Every Python-level call into a function of this repository (``bench/``, ``baselines/``) during ``bench train``
(``train_command`` on a tiny ``configs/synthetic_tmanet.yaml``) is recorded with the nearest project frame
that called it (frames of torch or the standard library in between are skipped: a ``DataLoader`` calling a
dataset counts as the trainer's call).

* **functions**: distinct project functions entered; **calls**: how often.
* **files**: distinct project files entered; **pipeline files**: those outside the leaf rooms (``models``,
  ``baselines``, ``data``, ``metrics``, ``flow``), whose insides a reader of the run path never has to follow.
* **stops**: calls that cross from one file into another; **returns**: stops into a file the walk had already
  visited; **pipeline returns**: the same counted on the pipeline files' own sequence of stops.
* **lower-layer re-entries**: stops from a file of a lower layer (``[tool.importlinter]`` layers in
  ``pyproject.toml``) into a file the walk had visited before, i.e. control that climbs back up the layers
  (callbacks, a registry calling into a higher room). The goal is none.

``--config`` counts what the first version of this tool counted: calls whose arguments include the run's
``Config`` object (``--sections``: or one of its sections).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ROOTS = (str(REPO / "bench") + "/", str(REPO / "baselines") + "/")
LEAF_ROOMS = ("bench/models/", "bench/data/", "bench/flow/", "baselines/", "bench/metrics/")
TINY = [
    "data.synthetic.size=[32,32]",
    "data.crop_size=[32,32]",
    "data.synthetic.train_clips=4",
    "data.synthetic.val_clips=2",
    "model.backbone=resnet18",
    "model.key_channels=8",
    "model.value_channels=8",
    "model.channels=8",
    "model.aux_channels=8",
    "train.iters=2",
    "train.batch_size=2",
    "device=cpu",
    "eval.temporal_consistency=false",
]


@dataclass(frozen=True)
class Call:
    """One call into project code: the callee's file and function, the nearest calling project file."""

    file: str
    function: str
    caller: str | None


def _project_file(filename: str) -> str | None:
    return str(Path(filename).relative_to(REPO)) if filename.startswith(ROOTS) else None


def _caller(frame: Any) -> str | None:
    """The nearest project file up the stack from ``frame``'s caller."""
    back = frame.f_back
    while back is not None:
        found = _project_file(back.f_code.co_filename)
        if found is not None:
            return found
        back = back.f_back
    return None


def _run(out_root: str, profile_of: Callable[[Any], Any]) -> None:
    """One tiny ``bench train`` under ``sys.setprofile(profile_of(cfg))``."""
    sys.path.insert(0, str(REPO))
    from bench.config import load_config
    from bench.run.execute import train_command

    cfg = load_config(REPO / "configs" / "synthetic_tmanet.yaml", TINY + [f"output_root={out_root}"])
    sys.setprofile(profile_of(cfg))
    try:
        train_command(cfg)
    finally:
        sys.setprofile(None)


def trace(out_root: str) -> list[Call]:
    """Every call into project code during one tiny ``bench train``, in order."""
    calls: list[Call] = []

    def profile_of(cfg: Any) -> Callable[..., None]:
        def profile(frame, event, arg):  # noqa: ANN001 - the sys.setprofile signature
            if event != "call":
                return
            file = _project_file(frame.f_code.co_filename)
            if file is not None:
                calls.append(Call(file, frame.f_code.co_qualname, _caller(frame)))

        return profile

    _run(out_root, profile_of)
    return calls


def config_stops(out_root: str, sections: bool = False) -> list[tuple[str, str]]:
    """(file, function) of every call that receives the run's ``Config`` (``sections``: or one of its sections)."""
    stops: list[tuple[str, str]] = []

    def profile_of(cfg: Any) -> Callable[..., None]:
        watched = [cfg] + ([getattr(cfg, s) for s in ("data", "model", "train", "eval", "launch")] if sections else [])

        def profile(frame, event, arg):  # noqa: ANN001 - the sys.setprofile signature
            code = frame.f_code
            if event != "call" or _project_file(code.co_filename) is None:
                return
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            if any(frame.f_locals.get(name) is w for name in names for w in watched):
                stops.append((str(_project_file(code.co_filename)), code.co_name))

        return profile

    _run(out_root, profile_of)
    return stops


def returns(files: list[str]) -> int:
    """Entries into a file the sequence had left earlier."""
    seen: set[str] = set()
    count, previous = 0, None
    for name in files:
        if name != previous and name in seen:
            count += 1
        seen.add(name)
        previous = name
    return count


def layers() -> list[list[str]]:
    """The import-linter layers of ``pyproject.toml``, top first, each a list of module prefixes."""
    text = (REPO / "pyproject.toml").read_text()  # read by hand: tomllib is Python 3.11+, the suite runs on 3.10
    block = re.search(r'type = "layers"\s*\nlayers = \[(.*?)\n\]', text, re.S)
    assert block is not None, "pyproject.toml has no import-linter layers contract"
    return [[part.strip() for part in layer.split("|")] for layer in re.findall(r'"([^"]+)"', block.group(1))]


def layer_of(file: str, stack: list[list[str]]) -> int | None:
    """The index of ``file``'s layer (0 = top), None for a module outside every layer (``bench/__init__.py``)."""
    module = file.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    for index, layer in enumerate(stack):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in layer):
            return index
    return None


def is_pipeline(file: str) -> bool:
    return not file.startswith(LEAF_ROOMS)


def measure(calls: list[Call]) -> dict[str, Any]:
    """The numbers of the module docstring, and the stops (caller, callee, marks) in order."""
    stack = layers()
    stops = [c for c in calls if c.caller != c.file]
    seen: set[str] = set()
    upward: list[Call] = []
    marked: list[tuple[Call, str]] = []
    for stop in stops:
        low, high = layer_of(stop.caller or "", stack), layer_of(stop.file, stack)
        climbs = low is not None and high is not None and low > high
        mark = ("return " if stop.file in seen else "") + ("UP " if climbs else "")
        if climbs and stop.file in seen:
            upward.append(stop)
        seen.add(stop.file)
        marked.append((stop, mark.strip()))
    files = [c.file for c in calls]
    pipeline = [c.file for c in stops if is_pipeline(c.file)]
    return {
        "calls": len(calls),
        "functions": len({(c.file, c.function) for c in calls}),
        "files": len(set(files)),
        "pipeline_files": len(set(pipeline)),
        "stops": len(stops),
        "returns": returns([c.file for c in stops]),
        "pipeline_returns": returns(pipeline),
        "upward": upward,
        "marked": marked,
        "file_list": sorted(set(files)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print every stop (caller -> callee) and every file")
    parser.add_argument("--config", action="store_true", help="count only calls that receive the whole Config")
    parser.add_argument("--sections", action="store_true", help="with --config: count calls given a section too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.config:
            found = config_stops(tmp, args.sections)
            names = [f for f, _ in found]
            for f, fn in found if args.list else ():
                print(f"  {f}:{fn}")
            print(f"{len(found)} stops in {len(set(names))} files, {returns(names)} returns to a file already left")
            return 0
        numbers = measure(trace(tmp))
    if args.list:
        for stop, mark in numbers["marked"]:
            print(f"  {stop.caller} -> {stop.file}:{stop.function} {mark}".rstrip())
        print("files:", *numbers["file_list"], sep="\n  ")
    print(
        f"{numbers['functions']} functions ({numbers['calls']} calls) in {numbers['files']} files "
        f"({numbers['pipeline_files']} outside models/baselines/data/metrics/flow); {numbers['stops']} stops "
        f"between files, {numbers['returns']} returns to a file already visited ({numbers['pipeline_returns']} "
        f"among the pipeline files); {len(numbers['upward'])} re-entries from a lower layer"
    )
    for stop in numbers["upward"]:
        print(f"  re-entered from a lower layer: {stop.caller} -> {stop.file}:{stop.function}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
