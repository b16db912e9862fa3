"""Typed experiment configuration (``bench.config.schema``); ``from bench.config import X`` keeps working."""

from bench.config.schema import *  # noqa: F403
from bench.config.schema import _field_specs  # noqa: F401
