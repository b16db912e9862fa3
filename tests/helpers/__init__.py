"""Shared test helpers, importable as a package (``from helpers import tiny_config``); ``tests/conftest.py``
keeps only fixtures and pytest hooks.

* ``helpers.configs``: ``TINY``, ``as_overrides``, ``tiny_config`` (the one tiny-config builder), ``tiny_builder``,
  ``write_grid_spec``;
* ``helpers.records``: per-image counts with known statistics and ``fake_eval_record`` (the one record
  fabricator, writing through ``RunDir``), ``write_report_spec``, ``fabricate_records``;
* ``helpers.machines``: SLURM gates and a fake cluster, optional tracker packages, image files;
* ``helpers.output``: ``one_line_error`` (stderr is one line without a traceback, holding the given words);
* ``helpers.vspw_tree``: a tiny VSPW_480p tree in the release's exact layout (imported as a module).
"""

from helpers.configs import REPO, SYNTHETIC_BASE, TINY, as_overrides, tiny_builder, tiny_config, write_grid_spec
from helpers.machines import SLURM_TOOLS, fake_slurm, require_slurm, require_tracker, slurm_gate, write_frame
from helpers.output import one_line_error
from helpers.records import (
    REPORT_BASE,
    counts_miou,
    fabricate_records,
    fake_eval_record,
    fake_image_rows,
    noisy_iou,
    per_image_counts,
    per_image_fabricator,
    write_report_spec,
)

__all__ = [
    "REPO", "SYNTHETIC_BASE", "TINY", "as_overrides", "tiny_builder", "tiny_config", "write_grid_spec",
    "SLURM_TOOLS", "fake_slurm", "require_slurm", "require_tracker", "slurm_gate", "write_frame", "one_line_error",
    "REPORT_BASE", "counts_miou", "fabricate_records", "fake_eval_record", "fake_image_rows", "noisy_iou",
    "per_image_counts", "per_image_fabricator", "write_report_spec",
]  # fmt: skip
