"""Classical optical flow from OpenCV (no weights): DIS (Kroeger et al., ECCV 2016) and Farneback (SCIA 2003).

    from bench.flow.classical import ClassicalFlow, dis_flow, to_grey_uint8
    flow_net = ClassicalFlow("dis", preset="fast")        # or ClassicalFlow("farneback")
    flow = flow_net(target, source)     # (B, 3, H, W) x 2 ImageNet-normalised -> (B, 2, H, W) float32 pixels
    f = dis_flow(grey_t, grey_s)        # (H, W) uint8 x 2 -> (H, W, 2) float32 numpy

OpenCV's ``calc(I0, I1)`` returns a flow with ``I0(p) ~ I1(p + flow(p))``; called with (target, source) that is
this suite's convention (defined on the target, pointing into the source). Images are un-normalised, clamped to
[0, 1], converted to grey (OpenCV's RGB2GRAY weights) and quantised to uint8, the input both methods take.
The batch runs image by image on the CPU; the result goes back to the input's device. No gradient flows through.

OpenCV is a declared dependency (``opencv-python-headless``); when it is missing, building an estimator raises a
one-line error saying what to install.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bench.constants import IMAGENET_MEAN, IMAGENET_STD
from bench.flow.estimator import FlowEstimator, FlowPackageMissing

try:
    import cv2
except ImportError:  # reported when a classical flow source is built (ClassicalFlow)
    cv2 = None

CLASSICAL_METHODS: tuple[str, ...] = ("dis", "farneback")
DIS_PRESETS: tuple[str, ...] = ("ultrafast", "fast", "medium")
DEFAULT_DIS_PRESET = "fast"  # OpenCV's own default preset (DISOpticalFlow::create)
# Farneback: pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, poly_sigma 1.2 (the values of
# OpenCV's dense optical flow tutorial)
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)


def require_cv2(method: str) -> None:
    """A one-line ``FlowPackageMissing`` (an ``ImportError``) when OpenCV is not installed."""
    if cv2 is None:
        raise FlowPackageMissing(
            f"flow source {method!r} needs OpenCV: pip install "
            f"'opencv-python-headless>=4.8,<6' (a dependency of vss-bench), or use "
            f"model.flow.source=raft|ground_truth"
        )


def dis_preset_id(preset: str) -> int:
    """OpenCV's constant for a DIS preset name (ultrafast | fast | medium); a one-line error otherwise."""
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {', '.join(DIS_PRESETS)}")
    return {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }[preset]


def dis_flow(target: np.ndarray, source: np.ndarray, preset: str = DEFAULT_DIS_PRESET) -> np.ndarray:
    """DIS flow of grey uint8 images (H, W) x 2 -> (H, W, 2) float32 (dx, dy), target -> source."""
    require_cv2("dis")
    return cv2.DISOpticalFlow_create(dis_preset_id(preset)).calc(target, source, None)


def farneback_flow(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Farneback flow of grey uint8 images (H, W) x 2 -> (H, W, 2) float32 (dx, dy), target -> source."""
    require_cv2("farneback")
    return cv2.calcOpticalFlowFarneback(target, source, None, *FARNEBACK_PARAMS)


def to_grey_uint8(images: Tensor) -> np.ndarray:
    """ImageNet-normalised (B, 3, H, W) -> grey uint8 numpy (B, H, W)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    rgb = (images.detach().float().cpu() * std + mean).clamp(0.0, 1.0)
    rgb = (rgb * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (B, H, W, 3)
    return np.stack([cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) for image in rgb])


class ClassicalFlow(FlowEstimator):
    """OpenCV DIS (``preset`` ultrafast | fast | medium) or Farneback flow as a module without parameters."""

    classical = True

    def __init__(self, method: str = "dis", preset: str = DEFAULT_DIS_PRESET) -> None:
        super().__init__()
        if method not in CLASSICAL_METHODS:
            raise ValueError(f"unknown classical flow method {method!r}; choose one of {', '.join(CLASSICAL_METHODS)}")
        require_cv2(method)
        self.method = method
        self.preset = preset
        # DIS instances are reused across calls; calc() with no initial flow does not carry state
        self._dis = cv2.DISOpticalFlow_create(dis_preset_id(preset)) if method == "dis" else None

    def extra_repr(self) -> str:
        return f"method={self.method!r}" + (f", preset={self.preset!r}" if self.method == "dis" else "")

    def _pair(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        if self._dis is not None:
            return self._dis.calc(target, source, None)
        return farneback_flow(target, source)

    def forward(self, target: Tensor, source: Tensor) -> Tensor:
        """(B, 3, H, W) x 2 ImageNet-normalised -> (B, 2, H, W) float32 flow in pixels on ``target``'s device."""
        if target.shape != source.shape or target.dim() != 4:
            raise ValueError(
                f"target and source must both be (B, 3, H, W); got {tuple(target.shape)} and {tuple(source.shape)}"
            )
        grey_t, grey_s = to_grey_uint8(target), to_grey_uint8(source)
        flows = np.stack([self._pair(t, s) for t, s in zip(grey_t, grey_s)])  # (B, H, W, 2)
        return torch.from_numpy(flows).permute(0, 3, 1, 2).contiguous().to(target.device)
