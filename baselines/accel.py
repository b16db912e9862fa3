"""Accel (Jain, Wang and Gonzalez, CVPR 2019): DFF's reference branch plus a per-frame update branch, fused.

* reference branch: ``baselines.dff`` unchanged (keyframe N_feat features warped by flow to the current frame,
  then N_task) -> reference scores (B, C, h, w);
* update branch: a light backbone (``update_backbone``, e.g. ``resnet18``, output stride 8 like the main one;
  pretrained when ``model.pretrained`` is, from ``update_pretrained_path`` (``model.options``) when given)
  on the current frame, every frame -> 1x1 ConvBNReLU(C4 -> Cv) -> Dropout2d + 1x1 classifier -> update
  scores (B, C, h, w);
* fusion: a learned 1x1 conv over the concatenated scores (2C -> C), Accel's score "correction" layer. It is
  initialised to average the two score maps (weights 0.5 on the diagonals, bias 0), so training starts from
  the mean of the two branches (our choice; the official initialisation was not checked).

Differences from the paper: the flow is the suite's (classical, RAFT or ground truth) from the current frame
straight to the keyframe, where Accel chains frame-to-frame FlowNet warps during training; the reference
network is this suite's backbone, not DeepLab-101. Training, keyframe schedule, evaluation offset and the
``memory_length = keyframe_interval - 1`` clip layout are DFF's (see ``baselines.dff``).

Usage::

    from baselines.accel import accel
    model = accel(num_classes=19, keyframe_interval=5, update_backbone="resnet18", flow_source="dis")
    out = model(frames)["out"]                  # frames (B, 5, 3, H, W) -> (B, 19, H, W)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from baselines.dff import DeepFeatureFlow
from bench.models.backbone import Backbone
from bench.models.head import HeadParams
from bench.models.layers import Classifier, ConvBNReLU
from bench.models.registry import register_model
from bench.models.segmenter import Features


def _update_backbone(name: str, pretrained: bool, path: str) -> Backbone:
    """The update branch's backbone: pretrained like the main one (``model.pretrained``), from ``path`` when set."""
    try:
        return Backbone(name, pretrained=pretrained or bool(path), pretrained_path=path)
    except RuntimeError as err:  # offline timm download: point at the update branch's own option
        raise RuntimeError(
            f"accel update backbone: {err} For the update branch set model.options.update_pretrained_path instead."
        ) from err


class ScoreFusion(nn.Module):
    """1x1 conv over ``cat([reference, update])`` scores: 2 x (B, C, h, w) -> (B, C, h, w), starting at their mean."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * num_classes, num_classes, kernel_size=1)
        with torch.no_grad():
            eye = torch.eye(num_classes)
            self.conv.weight.copy_(0.5 * torch.cat([eye, eye], dim=1)[:, :, None, None])
            self.conv.bias.zero_()

    def forward(self, reference: Tensor, update: Tensor) -> Tensor:
        return self.conv(torch.cat([reference, update], dim=1))


class Accel(DeepFeatureFlow):
    """DFF reference branch + update branch on the current frame + learned 1x1 score fusion."""

    def __init__(
        self,
        num_classes: int,
        head: HeadParams,
        keyframe_interval: int = 5,
        update_backbone: str = "resnet18",
        update_pretrained_path: str = "",
        **flow: Any,
    ) -> None:
        super().__init__(num_classes, head, keyframe_interval=keyframe_interval, name="accel", **flow)
        self.update_backbone = _update_backbone(update_backbone, head.pretrained, update_pretrained_path)
        self.update_head = nn.Sequential(
            ConvBNReLU(self.update_backbone.out_channels, head.value_channels, 1),
            Classifier(head.value_channels, num_classes, head.dropout),
        )
        self.fusion = ScoreFusion(num_classes)

    def update_scores(self, image: Tensor) -> Tensor:
        """The update branch on the current frame: (B, 3, H, W) -> scores (B, C, h, w)."""
        return self.update_head(self.update_backbone(image)[1])

    def head_outputs(
        self,
        logits: Tensor,
        key: Features,
        image: Tensor,
        flow: Tensor | None,
        moved: Tensor | None,
        size: tuple[int, int],
    ) -> dict[str, Tensor]:
        """Reference scores fused with the update branch's, then DFF's outputs (upsampling, warped aux)."""
        update = self.update_scores(image)
        if update.shape[-2:] != logits.shape[-2:]:
            raise ValueError(
                f"update backbone grid {tuple(update.shape[-2:])} differs from the reference grid "
                f"{tuple(logits.shape[-2:])}; both backbones must have output stride 8"
            )
        return super().head_outputs(self.fusion(logits, update), key, image, flow, moved, size)


@register_model("accel")
def accel(
    num_classes: int,
    keyframe_interval: int = 5,
    update_backbone: str = "resnet18",
    update_pretrained_path: str = "",
    flow_source: str = "raft",
    flow_raft: str = "small",
    flow_weights: str = "",
    flow_iters: int = 12,
    flow_freeze: bool = True,
    eval_offset: int = -1,
    **head: Any,
) -> Accel:
    """Accel (Jain et al. CVPR 2019): DFF reference branch + light update branch, 1x1 score fusion."""
    return Accel(
        num_classes,
        HeadParams.from_kwargs(**head),
        keyframe_interval=keyframe_interval,
        update_backbone=update_backbone,
        update_pretrained_path=update_pretrained_path,
        flow_source=flow_source,
        flow_raft=flow_raft,
        flow_weights=flow_weights,
        flow_iters=flow_iters,
        flow_freeze=flow_freeze,
        eval_offset=eval_offset,
    )
