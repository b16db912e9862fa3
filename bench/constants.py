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

# the key layouts a checkpoint file can be read in (model.checkpoint_format; bench.weights.layouts detects them):
# auto = from its keys; mmseg = a whole mmseg / official-TMANet model; mmcv_resnet / timm_resnet = backbone weights
# (forced on a whole model: its backbone only); bench = a checkpoint written by bench train
CHECKPOINT_FORMATS: tuple[str, ...] = ("auto", "mmseg", "mmcv_resnet", "timm_resnet", "bench")

# the backbones' output stride (bench.models.backbone: timm output_stride=8, as the official dilated ResNet);
# an input side must cover at least MIN_FEATURE_CELLS feature cells, else the run "learns" 1-cell images
OUTPUT_STRIDE = 8
MIN_FEATURE_CELLS = 2
