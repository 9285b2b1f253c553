"""A trained text, language-model or translation run is a portable model: its folder alone predicts.

Each case trains a shrunken quick preset for one epoch on the samples shipped in the package, records
its answers, copies the run folder elsewhere, deletes the original, empties the cache, and forbids every
way back to the data (the recipe's readers and ``run._build`` raise): the copy must answer the same.
Along the way: rebuilding from the same data gives byte-identical ``inference/`` files (so ``deepzoo
eval`` does not warn), a classifier's batched answers equal its one-by-one answers, and a damaged
inference file is a DeepzooError that names it.
"""

import hashlib
import json
import shutil

import pytest
import torch

from deepzoo import artefacts as arts
from deepzoo.errors import DeepzooError
from deepzoo.recipes import charlm, get, lm, text, translation
from deepzoo.train import run as runlib

SMALL_RNN = ["model.embed_dim=16", "model.hidden=16"]
LONG_ZH = "服务态度很差，房间也很小，再也不来了。" * 20           # longer than max_len (100 tokens)
CASES = {
    # name: (extra --set, inputs, predict options, the file to damage)
    "textcnn-sst2": (["model.embed_dim=16", "model.filters=8"],
                     ["a wonderful , moving film", "bad", "", "it 's not bad at all .", "zzqx unheard-of words",
                      "the plot is thin , but the actors are charming and the ending surprises everyone"],
                     None, "vocab.json"),
    "bilstm-chnsenticorp": (SMALL_RNN + ["data.batch_size=256"],
                            ["房间很大早餐不错", "差", "", LONG_ZH, "WiFi 很快 , 服务 好"], None, "inference.json"),
    "lstm-text": (SMALL_RNN + ["data.batch_size=256"], ["送餐很快", "太难吃了", "", "味道一般，送餐速度还可以，包装简陋"],
                  None, "vocab.json"),
    "lstm-ptb": (SMALL_RNN + ["data.batch_size=64", "data.bptt=35", "data.min_freq=3"],
                 ["the company said", "", "xyzzy plugh"], None, "vocab.json"),
    "gpt-shakespeare": (["model.n_embd=32", "data.steps_per_epoch=5"], ["ROMEO:", "KING:\n"],
                        {"length": 20, "top_k": 5}, "inference.json"),
    "transformer-multi30k": (["data.vocab_size=400", "model.d_model=32", "model.dim_feedforward=32",
                              "model.layers=1", "model.beam=1"],
                             ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Ein Hund.", "Eine Frau."],
                             {"beam": 2}, "tokenizer.json"),
}
CLASSIFIERS = ("textcnn-sst2", "bilstm-chnsenticorp", "lstm-text")
DATA_READERS = [(text, "read_splits"), (text, "_read_splits"), (lm, "read_corpus"), (charlm, "read_text"),
                (charlm, "source_path"), (translation, "read_pairs")]


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: a second thread buys nothing, and on a busy machine its spinning makes
    training ten times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _forbid_data(monkeypatch, tmp_path):
    def no_data(*_, **__):
        raise AssertionError("a restored run read its training data")
    for module, name in DATA_READERS:
        monkeypatch.setattr(module, name, no_data)
    monkeypatch.setattr(runlib, "_build", no_data)
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("DEEPZOO_CACHE", str(empty))
    monkeypatch.delenv("DEEPZOO_DATA", raising=False)


def _rewrite(run, name: str, data: bytes, manifest_too: bool) -> None:
    """Replace RUN/inference/NAME; with ``manifest_too`` its sha256 in the manifest follows (a file
    damaged before it was recorded), so the recipe's own checks must catch it."""
    folder = run / arts.FOLDER
    (folder / name).write_bytes(data)
    if manifest_too:
        manifest = json.loads((folder / arts.MANIFEST).read_text())
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
        (folder / arts.MANIFEST).write_text(json.dumps(manifest))


def _broken_but_valid_json(name: str, original: bytes) -> bytes:
    """The file made wrong in content (what the recipe checks) while still parsing."""
    if name == "tokenizer.json":
        return b'{"version": "1.0", "model": "nonsense"}'
    obj = json.loads(original)
    if "itos" in obj:                                   # a vocabulary: a word twice
        obj["itos"].append(obj["itos"][-1])
    elif "chars" in obj:                                # the character table, out of order
        obj["chars"] = obj["chars"][::-1]
    else:                                               # the classifier's facts: no labels
        del obj["labels"]
    return json.dumps(obj).encode()


@pytest.mark.parametrize("name", list(CASES))
def test_a_copied_run_predicts_the_same_without_its_data(name, tmp_path, monkeypatch):
    sets, inputs, options, damage = CASES[name]
    first, copy = tmp_path / "first", tmp_path / "elsewhere" / "run"
    runlib.train(name, preset="quick", epochs=1, sets=sets, out=first, progress=False, log=lambda *_: None)
    before = runlib.predict(first, inputs, options=options)
    assert len(before) == len(inputs) and [r["input"] for r in before] == inputs

    # the same data give the same inference/ files, byte for byte (deepzoo eval compares them)
    recipe = get(name)
    _, _, _, cfg = runlib.read_run(first)
    rebuilt = recipe.artefacts(runlib._build(recipe, cfg, None), cfg)
    stored = arts.Artefacts(first, name)
    assert {k: hashlib.sha256(arts._encode(v)).hexdigest() for k, v in rebuilt.items()} == stored.digests

    shutil.copytree(first, copy)
    shutil.rmtree(first)
    _forbid_data(monkeypatch, tmp_path)
    assert runlib.predict(copy, inputs, options=options) == before

    _, cfg, task = runlib.load_model(copy)
    one_by_one = [recipe.predict(task, cfg, [item], **(options or {}))[0] for item in inputs]
    assert one_by_one == before                         # a batch answers as each input alone
    if name in CLASSIFIERS:
        assert recipe.predict(task, cfg, []) == []

    original = (copy / arts.FOLDER / damage).read_bytes()
    _rewrite(copy, damage, original.replace(b"a", b"b", 1) + b" ", manifest_too=False)
    with pytest.raises(DeepzooError, match=rf"{damage} is damaged"):
        runlib.predict(copy, inputs[:1], options=options)
    _rewrite(copy, damage, _broken_but_valid_json(damage, original), manifest_too=True)
    with pytest.raises(DeepzooError, match=rf"inference/{damage}"):
        runlib.predict(copy, inputs[:1], options=options)
