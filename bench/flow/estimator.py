"""``FlowEstimator``: the interface every flow source implements (RAFT, DIS, Farneback).

    flow = estimator(target, source)   # (B, 3, H, W) x 2, ImageNet-normalised -> (B, 2, H, W) pixels

The flow is defined on ``target`` and points into ``source`` (channel 0 = dx, 1 = dy):
``source(p + flow(p)) ~ target(p)``, the convention of ``bench.flow.warp``. Build one with
``bench.flow.sources.make_flow_estimator``.
"""

from __future__ import annotations

from torch import Tensor, nn


class FlowEstimator(nn.Module):
    """Flow from ``target`` to ``source`` images: (B, 3, H, W) x 2 -> (B, 2, H, W) in pixels."""

    #: True when the estimator has no trainable parameters and never needs gradients (classical flow)
    classical: bool = False

    def forward(self, target: Tensor, source: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError
