"""bench/perf/video_eval_bench.py runs end to end at a tiny size and prints every row (a smoke test, not a timing)."""

from bench.perf.video_eval_bench import main


def test_the_benchmark_prints_both_modes_and_the_mvc_share(capsys):
    argv = ["--videos", "2", "--length", "9", "--size", "32", "--repeats", "1", "--memory-length", "1"]
    assert main([*argv, "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "streaming:" in out and "recompute:" in out and "x streaming" in out
    assert "write" in out and "mVC alone:" in out
