"""torchvision RAFT as a flow module for ImageNet-normalised images (the flow-warp baseline and TC's RAFT flow).

    flow_net = RaftFlow("small", weights="/path/raft_small_C_T_V2-01064c6d.pth", iters=12)
    flow = flow_net(target, source)        # (N, 3, H, W) x 2 -> (N, 2, H, W), pixels, defined on target

RAFT: variant "small" | "large"; ``weights`` "" (random init), "default" (torchvision's DEFAULT enum, read from
``$TORCH_HOME/hub/checkpoints`` or downloaded when online) or a local state-dict path; ``freeze=True`` keeps RAFT
in eval mode under ``no_grad``. Input images are mapped back to [0, 1], clamped, then to [-1, 1] (torchvision's
``OpticalFlow`` preset), padded (replicate) to multiples of 8, and the flow is cropped back. RAFT's 4-level
correlation pyramid needs at least 128 px per side: smaller images are upsampled by an integer factor first
and the flow resized back with rescaled displacements.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import optical_flow

from bench.constants import IMAGENET_MEAN, IMAGENET_STD
from bench.flow.estimator import FlowEstimator, FlowWeightsMissing, FlowWeightsOffline
from bench.flow.warp import resize_flow

RAFT_MIN_SIZE = 128
_RAFT = {
    "small": (optical_flow.raft_small, optical_flow.Raft_Small_Weights),
    "large": (optical_flow.raft_large, optical_flow.Raft_Large_Weights),
}


def load_raft(variant: str = "small", weights: str = "") -> nn.Module:
    """torchvision RAFT ``variant`` with ``weights`` "" (random), "default" (torchvision enum) or a file path."""
    if variant not in _RAFT:
        raise ValueError(f"unknown RAFT variant {variant!r}; choose 'small' or 'large'")
    builder, enum = _RAFT[variant]
    model = builder(weights=None, progress=False)
    if weights == "":
        return model
    if weights == "default":
        url = enum.DEFAULT.url
        try:
            state = enum.DEFAULT.get_state_dict(progress=False)
        except Exception as err:  # offline: URLError / OSError / HTTPError
            checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
            raise FlowWeightsOffline(
                f"could not load torchvision RAFT-{variant} weights ({type(err).__name__}: {err}). Download {url} "
                f"and put it into {checkpoints}/ (i.e. $TORCH_HOME/hub/checkpoints), or pass its path as "
                f"model.flow.weights=/path/{url.rsplit('/', 1)[-1]}"
            ) from err
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FlowWeightsMissing(
                f"RAFT weights file {str(path)!r} does not exist (model.flow.weights); use '' "
                f"for random init, 'default' for torchvision's weights, or a local path"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    model.load_state_dict(state)
    return model


class RaftFlow(FlowEstimator):
    """Flow from ImageNet-normalised ``target`` to ``source`` images: (N, 3, H, W) x 2 -> (N, 2, H, W) pixels.

    ``out(p)`` = position of target pixel p in the source minus p (channel 0 = dx, 1 = dy).
    """

    def __init__(self, variant: str = "small", weights: str = "", iters: int = 12, freeze: bool = True) -> None:
        super().__init__()
        self.raft = load_raft(variant, weights)
        self.iters = iters
        self.freeze = freeze
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) / 255.0, persistent=False)
        if freeze:
            self.raft.requires_grad_(False)
            self.raft.eval()

    def train(self, mode: bool = True) -> RaftFlow:
        """A frozen RAFT stays in eval mode (its context encoder has BatchNorm)."""
        super().train(mode)
        if self.freeze:
            self.raft.eval()
        return self

    def _to_raft_range(self, image: Tensor) -> Tensor:
        """ImageNet-normalised (N, 3, H, W) -> [-1, 1] as torchvision's ``OpticalFlow`` preset."""
        return (image * self.std + self.mean).clamp(0.0, 1.0) * 2.0 - 1.0

    def forward(self, target: Tensor, source: Tensor) -> Tensor:
        h, w = target.shape[-2:]
        img1, img2 = self._to_raft_range(target), self._to_raft_range(source)
        # RAFT's correlation pyramid needs >= 128 px per side (torchvision meta min_size); smaller images are
        # upsampled by an integer factor and the flow is resized back (displacements rescaled).
        factor = -(-RAFT_MIN_SIZE // min(h, w)) if min(h, w) < RAFT_MIN_SIZE else 1
        if factor > 1:
            size = (h * factor, w * factor)
            img1 = F.interpolate(img1, size=size, mode="bilinear", align_corners=True)
            img2 = F.interpolate(img2, size=size, mode="bilinear", align_corners=True)
        hs, ws = img1.shape[-2:]
        pad_h, pad_w = (-hs) % 8, (-ws) % 8
        pad = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)  # left, right, top, bottom
        img1 = F.pad(img1, pad, mode="replicate")
        img2 = F.pad(img2, pad, mode="replicate")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            flow = self.raft(img1, img2, num_flow_updates=self.iters)[-1]
        flow = flow[..., pad[2] : pad[2] + hs, pad[0] : pad[0] + ws]
        return resize_flow(flow, (h, w))
