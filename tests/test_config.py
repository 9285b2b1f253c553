"""Config resolution: presets, TOML files, --set parsing, and the errors for bad keys and values."""

import re

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


# --- the schema: every key declared once, every value checked before anything is written ------------------

import json  # noqa: E402

from conftest import deepzoo_main  # noqa: E402

from deepzoo import recipes, schema  # noqa: E402


def test_every_key_of_every_recipe_is_declared_and_its_defaults_pass():
    seen = set()
    for recipe in recipes.all_recipes():
        rules = schema.for_recipe(recipe)
        flat = config.flatten(recipe.full_defaults())
        seen |= set(flat)
        assert set(flat) == set(rules.keys), f"{recipe.name}: keys without a schema entry"
        for key, value in flat.items():
            assert rules.keys[key].help, key
            assert rules.keys[key].ok(value), f"{recipe.name}: the default {key} = {value!r} fails its own schema"
        rules.check(recipe.full_defaults())                       # the rules between keys too
        for preset in recipe.presets:                             # and every preset
            config.resolve(recipe.full_defaults(), recipe.presets, preset, schema=rules)
    declared = set(schema.SHARED) | {k for _, table in schema.FAMILIES for k in table}
    assert declared == seen, f"declared but in no recipe: {sorted(declared - seen)}"


