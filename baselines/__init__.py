"""Baselines compared with TMANet: ``per_frame`` (no memory) and ``flow_warp`` (RAFT / ground-truth flow warping).

Importing ``baselines.per_frame`` / ``baselines.flow_warp`` registers the models in ``bench.models.registry``;
``bench.flow.warp`` holds the warping helpers (``flow_warp``, ``resize_flow``, ``warp_valid_mask``).
"""
