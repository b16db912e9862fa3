"""What a command printed: the one-line error every user mistake must end in.

err = one_line_error(capsys, "is not a run folder", "nothing in it was changed")
"""

from __future__ import annotations

from typing import Any


def one_line_error(capsys: Any, *needles: str) -> str:
    """The captured stderr, asserted to be one line without a traceback that holds every one of ``needles``."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err
