"""VSPW's video consistency mVC_C, exactly as the official script computes it, and the variants papers used.

    vc = VideoConsistency(windows=(8, 16), gt_lut=vspw_lut)   # gt_lut: raw mask value -> class id, 255 = void
    for video in videos:
        vc.begin_video(video.name)
        for gt_raw, pred in video.frames():                    # (H, W) integer arrays, frames in name order
            vc.add_frame(gt_raw, pred)
        vc.end_video()
    vc.value(8)                                                 # official mVC_8 as a fraction (papers print x100)
    vc.value(16, "cffm")                                        # the copy CFFM / MRCFA / TV3S ship
    vc.summary()                                                # every variant and window, with counts

    mvc([(gts, preds), ...], window=8)                          # the same for (N, H, W) arrays in memory

The official definition (Miao et al., "VSPW: A Large-scale Dataset for Video Scene Parsing in the Wild", CVPR
2021; code: VSPW-dataset/VSPW_baseline ``VC_perclip.py``), for a window length C:

1. per video, the N ground-truth masks sorted by file name and the predictions of the same names; a video with
   N <= C is skipped;
2. windows start at s in ``range(N - C)``: N - C windows of C consecutive frames (the last possible window, at
   s = N - C, is never used; the published numbers include this off-by-one);
3. G = the pixels whose ground truth equals frame s's in every frame of the window, compared on the RAW mask
   values; P = the same for the prediction;
4. the window scores |P and G| / |G|: only the prediction's constancy where the ground truth is constant, never
   whether it is right; void pixels that stay void are in G; |G| = 0 gives NaN;
5. mVC_C = the mean of all non-NaN windows of all videos together (long videos weigh more).

``VC_VARIANTS`` names the copies in circulation, each a change that moves the numbers:

* ``official``: the above.
* ``remapped_gt``: the ground truth is mapped (0 -> 255, x -> x - 1, 254 -> 255) before comparing, as the copies
  in CFFM, MRCFA, TV3S, DTERN and DVIS do; it differs where a pixel alternates between 0 ("others") and 255
  (void), both 255 after the mapping.
* ``cffm``: ``remapped_gt`` plus the skip rule of CFFM's ``VC_perclip.py`` (GuoleiSun/VSS-CFFM, reused by MRCFA
  and TV3S): mVC_8 and mVC_16 are computed in one loop that skips every video of <= 16 frames, for both C.
* ``last_window``: windows ``range(N - C + 1)``, the last window included (not used by any published number).
* ``void_excluded``: void pixels (255 after the mapping) never belong to G (not used by any published number).

Streaming. For each pixel the length of the constant run that ends at the current frame is kept; the window of
frames s .. t (t = s + C - 1) is constant at a pixel exactly when that run is >= C, because equality with the
window's first frame in every frame is, by transitivity, equality of each frame with the one before. So frames
are fed one at a time in O(H W) memory, and every window length and variant is computed in one pass.
Window scores are kept per video, so the result does not depend on the order of videos (DDP shards) and a
bootstrap over videos can resample them (``per_video``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.constants import IGNORE_INDEX


@dataclass(frozen=True)
class VcVariant:
    """One copy of the mVC computation: what it compares and which windows and videos it counts."""

    name: str
    remap_gt: bool = False  # compare the mapped ground truth (0 and 255 both void) instead of the raw values
    skip_at_most: int | None = None  # videos with N <= this are skipped; None = C (official)
    last_window: bool = False  # windows range(N - C + 1) instead of range(N - C)
    exclude_void: bool = False  # void pixels never in G
    source: str = ""

    def skips(self, num_frames: int, window: int) -> bool:
        """True when a video of ``num_frames`` frames is left out of mVC_``window``."""
        return num_frames <= (window if self.skip_at_most is None else self.skip_at_most)


VC_VARIANTS: dict[str, VcVariant] = {
    v.name: v
    for v in (
        VcVariant("official", source="VSPW_baseline VC_perclip.py (raw masks, windows range(N - C), N <= C skipped)"),
        VcVariant("remapped_gt", remap_gt=True, source="ground truth mapped before comparison (CFFM, TV3S, DVIS)"),
        VcVariant(
            "cffm",
            remap_gt=True,
            skip_at_most=16,
            source="VSS-CFFM VC_perclip.py (MRCFA, TV3S): mapped ground truth, videos <= 16 frames skipped for both C",
        ),
        VcVariant("last_window", last_window=True, source="windows range(N - C + 1) (non-official)"),
        VcVariant("void_excluded", exclude_void=True, source="void pixels never in G (non-official)"),
    )
}


@dataclass
class VideoVc:
    """One video's window scores: ``scores[(variant, C)]`` holds the non-NaN window values it contributes (empty
    when skipped); ``nan_windows`` counts windows with |G| = 0."""

    name: str
    frames: int = 0
    scores: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    nan_windows: dict[tuple[str, int], int] = field(default_factory=dict)
    skipped: dict[tuple[str, int], bool] = field(default_factory=dict)


def _advance(run: np.ndarray | None, previous: np.ndarray | None, current: np.ndarray, cap: int) -> np.ndarray:
    """Length of the constant run ending at ``current`` per pixel (uint16, capped at ``cap``)."""
    if run is None:
        return np.ones(current.shape, dtype=np.uint16)
    if previous.shape != current.shape:
        raise ValueError(f"frame of shape {current.shape} after frames of shape {previous.shape} in one video")
    return np.where(current == previous, np.minimum(run + 1, cap), 1).astype(np.uint16)


class VideoConsistency:
    """Streaming mVC for several window lengths and variants at once (see the module docstring).

    ``gt_lut``: 256-entry integer table from the raw mask value to the class id, 255 = void (VSPW: 0 -> 255,
    x -> x - 1, 255 -> 255); None when the ground truth already holds class ids with ``ignore_index`` as void.
    """

    def __init__(
        self,
        windows: Sequence[int] = (8, 16),
        variants: Sequence[str] = tuple(VC_VARIANTS),
        gt_lut: np.ndarray | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        if not windows or min(windows) < 2:
            raise ValueError(f"window lengths must be >= 2 frames, got {list(windows)}")
        unknown = [v for v in variants if v not in VC_VARIANTS]
        if unknown:
            raise ValueError(f"unknown mVC variant {unknown[0]!r}; choose from {', '.join(VC_VARIANTS)}")
        self.windows = tuple(int(c) for c in windows)
        self.variants = tuple(VC_VARIANTS[v] for v in variants)
        self.gt_lut = None if gt_lut is None else np.asarray(gt_lut, dtype=np.int64)
        self.ignore_index = ignore_index
        self.videos: list[VideoVc] = []
        self._video: VideoVc | None = None

    def begin_video(self, name: str) -> None:
        """Start a video; its frames follow with ``add_frame`` in name order."""
        if self._video is not None:
            raise RuntimeError(f"video {self._video.name!r} was not ended before {name!r} began")
        self._video = VideoVc(name)
        self._last: dict[str, np.ndarray] = {}
        self._runs: dict[str, np.ndarray] = {}
        self._windows: dict[tuple[str, int], list[float]] = {
            (v.name, c): [] for v in self.variants for c in self.windows
        }

    def _mapped(self, gt: np.ndarray) -> np.ndarray:
        if self.gt_lut is None:
            return gt
        if gt.min(initial=0) < 0 or gt.max(initial=0) > 255:
            raise ValueError("raw ground truth must hold values 0..255 when a gt_lut maps it")
        return self.gt_lut[gt]

    def add_frame(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """The next frame of the current video: ground truth (raw mask values when ``gt_lut`` is set) and the
        prediction, both integer ``(H, W)``."""
        if self._video is None:
            raise RuntimeError("add_frame before begin_video")
        gt, pred = np.asarray(gt).astype(np.int64), np.asarray(pred).astype(np.int64)
        if gt.shape != pred.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        mapped = self._mapped(gt)
        current = {"raw": gt, "mapped": mapped, "pred": pred}
        cap = max(self.windows)
        for key, value in current.items():
            self._runs[key] = _advance(self._runs.get(key), self._last.get(key), value, cap)
        self._last = current
        self._video.frames += 1
        void = mapped == self.ignore_index
        for variant in self.variants:
            run_gt = self._runs["mapped" if variant.remap_gt else "raw"]
            for c in self.windows:
                if self._video.frames < c:
                    continue
                constant = run_gt >= c
                if variant.exclude_void:
                    constant &= ~void
                total = int(constant.sum())
                hits = int((constant & (self._runs["pred"] >= c)).sum())
                self._windows[(variant.name, c)].append(hits / total if total else math.nan)

    def end_video(self) -> VideoVc:
        """Close the current video: apply each variant's skip rule and window range; returns its scores."""
        video, self._video = self._video, None
        if video is None:
            raise RuntimeError("end_video before begin_video")
        for variant in self.variants:
            for c in self.windows:
                key = (variant.name, c)
                skipped = variant.skips(video.frames, c)
                values = [] if skipped else self._windows[key]
                if not variant.last_window:
                    values = values[:-1]  # the window starting at N - C
                video.skipped[key] = skipped
                video.scores[key] = [v for v in values if not math.isnan(v)]
                video.nan_windows[key] = sum(math.isnan(v) for v in values)
        self.videos.append(video)
        return video

    def _check(self, window: int, variant: str) -> tuple[str, int]:
        if window not in self.windows or variant not in {v.name for v in self.variants}:
            raise KeyError(
                f"mVC_{window} ({variant}) was not computed; windows {self.windows}, variants "
                f"{[v.name for v in self.variants]}"
            )
        return variant, window

    def value(self, window: int, variant: str = "official") -> float | None:
        """mVC_``window`` of ``variant`` in [0, 1]: the mean of all scored windows of all videos; None if none."""
        key = self._check(window, variant)
        values = [s for video in self.videos for s in video.scores[key]]
        return math.fsum(values) / len(values) if values else None

    def per_video(self, window: int, variant: str = "official") -> list[tuple[str, float, int]]:
        """(video, sum of its window scores, number of its scored windows) per video, for a bootstrap over videos:
        the mVC of a resample is the sum of the sums over the sum of the counts."""
        key = self._check(window, variant)
        return [(video.name, math.fsum(video.scores[key]), len(video.scores[key])) for video in self.videos]

    def summary(self) -> dict[str, dict[str, dict]]:
        """``{variant: {"mvc_8": value, ..., "counts": {"8": {"videos", "skipped", "windows", "nan_windows"}}}}``."""
        out: dict[str, dict[str, dict]] = {}
        for variant in self.variants:
            entry: dict = {f"mvc_{c}": self.value(c, variant.name) for c in self.windows}
            entry["counts"] = {
                str(c): {
                    "videos": sum(not v.skipped[(variant.name, c)] for v in self.videos),
                    "skipped": sum(v.skipped[(variant.name, c)] for v in self.videos),
                    "windows": sum(len(v.scores[(variant.name, c)]) for v in self.videos),
                    "nan_windows": sum(v.nan_windows[(variant.name, c)] for v in self.videos),
                }
                for c in self.windows
            }
            out[variant.name] = entry
        return out


def mvc(
    videos: Iterable[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    window: int,
    variant: str = "official",
    gt_lut: np.ndarray | None = None,
) -> float | None:
    """mVC_``window`` of ``variant`` over ``videos``: pairs (ground-truth frames, predicted frames), each a
    sequence of integer ``(H, W)`` arrays (or an ``(N, H, W)`` array) in name order. None if no window counts."""
    vc = VideoConsistency((window,), (variant,), gt_lut)
    for index, (gts, preds) in enumerate(videos):
        if len(gts) != len(preds):
            raise ValueError(f"video {index}: {len(gts)} ground-truth frames but {len(preds)} predictions")
        vc.begin_video(str(index))
        for gt, pred in zip(gts, preds):
            vc.add_frame(gt, pred)
        vc.end_video()
    return vc.value(window, variant)
