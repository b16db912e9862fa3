"""Run ids hash what a run computes: the model factory's real arguments plus data, train and eval."""

from __future__ import annotations

import dataclasses

import bench.config
from bench.config import Config, load_config, to_dict
from bench.run.identity import differences, identity, run_id
from bench.run.rundir import RunDir


def test_fields_the_model_does_not_take_do_not_change_its_id():
    per_frame = [
        load_config(None, ["model.name=per_frame", o])
        for o in ("model.memory_length=2", "model.memory_length=4", "model.key_channels=8")
    ]
    assert len({run_id(c) for c in per_frame}) == 1
    tmanet = [
        load_config(None, [o]) for o in ("model.memory_length=2", "model.memory_length=4", "model.key_channels=8")
    ]
    assert len({run_id(c) for c in tmanet}) == 3


def test_where_how_and_how_often_it_logs_do_not_change_the_id():
    a = load_config(None, ["model.memory_length=4"])
    b = load_config(
        None,
        [
            "model.memory_length=4",
            "launch.launcher=slurm",
            "device=cpu",
            "output_root=/x",
            "name=n",
            "data.num_workers=4",
            "train.log_every=7",
            "train.checkpoint_every=9",
        ],
    )
    assert run_id(a) == run_id(b)
    assert run_id(a) != run_id(load_config(None, ["model.memory_length=4", "train.seed=1"]))
    assert RunDir.of(a).path.name == run_id(a)


def test_only_non_default_values_are_hashed_so_a_new_defaulted_field_keeps_every_id(monkeypatch):
    cfg = load_config(None, ["model.memory_length=4", "train.iters=10"])
    assert identity(cfg) == {
        "id_scheme": 2,
        "model": {"name": "tmanet", "args": {"memory_length": 4}},
        "train": {"iters": 10},
    }
    before = run_id(cfg)

    @dataclasses.dataclass
    class TrainWithNewField(bench.config.TrainConfig):
        brand_new_knob: int = 3

    monkeypatch.setattr(bench.config, "TrainConfig", TrainWithNewField)
    extended = dataclasses.replace(cfg, train=TrainWithNewField(**to_dict(cfg)["train"]))
    assert run_id(extended) == before


def test_differences_name_the_keys_and_treat_absent_new_fields_as_defaults():
    stored = to_dict(load_config(None, ["model.memory_length=2", "train.iters=10"]))
    now = load_config(None, ["model.memory_length=4", "train.iters=10"])
    assert differences(stored, now) == ["model.args.memory_length: stored 2, now 4"]
    del stored["train"]["aux_weight"]  # a field the stored config predates: it counts as its default
    assert differences(stored, load_config(None, ["model.memory_length=2", "train.iters=10"])) == []
    assert differences({"train": {"nonsense": 1}}, now)[0].startswith("the stored config cannot be read")
    assert differences(to_dict(Config()), Config()) == []
