"""Constants shared by data, models and metrics.

ImageNet statistics on the 0..255 RGB scale, as in the official TMANet configs
(``img_norm_cfg`` in configs/_base_/datasets/*.py).
"""

IMAGENET_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)
IGNORE_INDEX: int = 255

# exit code of `python -m bench.run.execute` and `bench train` when another live process owns the run
EXIT_BUSY = 75

# optical-flow sources (bench.flow.sources builds them; config validates model.flow.source and eval.tc_flow
# against this tuple): torchvision RAFT, OpenCV DIS and Farneback, the synthetic dataset's exact flow
FLOW_SOURCES: tuple[str, ...] = ("raft", "dis", "farneback", "ground_truth")
