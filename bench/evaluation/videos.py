"""Whole-video evaluation (``eval.whole_videos=true``): every labelled frame of each validation video, in order,
the model's memory streamed from frame to frame as a deployed model would run; mIoU (both conventions) and mVC.

    videos = build_videos(cfg.data, cfg.data.val_split)              # bench.data.videos: VSPW or synthetic
    metrics = evaluate_videos(model, videos, cfg.eval, cfg.data, env, out_dir=None, palette=info.palette)

Per video a ``bench.models.streaming.StreamingSegmenter`` (``eval.stream_mode``: ``streaming`` caches the memory
frames' features, ``recompute`` re-encodes them at every frame; both give the clip model's output) reads the memory
of the data config: the fixed offsets of ``bench.data.memory`` (``data.memory_preset=cffm``: t-9, t-6, t-3 and
CFFM's first-frames table), positions before a video's first frame taken as it (every frame is predicted, also
under ``data.first_frames=skip``). Each frame is resized as the clip evaluation does (``data.base_size``, aspect
kept) and normalised; the logits are resized back to the label's size (bilinear) before the argmax, so scores are
at the annotation's resolution (mmseg, CFFM). ``bench.metrics.VideoScores`` counts everything; with ``out_dir`` the
predictions are written as palette PNGs in the submission layout (``bench.data.submission``), the input of
``bench score``. DDP: video i goes to rank i % world size; counts are all-reduced, per-video scores gathered, so
every rank returns the same metrics in split order.

Videos of one length are streamed together, ``eval.batch_size`` at a time (their frames must have one size).
``timings`` (optional dict) receives the seconds spent reading frames, predicting, scoring and writing PNGs
(``bench/perf/video_eval_bench.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.config import DataConfig, EvalConfig
from bench.data.memory import fixed_offsets, is_consecutive, memory_positions
from bench.data.submission import submission_file, write_prediction
from bench.data.transforms import normalize, rescaled_size
from bench.data.videos import VideoSet
from bench.distributed import DistEnv, all_gather_list, all_reduce_sum
from bench.errors import BenchError
from bench.evaluation.inference import needs_flow_input
from bench.metrics import VC_VARIANTS, VideoScores
from bench.models.streaming import StreamingSegmenter
from bench.progress import Progress


class VideoEvalError(BenchError):
    """A model or config that whole-video evaluation cannot run (ground-truth flow it does not have)."""


def memory_rule(model: nn.Module, data: DataConfig) -> tuple[Callable[[int], list[int]] | None, int | None]:
    """(memory positions of the frame at each position, max lag) for ``StreamingSegmenter``; (None, None) for a
    keyframe model (its own schedule) or a per-frame one. A model that reads ground-truth flow gets it only for
    the previous frame (``VideoFrame.flow``): memory length 1, consecutive memory."""
    memory = int(getattr(model, "memory_length", 0))
    if needs_flow_input(model) and (memory != 1 or not is_consecutive(data)):
        raise VideoEvalError(
            "whole videos carry ground-truth flow to the previous frame only: a model reading ground-truth flow "
            "needs model.memory_length=1 and consecutive memory"
        )
    if memory == 0 or getattr(model, "keyframe_interval", 0):
        return None, None
    offsets = fixed_offsets(data, memory)
    preset = data.memory_preset
    return (lambda position: memory_positions(position, offsets, "repeat", preset=preset)), -min(offsets)


def frame_input(image: Tensor, base_size: Sequence[int], device: torch.device) -> Tensor:
    """uint8 (3, H, W) -> normalised (1, 3, H', W') at ``base_size`` (mmseg keep-ratio rescale; [] = native)."""
    size = rescaled_size(tuple(image.shape[-2:]), list(base_size), 1.0) if base_size else tuple(image.shape[-2:])
    frame = image[None].float().to(device)
    if tuple(frame.shape[-2:]) != tuple(size):
        frame = F.interpolate(frame, size=size, mode="bilinear", align_corners=False)
    return normalize(frame)


def predict_frames(
    stream: StreamingSegmenter, frames: Tensor, label_size: tuple[int, int], flow: Tensor | None = None
) -> np.ndarray:
    """Class ids (B, H, W) of the next frames ``frames`` (B, 3, H', W') of ``stream``, at ``label_size``; ``flow``
    (B, 1, 2, H', W'): to the previous frame, for a model that reads ground-truth flow."""
    logits = stream.step(frames, flow).float()
    if tuple(logits.shape[-2:]) != tuple(label_size):
        logits = F.interpolate(logits, size=label_size, mode="bilinear", align_corners=False)
    return logits.argmax(1).cpu().numpy()


def video_groups(videos: VideoSet, names: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive runs of at most ``size`` videos with the same number of frames: streamed together as a batch."""
    groups: list[list[str]] = []
    for name in names:
        last = groups[-1] if groups else None
        if last and len(last) < size and len(videos.frame_names(last[0])) == len(videos.frame_names(name)):
            last.append(name)
        else:
            groups.append([name])
    return groups


