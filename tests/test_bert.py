"""The pre-trained encoder (deepzoo/models/bert.py), its WordPiece tokenizer and fine-tuning.

The encoder is compared with PyTorch's nn.TransformerEncoder (pre-norm, GELU, batch first) given the same
weights: outputs and every gradient, in float64 (as tests/test_attention.py, whose TOL argument holds here:
4 layers of sums of at most 2 x 7 x 16 terms). BERT's corruption is checked by counting over a large batch,
and fine-tuning by comparing state dicts: every encoder weight comes from the pre-trained run, the head is new.
"""

import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import deepzoo
from deepzoo.data.text import Vocab, encode_texts
from deepzoo.data.wordpiece import SPECIALS, WordPiece
from deepzoo.errors import DeepzooError
from deepzoo.models.bert import Encoder, EncoderClassifier, MaskedLM, mask_tokens

from conftest import deepzoo_main

TOL = dict(atol=1e-10, rtol=1e-10)


def _torch_twin(enc: Encoder) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(enc.embed.embedding_dim, enc.layers[0].self_attn.num_heads,
                                       4 * enc.embed.embedding_dim, 0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    twin = nn.TransformerEncoder(layer, len(enc.layers), enable_nested_tensor=False).double()
    twin.layers.load_state_dict(enc.layers.state_dict())
    return twin


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_encoder_matches_torch_transformer_encoder(impl):
    torch.manual_seed(0)
    enc = Encoder(50, max_len=16, d_model=16, n_layer=4, n_head=4, dropout=0.0, impl=impl).double()
    twin = _torch_twin(enc)
    ids = torch.randint(5, 50, (3, 7))
    lengths = torch.tensor([7, 4, 1])
    pad = torch.arange(7)[None, :] >= lengths[:, None]
    mine = enc(ids, pad)
    x = enc.positions(enc.embed(ids))                      # the same input into torch's stack, then the norm
    ref = F.layer_norm(twin(x, src_key_padding_mask=pad), (16,), enc.norm.weight, enc.norm.bias)
    keep = ~pad
    assert_close(mine[keep], ref[keep], **TOL)
    up = torch.randn(mine.shape, dtype=torch.float64) * keep[..., None]
    (mine * up).sum().backward()
    (ref * up).sum().backward()
    for (name, p), q in zip(enc.layers.named_parameters(), twin.layers.parameters()):
        assert_close(p.grad, q.grad, **TOL, msg=name)


def test_mask_tokens_follows_bert():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 128), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3                           # [CLS] ... [SEP]
    lengths = torch.full((400,), 128)
    lengths[:100] = 60                                     # the rest of these rows is padding
    ids[:100, 60:] = 0
    inputs, labels = mask_tokens(ids, lengths, 1000, 4, 5, g)
    chosen = labels >= 0
    real = (ids >= 5) & (torch.arange(128)[None, :] < lengths[:, None])
    assert not (chosen & ~real).any()                      # never a special token or padding
    assert abs(chosen.sum() / real.sum() - 0.15) < 0.005
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(inputs[~chosen], ids[~chosen])
    n = chosen.sum()
    masked = (inputs[chosen] == 4).sum() / n
    kept = (inputs[chosen] == ids[chosen]).sum() / n
    assert abs(masked - 0.8) < 0.01 and abs(kept - 0.1 - 0.001) < 0.01   # (a random swap may draw the same id)
    again, _ = mask_tokens(ids, lengths, 1000, 4, 5, g)
    assert not torch.equal(again, inputs)                  # fresh masks each call
    tiny = torch.tensor([[2, 7, 3]])                       # always at least one question
    for seed in range(20):
        _, lab = mask_tokens(tiny, torch.tensor([3]), 1000, 4, 5, torch.Generator().manual_seed(seed))
        assert (lab >= 0).sum() >= 1 and lab[0, 1] == 7


def test_masked_lm_head_reads_only_the_chosen_positions():
    torch.manual_seed(0)
    model = MaskedLM(Encoder(40, 8, 16, 2, 2, 0.0)).double().eval()
    ids = torch.randint(5, 40, (2, 8))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 6] = 1, 1
    every = torch.full_like(ids, 0)
    assert_close(model(ids, None, labels), model(ids, None, every).view(2, 8, -1)[labels >= 0], **TOL)
    assert model.encoder.embed.weight.data_ptr() == model.encoder.embed.weight.data_ptr()


@pytest.mark.parametrize("pool", ["cls", "mean", "max"])
def test_classifier_ignores_padding(pool):
    torch.manual_seed(0)
    model = EncoderClassifier(Encoder(30, 12, 16, 2, 2, 0.0).double(), 3, pool).double().eval()
    short = torch.tensor([[2, 9, 11, 3]])
    padded = torch.tensor([[2, 9, 11, 3, 0, 0, 0], [2, 5, 6, 7, 8, 9, 3]])
    alone = model(short, torch.tensor([4]))
    both = model(padded, torch.tensor([4, 7]))
    assert_close(both[:1], alone, **TOL)