@pytest.mark.parametrize("sets, line", [
    # the cases of the issue: each crashed deep inside training, or left a dead run folder behind
    (["model.activation=gelu"], "--set: model.activation must be one of relu, tanh, sigmoid, none, got 'gelu'"),
    (["data.batch_size=0"], "--set: data.batch_size must be an integer from 1 to 1000000, got 0"),
    (["optim.lr=-1"], "--set: optim.lr must be in (0, 100], got -1.0"),
    (["optim.name=rmsprop"], "--set: optim.name must be one of sgd, adam, adamw, got 'rmsprop'"),
    (["optim.schedule=onecycle"], "--set: optim.schedule must be one of constant, step, exponential, linear, "
                                  "cosine, inverse_sqrt, got 'onecycle'"),
    (["train.precision=int8"], "--set: train.precision must be one of fp32, bf16, fp16, fp64, auto, got 'int8'"),
    # TOML reads nan and inf; absurd sizes
    (["optim.lr=nan"], "--set: optim.lr must be in (0, 100], got nan"),
    (["train.clip_grad_norm=inf"], "--set: train.clip_grad_norm must be in [0, 1000000], got inf"),
    (["data.batch_size=99999999999"], "--set: data.batch_size must be an integer from 1 to 1000000, got 99999999999"),
    (["model.hidden=[1024, 0]"], "--set: model.hidden must be a list of one or more integers from 1 to 65536 such "
                                 "as [256, 256], got [1024, 0]"),
    (["model.dropout=1"], "--set: model.dropout must be in [0, 1), got 1.0"),
    (["train.device=gpu"], "--set: train.device must be one of auto, cpu, cuda, cuda:N, mps, got 'gpu'"),
    (["seed=-1"], "--set: seed must be an integer from 0 to 2147483647, got -1"),
])
def test_a_bad_value_is_one_line_and_no_run_folder(sets, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--print-config"]):
        args = [a for s in sets for a in ("--set", s)]
        status, out, err = deepzoo_main("train", "mlp-mnist", *args, *extra)
        assert (status, err) == (2, f"deepzoo: error: {line}\n") and not out
    assert not list(tmp_path.iterdir())       # not runs/, not a run folder


def test_where_a_bad_value_came_from_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toml = tmp_path / "c.toml"
    toml.write_text("[optim]\nlr = nan\n")
    assert deepzoo_main("train", "mlp-mnist", "--config", str(toml))[2] == \
        f"deepzoo: error: config file {toml}: optim.lr must be in (0, 100], got nan\n"
    assert deepzoo_main("train", "mlp-mnist", "--epochs", "0")[2] == \
        "deepzoo: error: --epochs: train.epochs must be an integer from 1 to 100000, got 0\n"
    # no file is named with a NUL character (TOML can write one)
    assert deepzoo_main("train", "logreg-binary", "--set", 'data.path="a\\u0000b"')[2] == \
        "deepzoo: error: --set: data.path must be a path, got 'a\\x00b'\n"
    # a rule between keys names them both
    assert deepzoo_main("train", "gpt-shakespeare", "--set", "model.n_head=3")[2] == \
        ("deepzoo: error: --set: model.n_embd must be a multiple of model.n_head, got model.n_embd = 128, "
         "model.n_head = 3\n")
    # a key an older deepzoo named otherwise
    assert deepzoo_main("train", "qlearning-taxi", "--set", "agent.epsilon=0.5")[2] == \
        "deepzoo: error: --set: config key 'agent.epsilon' is now called agent.eps_start\n"
    # the Python API's overrides
    from deepzoo.train.run import train
    with pytest.raises(DeepzooError, match=r"^override: optim\.lr must be in \(0, 100\], got -1\.0$"):
        train("mlp-mnist", overrides={"optim": {"lr": -1}}, progress=False)
    toml.unlink()
    assert not list(tmp_path.iterdir())


def test_a_precision_this_machine_lacks_fails_before_the_folder(tmp_path, monkeypatch):
    import torch
    if torch.cuda.is_available():
        pytest.skip("fp16 runs on this machine's GPU")
    monkeypatch.chdir(tmp_path)
    status, _, err = deepzoo_main("train", "logreg-binary", "--set", "train.precision=fp16", "--quiet")
    assert (status, err) == (2, "deepzoo: error: train.precision: fp16 needs a CUDA GPU; on a CPU use bf16\n")
    status, _, err = deepzoo_main("train", "logreg-binary", "--set", "train.device=cuda:1", "--quiet")
    assert (status, err) == (2, "deepzoo: error: train.device: CUDA was asked for but this PyTorch sees no CUDA GPU\n")
    assert not list(tmp_path.iterdir())


def test_print_config_and_help_show_each_key_with_its_meaning():
    status, out, _ = deepzoo_main("train", "cnn-mnist", "--print-config", "--set", "optim.lr=0.01")
    lines = {line.split(" = ")[0]: line for line in out.splitlines()}
    assert status == 0 and set(lines) == set(config.flatten(recipes.get("cnn-mnist").full_defaults()))
    assert lines["optim.lr"].startswith("optim.lr = 0.01 ") and \
        lines["optim.lr"].endswith("# peak learning rate; a number in (0, 100]")
    assert lines["model.c1"].endswith("# channels of the first convolution; an integer from 1 to 4096")
    # its output reads back as a config file (TOML with comments)
    import tomllib
    assert config.flatten(tomllib.loads(out))["optim.lr"] == 0.01
    status, out, _ = deepzoo_main("train", "qlearning-taxi", "--help")
    assert status == 0 and "usage: deepzoo train" in out and "config keys of qlearning-taxi" in out
    assert re.search(r"\n  agent\.eps_fraction = 0\.8 +# fraction of training over which ε decays linearly; "
                     r"a number in \[0, 1\]\n", out)
    assert re.search(r"\n  train\.checkpoint_seconds = 60\.0 +# write a checkpoint", out)
    status, out, err = deepzoo_main("train", "no-such-recipe", "--help")
    assert status == 2 and not out and err.startswith("deepzoo: error: unknown recipe 'no-such-recipe'")
    assert deepzoo_main("train", "--help")[0] == 0


def test_a_run_folders_config_is_checked_and_upgraded_when_read(tmp_path):
    from deepzoo.train.run import read_run
    run = tmp_path / "run"
    run.mkdir()
    old = {"gamma": 0.9, "lr": 0.2, "lr_end": 0.05, "epsilon": 0.7, "epsilon_end": 0.02, "decay_fraction": 0.5}
    (run / "config.json").write_text(json.dumps({"recipe": "qlearning-taxi", "config": {"agent": old}}))
    agent = read_run(run)[3]["agent"]
    assert agent == {"gamma": 0.9, "lr": 0.2, "lr_end": 0.05, "lr_fraction": 0.5,
                     "eps_start": 0.7, "eps_end": 0.02, "eps_fraction": 0.5}
    (run / "config.json").write_text(json.dumps({"recipe": "mlp-mnist", "config": {"optim": {"lr": -1.0}}}))
    with pytest.raises(DeepzooError, match=rf"^{run / 'config.json'}: optim\.lr must be in \(0, 100\], got -1\.0$"):
        read_run(run)
    (run / "config.json").write_text(json.dumps(["not", "a", "run"]))
    with pytest.raises(DeepzooError, match="needs \"recipe\" and \"config\""):
        read_run(run)