@contextmanager
def _timed(timings: dict[str, float] | None, key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def _frames(videos: VideoSet, name: str, timings: dict[str, float] | None) -> Iterator[Any]:
    """The frames of video ``name``, the time spent reading (or rendering) them added to ``timings["read"]``."""
    frames = videos.frames(name)
    while True:
        with _timed(timings, "read"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


def _batch(frames: Sequence[Any], base_size: Sequence[int], device: torch.device, flow: bool) -> tuple[Tensor, Any]:
    """The model input (B, 3, H', W') of one frame of each video of a group, and with ``flow`` their flow to the
    previous frame (B, 1, 2, H', W')."""
    for frame in frames:
        if frame.label is None:
            raise BenchError(f"frame {frame.name} has no label (VSPW test split): whole-video evaluation needs labels")
    inputs = [frame_input(frame.image, base_size, device) for frame in frames]
    if len({tuple(x.shape) for x in inputs}) > 1:
        raise BenchError(
            "videos streamed together (eval.batch_size > 1) must have frames of one size; set eval.batch_size=1"
        )
    if not flow:
        return torch.cat(inputs), None
    if any(f.flow is None for f in frames) or tuple(inputs[0].shape[-2:]) != tuple(frames[0].image.shape[-2:]):
        raise VideoEvalError(
            "ground-truth flow exists for the synthetic videos at their own size only (data.base_size=[])"
        )
    return torch.cat(inputs), torch.stack([f.flow for f in frames])[:, None].to(device)


def evaluate_group(
    stream: StreamingSegmenter,
    videos: VideoSet,
    group: Sequence[str],
    scores: list[VideoScores],
    base_size: Sequence[int],
    out: tuple[Path, Sequence[Sequence[int]]] | None = None,
    timings: dict[str, float] | None = None,
) -> None:
    """Stream the videos of ``group`` (of one length) through ``stream`` in lockstep, video i counted in
    ``scores[i]``; with ``out`` = (folder, palette) each prediction is written in the submission layout."""
    device = next(stream.model.parameters()).device
    stream.reset()
    for name, counts in zip(group, scores):
        counts.begin_video(name)
    for frames in zip(*(_frames(videos, name, timings) for name in group)):
        with _timed(timings, "predict"):
            inputs, flow = _batch(frames, base_size, device, needs_flow_input(stream.model))
            preds = predict_frames(stream, inputs, tuple(frames[0].label.shape), flow)
        with _timed(timings, "score"):
            for counts, frame, pred in zip(scores, frames, preds):
                counts.add_frame(frame.label, frame.raw, pred)
        if out is not None:
            with _timed(timings, "write"):
                for name, frame, pred in zip(group, frames, preds):
                    write_prediction(submission_file(out[0], name, frame.name), pred, out[1])
    for counts in scores:
        counts.end_video()


@torch.no_grad()
def evaluate_videos(
    model: nn.Module,
    videos: VideoSet,
    eval_cfg: EvalConfig,
    data_cfg: DataConfig,
    env: DistEnv | None = None,
    *,
    out_dir: str | Path | None = None,
    palette: Sequence[Sequence[int]] = (),
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` over the videos of ``videos`` (module docstring): ``VideoScores.summary`` plus
    ``mvc_<C>`` (the ``eval.vc_variant`` copy), ``mvc_variant``, ``whole_videos``, ``stream_mode``, ``mode``,
    ``num_images`` (frames scored)."""
    env = env or DistEnv(device=next(model.parameters()).device)
    model = getattr(model, "module", model)
    if out_dir is not None and not palette:
        raise ValueError("writing predictions needs the dataset's palette")
    names = videos.names[: eval_cfg.max_videos or None]
    rule, lag = memory_rule(model, data_cfg)
    stream = StreamingSegmenter(model, eval_cfg.stream_mode, rule, lag)
    scores = VideoScores(videos.num_classes, eval_cfg.vc_windows, tuple(VC_VARIANTS), videos.gt_lut)
    out = None if out_dir is None else (Path(out_dir), palette)
    groups = video_groups(videos, names[env.rank :: env.world_size], eval_cfg.batch_size)
    was_training = model.training
    model.eval()
    try:
        with Progress(len(groups), "videos", enabled=env.is_main, unit="batch", leave=False) as bar:
            for group in groups:
                per_video = [scores.empty_like() for _ in group]
                evaluate_group(stream, videos, group, per_video, data_cfg.base_size, out, timings)
                for counts in per_video:
                    scores.videos += counts.parts()
                    scores.matrix += counts.matrix
                bar.update(1)
    finally:
        model.train(was_training)
    scores.matrix = all_reduce_sum(scores.matrix.to(env.device), env).cpu()
    scores.absorb(all_gather_list(scores.parts(), env), names)
    return _video_metrics(scores, videos, eval_cfg)


def _video_metrics(scores: VideoScores, videos: VideoSet, eval_cfg: EvalConfig) -> dict[str, Any]:
    metrics = scores.summary(videos.class_names, eval_cfg.miou_convention)
    chosen = metrics["mvc"][eval_cfg.vc_variant]
    metrics.update({f"mvc_{c}": chosen[f"mvc_{c}"] for c in scores.vc.windows})
    metrics.update(
        {
            "mvc_variant": eval_cfg.vc_variant,
            "whole_videos": True,
            "stream_mode": eval_cfg.stream_mode,
            "mode": eval_cfg.mode,
            "num_images": metrics["num_frames"],
            "skipped_files": list(videos.skipped_files),
        }
    )
    return metrics
