"""The error every dataset problem raises (missing folders, incomplete layouts, malformed files); torch-free."""


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or holds malformed files."""