def test_freeze_keeps_embeddings_and_lower_layers():
    model = EncoderClassifier(Encoder(30, 12, 16, 3, 2, 0.0), 2)
    model.freeze(2)
    assert not model.encoder.embed.weight.requires_grad and not model.encoder.positions.table.weight.requires_grad
    assert all(not p.requires_grad for layer in model.encoder.layers[:2] for p in layer.parameters())
    assert all(p.requires_grad for p in model.encoder.layers[2].parameters()) and model.head.weight.requires_grad
    with pytest.raises(DeepzooError, match="freeze_layers = 4"):
        model.freeze(4)


def test_wordpiece_frames_and_cuts():
    texts = ["the film was good", "the film was bad", "a good film", "房间很干净"] * 20
    tok = WordPiece.train(texts, 200, min_frequency=1)
    assert [tok.tok.id_to_token(i) for i in range(5)] == list(SPECIALS)
    ids = tok.encode(["the film was good"], 16)[0]
    assert ids[0] == tok.cls_index and ids[-1] == tok.sep_index
    assert tok.decode(tok.encode(["房间很干净"], 16)[0])[1:-1] == list("房间很干净")   # characters first
    long = " ".join(f"w{i}" for i in range(40))
    WordPiece.train([long] * 3, 200, min_frequency=1)
    pieces = tok.pieces([long])[0]
    head = tok.encode([long], 10, "head")[0]
    both = tok.encode([long], 10, "head+tail")[0]
    assert head[1:-1] == pieces[:8] and both[1:-1] == pieces[:2] + pieces[-6:]
    assert tok.unknown_rate(["the film"]) == 0.0


def test_encode_texts_head_and_tail():
    vocab = Vocab.build([[str(i) for i in range(20)]])
    text = " ".join(str(i) for i in range(20))
    assert vocab.decode(encode_texts([text], "en", vocab, 8)[0]) == [str(i) for i in range(8)]
    assert vocab.decode(encode_texts([text], "en", vocab, 8, "head+tail")[0]) == ["0", "1"] + [str(i) for i in range(14, 20)]


# --- pre-training and fine-tuning, end to end on the quick presets --------------------------------------

@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert") / "pre"
    code, _, err = deepzoo_main("train", "bert-pretrain", "--preset", "quick", "--epochs", "1", "--out", str(out),
                                "--quiet")
    assert code == 0, err
    return out


def test_fine_tuning_loads_every_encoder_weight_and_a_new_head(pretrained, tmp_path):
    pre = deepzoo.load(pretrained).module
    model = deepzoo.train("bert-sst2", preset="quick", epochs=1, out=tmp_path / "ft",
                          model={"pretrained": str(pretrained)}, optim={"lr": 1e-12}, progress=False)
    # a learning rate of 1e-12 leaves the weights as they started, to float32 rounding
    tuned = model.module
    mine, theirs = tuned.encoder.state_dict(), pre.encoder.state_dict()
    assert mine.keys() == theirs.keys() and len(mine) > 10
    for k in mine:
        assert_close(mine[k], theirs[k], atol=1e-7, rtol=0, msg=k)
    assert tuned.head.weight.shape[0] == 2 and not hasattr(pre, "head")
    random = deepzoo.train("bert-sst2", preset="quick", epochs=1, out=tmp_path / "rand", progress=False,
                           model={"pretrained": str(pretrained), "init": "random"}, optim={"lr": 1e-12})
    assert not torch.allclose(random.module.encoder.embed.weight, pre.encoder.embed.weight)
    assert random.module.encoder.embed.weight.shape == pre.encoder.embed.weight.shape
    # the fine-tuned run is a portable model: it predicts with the pre-trained run gone
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "ft", copy)
    moved = tmp_path / "pre-moved"
    shutil.move(str(pretrained), moved)
    try:
        answer = deepzoo.load(copy).predict("a gripping , funny film")
    finally:
        shutil.move(str(moved), pretrained)
    assert answer["tokens"][0] == "[CLS]" and set(answer["probabilities"]) == {"0", "1"}


