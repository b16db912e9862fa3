"""The base class of every error meant for a user, and the one line the command line prints for it.

    from bench.errors import BenchError

    class SweepError(BenchError, ValueError): ...    # keep the builtin base where callers catch it

    try:
        ...
    except BenchError as err:
        print(one_line(err))                     # "bench: SweepError: <message on one line>"
    shorten(message, 400)                        # one line; a long one loses its middle, never its advice

A ``BenchError`` says what is wrong with the user's input or files and what to do about it, in its message; the
``bench`` command (``bench.cli``) catches this class, prints ``one_line(err)`` to stderr and exits with 2, and
``python -m bench.run.execute`` does the same. Every other exception is a bug and keeps its traceback. Each
concept keeps its own subclass beside its code (``bench.config.ConfigError``, ``bench.data.errors.DatasetError``,
``bench.run.rundir.RunDirError``...); ``tests/test_errors.py`` checks that every one of them derives from here.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error meant for a user: its message names the problem and the way out, on one line."""


def one_line(err: BaseException) -> str:
    """``bench: <class name>: <message with its whitespace collapsed>`` (a message may carry newlines)."""
    return f"bench: {type(err).__name__}: {' '.join(str(err).split())}"


def shorten(text: str, limit: int = 400) -> str:
    """``text`` on one line, at most ``limit`` characters: a longer one loses its middle, never its end, where a
    message says what to do ("... Download X from URL and unzip it into ROOT")."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = (limit - 5) * 2 // 5
    return f"{flat[:head]} ... {flat[-(limit - 5 - head) :]}"
