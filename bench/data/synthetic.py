"""Procedural synthetic video in which the class of an object can only be read from the past.

No download, no disk cache: clip ``index`` of a split is rendered from ``(seed, split, index)``, so the same seed
gives identical bytes in any worker or process (numpy ``SeedSequence`` streams). A ``SyntheticClips`` dataset
keeps each clip it rendered in memory (up to ``CACHE_BYTES`` per dataset and process) and renders it once: a
clip is a pure function of its index, so the cache changes no byte of any sample, only the time (a training run
draws each clip several times, once per epoch, with new augmentation).
docs/synthetic.md explains why each choice below makes memory necessary.

The scene (per clip)
    * a dark, low-saturation textured background (three plane waves) moving with a camera translating at
      constant velocity (at most ``camera_motion`` px/frame);
    * 2..3 depth-ordered objects of ``classes_per_clip`` distinct classes among 1..C-1 (class 0 is the
      background). Shape, size, texture and brightness are drawn per instance, independently of the class; the
      only class cue is a hue (class k has hue (k-1)/(C-1) at saturation 0.9). Objects translate fast
      (``object_speed``, a fraction of the shorter side per frame: half their width or more) and bounce off
      the image borders, so they stay in view but a per-position copy of the past lands on the wrong pixels.
    * the class cue: in the current frame (``current_cue="hidden"``) every object is rendered grey (saturation
      0, same brightness pattern), so its silhouette and instance pattern are visible but its class is not;
      each memory frame shows the class hues with probability ``cue_prob`` (drawn per absolute frame of the
      clip, else grey), so T memory frames hold the cue with probability 1 - (1 - cue_prob)^T.
      ``current_cue="visible"`` (the negative control) shows the hues in the current frame as well.
    * Labels are exact per pixel (topmost object, else background). The flow of the current frame t into
      memory frame i is exact: ``frame_i(p + flow[i](p)) = frame_t(p)`` (up to the hue) for every surface
      point visible in both (background points move with the camera, object points with their object).

Optional extra degradations of the current frame (all off in the demo configs): Gaussian ``blur`` (sigma in
px), Gaussian ``noise`` ([0, 1] scale), with probability ``occluder_prob`` one or two striped blocks that are
NOT in the label, and a fraction ``dropout_prob`` of salt-and-pepper pixels.

A clip is a video of ``clip_length`` frames; a sample with memory length T uses its last T+1 frames
(the current frame is always the last), so the current frame does not depend on T.

Usage::

    video = SyntheticVideo(size=(48, 48), num_classes=6, clip_length=6)
    clip = video.render("val", index=3, num_frames=3)               # RenderedClip
    clip.frames  # uint8 (3, 3, 48, 48); clip.labels int64 (3, 48, 48); clip.flow float32 (2, 2, 48, 48)
    clean = video.render("val", 3, 3, degrade=False)                # every frame shows every class hue
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX
from bench.data.classes import class_hue, synthetic_class_names
from bench.data.errors import DatasetError
from bench.data.synthetic_shapes import SHAPES, TEXTURES, bounce, gaussian_blur, hue_rgb, shape_mask, texture
from bench.data.transforms import ClipTransform, clip_sample

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
CUE_MODES = ("hidden", "visible")
CUE_SATURATION = 0.9
OBJECTS_PER_CLIP = (2, 3)
CACHE_BYTES = 512 * 2**20  # rendered clips kept per SyntheticClips object and process (demo: 30-90 MB)


@dataclass
class RenderedClip:
    """frames uint8 ``(F, 3, H, W)``, labels int64 ``(F, H, W)``, flow float32 ``(F-1, 2, H, W)``
    (current frame -> each earlier frame, oldest first; dx, dy in pixels); step_flow float32 ``(F-1, 2, H, W)``:
    ``step_flow[i]`` = frame i+1 -> frame i (consecutive frames, for temporal consistency)."""

    frames: torch.Tensor
    labels: torch.Tensor
    flow: torch.Tensor
    step_flow: torch.Tensor | None = None


@dataclass
class RenderedVideo:
    """A whole video for whole-video evaluation: frames uint8 ``(F, 3, H, W)``, labels int64 ``(F, H, W)`` (every
    frame labelled), step_flow float32 ``(F-1, 2, H, W)``: ``step_flow[i]`` = frame i+1 -> frame i."""

    frames: torch.Tensor
    labels: torch.Tensor
    step_flow: torch.Tensor


def _to_uint8(image: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) floats in [0, 1] -> uint8 (F, 3, H, W)."""
    frames = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(frames))


