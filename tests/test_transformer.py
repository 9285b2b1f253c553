"""The Transformer models and their recipes: GPT (causality, generation), the character data,
the parallel-text readers and subword tokeniser, beam search against exhaustive search, and both
recipes end to end on the shipped samples (train, predict, the user's own files)."""

import gzip
import itertools
import json

import pytest
import torch

from conftest import run_deepzoo
from deepzoo.data.parallel import SubwordTokenizer, read_aligned, read_tsv
from deepzoo.errors import DeepzooError
from deepzoo.models.gpt import GPT
from deepzoo.models.transformer import Transformer
from deepzoo.recipes.charlm import CharVocab, ConsecutiveWindows, RandomWindows, read_text
from deepzoo.train.run import predict, train

QUIET = dict(progress=False, log=lambda m: None)


# ---------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_gpt_position_i_does_not_see_later_tokens(impl):
    torch.manual_seed(0)
    model = GPT(11, block_size=16, n_layer=2, n_head=2, n_embd=16, impl=impl).double().eval()
    x = torch.randint(0, 11, (2, 10))
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % 11
    # The same computation on the same first 6 tokens (masked keys add exact zeros): equal in practice;
    # the float64 tolerance only allows a kernel that blocks a product differently between calls, while
    # a causality leak moves these logits by > 1e-3.
    torch.testing.assert_close(model(x)[:, :6], model(y)[:, :6], atol=1e-12, rtol=1e-10)
    assert not torch.allclose(model(x)[:, 6:], model(y)[:, 6:])


def test_gpt_torch_and_scratch_paths_agree_and_weights_are_tied():
    torch.manual_seed(0)
    a = GPT(13, block_size=8, n_layer=2, n_head=2, n_embd=16, impl="torch").double().eval()
    b = GPT(13, block_size=8, n_layer=2, n_head=2, n_embd=16, impl="scratch").double().eval()
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 13, (3, 8))
    # float64: torch's SDPA / layer norm against the written-out ones, sums of <= 64 terms of size <= ~5
    # in other orders: <= 2 * 64 * u * 320 ~ 5e-12 per sum, ~1e-10 through 2 layers (seen: 8e-17)
    torch.testing.assert_close(b(x), a(x), atol=1e-10, rtol=1e-10)
    assert a.head.weight is a.embed.weight


