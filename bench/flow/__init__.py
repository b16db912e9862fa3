"""Optical flow: backward warping (``warp``), the flow sources by name (``sources.make_flow_estimator``:
torchvision RAFT in ``raft``, OpenCV DIS / Farneback in ``classical``, the ``estimator.FlowEstimator`` interface).

Convention everywhere in the suite: a flow is defined on the TARGET frame (the current frame t) and points into
the SOURCE frame (a past frame), channel 0 = dx, 1 = dy, in pixels, so that ``source(p + flow(p)) ~ target(p)``.
This package imports nothing from ``bench`` but ``bench.constants``; models, metrics and the run layer use it.
"""
