"""The error every dataset problem raises (missing folders, incomplete layouts, malformed files); torch-free."""

from bench.errors import BenchError


class DatasetError(BenchError, ValueError):
    """A dataset folder is missing, incomplete or holds malformed files."""
