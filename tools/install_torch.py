"""Install PyTorch into the current environment once, choosing the build, and pin what is there.

    .venv/bin/python tools/install_torch.py CONSTRAINTS_FILE      # what `make setup` runs first

Why: a plain ``pip install`` of this project on a machine without torch takes PyPI's default torch, the CUDA
build with several GB of CUDA libraries, even on a CPU-only machine; and an unbounded ``torchvision`` may
replace a torch the user already has (for example a CUDA build they installed on purpose).

What it does:

1. torch already importable: keep it, whatever its build.
2. otherwise, by ``BENCH_TORCH`` (``auto`` by default): ``cuda`` (or ``auto`` with ``nvidia-smi`` answering)
   installs PyPI's default build; ``cpu`` (or ``auto`` without a GPU) tries, in order, a CPU wheel already on
   this machine (pip's ``find-links``, no index), then the PyTorch CPU index (``TORCH_CPU_INDEX``, default
   https://download.pytorch.org/whl/cpu, 20 s timeout), then PyPI's default build with a warning.
3. writes ``torch==<installed version>`` (and torchvision's, when installed) to CONSTRAINTS_FILE;
   ``pip install -e . -c CONSTRAINTS_FILE`` then picks the torchvision that matches this torch instead of
   replacing torch.

A CPU torch needs a CPU torchvision from the same source (PyPI's torchvision is linked against the CUDA torch);
where none is found, the CUDA build is installed, with a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TORCH_RANGE = "torch>=2.3,<3"  # 2.3: torch.amp.GradScaler("cuda")
TORCHVISION_RANGE = "torchvision>=0.18,<1"
DEFAULT_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def installed(package: str) -> str | None:
    """The version of ``package`` installed in this environment (read from its metadata), or None."""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def has_gpu() -> bool:
    """Whether ``nvidia-smi`` lists a GPU."""
    if shutil.which("nvidia-smi") is None:
        return False
    probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return probe.returncode == 0 and "GPU" in probe.stdout


def pip(*args: str, only_given_index: bool = False) -> bool:
    """Run ``pip install ARGS`` quietly; True when it succeeded.

    ``only_given_index``: ignore pip's configured indexes and find-links, so that "installed from INDEX" is true.
    """
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    env = dict(os.environ)
    if only_given_index:
        env["PIP_CONFIG_FILE"] = os.devnull
        for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
            env.pop(key, None)
    return subprocess.run(command, env=env).returncode == 0


def install(build: str) -> None:
    """Install torch and torchvision for ``build`` ("cpu" or "cuda"), most specific source first.

    The CPU build needs a CPU torchvision from the same source: PyPI's torchvision is linked against CUDA torch
    and does not load next to a CPU torch.
    """
    if build == "cuda":
        if not pip(TORCH_RANGE, TORCHVISION_RANGE):
            raise SystemExit("install_torch: pip could not install torch; see the messages above")
        return
    index = os.environ.get("TORCH_CPU_INDEX", DEFAULT_CPU_INDEX)
    # the two wheels first (no index: wheels on this machine; then the CPU index), their dependencies after
    if pip("--no-index", "--no-deps", TORCH_RANGE, TORCHVISION_RANGE):
        print("install_torch: CPU torch and torchvision from wheels on this machine (pip find-links)")
    elif pip(
        "--no-deps",
        "--index-url",
        index,
        "--timeout",
        "20",
        "--retries",
        "1",
        TORCH_RANGE,
        TORCHVISION_RANGE,
        only_given_index=True,
    ):
        print(f"install_torch: CPU torch and torchvision from {index}")
    else:
        print(
            f"install_torch: warning: no CPU build of torch and torchvision found (wheels on this machine, "
            f"{index}); installing PyPI's default torch, the CUDA build (several GB). Set TORCH_CPU_INDEX to a "
            f"reachable CPU wheel index to avoid it."
        )
        install("cuda")
        return
    pinned = [f"{name}=={installed(name)}" for name in ("torch", "torchvision")]
    if not pip(*pinned):  # the installed wheels satisfy these: pip adds their dependencies
        raise SystemExit("install_torch: pip could not install torch's dependencies; see the messages above")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    version = installed("torch")
    if version is None:
        choice = os.environ.get("BENCH_TORCH", "auto")
        if choice not in ("auto", "cpu", "cuda"):
            print(f"install_torch: BENCH_TORCH={choice!r}; use auto, cpu or cuda", file=sys.stderr)
            return 2
        install("cuda" if choice == "cuda" or (choice == "auto" and has_gpu()) else "cpu")
        version = installed("torch")
        if version is None:
            raise SystemExit("install_torch: pip reported success but no torch is installed; see the messages above")
    else:
        print(f"install_torch: keeping the installed torch {version}")
    print(f"install_torch: torch {version} ({'CPU' if version.endswith('+cpu') else 'CUDA or default'} build)")
    pins = [f"{name}=={installed(name)}" for name in ("torch", "torchvision") if installed(name)]
    Path(argv[0]).write_text("".join(pin + "\n" for pin in pins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
