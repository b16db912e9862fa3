"""The test-time protocol of an evaluation and its name in tables (torch-free: the reports read it).

    from bench.evaluation.protocols import Protocol, augmentation_label
    protocol = Protocol.of("slide", [769, 769], [513, 513], [0.5, 0.75, 1.0, 1.25, 1.5, 1.75], True)
    protocol.label()                   # "slide 769x769/513, ms+flip (0.5-1.75)"
    augmentation_label([1.0], False)   # "single-scale"

What the passes compute is ``bench.evaluation.tta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MMSEG_SCALES: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # mmseg test.py --aug-test img_ratios


@dataclass(frozen=True)
class Protocol:
    """How a frame is predicted: ``mode`` whole / slide (``crop_size``, ``stride``), then ``scales`` and ``flip``."""

    mode: str = "whole"
    crop_size: tuple[int, int] = (769, 769)
    stride: tuple[int, int] = (513, 513)
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @classmethod
    def of(cls, mode: str, crop_size: Sequence[int], stride: Sequence[int], scales: Sequence[float], flip: bool):
        return cls(mode, (int(crop_size[0]), int(crop_size[1])), (int(stride[0]), int(stride[1])),
                   tuple(float(s) for s in scales), bool(flip))  # fmt: skip

    @property
    def single(self) -> bool:
        """One pass at the image's own size: the scores are the logits themselves."""
        return self.scales == (1.0,) and not self.flip

    def augmentations(self) -> list[tuple[float, bool]]:
        """(scale, mirrored) of every pass, in mmseg's order (each scale, unflipped then flipped)."""
        return [(s, f) for s in self.scales for f in ((False, True) if self.flip else (False,))]

    def short_label(self) -> str:
        """ "single-scale", "flip", "ms (0.5-1.75)", "ms+flip (0.5-1.75)" or "scale 0.5"."""
        return augmentation_label(self.scales, self.flip)

    def label(self) -> str:
        """The whole protocol: "slide 769x769/513, ms+flip (0.5-1.75)", "whole, single-scale"."""
        window = f"slide {self.crop_size[0]}x{self.crop_size[1]}/{self.stride[0]}" if self.mode == "slide" else "whole"
        return f"{window}, {self.short_label()}"


def augmentation_label(scales: Sequence[float], flip: bool) -> str:
    """The test-time augmentation in a table's words (see ``Protocol.short_label``)."""
    scales = [float(s) for s in scales]
    if len(scales) > 1:
        return f"ms{'+flip' if flip else ''} ({min(scales):g}-{max(scales):g})"
    if scales != [1.0]:
        return f"scale {scales[0]:g}" + (" + flip" if flip else "")
    return "flip" if flip else "single-scale"


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H, W) scaled by ``scale``, rounded as mmcv's ``rescale_size``: int(x * scale + 0.5)."""
    return int(size[0] * scale + 0.5), int(size[1] * scale + 0.5)