@dataclass(frozen=True)
class SyntheticVideo:
    """Deterministic renderer of synthetic clips (see the module docstring)."""

    size: tuple[int, int] = (64, 64)
    num_classes: int = 6
    clip_length: int = 10
    noise: float = 0.0
    occluder_prob: float = 0.0
    dropout_prob: float = 0.0
    camera_motion: float = 2.0
    blur: float = 0.0
    current_cue: str = "hidden"
    cue_prob: float = 0.5
    object_speed: float = 0.12
    classes_per_clip: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.current_cue not in CUE_MODES:
            raise ValueError(f"unknown current_cue {self.current_cue!r}; choose one of {', '.join(CUE_MODES)}")

    def _streams(self, split: str, index: int) -> tuple[np.random.Generator, ...]:
        if split not in SPLIT_CODES:
            raise DatasetError(f"unknown synthetic split {split!r}; choose one of {sorted(SPLIT_CODES)}")
        streams = np.random.SeedSequence([self.seed, SPLIT_CODES[split], index]).spawn(3)
        return tuple(np.random.default_rng(s) for s in streams)

    def _background(self, rng: np.random.Generator) -> dict:
        side = min(self.size)
        angle = rng.uniform(0, 2 * np.pi)
        waves = [
            (rng.uniform(0, 2 * np.pi), rng.uniform(6, 20) * side / 64, rng.uniform(0, 2 * np.pi)) for _ in range(3)
        ]
        # dark and nearly grey: darker than any object (value >= 0.42) and without a hue that could pass for a class
        colours = [np.clip(rng.uniform(0.1, 0.4) + rng.normal(0, 0.03, 3), 0, 1) for _ in range(2)]
        velocity = rng.uniform(0.3, 1.0) * self.camera_motion * np.array([np.cos(angle), np.sin(angle)])
        return {"velocity": velocity, "colours": colours, "waves": waves}

    def _objects(self, rng: np.random.Generator) -> list[dict]:
        height, width = self.size
        side = min(height, width)
        count = int(rng.integers(OBJECTS_PER_CLIP[0], OBJECTS_PER_CLIP[1] + 1))
        distinct = min(self.classes_per_clip, count, self.num_classes - 1)
        chosen = rng.choice(np.arange(1, self.num_classes), size=distinct, replace=False)
        classes = np.concatenate([chosen, rng.choice(chosen, size=count - distinct)])
        objects = []
        for cls in classes:
            radius = rng.uniform(0.15, 0.22) * side
            angle = rng.uniform(0, 2 * np.pi)
            speed = rng.uniform(0.7, 1.2) * self.object_speed * side
            low = np.array([radius, radius])
            high = np.array([width - radius, height - radius])
            objects.append(
                {
                    "cls": int(cls),
                    "shape": int(rng.integers(0, len(SHAPES))),
                    "texture": int(rng.integers(0, len(TEXTURES))),
                    "radius": radius,
                    "aspect": rng.uniform(0.6, 1.0),
                    "orientation": rng.uniform(0, 2 * np.pi),
                    "start": low + rng.uniform(0, 1, 2) * (high - low),
                    "velocity": speed * np.array([np.cos(angle), np.sin(angle)]),
                    "low": low,
                    "high": high,
                    "value": rng.uniform(0.6, 1.0),
                    "wavelength": rng.uniform(0.35, 0.6) * radius,
                    "phase": rng.uniform(0, 2 * np.pi),
                }
            )
        return objects

    def render(self, split: str, index: int, num_frames: int, degrade: bool = True) -> RenderedClip:
        """Render the last ``num_frames`` frames of clip ``index`` of ``split``.

        ``degrade=False`` renders the clean video: every object shows its class hue in every frame and the
        current frame gets no extra degradation (labels and flow are the same either way)."""
        if not 1 <= num_frames <= self.clip_length:
            raise ValueError(
                f"a clip needs {num_frames} frames but synthetic.clip_length is {self.clip_length}; "
                "raise data.synthetic.clip_length (>= memory_length + 2 for temporal consistency)"
            )
        scene_rng, cue_rng, degrade_rng = self._streams(split, index)
        background, objects = self._background(scene_rng), self._objects(scene_rng)
        times = np.arange(-(num_frames - 1), 1, dtype=np.float64)  # frame time relative to the current frame
        # drawn for every frame of the whole clip, then cut, so a frame's cue does not depend on num_frames
        cue = (cue_rng.random(self.clip_length) < self.cue_prob)[-num_frames:]
        cue[-1] = self.current_cue == "visible"
        if not degrade:
            cue[:] = True
        image, labels, top, positions = self._draw(background, objects, times, cue)
        flow = self._flow(background, positions, times, top[-1])
        step_flow = self._step_flow(background, positions, top)
        if degrade:
            image[-1] = self._degrade(image[-1], degrade_rng)
        return RenderedClip(
            frames=_to_uint8(image),
            labels=torch.from_numpy(labels),
            flow=torch.from_numpy(flow.astype(np.float32)),
            step_flow=torch.from_numpy(np.ascontiguousarray(step_flow, dtype=np.float32)),
        )

    def render_video(self, split: str, index: int, num_frames: int) -> RenderedVideo:
        """Render clip ``index`` of ``split`` as a video of ``num_frames`` frames, every frame labelled, for
        whole-video evaluation: the scene of the clip, extended into the past, in which EVERY frame shows the class
        hues with probability ``cue_prob`` (``current_cue="visible"``: always) and gets the optional degradations;
        no frame is special, since each is the current frame in turn."""
        if num_frames < 1:
            raise ValueError(f"a video needs at least one frame, got {num_frames}")
        scene_rng, cue_rng, degrade_rng = self._streams(split, index)
        background, objects = self._background(scene_rng), self._objects(scene_rng)
        times = np.arange(-(num_frames - 1), 1, dtype=np.float64)
        cue = cue_rng.random(num_frames) < self.cue_prob
        if self.current_cue == "visible":
            cue[:] = True
        image, labels, top, positions = self._draw(background, objects, times, cue)
        step_flow = self._step_flow(background, positions, top)
        for k in range(num_frames):
            image[k] = self._degrade(image[k], degrade_rng)
        return RenderedVideo(
            frames=_to_uint8(image),
            labels=torch.from_numpy(labels),
            step_flow=torch.from_numpy(np.ascontiguousarray(step_flow, dtype=np.float32)),
        )

    def _draw(
        self, background: dict, objects: list[dict], times: np.ndarray, cue: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
        """Frames at ``times``: image (F, H, W, 3) floats, labels (F, H, W), topmost object per pixel (-1 for the
        background) and each object's centre (F, 2); objects show their hue where ``cue`` (F,) is True."""
        height, width = self.size
        ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
        image = self._render_background(background, times, xs, ys)
        labels = np.zeros((len(times), height, width), dtype=np.int64)
        top = np.full((len(times), height, width), -1, dtype=np.int64)
        positions = []
        for k, obj in enumerate(objects):
            centre = bounce(obj["start"], obj["velocity"], times, obj["low"], obj["high"])  # (F, 2)
            positions.append(centre)
            ux, uy = xs[None] - centre[:, 0, None, None], ys[None] - centre[:, 1, None, None]
            cos_o, sin_o = np.cos(obj["orientation"]), np.sin(obj["orientation"])
            a, b = ux * cos_o + uy * sin_o, -ux * sin_o + uy * cos_o
            mask = shape_mask(obj["shape"], a, b, obj["radius"], obj["aspect"])
            shade = texture(obj["texture"], a, b, obj["wavelength"], obj["phase"], obj["radius"])
            value = obj["value"] * (1 - 0.3 * shade)[..., None]  # (F, H, W, 1): the instance pattern
            saturation = CUE_SATURATION * cue[:, None, None, None]
            hue = hue_rgb(class_hue(obj["cls"], self.num_classes))
            image = np.where(mask[..., None], value * (1 - saturation + saturation * hue), image)
            labels[mask] = obj["cls"]
            top[mask] = k
        return image, labels, top, positions

    def _render_background(self, background: dict, times: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Camera-translated plane-wave texture: (F, H, W, 3) floats."""
        camera = times[:, None] * background["velocity"]  # (F, 2) camera position (x, y)
        world_x = xs[None] + camera[:, 0, None, None]
        world_y = ys[None] + camera[:, 1, None, None]
        blend = sum(
            np.sin(2 * np.pi * (world_x * np.cos(a) + world_y * np.sin(a)) / wavelength + phase)
            for a, wavelength, phase in background["waves"]
        )
        blend = (0.5 + blend / 6.0)[..., None]
        colour_a, colour_b = background["colours"]
        return colour_a * (1 - blend) + colour_b * blend

    @staticmethod
    def _flow(background: dict, positions: list[np.ndarray], times: np.ndarray, top: np.ndarray) -> np.ndarray:
        """Exact backward flow (F-1, 2, H, W) of the current frame into every earlier frame: the displacement
        of the surface seen at each current pixel (the camera's for background, its object's otherwise)."""
        camera = -times[:-1, None] * background["velocity"]  # background points move against the camera
        moves = [camera] + [centre[:-1] - centre[-1] for centre in positions]  # each (F-1, 2)
        displacement = np.stack(moves, axis=1)  # (F-1, K+1, 2)
        return displacement[:, top + 1].transpose(0, 3, 1, 2)  # (F-1, H, W, 2) -> (F-1, 2, H, W)

    @staticmethod
    def _step_flow(background: dict, positions: list[np.ndarray], top: np.ndarray) -> np.ndarray:
        """Exact flow (F-1, 2, H, W) of each frame i+1 into frame i (consecutive pairs, temporal consistency): the
        one-frame displacement of the surface seen at each pixel of frame i+1."""
        camera = np.broadcast_to(background["velocity"], (len(top) - 1, 2))  # one frame back, as ``_flow``
        moves = [camera] + [centre[:-1] - centre[1:] for centre in positions]  # each (F-1, 2)
        displacement = np.stack(moves, axis=1)  # (F-1, K+1, 2)
        frames = np.arange(len(top) - 1)[:, None, None]
        return displacement[frames, top[1:] + 1].transpose(0, 3, 1, 2)  # (F-1, H, W, 2) -> (F-1, 2, H, W)

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Optional blur, occluding blocks, Gaussian noise and salt-and-pepper dropout on one ``(H, W, 3)`` frame."""
        height, width = self.size
        image = gaussian_blur(image, self.blur) if self.blur > 0 else image.copy()
        if rng.random() < self.occluder_prob:
            for _ in range(int(rng.integers(1, 3))):
                bh = max(1, int(rng.uniform(0.15, 0.35) * height))
                bw = max(1, int(rng.uniform(0.15, 0.35) * width))
                top, left = int(rng.integers(0, height - bh + 1)), int(rng.integers(0, width - bw + 1))
                ys, xs = np.mgrid[0:bh, 0:bw]
                angle = rng.uniform(0, 2 * np.pi)
                stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / rng.uniform(4, 10))
                image[top : top + bh, left : left + bw] = rng.uniform(0, 1, 3) * (0.6 + 0.4 * stripes[..., None])
        if self.noise > 0:
            image = image + rng.normal(0, self.noise, image.shape)
        if self.dropout_prob > 0:
            dropped = rng.random((height, width)) < self.dropout_prob
            salt = rng.random((height, width)) < 0.5
            image[dropped] = np.where(salt[dropped], 1.0, 0.0)[:, None]
        return image


class SyntheticClips(Dataset):
    """``dataset[i]`` -> the sample dict of docs/architecture.md, with ``flow``; ``len`` = number of clips.

    With ``step_flow = True`` (set by evaluation's temporal consistency) a sample also holds ``step_flow``
    ``(T, 2, H, W)``, the flow of each frame into the one before it (``RenderedClip.step_flow``).
    """

    ignore_index = IGNORE_INDEX
    step_flow = False

    def __init__(
        self, video: SyntheticVideo, split: str, num_clips: int, memory_length: int, transform: ClipTransform
    ) -> None:
        if split not in SPLIT_CODES:
            raise DatasetError(f"unknown synthetic split {split!r}; choose one of {sorted(SPLIT_CODES)}")
        if memory_length + 1 > video.clip_length:
            raise ValueError(
                f"memory_length {memory_length} needs {memory_length + 1} frames but synthetic.clip_length is "
                f"{video.clip_length}; raise data.synthetic.clip_length"
            )
        self.video = video
        self.split = split
        self.num_clips = num_clips
        self.memory_length = memory_length
        self.transform = transform
        self.num_classes = video.num_classes
        self.class_names = synthetic_class_names(video.num_classes)
        self.cache_bytes = CACHE_BYTES
        self._cache: dict[int, RenderedClip] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return self.num_clips

    def clip(self, index: int) -> RenderedClip:
        """Clip ``index`` with ``memory_length + 1`` frames, rendered once (module docstring); ``labels`` holds only
        the current frame's label ``(1, H, W)``. The tensors are copies: changing them leaves the cache alone."""
        clip = self._cache.get(index)
        if clip is None:
            rendered = self.video.render(self.split, index, self.memory_length + 1)
            clip = RenderedClip(rendered.frames, rendered.labels[-1:].clone(), rendered.flow, rendered.step_flow)
            size = sum(t.numel() * t.element_size() for t in (clip.frames, clip.labels, clip.flow, clip.step_flow))
            if self._cached_bytes + size <= self.cache_bytes:
                self._cache[index], self._cached_bytes = clip, self._cached_bytes + size
        return RenderedClip(clip.frames.clone(), clip.labels.clone(), clip.flow.clone(), clip.step_flow.clone())

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_clips:
            raise IndexError(index)
        clip = self.clip(index)
        name = f"synthetic-{self.split}-{index:06d}"
        if not self.step_flow:
            return clip_sample(self.transform, clip.frames, clip.labels[-1], clip.flow, name)
        sample = clip_sample(self.transform, clip.frames, clip.labels[-1], torch.cat([clip.flow, clip.step_flow]), name)
        sample["flow"], sample["step_flow"] = sample["flow"].chunk(2)  # one transform for both: same geometry
        return sample


def synthetic_video(data_cfg: DataConfig) -> SyntheticVideo:
    """The renderer described by ``data.synthetic``."""
    cfg = data_cfg.synthetic
    return SyntheticVideo(
        size=(int(cfg.size[0]), int(cfg.size[1])),
        num_classes=int(cfg.num_classes),
        clip_length=int(cfg.clip_length),
        noise=float(cfg.noise),
        current_cue=str(cfg.current_cue),
        cue_prob=float(cfg.cue_prob),
        object_speed=float(cfg.object_speed),
        classes_per_clip=int(cfg.classes_per_clip),
        occluder_prob=float(cfg.occluder_prob),
        dropout_prob=float(cfg.dropout_prob),
        camera_motion=float(cfg.camera_motion),
        blur=float(cfg.blur),
        seed=int(cfg.seed),
    )


def build_synthetic(data_cfg: DataConfig, split: str, memory_length: int, train: bool) -> SyntheticClips:
    """The synthetic dataset of ``data_cfg.synthetic`` (train clips for ``train``, val clips otherwise)."""
    cfg = data_cfg.synthetic
    video = synthetic_video(data_cfg)
    num_clips = int(cfg.train_clips) if split == "train" else int(cfg.val_clips)
    return SyntheticClips(video, split, num_clips, memory_length, ClipTransform.from_config(data_cfg, train))
