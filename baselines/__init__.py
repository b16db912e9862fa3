"""Baselines compared with TMANet: ``per_frame`` (no memory), ``flow_warp`` (flow-warped past features),
``dff`` (Deep Feature Flow: keyframe features warped) and ``accel`` (DFF + a per-frame update branch).

Importing ``baselines.per_frame`` / ``flow_warp`` / ``dff`` / ``accel`` registers the models in
``bench.models.registry``; ``bench.flow.warp`` holds the warping helpers (``backward_warp``, ``resize_flow``,
``warp_valid_mask``) and ``bench.flow.sources`` the flow estimators.
"""
