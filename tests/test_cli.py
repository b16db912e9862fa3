"""The `bench` command: help, resolved configs, and errors as messages (not tracebacks)."""

import io
import subprocess
import sys

from bench.cli import main

SUBCOMMANDS = ("config", "train", "eval", "sweep", "status", "latency", "report", "preview", "prepare-camvid", "models")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand():
    out = run("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout


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



class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_closing_the_pipe_early_is_not_an_error(monkeypatch):
    # `bench config ... | head -n 1`: the reader went away, so writing to stdout raises BrokenPipeError
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert main(["config", "configs/synthetic_tmanet.yaml"]) == 0
