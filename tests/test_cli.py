"""The `bench` command: help, resolved configs, and errors as messages (not tracebacks)."""

import argparse
import io
import logging
import subprocess
import sys

import bench
from bench.cli import build_parser, latency_table, main

SUBCOMMANDS = (
    "config",
    "train",
    "eval",
    "sweep",
    "status",
    "latency",
    "report",
    "curves",
    "preview",
    "prepare-camvid",
    "prepare-camvid-segnet",
    "prepare-camvid-full",
    "prepare-vspw",
    "score",
    "models",
    "paper",
)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand():
    out = run("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout


def test_every_option_of_every_subcommand_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(SUBCOMMANDS)
    missing = [
        f"{name or 'bench'} {'/'.join(action.option_strings) or action.dest}"
        for name, p in [("", parser), *subparsers.choices.items()]
        for action in p._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not (action.help and action.help.strip())
    ]
    assert not missing, f"options without help: {missing}"


def test_version_and_log_level_options(capsys):
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"bench {bench.__version__}"
    assert main(["-q", "models"]) == 0
    assert logging.getLogger("bench").level == logging.WARNING
    assert main(["-v", "models"]) == 0
    assert logging.getLogger("bench").level == logging.DEBUG
    assert main(["models"]) == 0
    assert logging.getLogger("bench").level == logging.INFO


def test_latency_prints_a_table_unless_json_is_asked():
    mode = {"median_ms": 12.345, "p90_ms": 14.0, "fps": 80.1, "gmacs": 1.5, "peak_memory_mb": 300.0}
    text = latency_table({"modes": {"streaming": mode, "recompute": {**mode, "median_ms": 30.0}}, "device": "cpu"})
    lines = text.splitlines()
    assert lines[0].split() == ["mode", "median", "ms", "p90", "ms", "FPS", "GMACs", "peak", "MiB"]
    assert lines[2].split()[:3] == ["streaming", "12.35", "14.00"] and lines[3].split()[:2] == ["recompute", "30.00"]
    assert "device: cpu" in text
    assert build_parser().parse_args(["latency", "--json"]).json


def test_config_prints_the_resolved_yaml_with_overrides(capsys):
    assert main(["config", "configs/synthetic_tmanet.yaml", "model.memory_length=4", "train.iters=7"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# run id: tmanet-")
    assert "memory_length: 4" in text and "iters: 7" in text and "backbone: resnet10t" in text


def test_config_accepts_overrides_without_a_file(capsys):
    assert main(["config", "model.aggregation=sum"]) == 0
    assert "aggregation: sum" in capsys.readouterr().out


def test_bad_override_is_a_message_and_exit_code_2():
    out = run("config", "configs/synthetic_tmanet.yaml", "model.agregation=sum")
    assert out.returncode == 2
    assert "unknown key model.agregation; valid keys under model:" in out.stderr
    assert "Traceback" not in out.stderr


def test_models_lists_the_builtin_models(capsys):
    assert main(["models"]) == 0
    assert {"tmanet", "per_frame", "flow_warp"} <= set(capsys.readouterr().out.split())


def test_models_takes_plugins_like_every_other_command(capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "examples"))
    assert main(["models", "plugins=[temporal_mean]"]) == 0
    assert "temporal_mean" in capsys.readouterr().out.split()
    assert main(["models", "--plugins", "temporal_mean"]) == 0  # the old flag still works, with a note
    assert "--plugins is deprecated; write plugins=[a,b]" in capsys.readouterr().err
    assert main(["models", "model.name=x"]) == 2
    assert "bench models takes only plugins=[module, ...]" in capsys.readouterr().err


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_closing_the_pipe_early_is_not_an_error(monkeypatch):
    # `bench config ... | head -n 1`: the reader went away, so writing to stdout raises BrokenPipeError
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert main(["config", "configs/synthetic_tmanet.yaml"]) == 0
