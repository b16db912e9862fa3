"""Benchmark scripts (not tests) printing side-by-side timings and ratios.

* ``python -m bench.perf.attention_bench``: fused SDPA vs reference TMA read, time and peak memory;
* ``python -m bench.perf.streaming_bench``: TMANet streaming vs recompute vs per-frame latency.
"""
