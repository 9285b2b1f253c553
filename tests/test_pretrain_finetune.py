"""Fine-tuning a character GPT from another run (model.pretrained), and the pretrain-finetune experiment."""

import json
import shutil

import pytest
import torch

import deepzoo
from conftest import deepzoo_main
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.train.run import train

SAMPLE = samples_dir() / "text" / "tinyshakespeare" / "sample-input.txt"
TINY = {"data": {"sample": True, "steps_per_epoch": 2},
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32}, "train": {"epochs": 1}}


def tiny(**model) -> dict:
    return {**TINY, "model": {**TINY["model"], **model}}


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A finished tiny char-GPT run on the packaged Shakespeare sample."""
    out = tmp_path_factory.mktemp("pre") / "run"
    train("gpt-shakespeare", out=out, overrides=tiny(), progress=False, log=quiet)
    return out


def test_every_weight_is_loaded_and_the_run_predicts_without_the_pretrained_folder(pretrained, tmp_path):
    source = tmp_path / "pre"
    shutil.copytree(pretrained, source)
    want = deepzoo.load(source)
    seen = {}

    def capture(task, cfg):
        seen["state"] = {k: v.clone() for k, v in task.model.state_dict().items()}
        seen["chars"] = task.context["vocab"].itos

    text = tmp_path / "part.txt"                          # a text whose characters are a subset
    text.write_text(SAMPLE.read_text()[:20_000])
    train("gpt-shakespeare", out=tmp_path / "ft", overrides=tiny(pretrained=str(source)),
          sets=[f"data.path={text}"], progress=False, log=quiet, on_built=capture)
    expected = want.module.state_dict()
    assert seen["state"].keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(seen["state"][name], tensor), name
    assert seen["chars"] == want.context["vocab"].itos   # the pretrained table, not the new text's
    assert len(set(text.read_text())) < len(seen["chars"])

    shutil.rmtree(source)                                  # the fine-tuned run stands alone
    model = deepzoo.load(tmp_path / "ft")
    assert model.context["vocab"].itos == seen["chars"]
    assert model.config["model"]["pretrained"] == str(source)
    out = model.predict("ROMEO:", length=20, seed=1)
    assert len(out["text"]) == 20


def test_a_text_with_characters_the_table_lacks_is_one_line(pretrained, tmp_path):
    text = tmp_path / "new.txt"
    extra = "é☃0123456789<>{}[]#%*+=@~^_|"
    text.write_text(SAMPLE.read_text()[:5000] + extra)
    with pytest.raises(DeepzooError) as e:
        train("gpt-shakespeare", out=tmp_path / "ft", overrides=tiny(pretrained=str(pretrained)),
              sets=[f"data.path={text}"], progress=False, log=quiet)
    message = str(e.value)
    assert "\n" not in message
    n = len(set(extra) - set(SAMPLE.read_text()))
    assert f"has {n} characters that the character table of the pretrained run" in message
    assert f"and {n - 20} more" in message and "'#%" in message
    assert not (tmp_path / "ft").exists()                 # before any training or folder


@pytest.mark.parametrize("key, value, theirs", [("n_layer", 2, "1"), ("n_embd", 32, "16"),
                                                ("block_size", 16, "32"), ("bias", True, "false")])
def test_a_shape_that_differs_from_the_pretrained_run_is_one_line(pretrained, tmp_path, key, value, theirs):
    with pytest.raises(DeepzooError) as e:
        train("gpt-shakespeare", out=tmp_path / "ft", overrides=tiny(pretrained=str(pretrained), **{key: value}),
              progress=False, log=quiet)
    message = str(e.value)
    assert "\n" not in message
    mine = str(value).lower()
    assert message.startswith(f"model.{key} is {mine} but the pretrained run {pretrained} has {theirs}")
    assert not (tmp_path / "ft").exists()


def test_a_pretrained_path_that_is_not_a_gpt_run_is_one_line(tmp_path):
    status, _, err = deepzoo_main("train", "gpt-shakespeare", "--preset", "quick", "--out", str(tmp_path / "ft"),
                                  "--set", f"model.pretrained={tmp_path / 'nothing'}")
    assert status == 2 and err.count("\n") == 1
    assert "model.pretrained=" in err and "not a deepzoo run folder" in err


def test_quick_experiment_writes_its_table_and_plot(quick_tour):
    from deepzoo.experiments.pretrain_finetune import QUICK, verdict
    out = quick_tour / "experiments" / "pretrain-finetune"      # the session's `deepzoo tour --quick`
    result = json.loads((out / "pretrain_finetune.json").read_text())
    steps = list(range(0, QUICK["finetune_steps"] + 1, QUICK["eval_every"]))
    for name in ("finetuned", "scratch"):
        assert [c["step"] for c in result["curves"][name]] == steps
        assert all(c["val_loss"] > 0 for c in result["curves"][name])
    # both start from the same validation text and table: the pre-trained start is the better guess
    assert result["curves"]["finetuned"][0]["val_loss"] < result["curves"]["scratch"][0]["val_loss"]
    assert result["settings"]["finetune_steps"] == QUICK["finetune_steps"] and result["quick"] is True
    assert (out / "pretrain_finetune.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "pretrain_finetune.md").read_text()
    assert "| step | pre-trained, then fine-tuned | from scratch |" in table
    assert all(table.count(f"\n| {step} |") == 1 for step in steps) and verdict(result) in table
    cfg = json.loads((out / "finetuned" / "config.json").read_text())["config"]
    assert cfg["model"]["pretrained"] == str(out / "pretrain")


def test_experiment_arguments_are_checked_before_anything_is_written(tmp_path):
    from deepzoo.experiments.pretrain_finetune import run
    with pytest.raises(DeepzooError, match="multiple of --eval-every"):
        run(tmp_path, quick=True, finetune_steps=25, eval_every=10)
    with pytest.raises(DeepzooError, match="--slice-chars"):
        run(tmp_path, quick=True, slice_chars=10_000_000)
    assert not any(tmp_path.iterdir())