def test_gpt_generation_greedy_topk1_and_length():
    torch.manual_seed(0)
    model = GPT(9, block_size=6, n_layer=1, n_head=1, n_embd=8)
    start = torch.tensor([[1, 2, 3]])
    greedy = model.generate(start, 10, temperature=0)
    assert greedy.shape == (1, 13) and torch.equal(greedy[:, :3], start)  # longer than block: windows slide
    top1 = model.generate(start, 10, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(top1, greedy)
    with pytest.raises(DeepzooError, match="block_size"):
        model(torch.zeros(1, 7, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# Character data
# ---------------------------------------------------------------------------------------------


def test_char_vocab_and_windows():
    text = "hello world, hello gpt\n" * 10
    vocab = CharVocab(text)
    assert vocab.decode(vocab.encode(text)) == text and vocab.itos == sorted(set(text))
    with pytest.raises(DeepzooError, match="not in the training text"):
        vocab.encode("HELLO")
    data = torch.tensor(vocab.encode(text))
    windows = RandomWindows(data, batch_size=4, block=8, steps=3)
    batches = list(windows.epoch(torch.Generator().manual_seed(0)))
    assert len(batches) == 3
    for x, y in batches:
        assert x.shape == y.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    val = ConsecutiveWindows(data, block=8, batch_size=5)
    xs = torch.cat([x for x, _ in val.epoch()])
    ys = torch.cat([y for _, y in val.epoch()])
    n = (len(data) - 1) // 8
    assert torch.equal(xs.reshape(-1), data[: n * 8]) and torch.equal(ys.reshape(-1), data[1: n * 8 + 1])


def test_read_text_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n" * 200 + b"caf\xe9\n")
    with pytest.raises(DeepzooError, match=r"bad.txt, line 201: not valid UTF-8"):
        read_text(bad)
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(DeepzooError, match="only 9 characters"):
        read_text(short)


def test_gpt_shakespeare_quick_trains_predicts_and_takes_a_user_file(tmp_path):
    s = train("gpt-shakespeare", preset="quick", out=tmp_path / "run", **QUIET)
    first = s["results"]["val_loss"]
    assert s["metric"] == "val_loss" and first < 3.5        # well below uniform over ~60 characters (4.1)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    a = predict(tmp_path / "run", ["ROMEO:"], options={"length": 40, "temperature": 0})
    b = predict(tmp_path / "run", ["ROMEO:"], options={"length": 40, "temperature": 0})
    assert a == b and len(a[0]["text"]) == 40
    with pytest.raises(DeepzooError, match="does not take --beam"):
        predict(tmp_path / "run", ["ROMEO:"], options={"beam": 3})
    mine = tmp_path / "mine.txt"
    mine.write_text("the quick brown fox jumps over the lazy dog.\n" * 200)
    s = train("gpt-shakespeare", preset="quick", sets=[f"data.path={mine}"], out=tmp_path / "mine", **QUIET)
    assert s["results"]["val_loss"] < 2.0                     # a repetitive text is easy to predict


def test_gpt_cli_predict_prints_the_continuation(tmp_path):
    train("gpt-shakespeare", preset="quick", sets=["train.epochs=1"], out=tmp_path / "run", **QUIET)
    proc = run_deepzoo("predict", str(tmp_path / "run"), "KING:", "--length", "25", "--top-k", "5", check=True)
    assert proc.stdout.startswith("KING:") and len(proc.stdout.rstrip("\n")) >= 25
    proc = run_deepzoo("predict", str(tmp_path / "run"), "KING:", "--beam", "2")
    assert proc.returncode == 2 and "does not take --beam" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# Parallel text and the subword tokeniser
# ---------------------------------------------------------------------------------------------


def test_aligned_files_and_tsv_errors_name_the_line(tmp_path):
    (tmp_path / "a.de").write_text("eins\nzwei\ndrei\n")
    (tmp_path / "a.en").write_text("one\ntwo\n")
    with pytest.raises(DeepzooError, match="3 lines but .* has 2"):
        read_aligned(tmp_path / "a.de", tmp_path / "a.en")
    (tmp_path / "b.en").write_text("one\n\nthree\n")
    with pytest.raises(DeepzooError, match=r"b.en, line 2: empty sentence"):
        read_aligned(tmp_path / "a.de", tmp_path / "b.en")
    (tmp_path / "p.tsv").write_text("eins\tone\nzwei two\n")
    with pytest.raises(DeepzooError, match=r"p.tsv, line 2: expected 'source<TAB>target'"):
        read_tsv(tmp_path / "p.tsv")
    gz = tmp_path / "c.en.gz"
    gz.write_bytes(gzip.compress("one\ntwo\nthree\n".encode()))
    assert read_aligned(tmp_path / "a.de", gz)[2] == ("drei", "three")


def test_unreadable_parallel_files_are_one_clear_error(tmp_path):
    (tmp_path / "fake.de.gz").write_bytes(b"not gzip at all\n")
    (tmp_path / "b.en").write_text("a\n")
    with pytest.raises(DeepzooError, match="fake.de.gz: cannot read"):
        read_aligned(tmp_path / "fake.de.gz", tmp_path / "b.en")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DeepzooError, match="folder: cannot read"):
        read_tsv(tmp_path / "folder")


def test_subword_tokenizer_round_trip_is_deterministic_and_saves(tmp_path):
    texts = ["Ein Mann fährt Fahrrad.", "A man rides a bike.", "Zwei Hunde spielen im Schnee."] * 30
    a, b = SubwordTokenizer.train(texts, vocab_size=120), SubwordTokenizer.train(texts, vocab_size=120)
    assert a.tok.get_vocab() == b.tok.get_vocab()
    assert (a.pad_id, a.unk_id, a.bos_id, a.eos_id) == (0, 1, 2, 3)
    for t in ["Ein Mann spielt.", "Hunde fahren im Schnee."]:
        assert a.decode(a.encode(t)) == t
    assert a.unk_id in a.encode("Schnee!")               # a character never seen in training
    assert a.decode(a.encode("a bike") + [a.eos_id] + a.encode("junk")) == "a bike"
    a.save(tmp_path / "tok.json")
    c = SubwordTokenizer.from_file(tmp_path / "tok.json")
    assert c.encode("Ein Mann") == a.encode("Ein Mann")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DeepzooError, match="not a tokenizer file"):
        SubwordTokenizer.from_file(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------
# The encoder-decoder and beam search
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def _sequence_logprob(model, src, seq, bos):
    """log p(seq | src) by teacher forcing, seq ending in </s>."""
    memory, pad = model.encode(src)
    logits = model.decode(torch.tensor([[bos] + seq[:-1]]), memory, pad)
    return float(torch.log_softmax(logits, -1)[0, torch.arange(len(seq)), torch.tensor(seq)].sum())


def test_wide_beam_search_finds_the_exhaustive_best():
    """With a beam wider than every live prefix, beam search is exhaustive: it must return the
    sequence with the best length-normalised log-probability among all finished ones."""
    torch.manual_seed(3)
    V, bos, eos, max_len, alpha = 6, 1, 2, 3, 0.6
    model = Transformer(V, d_model=16, nhead=2, layers=1, dim_feedforward=16, dropout=0.0, pad_id=0).eval()
    with torch.no_grad():                                  # spread the output distribution a little
        model.embed.weight.mul_(8)
    src = torch.tensor([[4, 5, 3]])
    others = [t for t in range(V) if t != eos]
    best, best_score = None, float("-inf")
    for n in range(max_len):
        for prefix in itertools.product(others, repeat=n):
            seq = list(prefix) + [eos]
            score = _sequence_logprob(model, src, seq, bos) / ((5 + len(seq)) / 6) ** alpha
            if score > best_score:
                best, best_score = seq, score
    out = model.beam_search(src, bos, eos, max_len, beam=len(others) ** (max_len - 1), alpha=alpha)[0].tolist()
    assert out[: len(best)] == best


def test_greedy_and_beam_decode_a_batch_with_padding():
    torch.manual_seed(0)
    model = Transformer(10, d_model=16, nhead=2, layers=1, dim_feedforward=16, pad_id=0)
    src = torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0]])
    g = model.greedy(src, 2, 3, max_len=5)
    b = model.beam_search(src, 2, 3, max_len=5, beam=3)
    assert g.shape[0] == b.shape[0] == 2 and g.shape[1] <= 5 and b.shape[1] <= 6
    # a padded source decodes exactly as the same sentence alone
    alone = model.greedy(torch.tensor([[8, 9]]), 2, 3, max_len=5)
    assert g[1, : alone.shape[1]].tolist() == alone[0].tolist()


