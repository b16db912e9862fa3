"""The neutral scorer: score a folder of prediction PNGs made by any codebase against a split's ground truth, with
the code that scores the suite's own whole-video evaluation (``bench.metrics.video_scores``).

    videos = build_videos(cfg.data, "val")                       # e.g. VSPW val (bench.data.videos)
    result = score_predictions("cffm_out/", videos, convention="nonzero_union")
    result["miou"], result["mvc"]["official"]["mvc_8"], result["mvc"]["cffm"]["mvc_16"]

Layout: ``PRED_DIR/result_submission/<video>/<frame>.png`` (or ``PRED_DIR/<video>/<frame>.png``), one palette or
index PNG per labelled frame, of the ground truth's size (``bench.data.submission``). ``ids="class"`` (default)
reads pixel values as class ids 0..C-1, as CFFM, MRCFA, TV3S and VSPW_baseline write them; ``ids="mask"`` reads
them as the dataset's stored mask values (VSPW 1..124) and maps them with its label table.

A missing prediction is a one-line error naming the file. ``missing="skip"`` leaves out every video without a
single prediction file (TV3S's scorer does so silently; here they are listed in ``skipped_videos``); a video with
some but not all of its frames predicted is always an error, since mVC needs consecutive frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.data.errors import DatasetError
from bench.data.submission import find_submission_root, read_prediction
from bench.data.videos import VideoSet
from bench.metrics.video_consistency import VC_VARIANTS
from bench.metrics.video_scores import VideoScores

ID_SPACES = ("class", "mask")


def _video_status(root: Path, videos: VideoSet, video: str) -> str:
    """ "complete", "absent" (no prediction file at all) or "partial" for the predictions of ``video``."""
    present = [(root / video / f"{frame}.png").is_file() for frame in videos.frame_names(video)]
    return "complete" if all(present) else "absent" if not any(present) else "partial"


def _check_ids(ids: str, videos: VideoSet) -> None:
    if ids not in ID_SPACES:
        raise DatasetError(f"unknown prediction id space {ids!r}; choose one of {', '.join(ID_SPACES)}")
    if ids == "mask" and videos.gt_lut is None:
        raise DatasetError("ids=mask needs a dataset that stores masks in another id space (vspw); use ids=class")


def score_video(root: Path, videos: VideoSet, video: str, scores: VideoScores, ids: str) -> None:
    """Add the frames of ``video`` and its predictions under ``root`` to ``scores``."""
    lut = videos.gt_lut if ids == "mask" else None
    scores.begin_video(video)
    for frame in videos.frames(video, images=False):
        if frame.label is None:
            raise DatasetError(f"video {video} has no ground truth (the VSPW test split): nothing to score")
        path = root / video / f"{frame.name}.png"
        pred = read_prediction(path, videos.num_classes, lut)
        if pred.shape != tuple(frame.label.shape):
            raise DatasetError(
                f"prediction {path} is {pred.shape[0]}x{pred.shape[1]} but its ground truth is "
                f"{frame.label.shape[0]}x{frame.label.shape[1]}; predict at the label resolution"
            )
        scores.add_frame(frame.label, frame.raw, pred)
    scores.end_video()


def score_predictions(
    pred_dir: str | Path,
    videos: VideoSet,
    convention: str,
    windows: Sequence[int] = (8, 16),
    variants: Sequence[str] = tuple(VC_VARIANTS),
    ids: str = "class",
    missing: str = "error",
    tick: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``VideoScores.summary`` of the predictions under ``pred_dir`` for every video of ``videos`` (``tick`` runs
    after each), plus ``pred_dir``, ``ids``, ``skipped_videos`` and ``extra_videos`` (folders not in the split)."""
    _check_ids(ids, videos)
    if missing not in ("error", "skip"):
        raise DatasetError(f"unknown missing-prediction policy {missing!r}; choose error or skip")
    root = find_submission_root(pred_dir)
    scores = VideoScores(videos.num_classes, windows, variants, videos.gt_lut, videos.ignore_index)
    skipped = []
    for video in videos.names:
        status = _video_status(root, videos, video)
        if status == "absent" and missing == "skip":
            skipped.append(video)
        elif status == "partial" or status == "absent":
            first = next(f for f in videos.frame_names(video) if not (root / video / f"{f}.png").is_file())
            hint = "" if status == "partial" else " (or score with missing=skip to leave such videos out)"
            raise DatasetError(f"prediction not found: {root / video / first}.png{hint}")
        else:
            score_video(root, videos, video, scores, ids)
        tick()
    if not scores.videos:
        raise DatasetError(f"no video of the split has predictions under {root}")
    result = scores.summary(videos.class_names, convention)
    extra = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in set(videos.names))
    return {**result, "pred_dir": str(root), "ids": ids, "skipped_videos": skipped, "extra_videos": extra}
