"""The flow-family benchmark script runs every section and honours --max-seconds (no timing asserted)."""

from bench.perf.flow_family_bench import main


def test_flow_family_bench_prints_every_section(capsys):
    main(
        [
            "--frames",
            "2",
            "--warmup",
            "1",
            "--keyframe-intervals",
            "2",
            "--full-size",
            "64",
            "64",
            "--full-backbone",
            "resnet18",
            "--dis-pairs",
            "1",
            "--max-seconds",
            "120",
        ]
    )
    out = capsys.readouterr().out
    for row in (
        "per_frame",
        "tmanet T=1",
        "flow_warp T=1 dis",
        "dff k=2 dis",
        "accel k=2 dis",
        "dff cycle ms / per_frame ms",
        "FLOPs per frame at 64x64 (resnet18)",
        "DIS at 64x64",
        "DIS paper",
    ):
        assert row in out, row
    main(["--frames", "1", "--warmup", "0", "--keyframe-intervals", "2", "--max-seconds", "0"])
    assert "skipped (latency rows): --max-seconds 0 spent" in capsys.readouterr().out
