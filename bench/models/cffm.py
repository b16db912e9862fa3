"""CFFM (Sun et al., "Coarse-to-Fine Feature Mining for Video Semantic Segmentation", CVPR 2022) in plain PyTorch.

The official model (GuoleiSun/VSS-CFFM, ``CFFMHead_clips_resize1_8`` with ``local_configs/cffm/B1/
cffm.b1.480x480.vspw2.160k.py``): every frame of the clip (three references at t-9, t-6, t-3 and the target t)
goes through the same MiT backbone and SegFormer all-MLP decoder up to its fused stride-4 features
(``bench.models.segformer.MLPDecoder``, width ``decoder_channels`` = 256); these are resized to half
(``int(h/2)``: stride 8) and the target attends to its own neighbourhood and to the references pooled coarser
the farther they are (``cffm_depth`` blocks of ``bench.models.cffm_attention.CoarseToFineBlock``; 2 for MiT-B1/B2).
The prediction is a 1x1 classifier (``linear_pred2``) on ``cat([target features, attended target])`` after
Dropout2d, resized to stride 4 and then to the image.

Training: in the official code all frames of a clip pass the backbone and decoder as one batch (BatchNorm of
``linear_fuse`` sees all of them); ``forward`` does the same. Its loss is the final prediction's plus 0.5 times
the per-frame SegFormer predictions (``linear_pred``) of every frame of the clip against that frame's labels.
Here the current frame's per-frame prediction is returned as ``"aux"`` (the trainer adds ``train.aux_weight``
times its loss: set 0.5); the references' per-frame predictions are not supervised, because the suite's
datasets label the current frame only.

Streaming: ``extract`` returns a frame's stride-8 features (``context``) and, for every block and memory slot,
its pooled reference tokens (``pooled``: references are not changed by the blocks, so their pooled tokens
depend on the frame alone); a stream caches these and runs the backbone once per frame (CFFM's FPS convention:
"the features of reference frames are already in memory").

References per memory slot (oldest first): levels (1, 2, 3) with kernels (7, 5, 3) for the official three; a
model with ``memory_length`` 1 or 2 keeps the last ones (finest for the nearest frame).

Usage::

    from bench.models.cffm import cffm
    model = cffm(num_classes=124, backbone="mit_b1", memory_length=3)
    out = model(frames)["out"]      # frames (B, 4, 3, H, W): t-9, t-6, t-3 (data.memory_stride=3), t -> (B, 124, H, W)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bench.models.cffm_attention import CoarseToFineBlock
from bench.models.head import HeadParams
from bench.models.layers import resize_to
from bench.models.registry import RegistryError, register_model
from bench.models.segformer import PYRAMID_LEVELS, AllMLPHead, build_pyramid

OFFICIAL_LEVELS: tuple[int, ...] = (1, 2, 3)
OFFICIAL_KERNELS: tuple[int, ...] = (7, 5, 3)


class CFFM(nn.Module):
    """Pyramid backbone + all-MLP decoder + coarse-to-fine cross-frame attention, with the model interface."""

    def __init__(
        self, num_classes: int, head: HeadParams, memory_length: int = 3, decoder_channels: int = 256, depth: int = 2
    ) -> None:
        super().__init__()
        if not 1 <= memory_length <= len(OFFICIAL_LEVELS):
            raise RegistryError(
                f"cffm reads 1..{len(OFFICIAL_LEVELS)} reference frames (the official 3: t-9, t-6, t-3 with "
                f"data.memory_stride=3), got model.memory_length={memory_length}"
            )
        self.num_classes = num_classes
        self.memory_length = memory_length
        self.align_corners = head.align_corners
        self.backbone = build_pyramid(head, "cffm")
        channels = tuple(self.backbone.levels[level] for level in PYRAMID_LEVELS)
        self.decode_head = nn.Module()
        self.decode_head.frame = AllMLPHead(channels, decoder_channels, num_classes, head.dropout)
        self.decode_head.blocks = nn.ModuleList(
            CoarseToFineBlock(
                decoder_channels,
                ref_levels=OFFICIAL_LEVELS[-memory_length:],
                ref_kernels=OFFICIAL_KERNELS[-memory_length:],
            )
            for _ in range(depth)
        )
        self.decode_head.dropout = nn.Dropout2d(head.dropout)
        self.decode_head.linear_pred2 = nn.Conv2d(2 * decoder_channels, num_classes, 1)

    def training_only_modules(self) -> list[nn.Module]:
        """The per-frame classifier: its prediction is the training-only aux output."""
        return [self.decode_head.frame.linear_pred]

    def extract(self, image: Tensor) -> dict[str, Any]:
        """image (B, 3, H, W) -> {"context": (B, D, h8, w8), "pooled": [block][slot] (B, h', w', D)} and, in
        training mode, {"frame_logits": (B, K, h4, w4)} (the per-frame SegFormer prediction)."""
        feats = self.backbone.features(image)
        fused, frame_logits = self.decode_head.frame([feats[level] for level in PYRAMID_LEVELS])
        h4, w4 = fused.shape[-2:]
        context = resize_to(fused, (int(h4 / 2), int(w4 / 2)), False)
        tokens = context.permute(0, 2, 3, 1)
        pooled = [
            [block.pool_reference(tokens, slot) for slot in range(self.memory_length)]
            for block in self.decode_head.blocks
        ]
        out: dict[str, Any] = {"context": context, "pooled": pooled}
        if self.training:
            out["frame_logits"] = frame_logits
        return out

    def decode(
        self, current: dict[str, Any], memory: list[dict[str, Any]], flow: Tensor | None, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """The target's and the references' ``extract`` outputs (oldest first) -> {"out": (B, K, H, W)} plus
        ``"aux"`` (the target's per-frame prediction) in training mode."""
        if len(memory) != self.memory_length:
            raise ValueError(f"cffm has memory_length={self.memory_length} but got {len(memory)} memory frames")
        context = current["context"]
        target = context.permute(0, 2, 3, 1)
        for b, block in enumerate(self.decode_head.blocks):
            target = block(target, [m["pooled"][b][slot] for slot, m in enumerate(memory)])
        joined = torch.cat([context, target.permute(0, 3, 1, 2)], dim=1)
        logits = self.decode_head.linear_pred2(self.decode_head.dropout(joined))
        size = (int(image_size[0]), int(image_size[1]))
        stride4 = (-(-size[0] // 4), -(-size[1] // 4))  # the stride-4 grid: ceil(H / 4)
        result = {"out": resize_to(resize_to(logits, stride4, False), size, self.align_corners)}
        if self.training and "frame_logits" in current:
            result["aux"] = resize_to(current["frame_logits"], size, self.align_corners)
        return result

    def forward(self, frames: Tensor, flow: Tensor | None = None) -> dict[str, Tensor]:
        """Clip (B, T+1, 3, H, W), references oldest first and the target last -> ``decode`` output. All frames
        pass the backbone and decoder as one batch, as the official code does."""
        if frames.dim() != 5 or frames.shape[1] != self.memory_length + 1:
            raise ValueError(
                f"cffm has memory_length={self.memory_length} and needs clips (B, {self.memory_length + 1}, 3, H, W), "
                f"got {tuple(frames.shape)}"
            )
        b, slots = frames.shape[:2]
        feats = self.extract(frames.flatten(0, 1))
        per_slot = [_take(feats, torch.arange(s, b * slots, slots, device=frames.device)) for s in range(slots)]
        return self.decode(per_slot[-1], per_slot[:-1], flow, (frames.shape[-2], frames.shape[-1]))


def _take(feats: Any, index: Tensor) -> Any:
    """The samples ``index`` of every tensor in a nested dict/list of (B*slots, ...) tensors."""
    if isinstance(feats, Tensor):
        return feats.index_select(0, index)
    if isinstance(feats, dict):
        return {k: _take(v, index) for k, v in feats.items()}
    return [_take(v, index) for v in feats]


@register_model("cffm")
def cffm(num_classes: int, memory_length: int, decoder_channels: int = 256, cffm_depth: int = 2, **head: Any) -> CFFM:
    """CFFM (CVPR 2022): coarse-to-fine feature assembling + cross-frame attention on the SegFormer decoder
    (``memory_length`` 3 officially: t-9, t-6, t-3 with data.memory_stride=3)."""
    return CFFM(
        num_classes,
        HeadParams.from_kwargs(**head),
        memory_length=memory_length,
        decoder_channels=decoder_channels,
        depth=cffm_depth,
    )
