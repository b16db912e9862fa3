"""The one way the suite asks git: a command's output, the checkout's commit, whether files changed.

from bench.run.git import git, commit, dirty
git("ls-tree", "--name-only", "HEAD", "--", "a.md", cwd=folder)   # stdout, or None (no git, no checkout, failed)
commit()                                     # HEAD of the suite's checkout, or None
dirty()                                      # tracked or untracked changes anywhere (records' provenance)
dirty(paths=COMPUTING, untracked=False)      # tracked files under these paths changed (the code fingerprint)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git(*args: str, cwd: str | Path = REPO_ROOT) -> str | None:
    """``git ARGS`` in ``cwd``: its stdout, or None when git is missing, ``cwd`` is no checkout or it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def commit(repo: str | Path = REPO_ROOT) -> str | None:
    """``git rev-parse HEAD`` of ``repo``, or None outside a git checkout / without commits / without git."""
    out = (git("rev-parse", "HEAD", cwd=repo) or "").strip()
    return out or None


def dirty(repo: str | Path = REPO_ROOT, paths: Sequence[str] = (), untracked: bool = True) -> bool | None:
    """Whether ``git status --porcelain`` of ``repo`` (limited to ``paths``; ``untracked``: counting untracked
    files) lists changes; None without git."""
    args = [
        "status",
        "--porcelain",
        *([] if untracked else ["--untracked-files=no"]),
        *(["--", *paths] if paths else []),
    ]
    out = git(*args, cwd=repo)
    return None if out is None else bool(out.strip())
