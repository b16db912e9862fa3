"""The training engine: the loop and everything only it uses (stages, recipe, batches, checkpoint, signals,
hooks, loggers and trackers, ETC's temporal loss). It is handed a ``TrainJob`` by ``bench.run`` and never
imports the rooms above it."""
