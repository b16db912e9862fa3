"""Flow sources by name: ``make_flow_estimator`` builds the estimator a config asks for.

    from bench.flow.sources import FLOW_SOURCES, FlowEstimator, make_flow_estimator
    net = make_flow_estimator("dis")                       # OpenCV DIS (preset fast), no weights
    net = make_flow_estimator("raft", raft="small", weights="/path/raft_small_C_T_V2-01064c6d.pth")
    make_flow_estimator("ground_truth")                    # None: the flow comes from the dataset (synthetic)
    flow = net(target, source)   # (B, 3, H, W) x 2 ImageNet-normalised -> (B, 2, H, W), target -> source, pixels

Sources: ``raft`` (torchvision RAFT, ``bench.flow.raft``), ``dis`` and ``farneback`` (OpenCV,
``bench.flow.classical``), ``ground_truth`` (the dataset's exact flow; only the synthetic dataset has it).
"""

from __future__ import annotations

from bench.constants import FLOW_SOURCES
from bench.flow.classical import ClassicalFlow
from bench.flow.estimator import FlowEstimator
from bench.flow.raft import RaftFlow

__all__ = ["FLOW_SOURCES", "FlowEstimator", "make_flow_estimator"]


def check_flow_source(source: str) -> None:
    """A one-line ``ValueError`` for an unknown flow source, listing the valid ones."""
    if source not in FLOW_SOURCES:
        raise ValueError(f"unknown flow source {source!r}; choose one of {', '.join(FLOW_SOURCES)}")


def make_flow_estimator(
    source: str, raft: str = "small", weights: str = "", iters: int = 12, freeze: bool = True
) -> FlowEstimator | None:
    """The estimator of ``source``; None for ``ground_truth``. ``raft``/``weights``/``iters``/``freeze`` are
    RAFT's (``bench.flow.raft.RaftFlow``) and ignored by the classical sources."""
    check_flow_source(source)
    if source == "ground_truth":
        return None
    if source == "raft":
        return RaftFlow(raft, weights, iters, freeze)
    return ClassicalFlow(source)
