"""The config's sections as typed dataclasses, their defaults and one-line help: where a new field goes.

    cfg = Config()                                   # every default
    cfg.train.iters = 200                            # checked at once (``Checked``): cfg.train.iters = "ten" raises
    help_table()                                     # bench config --keys (bench.config.loading)

A field is declared with the helpers of ``bench.config.fields`` (``choice``, ``bounded``, ``described``,
``listed``), which carry its choices, range and help. Loading (YAML, overrides) is ``bench.config.loading``;
checks across fields are ``bench.config.validation``. ``from bench.config import X`` reaches every public name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.config.fields import Checked, ConfigError, bounded, choice, described, listed
from bench.constants import FLOW_SOURCES


@dataclass
class SyntheticConfig(Checked, prefix="data.synthetic."):
    """The procedural synthetic video dataset (the default; no download)."""

    size: list[int] = listed([64, 64], 2, "frame size [H, W]")
    num_classes: int = bounded(6, 2, 32, "classes, the background (class 0) included")
    train_clips: int = bounded(256, 1, help="clips in the training split")
    val_clips: int = bounded(64, 1, help="clips in the validation split")
    clip_length: int = bounded(10, 2, 64, "frames generated per clip; >= memory_length + 2")
    noise: float = bounded(0.0, 0.0, 2.0, "std of Gaussian noise on the current frame ([0, 1] scale)")
    occluder_prob: float = bounded(0.0, 0.0, 1.0, "chance of an occluding block on the current frame")
    dropout_prob: float = bounded(0.0, 0.0, 1.0, "fraction of current-frame pixels dropped")
    camera_motion: float = bounded(2.0, 0.0, 16.0, "max camera translation, pixels per frame")
    blur: float = bounded(0.0, 0.0, 16.0, "Gaussian blur sigma (pixels) of the current frame")
    current_cue: str = choice(
        "hidden", ("hidden", "visible"), "class hue in the current frame; visible = negative control"
    )
    cue_prob: float = bounded(0.5, 0.0, 1.0, "chance that an object shows its class hue in a memory frame")
    object_speed: float = bounded(0.12, 0.0, 1.0, "object speed, fraction of the shorter side per frame")
    classes_per_clip: int = bounded(
        1, 1, 3, "distinct classes among a clip's 2..3 objects; > 1 needs instance matching"
    )
    val_video_length: int = bounded(
        0,
        0,
        256,
        "frames of each validation video in whole-video evaluation, every frame labelled (mVC_C needs more than C); "
        "0 = clip_length",
    )
    seed: int = described(0, "seed of the generated videos (the same seed = the same dataset)")


@dataclass
class DataConfig(Checked, prefix="data."):
    """Which dataset, where it lives, and how clips are augmented (docs/tmanet.md §3)."""

    dataset: str = choice("synthetic", ("synthetic", "cityscapes", "camvid", "vspw"), "which dataset")
    root: str = described("", "dataset folder (README: what to download and where); unused by synthetic")
    train_split: str = described("train", "split used for training")
    val_split: str = described("val", "split used for evaluation")
    crop_size: list[int] = listed([64, 64], 2, "training crop [H, W]")
    base_size: list[int] = listed(
        [], None, "resize reference [H, W] before random scaling (mmseg img_scale); [] = native"
    )
    scale_range: list[float] = listed([0.5, 2.0], 2, "random rescale ratio [min, max] of base_size before the crop")
    cat_max_ratio: float = bounded(
        0.75, 0.0, 1.0, "redraw a crop (up to 10 times) while one class covers more than this"
    )
    flip: bool = described(True, "random horizontal flip (the same for every frame of a clip)")
    photometric: bool = described(True, "random brightness/contrast/saturation/hue, drawn per frame")
    # -1 = auto (bench.distributed.resolve_num_workers): min(4, CPUs per process) on CUDA, 0 on CPU
    num_workers: int = bounded(-1, -1, 64, "data-loader worker processes per process; -1 = auto")
    # DataLoader settings that keep a GPU fed (bench.distributed.loader_options); none changes a number
    pin_memory: int = bounded(-1, -1, 1, "page-locked batches (faster copies to the GPU): -1 = auto (on CUDA), 0, 1")
    persistent_workers: int = bounded(
        -1, -1, 1, "keep the training loader's workers across epochs: -1 = auto (on CUDA with workers), 0, 1"
    )
    prefetch_factor: int = bounded(2, 1, 64, "batches each loader worker prepares ahead (with workers)")
    # memory frames (bench/data/memory.py); the default is the official {t-T .. t-1} (docs/tmanet.md §2.1)
    memory_offsets: list[int] = listed(
        [], None, "memory frame offsets, oldest first, e.g. [-4, -3, -2, -1]; [] = -T*k .. -k with k = memory_stride"
    )
    memory_stride: int = bounded(1, 1, help="k: offsets -T*k .. -k (when memory_offsets is [])")
    memory_sampling: str = choice(
        "fixed",
        ("fixed", "random"),
        "random = official random_select: T distinct "
        "offsets from -sequence_range..-1, drawn once per image at dataset construction",
    )
    sequence_range: int = bounded(0, 0, help="range of the random draw; 0 = T (deterministic, as released)")
    memory_seed: int = bounded(0, 0, help="seed of the random memory draw")
    memory_source: str = choice(
        "video",
        ("video", "labelled"),
        "video = raw video frames; labelled = the previous "
        "labelled frames of the same video and split (CamVid SegNet release)",
    )
    first_frames: str = choice(
        "repeat",
        ("repeat", "skip"),
        "labelled frames with too few past frames: repeat "
        "the earliest frame (TMANet author, I#23) or skip them (count logged)",
    )
    camvid_protocol: str = choice(
        "segnet11", ("segnet11", "full11", "tmanet12"), "CamVid classes and label resolution (README, CamVid)"
    )
    # VSPW and the conventions of the CFFM line (bench/data/vspw.py, bench/data/memory.py)
    memory_preset: str = choice(
        "none",
        ("none", "cffm"),
        "cffm = CFFM's reference frames t-9, t-6, t-3 (model.memory_length=3) with its table for a video's first 9 "
        "frames (bench/data/memory.py)",
    )
    reverse_prob: float = bounded(
        0.0, 0.0, 1.0, "training: chance that a clip is read backwards in time (memory from later frames; CFFM 0.5)"
    )
    train_sampling: str = choice(
        "frame",
        ("frame", "video"),
        "training items: every labelled frame, or one random labelled frame per video and pass (CFFM's VSPW sampler)",
    )
    missing_files: str = choice(
        "error",
        ("error", "skip"),
        "a missing or 0-byte frame or mask (the VSPW 480p release has both): a one-line error naming it, or skip "
        "that frame and count it in the record",
    )
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        """Memory keys that contradict each other are errors (lengths are checked against T in bench.data.memory)."""
        offsets = list(self.memory_offsets)
        if offsets and (any(o >= 0 for o in offsets) or any(a >= b for a, b in zip(offsets, offsets[1:]))):
            raise ConfigError(
                f"data.memory_offsets: {offsets} must be negative and strictly increasing (oldest "
                f"first), e.g. [-4, -3, -2, -1]"
            )
        if offsets and self.memory_stride != 1:
            raise ConfigError("data.memory_offsets and data.memory_stride both set; give one of them")
        if self.memory_sampling == "random" and (offsets or self.memory_stride != 1):
            raise ConfigError(
                "data.memory_sampling=random draws its own offsets; leave data.memory_offsets and "
                "data.memory_stride at their defaults ([] and 1)"
            )
        if self.memory_preset != "none" and (offsets or self.memory_stride != 1 or self.memory_sampling != "fixed"):
            raise ConfigError(
                f"data.memory_preset={self.memory_preset} sets the memory offsets itself; leave data.memory_offsets, "
                "data.memory_stride and data.memory_sampling at their defaults ([], 1, fixed)"
            )


@dataclass
class FlowConfig(Checked, prefix="model.flow."):
    """Optical flow for the flow-based models (passed to them as ``flow_<field>``)."""

    source: str = choice(
        "raft",
        FLOW_SOURCES,
        "raft (needs weights), dis / farneback (OpenCV, no weights), ground_truth (synthetic only)",
    )
    raft: str = choice("small", ("small", "large"), "torchvision RAFT variant")
    weights: str = field(
        default="", metadata={"help": "'' = random init, 'default' = torchvision weights, or a local .pth path"}
    )
    iters: int = bounded(12, 1, 64, "RAFT refinement iterations")
    freeze: bool = described(True, "keep RAFT fixed (eval mode, no gradients)")
    fusion: str = choice("netwarp", ("netwarp", "concat"), "how warped memory features join the current ones")


@dataclass
class ModelConfig(Checked, prefix="model."):
    """The model: a registered name plus the arguments its factory accepts (docs/tmanet.md §1)."""

    name: str = described("tmanet", "registered model name (bench models lists them)")
    # deep stem V1c, the official backbone (docs/tmanet.md §1.2)
    backbone: str = described("resnet50c", "timm backbone name (resnet50c = deep-stem ResNet-50, as the paper)")
    pretrained: bool = described(False, "start from ImageNet weights (pretrained_path, else a timm download)")
    pretrained_path: str = described("", "local backbone weights (.pth / .safetensors), loaded non-strictly")
    memory_length: int = bounded(2, 0, 8, "past frames read (Cityscapes 2, CamVid 4 in the official configs)")
    aggregation: str = choice("concat", ("concat", "sum"), "how the memory read joins the current frame")
    encoding: str = choice("1x1+3x3", ("1x1", "3x3", "1x1+3x3"), "key/value encoder convolutions")
    key_channels: int = bounded(64, 1, help="channels of attention keys and queries")
    value_channels: int = bounded(256, 1, help="channels of attention values")
    channels: int = bounded(512, 1, help="channels of the decode head bottleneck")
    aux_channels: int = bounded(256, 1, help="channels of the auxiliary (layer3) head")
    dropout: float = bounded(0.1, 0.0, 1.0, "dropout before the classifier")
    attention: str = choice(
        "sdpa", ("sdpa", "reference"), "sdpa = fused attention kernel; reference = the explicit matmul"
    )
    window_size: int = bounded(
        9,
        1,
        help="local_tmanet: odd side of the memory-read window on the feature map "
        "(<= 2*max(h, w) - 1; that size equals tmanet's global read)",
    )
    pool_scales: list[int] = listed([1, 2, 3, 6], None, "pspnet: pyramid pooling bin sizes (mmseg pspnet_r50-d8.py)")
    align_corners: bool = described(False, "bilinear resizing convention of the head")
    flow: FlowConfig = field(default_factory=FlowConfig)
    keyframe_interval: int = bounded(
        5,
        1,
        16,
        "k: keyframe models (dff, accel) run the full network every k-th "
        "frame (DFF/Accel on Cityscapes: 5); 1 = every frame",
    )
    update_backbone: str = field(
        default="resnet18",
        metadata={"help": "accel: the light per-frame backbone of the update branch (a timm ResNet)"},
    )
    options: dict = field(default_factory=dict, metadata={"help": "extra keyword arguments for a plugin model"})
    # feature pyramids (bench/models/pyramid.py): MiT, Swin and other timm pyramids, SegFormer and CFFM heads
    feature_level: str = described(
        "", "backbone level the head reads: layer4 / s8 / s32 ...; '' = the deepest (layer4, or s32 of a pyramid)"
    )
    aux_feature_level: str = described("", "backbone level of the aux head; '' = the one before the deepest")
    decoder_channels: int = bounded(
        256, 1, help="segformer / cffm: width of the all-MLP decoder (official MiT-B0/B1 and CFFM 256, B2-B5 768)"
    )
    cffm_depth: int = bounded(2, 1, 8, "cffm: coarse-to-fine transformer blocks (official B0 1, B1/B2 2, B5 4)")


@dataclass
class TrainConfig(Checked, prefix="train."):
    """The shared training recipe (docs/tmanet.md §3: SGD 0.01/0.9/5e-4, poly 0.9, min lr 1e-4, aux 0.4)."""

    iters: int = bounded(80000, 0, help="training iterations (optimizer steps)")
    batch_size: int = bounded(
        8, 1, help="the GLOBAL batch: clips per step across all GPUs, split evenly over DDP ranks"
    )
    lr: float = bounded(0.01, 0.0, help="initial SGD learning rate")
    momentum: float = bounded(0.9, 0.0, 1.0, "SGD momentum")
    weight_decay: float = bounded(5e-4, 0.0, help="SGD weight decay")
    poly_power: float = bounded(0.9, 0.0, help="poly schedule: lr = (lr - min_lr) * (1 - it/iters)^power + min_lr")
    min_lr: float = bounded(1e-4, 0.0, help="learning rate at the end of the poly schedule")
    aux_weight: float = bounded(0.4, 0.0, help="weight of the auxiliary head loss")
    # mmseg averages the loss over all pixels, ignored ones included (docs/tmanet.md §1.8)
    loss_average: str = choice(
        "all_pixels", ("all_pixels", "valid_pixels"), "cross-entropy mean over all pixels (mmseg) or non-ignored ones"
    )
    grad_clip: float = bounded(0.0, 0.0, help="max gradient norm; 0 = off")
    # the optimiser of the SegFormer / CFFM line (VSS-CFFM local_configs/cffm/*/cffm.*.480x480.vspw2.160k.py)
    optimizer: str = choice(
        "sgd",
        ("sgd", "adamw"),
        "sgd (momentum, weight_decay: TMANet) or adamw (adamw_beta1/2, weight_decay: SegFormer, CFFM)",
    )
    adamw_beta1: float = bounded(0.9, 0.0, 1.0, "adamw: first-moment decay (beta1)")
    adamw_beta2: float = bounded(0.999, 0.0, 1.0, "adamw: second-moment decay (beta2)")
    head_lr_mult: float = bounded(
        1.0, 0.0, help="lr multiplier of every parameter outside model.backbone (mmseg custom_keys head; CFFM 10)"
    )
    norm_decay_mult: float = bounded(
        1.0, 0.0, help="weight-decay multiplier of normalisation layers' parameters (SegFormer / CFFM: 0)"
    )
    warmup_iters: int = bounded(0, 0, help="linear warm-up iterations before the poly schedule (CFFM 1500)")
    warmup_ratio: float = bounded(1e-6, 0.0, 1.0, "lr at iteration 0 of the warm-up, a fraction of the scheduled lr")
    tc_loss_weight: float = bounded(
        0.0,
        0.0,
        help="ETC's temporal-consistency loss (Liu et al. ECCV 2020) for per-frame models (memory_length 0); 0 = off",
    )
    tc_loss_flow: str = choice(
        "ground_truth", FLOW_SOURCES, "flow t -> t-1 for the TC loss; ground_truth = the dataset's (synthetic only)"
    )
    tc_loss_raft_weights: str = field(default="", metadata={"help": "RAFT weights (.pth) for tc_loss_flow=raft"})
    amp: str = choice("none", ("none", "bf16", "fp16"), "mixed precision, CUDA only")
    sync_bn: bool = described(False, "synchronise BatchNorm statistics across DDP ranks")
    checkpoint_every: int = bounded(1000, 1, help="iterations between checkpoints (resume point)")
    log_every: int = bounded(50, 1, help="iterations between log.jsonl lines")
    eval_every: int = bounded(0, 0, help="iterations between validations; 0 = only at the end")
    seed: int = described(0, "training seed (initialisation, data order, augmentation); the unit of statistics")
    deterministic: bool = described(True, "deterministic kernels (bit-identical resume); slower on CUDA")
    tensorboard: bool = field(
        default=False, metadata={"help": 'mirror log.jsonl to run_dir/tensorboard/ (pip install -e ".[tensorboard]")'}
    )
    mlflow: bool = described(False, 'mirror log.jsonl and the config to MLflow (pip install -e ".[mlflow]")')
    mlflow_uri: str = described("", "MLflow tracking URI; '' = a local file store in run_dir/mlflow/ (offline)")
    wandb: bool = described(
        False,
        "mirror log.jsonl and the config to an offline W&B run in run_dir/wandb/ "
        '(pip install -e ".[wandb]"; upload later with wandb sync)',
    )
    tracker_project: str = described("vss-bench", "MLflow experiment / W&B project name")


@dataclass
class EvalConfig(Checked, prefix="eval."):
    """Evaluation: whole-image or sliding-window inference, and temporal consistency."""

    mode: str = choice("whole", ("whole", "slide"), "slide = sliding windows, for large images (Cityscapes, CamVid)")
    crop_size: list[int] = listed([769, 769], 2, "slide window [H, W] (official: Cityscapes 769, CamVid 640)")
    stride: list[int] = listed([513, 513], 2, "slide window step [H, W] (official: Cityscapes 513, CamVid 512)")
    batch_size: int = bounded(1, 1, help="clips per evaluation batch")
    temporal_consistency: bool = described(True, "also measure temporal consistency (eval.tc_metric)")
    tc_flow: str = choice(
        "ground_truth",
        FLOW_SOURCES,
        "flow used to warp t-1 predictions for TC (dis / farneback: OpenCV, no weights; raft: eval.tc_raft_weights)",
    )
    tc_metric: str = choice(
        "both",
        ("both", "etc", "pixel_agreement"),
        "etc = ETC's per-pair mIoU (Liu et al. ECCV 2020); pixel_agreement = pooled pixel agreement",
    )
    tc_pairs: int = bounded(4, 1, help="consecutive prediction pairs per clip for etc (capped by the clip's frames)")
    tc_raft_weights: str = described("", "RAFT weights for tc_flow=raft: 'default' (torchvision) or a local .pth")
    max_images: int = bounded(0, 0, help="0 = the whole split")
    # whole-video evaluation (bench/evaluation/videos.py, docs/vspw.md)
    whole_videos: bool = described(
        False,
        "evaluate every labelled frame of each validation video in order, the memory streamed from frame to frame "
        "(vspw, synthetic long videos): mIoU and mVC instead of one clip per labelled frame",
    )
    stream_mode: str = choice(
        "streaming",
        ("streaming", "recompute"),
        "whole videos: memory features cached from frame to frame, or every memory frame re-encoded at each frame",
    )
    vc_windows: list[int] = listed([8, 16], None, "whole videos: the mVC window lengths C (VSPW papers: 8 and 16)")
    vc_variant: str = choice(
        "official",
        ("official", "remapped_gt", "cffm", "last_window", "void_excluded"),
        "whole videos: the mVC copy metrics.mvc_C shows (every variant is recorded; docs/vspw.md)",
    )
    miou_convention: str = choice(
        "nonzero_union",
        ("nonzero_union", "present_in_gt"),
        "whole videos: what metrics.miou averages (classes with a non-zero union, as mmseg; or present in the "
        "ground truth, as VSPW's evaluator); both are recorded",
    )
    max_videos: int = bounded(0, 0, help="whole videos: 0 = every video of the split")


@dataclass
class LaunchConfig(Checked, prefix="launch."):
    """Where runs execute: this machine or SLURM through submitit."""

    launcher: str = choice("local", ("local", "slurm"), "where a sweep runs")
    max_parallel: int = bounded(1, 1, help="local launcher: runs at the same time")
    partition: str = described("", "SLURM partition")
    account: str = described("", "SLURM account")
    qos: str = described("", "SLURM quality of service")
    time_min: int = bounded(
        60,
        1,
        help="SLURM time limit, minutes; >= 4 (bench sweep refuses less: the time-limit "
        "signal would come before the job can requeue); >= 11 so submitit tells "
        "preemption from time-out",
    )
    nodes: int = bounded(1, 1, help="SLURM nodes per run (DDP across nodes)")
    gpus_per_node: int = bounded(0, 0, help="SLURM GPUs per node")
    tasks_per_node: int = bounded(0, 0, help="processes (DDP ranks) per node; 0 = one per GPU, or 1 without GPUs")
    cpus_per_task: int = bounded(2, 1, help="SLURM CPUs per task (data-loader workers)")
    mem_gb: int = bounded(8, 1, help="SLURM memory per node, GB")
    constraint: str = described("", "SLURM --constraint, e.g. a100")
    sbatch_extra: dict = field(
        default_factory=dict, metadata={"help": "extra sbatch options, e.g. {'exclude': 'node3'}"}
    )
    array_parallelism: int = bounded(64, 1, help="SLURM array: jobs running at once")
    folder: str = described(
        "",
        "submitit job folder (scripts, SLURM logs); '' = <the grid's bookkeeping folder>/slurm (follows output_root)",
    )
    latency: bool = field(default=False, metadata={"help": "after training, measure per-frame latency into the record"})
    latency_frames: int = bounded(30, 1, help="timed frames per mode for that measurement")
    latency_repeats: int = bounded(5, 1, help="timed passes per mode (median of pass medians; latency --repeats)")


@dataclass
class Config(Checked):
    """A whole experiment."""

    name: str = described("", "run name shown in reports; '' = the run id")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    # the thread count changes CPU float digits (other reductions): one fixed default gives bench train, a local
    # sweep and make demo the same numbers for a run id; records and reports show it (bench.distributed)
    threads: int = bounded(
        1, 0, 1024, "torch intra-op threads of a run (training, evaluation, latency); 0 = torch's default (all cores)"
    )
    plugins: list[str] = listed([], None, "modules imported before the model is built")
    output_root: str = described("results/runs", "runs go to output_root/<run id>")
    run_dir: str = described("", "this run's folder; '' = output_root/<run id>")
    checkpoint: str = field(default="", metadata={"help": "checkpoint to evaluate (bench eval)"})
