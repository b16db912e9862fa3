"""Config: defaults < YAML (with base:) < dotted overrides; every bad key, type and value is a clear error."""

from pathlib import Path

import pytest
import yaml

from bench.config import Config, ConfigError, help_table, load_config, parse_override, to_dict, to_yaml
from bench.run.identity import config_hash, run_id


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_follow_the_official_recipe():
    cfg = load_config()
    assert cfg.train.lr == 0.01 and cfg.train.momentum == 0.9 and cfg.train.weight_decay == 5e-4
    assert cfg.train.min_lr == 1e-4 and cfg.train.poly_power == 0.9 and cfg.train.aux_weight == 0.4
    assert cfg.model.key_channels == 64 and cfg.model.value_channels == 256 and cfg.model.channels == 512
    assert cfg.data.dataset == "synthetic"


def test_yaml_then_overrides_with_types(tmp_path):
    path = write(tmp_path / "x.yaml", {"model": {"memory_length": 3, "aggregation": "sum"}, "train": {"iters": 50}})
    cfg = load_config(path, ["model.memory_length=4", "train.lr=0.5", "data.crop_size=[32, 48]", "model.flow.source=ground_truth"])
    assert cfg.model.memory_length == 4 and cfg.model.aggregation == "sum" and cfg.train.iters == 50
    assert cfg.train.lr == 0.5 and isinstance(cfg.train.lr, float)
    assert cfg.data.crop_size == [32, 48] and cfg.model.flow.source == "ground_truth"


def test_integer_is_accepted_for_float_but_not_the_reverse():
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0
    with pytest.raises(ConfigError, match="train.iters: expected an integer"):
        load_config(None, ["train.iters=2.5"])


def test_base_inheritance_and_cycles(tmp_path):
    write(tmp_path / "parent.yaml", {"model": {"memory_length": 4, "backbone": "resnet18"}, "train": {"iters": 9}})
    child = write(tmp_path / "child.yaml", {"base": "parent.yaml", "model": {"memory_length": 1}})
    cfg = load_config(child)
    assert (cfg.model.memory_length, cfg.model.backbone, cfg.train.iters) == (1, "resnet18", 9)
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.memory_lenth=3", r"unknown key model.memory_lenth; valid keys under model: name, backbone, .*memory_length"),
        ("modle.name=x", r"unknown key modle; valid keys under the top level: name, data, model"),
        ("model.aggregation=max", r"model.aggregation: invalid value 'max'; valid choices: concat, sum"),
        ("model.encoding=5x5", r"valid choices: 1x1, 3x3, 1x1\+3x3"),
        ("model.memory_length=9", r"model.memory_length: value 9 is outside the valid range \[0, 8\]"),
        ("train.flip=true", r"unknown key train.flip"),
        ("data.flip=yes please", r"data.flip: expected true or false"),
        ("data.crop_size=[64]", r"data.crop_size: expected a list of 2 values"),
        ("data.synthetic.size=[64, x]", r"data.synthetic.size\[1\]: expected an integer"),
        ("model=3", r"model: expected a mapping"),
        ("no_equals_sign", r"must look like key.sub=value"),
    ],
)
def test_bad_input_names_the_key_and_the_valid_choices(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_yaml_round_trips(tmp_path):
    cfg = load_config(None, ["model.memory_length=6", "model.options={depth: 3}", "plugins=[mypkg.method]"])
    again = load_config(write(tmp_path / "r.yaml", yaml.safe_load(to_yaml(cfg))))
    assert to_dict(again) == to_dict(cfg)


def test_run_id_is_stable_and_ignores_where_and_how_it_runs():
    a = load_config(None, ["model.memory_length=4"])
    b = load_config(None, ["model.memory_length=4", "launch.launcher=slurm", "device=cpu", "output_root=/elsewhere", "name=x"])
    c = load_config(None, ["model.memory_length=2"])
    assert run_id(a) == run_id(b) and run_id(a) != run_id(c)
    assert run_id(a).startswith("tmanet-") and len(run_id(a)) == len("tmanet-") + 10
    assert config_hash(a) == config_hash(load_config(None, ["model.memory_length=4"]))
    assert a.resolved_run_dir().name == run_id(a)


def test_override_values_are_parsed_as_yaml():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=x=y") == ("a", "x=y")
    assert parse_override("a=") == ("a", "")


def test_help_table_lists_nested_keys_and_choices():
    rows = {key: text for key, _, text in help_table()}
    assert "model.flow.source" in rows and "raft | ground_truth" in rows["model.flow.source"]
    assert "data.synthetic.noise" in rows
    assert isinstance(Config(), Config)
