"""Config: defaults < YAML (with base:) < dotted overrides; every bad key, type and value is a clear error."""

from pathlib import Path

import pytest
import yaml

from bench.config import (
    Config,
    ConfigError,
    StrictLoader,
    from_dict,
    help_table,
    load_config,
    parse_override,
    read_yaml,
    to_dict,
    to_yaml,
    validate,
)
from bench.run.identity import config_hash, run_id
from bench.run.rundir import RunDir


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
    cfg = load_config(
        path, ["model.memory_length=4", "train.lr=0.5", "data.crop_size=[32, 48]", "model.flow.source=ground_truth"]
    )
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
        (
            "model.memory_lenth=3",
            r"unknown key model.memory_lenth; valid keys under model: name, backbone, .*memory_length",
        ),
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
    b = load_config(
        None, ["model.memory_length=4", "launch.launcher=slurm", "device=cpu", "output_root=/elsewhere", "name=x"]
    )
    c = load_config(None, ["model.memory_length=2"])
    assert run_id(a) == run_id(b) and run_id(a) != run_id(c)
    assert run_id(a).startswith("tmanet-") and len(run_id(a)) == len("tmanet-") + 10
    assert config_hash(a) == config_hash(load_config(None, ["model.memory_length=4"]))
    assert RunDir.of(a).path.name == run_id(a)


def test_override_values_are_parsed_as_yaml():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=x=y") == ("a", "x=y")
    assert parse_override("a=") == ("a", "")


def test_help_table_lists_nested_keys_and_choices():
    rows = {key: text for key, _, text in help_table()}
    assert "model.flow.source" in rows and "raft | dis | farneback | ground_truth" in rows["model.flow.source"]
    assert "data.synthetic.noise" in rows
    assert isinstance(Config(), Config)


def test_every_key_has_a_one_line_description():
    rows = {key: text for key, _, text in help_table()}
    described = {key: text.split("; one of ")[0] for key, text in rows.items()}
    missing = sorted(key for key, text in described.items() if not text or text.startswith("one of"))
    assert not missing, f"config fields without help text (give bounded/choice/listed/described a help): {missing}"
    assert all("\n" not in text for text in rows.values())
    assert "GLOBAL" in rows["train.batch_size"] and "all GPUs" in rows["train.batch_size"]


def test_bench_config_keys_prints_the_descriptions(capsys):
    from bench.cli import main

    assert main(["config", "--keys"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train.batch_size "))
    assert "8" in line and "GLOBAL batch" in line


def test_strict_loader_refuses_repeated_keys_at_any_depth():
    with pytest.raises(yaml.constructor.ConstructorError, match=r"key 'lr' appears twice \(first at line 2\)"):
        yaml.load("train:\n  lr: 1\n  lr: 2\n", Loader=StrictLoader)
    with pytest.raises(yaml.YAMLError, match="key 'a' appears twice"):
        yaml.load("x: [{a: 1, a: 2}]", Loader=StrictLoader)
    # distinct keys, the same key in sibling mappings, and a merge key overridden afterwards are fine
    text = "a: {k: 1}\nb: {k: 2}\nbase: &p {x: 1, y: 2}\nc:\n  <<: *p\n  x: 3\n"
    assert yaml.load(text, Loader=StrictLoader) == {
        "a": {"k": 1},
        "b": {"k": 2},
        "base": {"x": 1, "y": 2},
        "c": {"x": 3, "y": 2},
    }


def test_read_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("name: a\nmodel: {}\nname: b\n")
    with pytest.raises(ConfigError, match=r"d.yaml, line 3, column 1: key 'name' appears twice .*; keep one"):
        read_yaml(path)
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError, match=r"d.yaml, line 1: byte 0xff is not UTF-8"):
        read_yaml(path)


@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", "nan", "inf", "1e999"])
def test_float_fields_must_be_finite(raw):
    with pytest.raises(ConfigError, match="train.lr: must be a finite number"):
        load_config(None, [f"train.lr={raw}"])


@pytest.mark.parametrize("raw, value", [("1e-3", 0.001), ("1e6", 1e6), ("-2.5E-2", -0.025), ("3", 3.0)])
def test_scientific_notation_is_a_number(raw, value):
    if value <= 0:  # read as a number, then refused as a scale
        with pytest.raises(ConfigError, match="must be two positive scales"):
            from_dict(Config, {"data": {"scale_range": [raw, raw]}})
    else:
        assert from_dict(Config, {"data": {"scale_range": [raw, raw]}}).data.scale_range == [value, value]
    if value >= 0:
        assert load_config(None, [f"train.lr={raw}"]).train.lr == value


def test_strings_are_still_not_numbers():
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        load_config(None, ["train.lr=0.01x"])
    with pytest.raises(ConfigError, match="train.lr: expected a number"):
        load_config(None, [("train.lr", [0.01])])


def test_validate_checks_fields_together():
    cfg = load_config(None, ["data.synthetic.train_clips=8", "train.batch_size=8"])
    validate(cfg)  # exactly one batch is enough
    cfg.train.batch_size = 9
    with pytest.raises(ConfigError, match="fewer than one batch"):
        validate(cfg)
    # the checks are about the synthetic data only
    assert load_config(None, ["data.dataset=camvid", "data.synthetic.train_clips=1"]).data.dataset == "camvid"
    for device in ("auto", "cpu"):
        assert load_config(None, [f"device={device}"]).device == device
    assert from_dict(Config, {"device": "cuda:1"}).device == "cuda:1"  # exists or not: checked by load_config
    with pytest.raises(ConfigError, match="device: invalid value 'cuda:x'"):
        from_dict(Config, {"device": "cuda:x"})


def test_assigning_to_a_loaded_config_is_checked_at_once():
    cfg = load_config(None)
    with pytest.raises(ConfigError, match="train.iters: expected an integer, got 'ten'"):
        cfg.train.iters = "ten"
    with pytest.raises(ConfigError, match="eval.mode: invalid value 'sliding'; valid choices: whole, slide"):
        cfg.eval.mode = "sliding"
    with pytest.raises(ConfigError, match="data.synthetic.noise: value 5.0 is outside the valid range"):
        cfg.data.synthetic.noise = 5.0
    with pytest.raises(ConfigError, match="unknown key train.itres; valid keys under train: iters, batch_size"):
        cfg.train.itres = 5
    cfg.train.lr = 1
    cfg.data = {"dataset": "camvid"}
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float) and cfg.data.dataset == "camvid"
    assert cfg.train.iters == 80000  # a refused assignment leaves the value alone
