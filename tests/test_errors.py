"""One error family: every error meant for a user derives from ``bench.errors.BenchError``, and the command line
prints each of them as one line with exit code 2 (bugs keep their traceback)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import baselines
import bench
from bench.cli import main
from bench.errors import BenchError

# exceptions of the suite that are not user errors, and why
NOT_FOR_USERS = {
    "TrainingInterrupted": "control flow: a stop with a checkpoint saved, re-raised as the signal",
    "SweepInterrupted": "a KeyboardInterrupt of a local sweep (Ctrl-C)",
    "DuplicateKeyError": "a YAML parser error, reported as a ConfigError",
    "AliasLimitError": "a YAML parser error, reported as a ConfigError",
    "_NotLiteral": "internal to reading factory signatures from source",
}


def _modules() -> list[str]:
    names = []
    for package in (bench, baselines):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def _error_classes() -> list[type[BaseException]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        found += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name
        ]
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


USER_ERRORS = [cls for cls in _error_classes() if cls.__name__ not in NOT_FOR_USERS]


def test_every_error_meant_for_a_user_derives_from_bench_error():
    outside = [f"{cls.__module__}.{cls.__qualname__}" for cls in USER_ERRORS if not issubclass(cls, BenchError)]
    assert not outside, f"derive these from bench.errors.BenchError (or list them in NOT_FOR_USERS): {outside}"
    assert len(USER_ERRORS) >= 20  # the family as the suite has it: config, data, models, flow, runs, grids, reports


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` whose message has a line break (the CLI must still print one line)."""
    if cls.__name__ == "NonFiniteLossError":
        return cls(3, float("nan"), 0.1, Path("ckpt.pt"), None)
    if cls.__name__ == "NonFiniteStateError":
        return cls("parameter w", 3)
    return cls("something is wrong\nhere is what to do")


@pytest.mark.parametrize("cls", USER_ERRORS, ids=lambda cls: cls.__name__)
def test_the_cli_prints_each_user_error_as_one_line(cls, monkeypatch, capsys):
    def fail(args):
        raise _instance(cls)

    monkeypatch.setattr("bench.cli.parser.cmd_config", fail)
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bench: {cls.__name__}: "), err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def fail(args):
        raise KeyError("a bug")

    monkeypatch.setattr("bench.cli.parser.cmd_config", fail)
    with pytest.raises(KeyError):
        main(["config"])
