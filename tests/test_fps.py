"""The field's FPS protocol (bench/evaluation/fps.py): fixed-size random frames, fp32 with TF32 off and restored,
both modes of a temporal model with GFLOPs and parameters; ``bench latency --size`` runs it on a run."""

from pathlib import Path

import torch
from helpers import tiny_builder

from bench.evaluation.fps import PROTOCOL, fp32_math, measure_fps
from bench.models.cffm import cffm
from bench.run.latency_run import latency_command

PYRAMID = {"model.backbone": "mit_tiny", "model.decoder_channels": 16, "model.cffm_depth": 1}
tiny_config = tiny_builder({"model.name": "cffm", "model.memory_length": 3, **PYRAMID}, "output_root")


def test_fp32_math_turns_tf32_off_and_restores_the_settings():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with fp32_math():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_both_modes_at_a_fixed_size_with_flops_and_parameters():
    model = cffm(num_classes=4, memory_length=3, backbone="mit_tiny", decoder_channels=16, cffm_depth=1)
    result = measure_fps(model, "cffm", (48, 80), frames=2, warmup=3, repeats=2, threads=1)
    assert result["image_size"] == [48, 80] and result["batch_size"] == 1 and result["protocol"] == PROTOCOL
    assert result["precision"] == "fp32 (TF32 off)" and result["input"] == "random frames 48x80"
    streaming, recompute = result["modes"]["streaming"], result["modes"]["recompute"]
    assert result["modes_agree"] and streaming["passes"] == 2 and streaming["timed_frames"] == 2
    # recompute re-encodes the three references: about four frames of backbone and decoder against one
    assert recompute["gflops"] > 2.5 * streaming["gflops"] > 0
    assert result["params"] == sum(p.numel() for p in model.parameters())
    per_frame_classifier = sum(p.numel() for p in model.decode_head.frame.linear_pred.parameters())
    assert result["params_inference"] == result["params"] - per_frame_classifier


def test_bench_latency_size_measures_the_run_under_the_protocol(tmp_path: Path):
    cfg = tiny_config(tmp_path)
    result = latency_command(cfg, frames=2, warmup=3, threads=1, repeats=1, write_record=False, size=(40, 56))
    assert result["input"] == "random frames 40x56" and result["model"] == "cffm"
    assert result["weights"].startswith("random init") and set(result["modes"]) == {"streaming", "recompute"}
