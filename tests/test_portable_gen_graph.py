"""The generative and graph recipes' run folders are portable models (deepzoo/artefacts.py).

Each recipe is trained for one epoch on a cut of the packaged sample, asked to predict, then its run folder
is moved elsewhere (the original deleted), the cache pointed at an empty folder and DEEPZOO_DATA unset:
predicting again must give the same results (the same PNG bytes for the image-writing predicts, the same
sampled tensors), with no dataset file opened, and a missing or damaged inference file must be one
DeepzooError naming it.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

import deepzoo.recipes  # noqa: F401  (binds the submodule before deepzoo's lazy attributes can shadow it)
from deepzoo.artefacts import FOLDER, MANIFEST, Artefacts, _encode
from deepzoo.data import mnist
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.recipes import get
from deepzoo.train import checkpoint
from deepzoo.train.run import load_model, predict, read_run, train

quiet = dict(progress=False, log=lambda *_: None)

# recipe -> (settings on top of the quick preset and --epochs 1, the inputs predict is given, the inference
# file whose loss or damage must be named)
CASES = {
    "vae-mnist": (["model.hidden=32", "model.layers=1", "model.latent=2", "data.val_size=64", "data.batch_size=64"],
                  ["{out}/v.png"], "interpolation-digits.safetensors"),
    "gan-mnist": (["data.batch_size=64"], ["{out}/g.png", "{out}/g2.png"], "inference.json"),
    "dcgan-mnist": (["model.width=8", "data.batch_size=64"], ["{out}/d.png"], "inference.json"),
    "ddpm-mnist": (["model.width=8", "model.steps=10", "model.schedule=cosine", "eval.sample_steps=2",
                    "data.batch_size=64", "train.precision=fp32"], ["{out}/p.png"], "inference.json"),
    "gcn-cora": ([], ["0", "1708", "2707", "140"], "graph.safetensors"),
    "gcn-graph": ([], ["33", "0", "12"], "graph.safetensors"),    # (the t-SNE plot: tests/test_graph.py)
}
GENERATIVE = ("vae-mnist", "gan-mnist", "dcgan-mnist", "ddpm-mnist")


@pytest.fixture
def tiny_mnist(monkeypatch):
    """The packaged MNIST sample cut to 256 training and 64 test images: one epoch takes seconds."""
    real = mnist.load_mnist

    def load(data_dir=None, sample=False):
        data = real(data_dir, sample=sample)
        return {"train": tuple(a[:256] for a in data["train"]), "test": tuple(a[:64] for a in data["test"])}
    monkeypatch.setattr(mnist, "load_mnist", load)


# Every file opened while a `_no_data_read` block runs, under a forbidden folder, is recorded. (An audit hook
# cannot be removed: it is installed once and does nothing outside the block.)
_WATCH: list = []


def _audit(event, args):
    if event == "open" and _WATCH and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        for forbidden, opened in _WATCH:
            if any(path.startswith(f) for f in forbidden):
                opened.append(path)


class _no_data_read:
    installed = False

    def __init__(self, *folders):
        self.forbidden = tuple(os.path.realpath(f) + os.sep for f in folders)
        self.opened: list = []

    def __enter__(self):
        if not _no_data_read.installed:
            sys.addaudithook(_audit)
            _no_data_read.installed = True
        _WATCH.append((self.forbidden, self.opened))
        return self

    def __exit__(self, *exc):
        _WATCH.clear()
        assert not self.opened, f"predicting read data files: {sorted(set(self.opened))}"


def _answers(results: list[dict]) -> list[dict]:
    """The results with each written file replaced by its bytes' sha256."""
    return [{**r, "wrote": [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in r["wrote"]]}
            if "wrote" in r else r for r in results]


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.mark.parametrize("name", list(CASES))
def test_a_moved_run_predicts_the_same_with_no_data(name, tmp_path, tiny_mnist, monkeypatch):
    sets, items, named = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    items = [i.replace("{out}", str(out)) for i in items]
    run = tmp_path / "run"
    train(name, preset="quick", epochs=1, sets=sets, out=run, **quiet)
    recipe = get(name)
    options = {"seed": 3} if name in GENERATIVE else {}
    before = _answers(predict(run, items, options=options))
    if name in GENERATIVE:
        _, cfg, task = load_model(run)
        drawn = recipe.sample(task, cfg, 5, seed=7)
        assert drawn.shape == (5, 1, 28, 28) and 0 <= float(drawn.min()) and float(drawn.max()) <= 1
        assert torch.equal(drawn, recipe.sample(task, cfg, 5, seed=7))
    if name.startswith("gcn-"):
        _, cfg, task = load_model(run)
        hidden = task.model.eval().embed()          # what the .png plot shows
    if name == "ddpm-mnist":   # the moving-average weights are in the checkpoint; the schedule is not
        weights = checkpoint.load_weights(next((run / "checkpoints").glob("*/model.safetensors")))
        assert any(k.startswith("ema_net.") for k in weights) and "betas" not in weights

    # the artefacts are a function of the data: rebuilding gives the same bytes (deepzoo eval compares them)
    _, _, _, cfg = read_run(run)
    built = recipe.build(cfg, None)
    again = {k: hashlib.sha256(_encode(v)).hexdigest() for k, v in recipe.artefacts(built, cfg).items()}
    assert again == json.loads((run / FOLDER / MANIFEST).read_text())["files"]

    moved = tmp_path / "elsewhere" / "my-run"
    shutil.copytree(run, moved)
    shutil.rmtree(run)
    for f in out.iterdir():
        f.unlink()
    monkeypatch.setenv("DEEPZOO_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("DEEPZOO_DATA", raising=False)
    data = [samples_dir(), tmp_path / "empty-cache"]
    with _no_data_read(*data):
        after = _answers(predict(moved, items, options=options))
        _, cfg, task = load_model(moved)
        if name in GENERATIVE:
            assert torch.equal(recipe.sample(task, cfg, 5, seed=7), drawn)
        else:
            assert torch.equal(task.model.eval().embed(), hidden)
    assert after == before

    # the restored model has exactly the parameters and buffers of the one training built
    restored = task.model.state_dict()
    assert {k: v.shape for k, v in restored.items()} == {k: v.shape for k, v in built.model.state_dict().items()}
    if name == "ddpm-mnist":
        assert torch.equal(task.model.betas, built.model.betas) and torch.equal(task.model.abar, built.model.abar)

    stored = moved / FOLDER / named
    good = stored.read_bytes()
    stored.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(DeepzooError, match=f"{named}.*damaged"):
        predict(moved, items[:1], options=options)
    stored.unlink()
    with pytest.raises(DeepzooError, match=f"{named}.*missing"):
        predict(moved, items[:1], options=options)
    if name == "gcn-cora":
        # Cora's graph as the model sees it: 2,708 x 1,433 features, 1.3 % non-zero, kept sparse (not 15.5 MB)
        assert len(good) < 600_000
        info = Artefacts(moved, name).json()["graph"]
        assert info["layout"] == "csr" and info["nodes"] == 2708 and info["stored"] and info["node_ids"] is None


def test_generative_predict_checks_every_path_first_and_sample_is_registered(tmp_path, tiny_mnist):
    run = tmp_path / "run"
    train("vae-mnist", preset="quick", epochs=1, sets=CASES["vae-mnist"][0], out=run, **quiet)
    with pytest.raises(DeepzooError, match="PNG"):
        predict(run, [str(tmp_path / "a.png"), str(tmp_path / "b.txt")])
    assert not (tmp_path / "a.png").exists()           # nothing written when one input is wrong
    (a,) = predict(run, [str(tmp_path / "a.png")])
    assert [Path(p).name for p in a["wrote"]] == ["a.png", "a-interpolation.png", "a-latent-map.png"]
    assert all(get(n).sample is not None for n in GENERATIVE)


def test_a_graph_too_large_to_keep_is_read_from_its_recorded_files(tmp_path, monkeypatch):
    from deepzoo.recipes import graph as recipe
    data = tmp_path / "data"
    shutil.copytree(samples_dir() / "graph" / "karate", data)
    monkeypatch.setattr(recipe, "STORE_GRAPH_BELOW", 0)
    run = tmp_path / "run"
    train("gcn-graph", preset="quick", epochs=1, out=run, **quiet,
          sets=[f"data.edges={data / 'edges.csv'}", f"data.labels={data / 'labels.csv'}"])
    assert not (run / FOLDER / recipe.GRAPH_FILE).exists()
    info = Artefacts(run, "gcn-graph").json()["graph"]
    assert not info["stored"] and info["sources"]["labels"] == str((data / "labels.csv").resolve())
    before = predict(run, ["33", "5"])
    moved = tmp_path / "moved"
    shutil.move(run, moved)
    assert predict(moved, ["33", "5"]) == before
    labels = (data / "labels.csv").read_bytes()
    (data / "labels.csv").unlink()
    with pytest.raises(DeepzooError, match=r"labels\.csv is missing.*too large"):
        predict(moved, ["33"])
    (data / "labels.csv").write_bytes(labels)
    with open(data / "edges.csv", "a") as f:
        f.write("0,9\n")                              # the files now give another graph
    with pytest.raises(DeepzooError, match="differs from the one this run was trained on"):
        predict(moved, ["33"])
