"""A run folder made under an id of an older scheme: found among its model's sibling folders, so it is adopted
(renamed) instead of trained again, and never by importing a plugin.

    from bench.run.moved import moved_run
    moved_run(run_path, ident, RunDir.sibling_config)   # "" or "this run already exists as ...; mv A B"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run.identity import RunIdentity, differences


def moved_run(path: Path, ident: RunIdentity, stored_config: Callable[[Path], dict[str, Any] | None]) -> str:
    """Why not to train in ``path``: a sibling folder ``<model>-*`` holds this very run under an id of an older
    scheme ("" if none). ``stored_config(folder)`` reads a folder's stored config. A sibling whose stored config
    lists plugins beyond this run's (already imported) ones cannot be this run and is skipped unread."""
    parent = path.parent
    if not parent.is_dir():
        return ""
    for sibling in sorted(parent.glob(f"{ident.config.model.name}-*")):
        if sibling == path or not sibling.is_dir():
            continue
        stored = stored_config(sibling)
        if stored is None or not _plugins_within(stored, ident):
            continue
        if not differences(stored, ident):
            return (
                f"this run already exists as {sibling} (an older run id); rename it so it is reused instead "
                f"of trained again: mv {sibling} {path}"
            )
    return ""


def _plugins_within(stored: dict[str, Any], ident: RunIdentity) -> bool:
    """Whether describing the stored config imports no plugin beyond those of ``ident``'s config (a built-in
    model, the sibling's too since it has the same name, imports none)."""
    if not ident.plugins:
        return True
    plugins = stored.get("plugins") or []
    return isinstance(plugins, list) and set(map(str, plugins)) <= set(ident.config.plugins)
