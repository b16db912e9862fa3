"""Evaluation of a given model: inference modes (whole, slide), metrics over a split, prediction images and
latency measurement. It never builds a model (``bench.run.model`` does) and never imports the rooms above it."""
