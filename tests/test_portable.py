"""A run folder is a portable model: for every recipe, the quick tour's run is copied elsewhere and
predicts there, through `deepzoo predict` and through `deepzoo.load(...).predict(...)`, exactly as it did
in place, while a Python audit hook proves that no dataset file (the packaged samples, the data folders,
the cache) is opened."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import deepzoo
from deepzoo.data.registry import samples_dir
from deepzoo.recipes import all_recipes

SAMPLES = samples_dir()

# What each recipe is asked. {tmp} is the folder of the inputs written below (an image, a CSV of rows);
# image-writing predicts write into {out}.
INPUTS = {
    "mlp-mnist": ["{tmp}/digit.png"], "cnn-mnist": ["{tmp}/digit.png"], "autograd-mlp-mnist": ["{tmp}/digit.png"],
    "vit-mnist": ["{tmp}/digit.png"], "vit-cifar10": ["{tmp}/photo.png"],
    **{name: ["a gripping, funny film", "dull and far too long"]
       for name in ("bert-sst2", "bert-imdb", "bilstm-imdb", "textcnn-imdb")},
    "bert-chnsenticorp": ["房间很干净，服务也很好", "太难吃了，再也不点了"],
    "bert-pretrain": ["the film was [MASK] ."], "bert-pretrain-zh": ["房间很[MASK]净。"],
    **{name: ["{tmp}/photo.png"] for name in ("resnet20-cifar10", "resnet56-cifar10", "plain20-cifar10",
                                             "plain56-cifar10", "vgg-cifar10", "cnn7-cifar10")},
    "logreg-binary": ["{tmp}/cancer.csv"], "mlp-regression": ["{tmp}/diabetes.csv"],
    **{name: ["a gripping, funny film", "dull and far too long"]
       for name in ("rnn-sst2", "gru-sst2", "lstm-sst2", "bilstm-sst2", "textcnn-sst2")},
    **{name: ["房间很干净，服务也很好", "太难吃了，再也不点了"]
       for name in ("bilstm-chnsenticorp", "textcnn-chnsenticorp", "bilstm-waimai", "lstm-text")},
    "lstm-ptb": ["the company said"], "gpt-shakespeare": ["ROMEO:"],
    "transformer-multi30k": ["Ein Hund läuft über die Wiese."],
    "word2vec-ptb": ["the"], "word2vec-chinese": ["的"], "word2vec-text": ["the"],
    **{name: ["{out}/samples.png"] for name in ("vae-mnist", "gan-mnist", "dcgan-mnist", "ddpm-mnist")},
    "gcn-cora": ["0", "1708", "{out}/emb.png"], "gcn-graph": ["0", "33"],
    "qlearning-frozenlake": ["policy", "20"], "qlearning-taxi": ["policy", "20"], "dqn-cartpole": ["5"],
}
OPTIONS = {"gpt-shakespeare": {"length": 40, "temperature": 0.0}}

# Run in a fresh process: predict every run twice (the CLI's path and the Python API), with every file
# opened recorded; print one JSON object. Written files are reported by their bytes' sha256.
PROBE = r'''
import hashlib, io, json, os, sys
from contextlib import redirect_stdout
from pathlib import Path
runs, inputs, options, forbidden = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
opened = []
def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if any(path.startswith(f) for f in forbidden):
            opened.append(path)
sys.addaudithook(audit)
import deepzoo
from deepzoo.cli import main

def digest(result):
    if "wrote" in result:
        result = {**result, "wrote": [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in result["wrote"]],
                  "input": Path(result["input"]).name}
    return result

out = {}
for name, items in inputs.items():
    out_dir = runs / "outputs" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [i.replace("{out}", str(out_dir)) for i in items]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.get(name, {}).items()]
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["predict", str(runs / name), *items, *flags, "--json"])
    lines = [l for l in buf.getvalue().splitlines() if l.startswith("{")]
    cli = [digest(json.loads(l)) for l in lines]
    api = [digest(r) for r in deepzoo.load(runs / name).predict(items, **options.get(name, {}))]
    out[name] = {"rc": rc, "cli": cli, "api": api}
print(json.dumps({"results": out, "opened": sorted(set(opened))}))
'''


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A digit, a photo and two CSVs of feature rows, all from the packaged samples."""
    import numpy as np
    from PIL import Image

    from deepzoo.data.cifar import load_cifar10
    from deepzoo.data.mnist import load_mnist
    tmp = tmp_path_factory.mktemp("inputs")
    Image.fromarray(load_mnist(None, sample=True)["test"][0][0]).save(tmp / "digit.png")
    Image.fromarray(load_cifar10(None, sample=True)["test"][0][0].astype(np.uint8)).save(tmp / "photo.png")
    for name, target in (("breast_cancer", "cancer"), ("diabetes", "diabetes")):
        rows = (SAMPLES / "tabular" / f"{name}.csv").read_text().splitlines()[:6]
        (tmp / f"{target}.csv").write_text("\n".join(rows) + "\n")
    return tmp


