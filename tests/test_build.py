"""One way from a config to a model: the dataset catalog, build_model, load_run_model."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY, as_overrides

from bench.config import ConfigError, load_config, to_dict
from bench.data.build import build_dataset
from bench.data.camvid_protocols import CAMVID_PROTOCOLS
from bench.data.catalog import CATALOG, DatasetInfo, dataset_info
from bench.data.errors import DatasetError
from bench.engine.checkpoint import CheckpointError, save_checkpoint
from bench.run import rundir
from bench.run.model import build_model, load_run_model

BUILD_TINY = as_overrides({**TINY, "model.memory_length": 1, "data.synthetic.num_classes": 5})


def test_catalog_describes_each_dataset_without_opening_it():
    cfg = load_config(None, BUILD_TINY)
    info = dataset_info(cfg.data)
    assert (info.num_classes, info.class_names, info.ignore_index) == (
        5,
        ("background", "red", "chartreuse", "cyan", "violet"),
        255,
    )
    red, violet = info.palette[1], info.palette[4]  # each object class is drawn in the hue it is named after
    assert red[0] > 200 > 60 > max(red[1:]) and violet[2] > 200 and violet[0] > violet[1]
    dataset = build_dataset(cfg.data, "val", 1, train=False)  # the dataset class agrees with its description
    assert (dataset.num_classes, tuple(dataset.class_names), dataset.ignore_index) == (
        info.num_classes,
        info.class_names,
        info.ignore_index,
    )
    cityscapes = dataset_info(load_config(None, ["data.dataset=cityscapes", "data.root=/nonexistent"]).data)
    assert (
        cityscapes.num_classes == 19 and cityscapes.class_names[0] == "road" and cityscapes.class_names[-1] == "bicycle"
    )
    camvid = dataset_info(load_config(None, ["data.dataset=camvid", "data.root=/nonexistent"]).data)
    assert camvid.num_classes == 11 and camvid.class_names[0] == "sky" and "bicyclist" in camvid.class_names
    for protocol in CAMVID_PROTOCOLS.values():  # the model gets the class count of the protocol it is trained on
        described = dataset_info(
            load_config(None, ["data.dataset=camvid", f"data.camvid_protocol={protocol.name}"]).data
        )
        assert (described.num_classes, described.class_names) == (protocol.num_classes, tuple(protocol.class_names))
    assert (
        dataset_info(load_config(None, ["data.dataset=camvid", "data.camvid_protocol=tmanet12"]).data).num_classes == 12
    )
    assert set(CATALOG) == {"synthetic", "cityscapes", "camvid", "vspw"}
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        DatasetInfo(2, ("a", "b", "c"))


def test_unknown_dataset_lists_the_catalog():
    cfg = load_config(None, BUILD_TINY)
    with pytest.raises(ConfigError, match="valid choices: synthetic, cityscapes, camvid, vspw"):
        cfg.data.dataset = "kitti"  # a loaded config refuses it at once
    data = cfg.data
    object.__setattr__(data, "dataset", "kitti")  # and the catalog, for a config built around the check
    with pytest.raises(DatasetError, match="synthetic, cityscapes, camvid, vspw"):
        dataset_info(data)


def test_build_model_takes_the_class_count_from_the_catalog():
    cfg = load_config(None, BUILD_TINY + ["data.dataset=cityscapes", "data.root=/nonexistent"])  # no data needed
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 2, 3, 32, 32))["out"]
    assert out.shape == (1, 19, 32, 32)


def test_load_run_model_restores_weights_config_and_metadata(tmp_path):
    cfg = load_config(None, BUILD_TINY + ["model.name=per_frame"])
    torch.manual_seed(3)
    trained = build_model(cfg)
    names = list(dataset_info(cfg.data).class_names)
    save_checkpoint(
        tmp_path / "checkpoint.pt",
        {"iteration": 7, "model": trained.state_dict(), "optimizer": {}, "config": to_dict(cfg), "classes": names},
    )
    model, loaded_cfg, meta = load_run_model(tmp_path)
    assert to_dict(loaded_cfg) == to_dict(cfg)
    assert meta["iteration"] == 7 and meta["classes"] == names and meta["checkpoint"] == tmp_path / "checkpoint.pt"
    assert "model" not in meta and "optimizer" not in meta
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    # a checkpoint without a config takes the run's config.yaml
    (tmp_path / "bare").mkdir()
    save_checkpoint(tmp_path / "bare" / "checkpoint.pt", {"model": trained.state_dict()})
    (tmp_path / "bare" / "config.yaml").write_text(__import__("yaml").safe_dump(to_dict(cfg)))
    assert to_dict(load_run_model(tmp_path / "bare" / "checkpoint.pt")[1]) == to_dict(cfg)

    # classes that no longer match the catalog are an error, not a silently relabelled model
    save_checkpoint(
        tmp_path / "checkpoint.pt", {"model": trained.state_dict(), "config": to_dict(cfg), "classes": names[::-1]}
    )
    with pytest.raises(CheckpointError, match="trained on classes"):
        load_run_model(tmp_path)
    (tmp_path / "empty").mkdir()
    save_checkpoint(tmp_path / "empty" / "checkpoint.pt", {"model": trained.state_dict()})
    with pytest.raises(rundir.RunDirError, match="no config"):
        load_run_model(tmp_path / "empty")
