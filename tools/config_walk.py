"""How far a config travels: every call, from ``bench train`` to the record, that receives the whole ``Config``.

    python tools/config_walk.py            # a tiny synthetic run (CPU, seconds) under a profiler
    python tools/config_walk.py --list     # ... and the stops in order (file:function)

A "stop" is a call of a function of this repository (``bench/``, ``baselines/``) with the run's ``Config``
object among its arguments (``--sections``: or one of its sections, ``cfg.data``, ``cfg.train``, ...). "Returns"
counts the stops that come back to a file the walk had already left.
Few stops in few files, with few returns, mean narrow interfaces: the stages get the sections they use.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def walk(out_root: str, sections: bool = False) -> list[tuple[str, str]]:
    """(file relative to the repo, function) of every stop of one tiny ``bench train``, in order."""
    sys.path.insert(0, str(REPO))
    from bench.config import Config, load_config
    from bench.run.execute import train_command

    cfg = load_config(REPO / "configs" / "synthetic_tmanet.yaml", TINY + [f"output_root={out_root}"])
    stops: list[tuple[str, str]] = []
    watched = [cfg] + (
        [getattr(cfg, name) for name in ("data", "model", "train", "eval", "launch")] if sections else []
    )
    roots = (str(REPO / "bench"), str(REPO / "baselines"))

    def profile(frame, event, arg):  # noqa: ANN001 - the sys.setprofile signature
        if event != "call" or not frame.f_code.co_filename.startswith(roots):
            return
        code = frame.f_code
        args = [frame.f_locals.get(name) for name in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]]
        if any(value is w for value in args for w in watched):
            stops.append((str(Path(code.co_filename).relative_to(REPO)), code.co_name))

    sys.setprofile(profile)
    try:
        train_command(cfg)
    finally:
        sys.setprofile(None)
    assert isinstance(cfg, Config)
    return stops


def returns(files: list[str]) -> int:
    """Stops that enter a file the walk had left earlier."""
    seen: set[str] = set()
    count, previous = 0, None
    for name in files:
        if name != previous and name in seen:
            count += 1
        seen.add(name)
        previous = name
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print every stop")
    parser.add_argument("--sections", action="store_true", help="count calls that receive a config section too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stops = walk(tmp, args.sections)
    files = [f for f, _ in stops]
    if args.list:
        for f, fn in stops:
            print(f"  {f}:{fn}")
    print(f"{len(stops)} stops in {len(set(files))} files, {returns(files)} returns to a file already left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
