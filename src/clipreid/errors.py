"""Errors the project raises on bad input: each message names the file, row or setting at
fault and what to do about it."""


class ClipReidError(Exception):
    """Base class of the project's own errors: the CLI prints these without a traceback."""


class DatasetError(ClipReidError, ValueError):
    """A data set folder, list file, file name or split is missing or malformed."""


class ConfigError(ClipReidError, ValueError):
    """A setting in params.yaml / conf/ is missing or inconsistent."""


class WeightsError(ClipReidError, FileNotFoundError):
    """Model weights or a checkpoint are missing or unreadable."""