def test_transformer_multi30k_quick_trains_scores_and_translates(quick_tour):
    run = quick_tour / "transformer-multi30k"             # the tour's run of the quick preset
    r = json.loads((run / "summary.json").read_text())["results"]
    assert {"test_bleu", "test_bleu_lc", "test_bleu_greedy", "val_loss", "test_loss"} <= set(r)
    assert 0 <= r["test_bleu"] <= r["test_bleu_lc"] + 1e-9 and r["val_loss"] < 7.0   # < log(2000) = 7.6
    assert r["test_bleu"] == r["test_bleu_greedy"]            # model.beam = 1: one greedy decoding serves both
    out = predict(run, ["Ein Mann fährt Fahrrad."], options={"beam": 2})[0]
    assert isinstance(out["translation"], str) and out["beam"] == 2
    assert predict(run, ["Ein Mann."])[0]["beam"] == 1          # the run's model.beam (quick: greedy)
    from deepzoo.recipes.translation import translate
    from deepzoo.train.run import load_model
    _, _, task = load_model(run)
    positions = task.model.positions.pe.shape[0]
    long = translate(task.model, task.context["tokenizer"], [[5] * (positions + 50)], beam=1)  # cut, not a crash
    assert isinstance(long[0], str)
    proc = run_deepzoo("predict", str(run), "Ein Hund.", "--temperature", "1")
    assert proc.returncode == 2 and "does not take --temperature" in proc.stderr


def test_transformer_trains_on_the_users_tsv(tmp_path):
    pairs = [f"ich sehe {n} katzen\ti see {n} cats" for n in range(60)]
    (tmp_path / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    s = train("transformer-multi30k", preset="quick", sets=[f"data.path={tmp_path / 'pairs.tsv'}", "train.epochs=1"],
              out=tmp_path / "run", **QUIET)
    assert "test_bleu" in s["results"]
    (tmp_path / "bad.tsv").write_text("eins\tone\n" * 3 + "kaputt\n")
    with pytest.raises(DeepzooError, match="bad.tsv, line 4"):
        train("transformer-multi30k", preset="quick", sets=[f"data.path={tmp_path / 'bad.tsv'}"],
              out=tmp_path / "bad", **QUIET)
    assert not (tmp_path / "bad").exists()