def _probe(runs: Path, tmp: Path, forbidden: list[str]) -> dict:
    names = sorted(p.name for p in runs.iterdir() if (p / "config.json").exists())
    inputs = {n: [i.replace("{tmp}", str(tmp)) for i in INPUTS[n]] for n in names}
    env = {k: v for k, v in os.environ.items() if k != "DEEPZOO_DATA"}
    env.update(PYTHONWARNINGS="ignore", DEEPZOO_CACHE=str(tmp / "empty-cache"))
    proc = subprocess.run([sys.executable, "-c", PROBE, str(runs), json.dumps(inputs), json.dumps(OPTIONS),
                           *forbidden], capture_output=True, text=True, cwd=tmp, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_every_recipe_has_a_portability_input():
    assert sorted(INPUTS) == sorted(r.name for r in all_recipes())


def test_a_copied_run_folder_predicts_alone_for_every_recipe(quick_tour, inputs, tmp_path):
    before = _probe(quick_tour, inputs, [])["results"]
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in before:
        shutil.copytree(quick_tour / name, moved / name)
    forbidden = [os.path.realpath(p) for p in (SAMPLES, quick_tour, os.environ.get("DEEPZOO_TEST_DATA") or SAMPLES)]
    after = _probe(moved, inputs, forbidden)
    assert after["opened"] == [], "predict read data files: " + ", ".join(after["opened"][:5])
    assert sorted(before) == sorted(r.name for r in all_recipes())
    for name, b in before.items():
        a = after["results"][name]
        assert b["rc"] == a["rc"] == 0, name
        assert len(b["cli"]) == len(INPUTS[name]), (name, b["cli"])
        assert b["cli"] == b["api"], f"{name}: deepzoo predict and deepzoo.load().predict() disagree"
        assert a["cli"] == b["cli"] and a["api"] == b["api"], f"{name}: the copied run answers differently"


def test_predict_errors_name_the_damaged_file(quick_tour, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(quick_tour / "bilstm-sst2", run)
    vocab = next(p for p in (run / "inference").iterdir() if p.name != "manifest.json")
    vocab.write_bytes(vocab.read_bytes()[:-5] + b"xxxxx")
    with pytest.raises(deepzoo.DeepzooError, match=f"{vocab.name} is damaged"):
        deepzoo.load(run)
    vocab.unlink()
    with pytest.raises(deepzoo.DeepzooError, match=f"{vocab.name} is missing"):
        deepzoo.load(run)
    shutil.rmtree(run / "inference")                    # a run folder from before deepzoo kept inference/
    with pytest.raises(deepzoo.DeepzooError, match="made by an older deepzoo.*--data-dir"):
        deepzoo.load(run)
    from deepzoo.train.run import predict                # --data-dir once: inference/ rebuilt from the data
    assert predict(run, ["a fine film"], data_dir=str(tmp_path)) == deepzoo.load(quick_tour / "bilstm-sst2").predict(
        ["a fine film"])
    assert deepzoo.load(run).predict("a fine film")["class"] in ("0", "1")
    shutil.rmtree(run / "inference")
    config = json.loads((run / "config.json").read_text())
    config["config"]["model"]["hidden"] = 7            # weights of another shape than the config says
    (run / "config.json").write_text(json.dumps(config))
    shutil.copytree(quick_tour / "bilstm-sst2" / "inference", run / "inference")
    with pytest.raises(deepzoo.DeepzooError, match="model.safetensors does not fit the bilstm-sst2 model"):
        deepzoo.load(run)
