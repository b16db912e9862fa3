"""Progress without a terminal: status lines (with an ETA) through logging, none with -q, a bar on a TTY."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from bench.progress import Progress, format_seconds, status_every


@pytest.fixture
def bench_level():
    logger = logging.getLogger("bench")
    before = logger.level
    yield logger
    logger.setLevel(before)


@pytest.fixture
def now(bench_level, monkeypatch) -> list[float]:
    """A settable clock for ``bench.progress`` (``now[0] = seconds``), with ``bench`` logging at INFO."""
    bench_level.setLevel(logging.INFO)
    clock = [0.0]
    monkeypatch.setattr("bench.progress.time.monotonic", lambda: clock[0])
    return clock


def test_status_lines_every_n_seconds_with_an_eta(caplog, now):
    with caplog.at_level(logging.INFO, logger="bench.progress"):
        bar = Progress(10, "train", tty=False, every=30)
        now[0] = 5.0
        bar.update(1, loss="0.5")  # too early for a line
        now[0] = 31.0
        bar.update(1, loss="0.4")  # one line
        now[0] = 40.0
        bar.close()  # the final line
    lines = [r.getMessage() for r in caplog.records if r.name == "bench.progress"]
    assert lines[0] == "train 2/10 (20%), elapsed 0:31, ETA 2:04, loss=0.4"
    assert lines[1].startswith("train 2/10 (20%), elapsed 0:40") and len(lines) == 2


def test_a_loop_shorter_than_one_interval_writes_no_line(caplog, now):
    with caplog.at_level(logging.INFO, logger="bench.progress"):
        bar = Progress(2, "eval", tty=False, every=30)
        now[0] = 5.0
        bar.update(2)
        bar.close()
    assert not [r for r in caplog.records if r.name == "bench.progress"]


def test_quiet_shows_nothing_and_a_terminal_gets_a_bar(caplog, bench_level, monkeypatch):
    bench_level.setLevel(logging.WARNING)
    with caplog.at_level(logging.INFO, logger="bench.progress"):
        bar = Progress(3, "eval", tty=True, every=0)
        bar.update(3)
        bar.close()
    assert bar.bar is None and not caplog.records
    bench_level.setLevel(logging.INFO)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = Progress(3, "eval", tty=True)
    assert bar.bar is not None
    bar.update(3)
    bar.close()
    assert "eval" in sys.stderr.getvalue() and "3/3" in sys.stderr.getvalue()


def test_helpers(monkeypatch):
    assert format_seconds(75) == "1:15" and format_seconds(3700) == "1:01:40"
    monkeypatch.setenv("BENCH_STATUS_EVERY", "5")
    assert status_every() == 5.0
    monkeypatch.setenv("BENCH_STATUS_EVERY", "soon")
    assert status_every() == 30.0


def test_configured_logging_follows_the_current_stderr(capsys, bench_level):
    from bench.progress import configure_logging

    configure_logging(logging.INFO)
    configure_logging(logging.INFO)  # idempotent: one handler
    logging.getLogger("bench.grid.local").info("run 1 of 2: started")
    err = capsys.readouterr().err
    assert err.count("run 1 of 2: started") == 1 and "INFO bench.grid.local" in err
