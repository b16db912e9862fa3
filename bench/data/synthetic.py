"""Procedural synthetic video: textured moving shapes with exact labels and exact backward flow.

No download, no disk cache: clip ``index`` of a split is rendered on the fly from ``(seed, split, index)``,
so the same seed gives identical bytes in any worker or process (numpy ``SeedSequence`` streams).

The scene (per clip)
    * a textured background (sum of three plane waves blending two random colours) that moves with a
      camera translating at constant velocity (at most ``camera_motion`` px/frame);
    * 3..6 depth-ordered objects, each of a class 1..C-1 (class 0 is the background). A class fixes the
      shape (disc, rectangle, triangle, diamond, ring), the texture (stripes, checker, rings, dots, ramp)
      and a mean colour; every instance jitters the colour (std 0.12) and the background takes random
      colours, so colour alone does not give the class. Objects translate with their own velocity (at most
      4% of the shorter image side per frame) and their texture moves with them.
    * Labels are exact per pixel (topmost object, else background). The flow of the current frame t into
      memory frame i is exact too: ``frame_i(p + flow[i](p)) = frame_t(p)`` for every surface point visible
      in both (background points move with the camera, object points with their object).

Only the current frame is degraded, so memory is useful: a Gaussian blur (``blur``, sigma in pixels: like
defocus or motion blur it wipes out the textures that tell classes apart but keeps the layout, so the
current frame can still be matched to the sharp past), Gaussian noise (``noise``, [0, 1] scale), with
probability ``occluder_prob`` one or two textured blocks that are NOT in the label (the label keeps the
scene behind them), and a fraction ``dropout_prob`` of salt-and-pepper pixels. Memory frames are clean.

A clip is a video of ``clip_length`` frames; a sample with memory length T uses its last T+1 frames
(the current frame is always the last), so the current frame does not depend on T.

Usage::

    video = SyntheticVideo(size=(64, 64), num_classes=6, clip_length=10)
    clip = video.render("val", index=3, num_frames=3, degrade=False)   # RenderedClip
    clip.frames  # uint8 (3, 3, 64, 64); clip.labels int64 (3, 64, 64); clip.flow float32 (2, 2, 64, 64)
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.constants import IGNORE_INDEX
from bench.data.io import DatasetError
from bench.data.transforms import ClipTransform, clip_sample

SHAPES = ("disc", "rectangle", "triangle", "diamond", "ring")
TEXTURES = ("stripes", "checker", "rings", "dots", "ramp")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def synthetic_class_names(num_classes: int) -> list[str]:
    """``["background", "disc_stripes", "rectangle_checker", ...]``; shape and texture per class."""
    names = ["background"]
    for k in range(num_classes - 1):
        name = f"{SHAPES[k % 5]}_{TEXTURES[(k + k // 5) % 5]}"
        names.append(name if name not in names else f"{name}{k}")
    return names


def _class_style(k: int) -> tuple[int, int, np.ndarray]:
    """Shape id, texture id and mean RGB colour of object class ``k >= 1``."""
    j = k - 1
    hue = (j * 0.618034) % 1.0  # golden-ratio hue steps keep neighbouring classes apart
    return j % 5, (j + j // 5) % 5, np.array(colorsys.hsv_to_rgb(hue, 0.6, 0.75))


@dataclass
class RenderedClip:
    """frames uint8 ``(F, 3, H, W)``, labels int64 ``(F, H, W)``, flow float32 ``(F-1, 2, H, W)``
    (current frame -> each earlier frame, oldest first; dx, dy in pixels); step_flow float32 ``(F-1, 2, H, W)``:
    ``step_flow[i]`` = frame i+1 -> frame i (consecutive frames, for temporal consistency)."""

    frames: torch.Tensor
    labels: torch.Tensor
    flow: torch.Tensor
    step_flow: torch.Tensor | None = None


@dataclass(frozen=True)
class SyntheticVideo:
    """Deterministic renderer of synthetic clips (see the module docstring)."""

    size: tuple[int, int] = (64, 64)
    num_classes: int = 6
    clip_length: int = 10
    noise: float = 0.25
    occluder_prob: float = 0.6
    dropout_prob: float = 0.15
    camera_motion: float = 2.0
    blur: float = 0.0
    seed: int = 0

    def _streams(self, split: str, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        if split not in SPLIT_CODES:
            raise DatasetError(f"unknown synthetic split {split!r}; choose one of {sorted(SPLIT_CODES)}")
        scene, degrade = np.random.SeedSequence([self.seed, SPLIT_CODES[split], index]).spawn(2)
        return np.random.default_rng(scene), np.random.default_rng(degrade)

    def _scene(self, rng: np.random.Generator) -> dict:
        height, width = self.size
        side = min(height, width)
        unit = side / 64.0
        angle = rng.uniform(0, 2 * np.pi)
        camera_velocity = rng.uniform(0.3, 1.0) * self.camera_motion * np.array([np.cos(angle), np.sin(angle)])
        waves = [
            (rng.uniform(0, 2 * np.pi), rng.uniform(10, 32) * unit, rng.uniform(0, 2 * np.pi)) for _ in range(3)
        ]
        background = (rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3), waves)
        objects = []
        for _ in range(int(rng.integers(3, 7))):
            cls = int(rng.integers(1, self.num_classes))
            shape, texture, colour = _class_style(cls)
            colour = np.clip(colour + rng.normal(0, 0.12, 3), 0.05, 0.95)
            motion_angle = rng.uniform(0, 2 * np.pi)
            velocity = rng.uniform(0, 0.04 * side) * np.array([np.cos(motion_angle), np.sin(motion_angle)])
            objects.append(
                {
                    "cls": cls,
                    "shape": shape,
                    "texture": texture,
                    "colour": colour,
                    "dark": colour * 0.45,
                    "radius": rng.uniform(0.14, 0.28) * side,
                    "aspect": rng.uniform(0.55, 1.0),
                    "orientation": rng.uniform(0, 2 * np.pi),
                    "position": np.array([rng.uniform(0, width), rng.uniform(0, height)]),
                    # image-plane velocity = object velocity relative to the camera
                    "velocity": velocity - camera_velocity,
                    "wavelength": rng.uniform(5, 9) * unit,
                    "phase": rng.uniform(0, 2 * np.pi),
                }
            )
        return {"camera_velocity": camera_velocity, "background": background, "objects": objects}

    def render(self, split: str, index: int, num_frames: int, degrade: bool = True) -> RenderedClip:
        """Render the last ``num_frames`` frames of clip ``index`` of ``split``."""
        if not 1 <= num_frames <= self.clip_length:
            raise ValueError(
                f"a clip needs {num_frames} frames but synthetic.clip_length is {self.clip_length}; "
                "raise data.synthetic.clip_length (>= memory_length + 2 for temporal consistency)"
            )
        scene_rng, degrade_rng = self._streams(split, index)
        scene = self._scene(scene_rng)
        height, width = self.size
        offsets = np.arange(-(num_frames - 1), 1, dtype=np.float64)  # frame time relative to the current frame
        ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")

        camera = offsets[:, None] * scene["camera_velocity"]  # (F, 2) camera position (x, y)
        world_x = xs[None] + camera[:, 0, None, None]
        world_y = ys[None] + camera[:, 1, None, None]
        colour_a, colour_b, waves = scene["background"]
        blend = sum(
            np.sin(2 * np.pi * (world_x * np.cos(a) + world_y * np.sin(a)) / wavelength + phase)
            for a, wavelength, phase in waves
        )
        blend = 0.5 + blend / 6.0
        image = colour_a * (1 - blend[..., None]) + colour_b * blend[..., None]  # (F, H, W, 3)
        labels = np.zeros((num_frames, height, width), dtype=np.int64)
        top = np.full((num_frames, height, width), -1, dtype=np.int64)

        for k, obj in enumerate(scene["objects"]):
            centre = obj["position"] + offsets[:, None] * obj["velocity"]  # (F, 2)
            ux = xs[None] - centre[:, 0, None, None]
            uy = ys[None] - centre[:, 1, None, None]
            cos_o, sin_o = np.cos(obj["orientation"]), np.sin(obj["orientation"])
            a, b = ux * cos_o + uy * sin_o, -ux * sin_o + uy * cos_o
            mask = _shape_mask(obj["shape"], a, b, obj["radius"], obj["aspect"])
            shade = _texture(obj["texture"], a, b, obj["wavelength"], obj["phase"], obj["radius"])[..., None]
            colour = obj["colour"] * (1 - shade) + obj["dark"] * shade
            image = np.where(mask[..., None], colour, image)
            labels[mask] = obj["cls"]
            top[mask] = k

        # exact backward flow of the current frame into every earlier frame: displacement of the visible surface
        displacement = np.stack([-scene["camera_velocity"]] + [o["velocity"] for o in scene["objects"]])  # (K+1, 2)
        per_pixel = displacement[top[-1] + 1]  # (H, W, 2), velocity of the surface seen at each pixel
        flow = offsets[:-1, None, None, None] * per_pixel.transpose(2, 0, 1)[None]  # (F-1, 2, H, W)
        step_flow = -displacement[top[1:] + 1].transpose(0, 3, 1, 2)  # (F-1, 2, H, W): frame i+1 -> frame i

        if degrade:
            image[-1] = self._degrade(image[-1], degrade_rng)
        frames = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(0, 3, 1, 2)
        return RenderedClip(
            frames=torch.from_numpy(np.ascontiguousarray(frames)),
            labels=torch.from_numpy(labels),
            flow=torch.from_numpy(flow.astype(np.float32)),
            step_flow=torch.from_numpy(np.ascontiguousarray(step_flow, dtype=np.float32)),
        )

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Occluding blocks, Gaussian noise and salt-and-pepper dropout on one ``(H, W, 3)`` frame."""
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
                colour = rng.uniform(0, 1, 3)
                image[top : top + bh, left : left + bw] = colour * (0.6 + 0.4 * stripes[..., None])
        if self.noise > 0:
            image = image + rng.normal(0, self.noise, image.shape)
        if self.dropout_prob > 0:
            dropped = rng.random((height, width)) < self.dropout_prob
            salt = rng.random((height, width)) < 0.5
            image[dropped] = np.where(salt[dropped], 1.0, 0.0)[:, None]
        return image


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an ``(H, W, C)`` float image (edges replicated): a defocused or motion-blurred
    frame keeps the layout but loses the textures, so matching it to the (sharp) past still works."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    rows = sum(w * padded[i : i + height] for i, w in enumerate(taps))
    return sum(w * rows[:, i : i + width] for i, w in enumerate(taps))


