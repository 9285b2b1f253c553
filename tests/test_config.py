"""Config resolution: presets, TOML files, --set parsing, and the errors for bad keys and values."""

import pytest

from deepzoo import config
from deepzoo.errors import DeepzooError

DEFAULTS = {"seed": 0, "optim": {"lr": 0.001, "name": "adam", "nesterov": False},
            "model": {"hidden": [512, 512], "impl": "torch"}, "train": {"epochs": 10},
            "data": {"path": None}}


def test_set_values_are_read_as_toml_literals():
    cfg = config.resolve(DEFAULTS, {}, sets=["optim.lr=0.1", "model.hidden=[64, 32]", "optim.nesterov=true",
                                             "optim.name=sgd", "data.path=/tmp/x.csv"])
    assert cfg["optim"] == {"lr": 0.1, "name": "sgd", "nesterov": True}
    assert cfg["model"]["hidden"] == [64, 32]
    assert cfg["data"]["path"] == "/tmp/x.csv"
    assert DEFAULTS["optim"]["lr"] == 0.001, "defaults must not be mutated"


def test_int_is_accepted_for_float_and_becomes_float():
    cfg = config.resolve(DEFAULTS, {}, sets=["optim.lr=1"])
    assert cfg["optim"]["lr"] == 1.0 and isinstance(cfg["optim"]["lr"], float)


def test_order_preset_then_file_then_set_then_shortcuts(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[optim]\nlr = 0.5\n[train]\nepochs = 7\n")
    cfg = config.resolve(DEFAULTS, {"quick": {"train": {"epochs": 2}, "optim": {"lr": 0.2}}}, preset="quick",
                         config_file=toml, sets=["train.epochs=3"], epochs=4, seed=9)
    assert cfg["optim"]["lr"] == 0.5 and cfg["train"]["epochs"] == 4 and cfg["seed"] == 9


def test_unknown_key_names_the_key_and_suggests():
    with pytest.raises(DeepzooError, match=r"unknown config key 'optim\.lrr'.*did you mean optim\.lr"):
        config.resolve(DEFAULTS, {}, sets=["optim.lrr=0.1"])


def test_wrong_type_names_the_key():
    with pytest.raises(DeepzooError, match=r"optim\.lr must be a number, got 'fast'"):
        config.resolve(DEFAULTS, {}, sets=["optim.lr=fast"])
    with pytest.raises(DeepzooError, match=r"train\.epochs must be an integer"):
        config.resolve(DEFAULTS, {}, sets=["train.epochs=2.5"])
    with pytest.raises(DeepzooError, match=r"optim\.nesterov must be true or false"):
        config.resolve(DEFAULTS, {}, sets=["optim.nesterov=1"])


def test_malformed_set_and_bad_files(tmp_path):
    with pytest.raises(DeepzooError, match="expected key=value"):
        config.resolve(DEFAULTS, {}, sets=["optim.lr"])
    with pytest.raises(DeepzooError, match="does not exist"):
        config.resolve(DEFAULTS, {}, config_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = ")
    with pytest.raises(DeepzooError, match="not valid TOML"):
        config.resolve(DEFAULTS, {}, config_file=bad)
    with pytest.raises(DeepzooError, match="unknown preset 'fast'"):
        config.resolve(DEFAULTS, {"quick": {}}, preset="fast")


def test_sections_cannot_be_replaced_by_scalars():
    with pytest.raises(DeepzooError, match="unknown config key 'optim'"):
        config.resolve(DEFAULTS, {}, sets=["optim=3"])