@pytest.mark.parametrize("sets, says", [
    (["model.layers=3"], "its encoder has model.layers = 2, this config has model.layers = 3; set --set model.layers=2"),
    (["model.embed_dim=128"], "model.d_model = 64, this config has model.embed_dim = 128"),
    (["data.max_len=65"], "its encoder has 64 positions, data.max_len is 65"),
])
def test_a_mismatched_pretrained_run_is_one_line_before_training(pretrained, tmp_path, sets, says):
    args = [a for s in sets for a in ("--set", s)]
    code, out, err = deepzoo_main("train", "bert-sst2", "--preset", "quick", "--set", f"model.pretrained={pretrained}",
                                  *args, "--out", str(tmp_path / "x"))
    assert code == 2 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_pretrained_run_of_another_language_or_recipe_is_refused(pretrained, tmp_path):
    code, _, err = deepzoo_main("train", "bert-chnsenticorp", "--preset", "quick", "--set",
                                f"model.pretrained={pretrained}", "--out", str(tmp_path / "x"))
    assert code == 2 and "pre-trained on en text, but data.tokenizer = zh" in err
    code, _, err = deepzoo_main("train", "bert-sst2", "--preset", "quick", "--out", str(tmp_path / "x"))
    assert code == 2 and "model.pretrained: give the run folder of a bert-pretrain run" in err
    assert not (tmp_path / "x").exists()


def test_fill_mask_from_the_run_folder(pretrained):
    out = deepzoo.load(pretrained).predict("the film was [MASK] .")
    assert len(out["masks"]) == 1 and len(out["masks"][0]) == 5
    with pytest.raises(DeepzooError, match=r"put \[MASK\]"):
        deepzoo.load(pretrained).predict("no mask here")


def test_deepzoo_train_stays_the_api_function_after_the_engine_is_imported():
    import deepzoo.train.engine  # noqa: F401  (binds deepzoo.train to the package)
    with pytest.raises(DeepzooError, match="unknown recipe"):
        deepzoo.train("no-such-recipe")


def test_pretraining_reads_your_text_folder_and_refuses_bad_files(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "more").mkdir(parents=True)
    lines = [f"review {i}: the film was {'good' if i % 2 else 'bad'} and the cast was fine ." for i in range(400)]
    (folder / "a.txt").write_text("\n".join(lines[:200]) + "\n\n", encoding="utf-8")
    (folder / "more" / "b.txt").write_text("\n".join(lines[200:]), encoding="utf-8")
    code, _, err = deepzoo_main("train", "bert-pretrain", "--preset", "quick", "--epochs", "1", "--set",
                                "data.corpus=path", "--set", f"data.path={folder}", "--set", "data.vocab_size=200",
                                "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    assert deepzoo.load(tmp_path / "run").predict("the film was [MASK] .")["masks"]
    (folder / "more" / "c.txt").write_bytes(b"caf\xe9\n")
    code, _, err = deepzoo_main("train", "bert-pretrain", "--preset", "quick", "--set", "data.corpus=path",
                                "--set", f"data.path={folder}", "--out", str(tmp_path / "bad"))
    assert code == 2 and "c.txt: not UTF-8 text (byte 3)" in err and not (tmp_path / "bad").exists()
    code, _, err = deepzoo_main("train", "bert-pretrain", "--preset", "quick", "--set", "data.corpus=path",
                                "--out", str(tmp_path / "bad"))
    assert code == 2 and "data.path: give your text file or folder" in err


def test_the_tokenizer_ids_are_sorted_pieces():
    texts = [f"the film number {i} was {w}" for i in range(300) for w in ("good", "bad", "long", "dull")]
    vocab = WordPiece.train(texts, 150).tok.get_vocab()
    pieces = sorted(vocab, key=vocab.get)
    assert pieces[:5] == list(SPECIALS) and pieces[5:] == sorted(pieces[5:])


def test_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """One epoch, then resumed to two: the weights of the unbroken two-epoch run, bit for bit (a constant
    rate, so the schedule does not depend on the length). The resumed run reads its stored tokenizer: HF
    tokenizers breaks ties between equally frequent pieces in hash-map order, so training it again could
    change the ids its weights were trained with."""
    import json
    from deepzoo.train.run import resume, train
    sets = ["data.steps_per_epoch=4", "optim.schedule=constant", "optim.warmup_epochs=0"]
    quiet = dict(progress=False, log=lambda *a: None)
    train("bert-pretrain", preset="quick", sets=sets + ["train.epochs=2"], out=tmp_path / "whole", **quiet)
    train("bert-pretrain", preset="quick", sets=sets + ["train.epochs=1"], out=tmp_path / "cut", **quiet)
    meta = json.loads((tmp_path / "cut" / "config.json").read_text())
    meta["config"]["train"]["epochs"] = 2
    (tmp_path / "cut" / "config.json").write_text(json.dumps(meta))

    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")
    monkeypatch.setattr(WordPiece, "train", no_training)
    resume(tmp_path / "cut", **quiet)
    a, b = deepzoo.load(tmp_path / "whole").module.state_dict(), deepzoo.load(tmp_path / "cut").module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
