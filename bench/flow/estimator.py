"""``FlowEstimator``: the interface every flow source implements (RAFT, DIS, Farneback).

    flow = estimator(target, source)   # (B, 3, H, W) x 2, ImageNet-normalised -> (B, 2, H, W) pixels

The flow is defined on ``target`` and points into ``source`` (channel 0 = dx, 1 = dy):
``source(p + flow(p)) ~ target(p)``, the convention of ``bench.flow.warp``. Build one with
``bench.flow.sources.make_flow_estimator``.
"""

from __future__ import annotations

from torch import Tensor, nn

from bench.errors import BenchError


# Bad input that the CLI prints as one line (bench.errors.BenchError): what to download, install or set.
class FlowWeightsMissing(BenchError, FileNotFoundError):
    """A flow network's weights file does not exist (e.g. ``model.flow.weights``, ``eval.tc_raft_weights``)."""


class FlowWeightsOffline(BenchError, RuntimeError):
    """A flow network's default weights could not be fetched (offline); the message names the file to place."""


class FlowPackageMissing(BenchError, ImportError):
    """A flow source needs a package that is not installed (OpenCV for dis / farneback)."""


class FlowEstimator(nn.Module):
    """Flow from ``target`` to ``source`` images: (B, 3, H, W) x 2 -> (B, 2, H, W) in pixels."""

    #: True when the estimator has no trainable parameters and never needs gradients (classical flow)
    classical: bool = False

    def forward(self, target: Tensor, source: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError
