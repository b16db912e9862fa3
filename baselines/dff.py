"""Deep Feature Flow (DFF, Zhu et al., CVPR 2017): the full network on keyframes, warped features elsewhere.

Same backbone, value encoder, bottleneck, classifier and aux head as ``per_frame`` (``SegmenterBase``); DFF
splits them into the feature network N_feat = backbone + query value encoder (run on keyframes only) and the
task network N_task = 3x3 bottleneck + classifier (run on every frame):

* keyframe (every ``keyframe_interval``-th frame of a stream, k): N_feat on the frame, N_task on its features;
* other frames: flow from the current frame to the keyframe (``bench.flow.sources``: raft | dis | farneback, or
  the dataset's ``ground_truth``; defined on the current frame, pointing into the keyframe), resized to the
  feature grid, warps the keyframe's value features (``bench.flow.warp.backward_warp``), then N_task.

What is warped: the value features (B, Cv, h, w), the output of the value encoder, not layer4. DFF warps the
output of its feature network, a 1024-channel map (the channel count of its scale field) below ResNet-101's
2048-channel conv5; the value encoder plays that role here (layer4 2048 -> Cv 256 for resnet50c), so warping
is 8x cheaper than warping layer4, a keyframe's decoder is exactly ``per_frame``'s, and DFF with k = 1 is
``per_frame``. Not reproduced: DFF's
FlowNet and its learned scale field (a classical flow has none), and end-to-end training of the flow.

Training (the paper's recipe): a clip of k frames ``frames (B, k, 3, H, W)`` ends with the labelled frame;
for every sample a keyframe distance d in 0..k-1 is drawn from torch's global RNG (saved in checkpoints, so a
resumed run draws the same), the keyframe is ``frames[:, -1 - d]``, its features are warped to the labelled
frame and the loss is on the labelled frame. The aux head runs on the keyframe's layer3 and its logits are
warped the same way. Evaluation of a clip uses d = ``eval_offset`` (default -1: k - 1, the farthest keyframe
of a cycle, i.e. the hardest frame); ``bench.models.streaming.StreamingSegmenter`` runs the real schedule.
``memory_length`` is k - 1 (the data pipeline builds clips of k frames); ``model.memory_length`` of the
config does not apply.

Usage::

    from baselines.dff import dff
    model = dff(num_classes=19, keyframe_interval=5, flow_source="dis")
    out = model(frames)["out"]                  # frames (B, 5, 3, H, W), labelled frame last -> (B, 19, H, W)
    key = model.key_features(image_k)           # streaming: once per keyframe
    out = model.from_key(key, image_t)["out"]   # every other frame (flow estimated from image_t to the key)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bench.flow.sources import check_flow_source, make_flow_estimator
from bench.flow.warp import backward_warp, resize_flow
from bench.models.head import HeadParams
from bench.models.layers import resize_to
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase

MAX_KEYFRAME_INTERVAL = 16


def check_keyframe_interval(model: str, keyframe_interval: int) -> None:
    """``keyframe_interval`` in 1..MAX_KEYFRAME_INTERVAL, else a one-line ``ValueError``."""
    if not 1 <= int(keyframe_interval) <= MAX_KEYFRAME_INTERVAL:
        raise ValueError(
            f"{model} needs model.keyframe_interval in 1..{MAX_KEYFRAME_INTERVAL} (1 = every frame is a "
            f"keyframe), got {keyframe_interval}"
        )


class DeepFeatureFlow(SegmenterBase):
    """Keyframe features warped by flow to the current frame; ``memory_length = keyframe_interval - 1``."""

    def __init__(
        self,
        num_classes: int,
        head: HeadParams,
        keyframe_interval: int = 5,
        flow_source: str = "raft",
        flow_raft: str = "small",
        flow_weights: str = "",
        flow_iters: int = 12,
        flow_freeze: bool = True,
        eval_offset: int = -1,
        name: str = "dff",
    ) -> None:
        check_keyframe_interval(name, keyframe_interval)
        check_flow_source(flow_source)
        k = int(keyframe_interval)
        if not -1 <= eval_offset < k:
            raise ValueError(f"{name}: eval_offset must be -1 (= k - 1) or in 0..{k - 1}, got {eval_offset}")
        super().__init__(num_classes, k - 1, head.value_channels, head)
        self.keyframe_interval = k
        self.eval_offset = k - 1 if eval_offset == -1 else int(eval_offset)
        self.flow_source = flow_source
        self.flow_net = make_flow_estimator(flow_source, flow_raft, flow_weights, flow_iters, flow_freeze)

    # ---------------------------------------------------------------------------------------------- keyframes
    def key_features(self, image: Tensor) -> Features:
        """N_feat on a keyframe: image (B, 3, H, W) -> {"layer3", "value" (B, Cv, h, w), "image"}."""
        layer3, layer4 = self.backbone(image)
        return {"layer3": layer3, "value": self.query_value(layer4), "image": image}

    def key_flow(self, key: Features, image: Tensor) -> Tensor:
        """Estimated flow from ``image`` (B, 3, H, W) to the keyframe: (B, 2, H, W) pixels."""
        if self.flow_net is None:
            raise ValueError(
                "dff with flow_source='ground_truth' needs the flow argument (B, T, 2, H, W) from the "
                "dataset (only the synthetic dataset has it); use flow_source='dis' otherwise"
            )
        return self.flow_net(image, key["image"])

    def warp(self, features: Tensor, flow: Tensor | None, moved: Tensor | None = None) -> Tensor:
        """``features`` (B, C, h, w) of the keyframe warped by ``flow`` (B, 2, H, W) or None (the keyframe itself);
        ``moved`` (B,) bool: samples whose keyframe is another frame (the others are kept as they are)."""
        if flow is None:
            return features
        warped = backward_warp(features, resize_flow(flow, features.shape[-2:]))
        return warped if moved is None else torch.where(moved.view(-1, 1, 1, 1), warped, features)

    def from_key(
        self,
        key: Features,
        image: Tensor,
        flow: Tensor | None = None,
        offset: int | Tensor = 1,
        image_size: tuple[int, int] | None = None,
    ) -> dict[str, Tensor]:
        """Segment ``image`` (B, 3, H, W) from its keyframe's features ``key``; ``offset`` (int or (B,) long) is the
        keyframe distance (0: ``image`` is the keyframe, nothing is warped); ``flow`` (B, 2, H, W), current ->
        keyframe, is estimated when None and needed. -> {"out" (B, C, H, W)} (+ "aux" in training mode)."""
        size = tuple(image.shape[-2:]) if image_size is None else image_size
        moved = self._moved(offset)
        if isinstance(moved, bool):  # one offset for the whole batch
            flow, moved = (None if not moved else flow if flow is not None else self.key_flow(key, image)), None
        elif flow is None:
            flow = self.key_flow(key, image)
        logits = self.classifier(self.bottleneck(self.warp(key["value"], flow, moved)))
        return self.head_outputs(logits, key, image, flow, moved, size)

    @staticmethod
    def _moved(offset: int | Tensor) -> bool | Tensor:
        """Whether the keyframe is another frame: a bool for one offset, a (B,) bool tensor for mixed offsets."""
        if isinstance(offset, Tensor):
            if offset.numel() == 1 or bool((offset == offset.view(-1)[0]).all()):
                return bool(offset.view(-1)[0] > 0)
            return offset > 0
        return int(offset) > 0

    def head_outputs(
        self,
        logits: Tensor,
        key: Features,
        image: Tensor,
        flow: Tensor | None,
        moved: Tensor | None,
        size: tuple[int, int],
    ) -> dict[str, Tensor]:
        """Logits (B, C, h, w) of the current frame -> {"out"} at ``size``, plus the warped keyframe aux head in
        training mode (Accel adds its update branch here)."""
        result = {"out": resize_to(logits, size, self.align_corners)}
        if self.training:
            aux = self.warp(self.aux_head(key["layer3"]), flow, moved)
            result["aux"] = resize_to(aux, size, self.align_corners)
        return result

    # ---------------------------------------------------------------------------------------------- clips
    def clip_offsets(self, batch: int, device: torch.device, keyframe_offset: int | None) -> Tensor:
        """Keyframe distance per sample (B,) long: given, random in 0..k-1 (training), else ``eval_offset``."""
        if keyframe_offset is not None:
            if not 0 <= int(keyframe_offset) < self.keyframe_interval:
                raise ValueError(f"keyframe_offset must be in 0..{self.keyframe_interval - 1}, got {keyframe_offset}")
            return torch.full((batch,), int(keyframe_offset), dtype=torch.long, device=device)
        if self.training:
            return torch.randint(0, self.keyframe_interval, (batch,)).to(device)  # torch's global CPU RNG
        return torch.full((batch,), self.eval_offset, dtype=torch.long, device=device)

    def forward(
        self, frames: Tensor, flow: Tensor | None = None, keyframe_offset: int | None = None
    ) -> dict[str, Tensor]:
        """Clip (B, k, 3, H, W), current frame last -> ``from_key`` output for a keyframe ``keyframe_offset``
        frames back (None: random in training, ``eval_offset`` in eval). ``flow`` (B, k-1, 2, H, W): the
        dataset's flow from the current frame to each earlier slot (ground-truth source only)."""
        if frames.dim() != 5 or frames.shape[1] != self.keyframe_interval:
            raise ValueError(
                f"{type(self).__name__} has keyframe_interval={self.keyframe_interval} and needs clips "
                f"(B, {self.keyframe_interval}, 3, H, W), got {tuple(frames.shape)}"
            )
        b, t = frames.shape[0], self.memory_length
        offsets = self.clip_offsets(b, frames.device, keyframe_offset)
        rows = torch.arange(b, device=frames.device)
        key = self.key_features(frames[rows, t - offsets])
        key_flow = None
        if self.flow_net is None and bool((offsets > 0).any()):
            if flow is None or flow.dim() != 5 or flow.shape[1] != t or flow.shape[2] != 2:
                got = None if flow is None else tuple(flow.shape)
                raise ValueError(
                    f"dff with flow_source='ground_truth' needs flow (B, {t}, 2, H, W) from the dataset "
                    f"(synthetic only; use flow_source='dis' otherwise), got {got}"
                )
            key_flow = flow[rows, (t - offsets).clamp(max=t - 1)]
        return self.from_key(key, frames[:, -1], key_flow, offsets)

    # ---------------------------------------------------------------------------------------------- contract
    def extract(self, image: Tensor) -> Features:
        """The contract's per-frame features: a keyframe's (``key_features``)."""
        return self.key_features(image)

    def decode(
        self, current: Features, memory: list[Features], flow: Tensor | None, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """The contract's decode with the current frame as its own keyframe (memory unused); the keyframe
        schedule is ``forward`` / ``from_key`` (``StreamingSegmenter`` uses them)."""
        return self.from_key(current, current["image"], None, 0, image_size)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        return value


@register_model("dff")
def dff(
    num_classes: int,
    keyframe_interval: int = 5,
    flow_source: str = "raft",
    flow_raft: str = "small",
    flow_weights: str = "",
    flow_iters: int = 12,
    flow_freeze: bool = True,
    eval_offset: int = -1,
    **head: Any,
) -> DeepFeatureFlow:
    """Deep Feature Flow (Zhu et al. CVPR 2017): keyframe features warped by flow; keyframe interval k."""
    return DeepFeatureFlow(
        num_classes,
        HeadParams.from_kwargs(**head),
        keyframe_interval=keyframe_interval,
        flow_source=flow_source,
        flow_raft=flow_raft,
        flow_weights=flow_weights,
        flow_iters=flow_iters,
        flow_freeze=flow_freeze,
        eval_offset=eval_offset,
    )
