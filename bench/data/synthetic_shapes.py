"""Drawing primitives of the synthetic video (``bench.data.synthetic``): object shapes, textures, bouncing motion,
hues and the optional blur. Pure numpy; every function is deterministic.
"""

from __future__ import annotations

import colorsys

import numpy as np

SHAPES = ("disc", "rectangle", "triangle", "diamond", "ring")
TEXTURES = ("stripes", "checker", "rings", "dots", "ramp")


def hue_rgb(hue: float) -> np.ndarray:
    """Fully saturated, full-value RGB of ``hue``; ``v * (1 - s + s * rgb)`` is then HSV (hue, s, v)."""
    return np.array(colorsys.hsv_to_rgb(hue, 1.0, 1.0))


def bounce(start: np.ndarray, velocity: np.ndarray, times: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Positions (F, 2) at ``times`` of a point moving at ``velocity`` and reflected at ``low``/``high``."""
    span = high - low
    free = (start - low)[None] + times[:, None] * velocity[None]  # unbounded travel from ``low``
    folded = np.mod(free, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an ``(H, W, C)`` float image (edges replicated)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    rows = sum(w * padded[i : i + height] for i, w in enumerate(taps))
    return sum(w * rows[:, i : i + width] for i, w in enumerate(taps))


def shape_mask(shape: int, a: np.ndarray, b: np.ndarray, radius: float, aspect: float) -> np.ndarray:
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


def texture(texture: int, a: np.ndarray, b: np.ndarray, wavelength: float, phase: float, radius: float) -> np.ndarray:
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
