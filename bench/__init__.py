"""bench: a reproducibility benchmark and ablation suite for video semantic segmentation.

Run ``bench --help`` (or ``python -m bench --help``) for the commands.
"""

__version__ = "0.1.0"
