"""The word-level language model: carried state (truncated BPTT) reads a stream exactly as one long
pass would, perplexity is exp of the token-mean cross-entropy, and the recipe trains and continues text."""

import json
import math

import pytest
import torch

from deepzoo.errors import DeepzooError
from deepzoo.models.rnn import RNNLanguageModel
from deepzoo.recipes.lm import LMBatches
from deepzoo.train.metrics import Perplexity
from deepzoo.train.run import predict, train


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_carried_state_equals_one_long_pass(impl):
    torch.manual_seed(0)
    # Float64: one pass of 12 steps against three windows computes the same recurrence, but the input
    # projections are batched over 12 or 5 / 4 / 3 steps, and products may be blocked differently per
    # size and CPU. In float64 (u = 1.1e-16) sums of <= 16 terms over 12 steps and 2 layers stay within
    # ~1e-14 (seen: 3e-17), while a state not carried (or carried wrongly) moves outputs by > 1e-3.
    model = RNNLanguageModel(30, embed_dim=8, hidden=8, layers=2, impl=impl).double().eval()
    x = torch.randint(0, 30, (3, 12))
    whole = model(x, True)
    parts = torch.cat([model(x[:, :5], True), model(x[:, 5:9], False), model(x[:, 9:], False)], dim=1)
    torch.testing.assert_close(parts, whole, atol=1e-12, rtol=1e-10)
    restarted = model(x[:, 5:9], True)
    assert not torch.allclose(restarted, whole[:, 5:9]), "first=True must start from a zero state"


def test_state_is_detached_between_windows():
    model = RNNLanguageModel(20, embed_dim=4, hidden=4, layers=1)
    model(torch.randint(0, 20, (2, 5)), True)
    assert all(not s.requires_grad for s in model.state)


def test_tied_weights_share_one_matrix():
    model = RNNLanguageModel(20, embed_dim=6, hidden=6, tie=True)
    assert model.fc.weight is model.embed.weight
    with pytest.raises(DeepzooError, match="model.tie"):
        RNNLanguageModel(20, embed_dim=6, hidden=8, tie=True)


def test_perplexity_is_exp_of_token_mean_cross_entropy():
    torch.manual_seed(0)
    out, y = torch.randn(4, 7, 11), torch.randint(0, 11, (4, 7))
    ppl = Perplexity()
    ppl.update(out[:3], y[:3])
    ppl.update(out[3:, :4], y[3:, :4])
    # The reference in float64; Perplexity works in float32 by design: per-token losses of ~3 nats, each
    # within a few ulps (<= ~1.5e-6), summed 21 and 4 at a time (<= 20 u = 1.2e-6 relative): the mean
    # cross-entropy is within ~5e-6 of exact, and that is exp(mean)'s relative error (seen: ~1e-7), so
    # rel=1e-5 holds on any CPU; a mean over the wrong count is off by > 10%.
    ce = torch.nn.functional.cross_entropy(torch.cat([out[:3].reshape(-1, 11), out[3:, :4].reshape(-1, 11)]).double(),
                                           torch.cat([y[:3].reshape(-1), y[3:, :4].reshape(-1)]))
    assert ppl.compute() == pytest.approx(math.exp(float(ce)), rel=1e-5)


def test_lm_batches_cover_the_stream_in_order():
    stream = torch.arange(103)
    batches = LMBatches(stream, batch_size=4, bptt=7)   # rows of 25 tokens, 24 targets each
    windows = list(batches.epoch())
    assert len(windows) == len(batches) == 4
    assert [bool(first) for (_, first), _ in windows] == [True, False, False, False]
    xs = torch.cat([x for (x, _), _ in windows], 1)
    ys = torch.cat([y for _, y in windows], 1)
    assert torch.equal(ys, xs + 1) and torch.equal(xs[:, 0], torch.tensor([0, 25, 50, 75]))


def test_quick_preset_trains_and_continues_a_prompt(quick_tour):
    run = quick_tour / "lstm-ptb"                         # the tour's run of the quick preset
    s = json.loads((run / "summary.json").read_text())
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_ppl"] < rows[0]["val_ppl"] < 5000
    assert s["metric"] == "test_ppl" and s["value"] == s["results"]["test_ppl"]   # the same number
    [result] = predict(run, ["the company said"])
    assert len(result["greedy"].split()) == 20 and len(result["sampled (T=1.0)"].split()) == 20


def test_user_text_file_is_a_corpus(tmp_path):
    corpus = tmp_path / "mine.txt"
    corpus.write_text("".join(f"the cat sat on mat number {i % 7} today\n" for i in range(200)))
    s = train("lstm-ptb", preset="quick", sets=[f"data.path={corpus}", "train.epochs=10", "data.batch_size=4", "optim.schedule=constant"], out=tmp_path / "mine",
              progress=False, log=lambda m: None)
    assert s["value"] < 10, "a nearly periodic text must be predicted well"


def test_tied_weights_are_saved_once_and_come_back_tied(tmp_path):
    from deepzoo.train import checkpoint
    model = RNNLanguageModel(30, embed_dim=8, hidden=8, layers=1, tie=True)
    checkpoint.save_weights(model, tmp_path / "m.safetensors")
    tensors, aliases = checkpoint.model_tensors(model)
    assert aliases == {"fc.weight": "embed.weight"} and "fc.weight" not in tensors
    other = RNNLanguageModel(30, embed_dim=8, hidden=8, layers=1, tie=True, init_range=0.5)
    other.load_state_dict(checkpoint.load_weights(tmp_path / "m.safetensors"))
    assert other.fc.weight is other.embed.weight
    assert torch.equal(other.embed.weight, model.embed.weight)   # float32 stored as float32: exact
