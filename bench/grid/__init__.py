"""Grids of runs: spec expansion into typed runs, launchers (local, SLURM), and grid status."""
