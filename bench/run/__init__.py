"""One run: its directory (the single owner of its files and state), training, evaluation, latency, records."""