def _shape_mask(shape: int, a: np.ndarray, b: np.ndarray, radius: float, aspect: float) -> np.ndarray:
    """Inside-test in the object's rotated frame (a, b); ``radius`` sets the size."""
    name = SHAPES[shape]
    if name == "disc":
        return a * a + b * b <= radius * radius
    if name == "rectangle":
        return (np.abs(a) <= radius) & (np.abs(b) <= radius * aspect)
    if name == "triangle":  # equilateral, circumradius 1.5 * radius (area close to a disc's): three half-planes
        inside = np.ones(a.shape, dtype=bool)
        for j in range(3):
            normal = np.pi / 2 + 2 * np.pi * j / 3
            inside &= a * np.cos(normal) + b * np.sin(normal) <= 0.75 * radius
        return inside
    if name == "diamond":
        return np.abs(a) / radius + np.abs(b) / (radius * aspect) <= 1
    distance = np.sqrt(a * a + b * b)  # ring: its hole shows what lies behind
    return (distance <= radius) & (distance >= 0.5 * radius)


def _texture(texture: int, a: np.ndarray, b: np.ndarray, wavelength: float, phase: float, radius: float) -> np.ndarray:
    """Texture intensity in [0, 1], attached to the object (a function of its local coordinates)."""
    name = TEXTURES[texture]
    k = 2 * np.pi / wavelength
    if name == "stripes":
        return 0.5 + 0.5 * np.sin(k * a + phase)
    if name == "checker":
        return 0.5 + 0.5 * np.tanh(2 * np.sin(k * a) * np.sin(k * b))
    if name == "rings":
        return 0.5 + 0.5 * np.sin(k * np.sqrt(a * a + b * b) + phase)
    if name == "dots":
        return 0.5 + 0.5 * np.cos(k * a) * np.cos(k * b)
    return np.clip(0.5 + 0.5 * a / radius, 0, 1)  # ramp


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

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_clips:
            raise IndexError(index)
        clip = self.video.render(self.split, index, self.memory_length + 1)
        name = f"synthetic-{self.split}-{index:06d}"
        if not self.step_flow:
            return clip_sample(self.transform, clip.frames, clip.labels[-1], clip.flow, name)
        sample = clip_sample(self.transform, clip.frames, clip.labels[-1], torch.cat([clip.flow, clip.step_flow]), name)
        sample["flow"], sample["step_flow"] = sample["flow"].chunk(2)  # one transform for both: same geometry
        return sample


def build_synthetic(data_cfg, split: str, memory_length: int, train: bool) -> SyntheticClips:
    """The synthetic dataset of ``data_cfg.synthetic`` (train clips for ``train``, val clips otherwise)."""
    cfg = data_cfg.synthetic
    video = SyntheticVideo(
        size=(int(cfg.size[0]), int(cfg.size[1])),
        num_classes=int(cfg.num_classes),
        clip_length=int(cfg.clip_length),
        noise=float(cfg.noise),
        occluder_prob=float(cfg.occluder_prob),
        dropout_prob=float(cfg.dropout_prob),
        camera_motion=float(cfg.camera_motion),
        blur=float(cfg.blur),
        seed=int(cfg.seed),
    )
    num_clips = int(cfg.train_clips) if split == "train" else int(cfg.val_clips)
    return SyntheticClips(video, split, num_clips, memory_length, ClipTransform.from_config(data_cfg, train))
