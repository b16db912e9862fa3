"""Atomic file writes, JSON reading, and one line saying what to do when a folder cannot be written.

    from bench.atomic import atomic_file, write_json_atomic, write_text_atomic, read_json
    write_json_atomic(path, obj)       # temporary file + fsync + os.replace: readers never see half a file
    with atomic_file(path) as handle:   # a binary stream, e.g. for torch.save(state, handle)
    write_problem(err)                 # "cannot write ...: No space left on device; free space ..." or None
    ensure_writable(folder)            # fails before any work starts when the folder cannot be written
    output_file("figs/", "curves.png")  # figs/curves.png: --out naming a folder means "inside it"

The bottom of the layers (beside ``bench.errors``): records, checkpoints, reports and their indexes all write
through here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bench.process import writer_tag


def _json_ready(obj: Any) -> Any:
    """Replace NaN/inf floats by None (JSON has no NaN), tuples by lists and paths by strings, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return _json_ready(obj.item())
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file in the same folder + os.replace).

    NaN and inf become ``null``. Parent folders are created. Returns the path.
    """
    return write_text_atomic(path, json.dumps(_json_ready(obj), indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: readers see the old file or the complete new one."""
    return write_atomic(path, text.encode())


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file in ``path``'s folder; when the block ends it is fsynced and
    ``os.replace``-d onto ``path``, so a crash mid-write leaves the previous file intact (an exception in the
    block removes the temporary file). Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, default_file_mode())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_prefix(name: str) -> str:
    """The prefix of a temporary file (or folder) for ``name``: hidden, and naming its writer
    (``bench.process.writer_tag``), so a clean-up removes only what a process that is gone left behind."""
    return f".{name}.{writer_tag()}"


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``atomic_file``)."""
    with atomic_file(path) as handle:
        handle.write(data)
    return Path(path)


# OSErrors that mean "this place cannot be written" rather than a bug
_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def read_only(err: BaseException) -> bool:
    """Whether ``err`` says a place cannot be written (a read-only file system, a refused permission)."""
    return isinstance(err, OSError) and err.errno in _READ_ONLY


def write_problem(err: BaseException) -> str | None:
    """One line saying what to do for an ``OSError`` of a full disk, a quota, a read-only folder or a refused
    permission (writes are atomic: nothing already there was lost); None for any other error."""
    if not isinstance(err, OSError) or err.errno not in _FULL + _READ_ONLY:
        return None
    where = err.filename or "the output folder"
    folder = Path(str(where)).parent if err.filename else Path(".")
    if err.errno in _FULL:
        return (
            f"cannot write {where}: {err.strerror}; free space there (df -h {folder}) and rerun the same "
            f"command (what was written before is intact)"
        )
    return (
        f"cannot write {where}: {err.strerror}; choose a writable folder (output_root=..., run_dir=..., "
        f"--out, --save-preds) or fix its permissions, then rerun"
    )


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` and write (then remove) a probe file in it, so a full disk or a read-only folder
    fails before any work starts (an ``OSError`` naming the folder; ``write_problem`` says what to do)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(folder)) from err
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return folder


def output_file(out: str | Path, default_name: str) -> Path:
    """Where a command's ``--out`` puts its file: a path ending in a separator, or naming an existing folder,
    means ``default_name`` inside that folder (never ``DIR.png`` beside it, which may be another file); a name
    without a suffix gets ``default_name``'s (the suffix the writer would add itself)."""
    text = str(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / default_name
    return path if path.suffix else path.with_suffix(Path(default_name).suffix)


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0644 with the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a malformed file is a ``ValueError`` naming it (callers say what to do about it)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err
