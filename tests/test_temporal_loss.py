"""ETC's temporal-consistency loss as a training option: the term, its flow sources, its errors, a training run."""

import pytest
import torch
from helpers import tiny_builder

from bench.config import ConfigError, load_config
from bench.distributed import DistEnv
from bench.engine.temporal_loss import build_temporal_loss, flow_warped_l1
from bench.engine.trainer import setup, step
from bench.run.execute import train_and_evaluate, train_job
from bench.run.model import build_model

SETTINGS = {
    "model.name": "per_frame",
    "data.synthetic.train_clips": 4,
    "data.synthetic.val_clips": 2,
    "train.batch_size": 2,
    "train.iters": 2,
    "eval.temporal_consistency": False,
}
tiny_config = tiny_builder(SETTINGS, "run_dir")


def _probs(seed, b=2, c=3, h=8, w=10):
    return torch.softmax(torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 3, dim=1)


def test_the_term_is_zero_for_content_moved_by_the_exact_flow_and_positive_otherwise():
    prev = _probs(0)
    cur = torch.roll(prev, shifts=1, dims=-1)  # content moved one pixel right: P_t(x) = P_{t-1}(x - 1)
    flow = torch.zeros(2, 2, 8, 10)
    flow[:, 0] = -1.0  # t -> t-1: the pixel x came from x - 1
    assert flow_warped_l1(prev, cur, flow) == pytest.approx(0.0, abs=1e-6)  # column 0 falls outside: masked
    assert flow_warped_l1(prev, cur, torch.zeros_like(flow)) > 0.1
    assert flow_warped_l1(prev, prev, torch.zeros_like(flow)) == pytest.approx(0.0, abs=1e-6)
    assert flow_warped_l1(prev, cur, torch.full_like(flow, 50.0)) == 0  # nothing valid -> 0, not NaN


def test_a_weight_without_a_usable_flow_source_is_a_one_line_error():
    with pytest.raises(ConfigError, match="only the synthetic dataset has"):
        load_config(None, ["data.dataset=cityscapes", "train.tc_loss_weight=1.0"])
    with pytest.raises(ConfigError, match="needs RAFT weights"):
        load_config(None, ["train.tc_loss_weight=1.0", "train.tc_loss_flow=raft"])
    with pytest.raises(ConfigError, match="tc_loss_flow"):
        load_config(None, ["train.tc_loss_flow=optical"])
    load_config(None, ["data.dataset=cityscapes", "train.tc_loss_weight=1.0", "train.tc_loss_flow=dis"])


def test_memory_models_are_refused_and_weight_zero_is_off(tmp_path):
    cfg = tiny_config(tmp_path, "model.name=tmanet", "model.memory_length=1", "train.tc_loss_weight=0.5")
    with pytest.raises(ConfigError, match="applies to per-frame models"):
        build_temporal_loss(cfg.train, cfg.data, build_model(cfg))
    off = tiny_config(tmp_path)
    assert build_temporal_loss(off.train, off.data, build_model(off)) is None


def test_the_term_changes_the_step_and_pairs_are_loaded(tmp_path, source="ground_truth"):
    params = {}
    for weight in (0.0, 5.0):
        cfg = tiny_config(
            tmp_path / f"{source}{weight}",
            f"train.tc_loss_weight={weight}",
            f"train.tc_loss_flow={source}",
            "data.num_workers=0",
        )
        run = setup(train_job(cfg, tmp_path / f"{source}{weight}")[0], DistEnv())
        assert (run.tc is None) == (weight == 0)
        assert run.batches.dataset[(0, 0)]["frames"].shape[0] == (2 if weight else 1)  # (t-1, t) pairs for TC
        step(run)
        params[weight] = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    assert not torch.allclose(params[0.0], params[5.0])


@pytest.mark.filterwarnings("ignore:temporal consistency skipped")
def test_a_per_frame_run_trains_with_the_tc_loss_and_classical_flow(tmp_path):
    cfg = tiny_config(tmp_path, "train.tc_loss_weight=1.0", "train.tc_loss_flow=dis", "model.name=fcn")
    record = train_and_evaluate(cfg, tmp_path)
    assert record["status"] == "done" and 0 <= record["metrics"]["miou"] <= 1
    assert record["config"]["train"]["tc_loss_weight"] == 1.0
