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


def _builtin_copy(soft, dim, vocab, cutoffs):
    """torch's AdaptiveLogSoftmaxWithLoss with the tied module's weights (projections as wide as the input)."""
    ref = torch.nn.AdaptiveLogSoftmaxWithLoss(dim, vocab, cutoffs, div_value=1.0, head_bias=True).double()
    with torch.no_grad():
        ref.head.weight.copy_(torch.cat([soft.weight[:cutoffs[0]], soft.cluster_weight]))
        ref.head.bias.copy_(soft.head_bias)
        bounds = cutoffs + [vocab]
        for k, tail in enumerate(ref.tail):
            tail[0].weight.copy_(soft.proj[k])
            tail[1].weight.copy_(soft.weight[bounds[k]:bounds[k + 1]])
    return ref


def test_tied_adaptive_softmax_matches_the_torch_builtin():
    """Same weights, same inputs: -log p(target), the full log-probabilities and every gradient agree with
    nn.AdaptiveLogSoftmaxWithLoss, the embedding's gradient being the sum of the head's and tails' rows."""
    from deepzoo.nn.softmax import TiedAdaptiveSoftmax
    torch.manual_seed(0)
    vocab, dim, cutoffs = 50, 8, [10, 30]
    embed = torch.nn.Embedding(vocab, dim).double()
    soft = TiedAdaptiveSoftmax(embed, cutoffs).double()
    with torch.no_grad():                      # away from the identity start, so the projections matter
        for p in soft.proj:
            p.add_(0.3 * torch.randn_like(p))
        soft.head_bias.normal_()
    ref = _builtin_copy(soft, dim, vocab, cutoffs)
    h = torch.randn(40, dim, dtype=torch.float64, requires_grad=True)
    h_ref = h.detach().clone().requires_grad_(True)
    target = torch.cat([torch.tensor([0, 9, 10, 29, 30, 49]), torch.randint(0, vocab, (34,))])
    # float64, sums of <= 50 terms of size <= ~10: differences of order 1e-13; a wrong cluster, row or sign
    # is off by > 1e-2
    tol = dict(atol=1e-10, rtol=1e-10)
    nll = soft.nll(h, target)
    out = ref(h_ref, target)
    torch.testing.assert_close(nll, -out.output, **tol)
    torch.testing.assert_close(soft.log_prob(h), ref.log_prob(h_ref), **tol)
    assert torch.allclose(soft.log_prob(h).exp().sum(1), torch.ones(40, dtype=torch.float64))
    nll.mean().backward()
    out.loss.backward()
    torch.testing.assert_close(h.grad, h_ref.grad, **tol)
    grad_embed = torch.zeros_like(embed.weight)
    grad_embed[:10] += ref.head.weight.grad[:10]
    for k, (lo, hi) in enumerate([(10, 30), (30, 50)]):
        grad_embed[lo:hi] += ref.tail[k][1].weight.grad
        torch.testing.assert_close(soft.proj[k].grad, ref.tail[k][0].weight.grad, **tol)
    torch.testing.assert_close(embed.weight.grad, grad_embed, **tol)
    torch.testing.assert_close(soft.cluster_weight.grad, ref.head.weight.grad[10:], **tol)
    torch.testing.assert_close(soft.head_bias.grad, ref.head.bias.grad, **tol)


@pytest.mark.parametrize("tie", [True, False])
def test_adaptive_language_model_trains_on_nll_and_evaluates_exact_log_probs(tie):
    torch.manual_seed(0)
    model = RNNLanguageModel(60, embed_dim=8, hidden=8, layers=1, tie=tie, softmax="adaptive",
                             cutoffs=[12, 40]).double()
    x, y = torch.randint(0, 60, (3, 5)), torch.randint(0, 60, (3, 5))
    nll = model.train()(x, True, y)                          # training: -log p(y) per word
    logp = model.eval()(x, True, y)                          # evaluation: the whole distribution
    assert nll.shape == (3, 5) and logp.shape == (3, 5, 60)
    torch.testing.assert_close(logp.logsumexp(-1), torch.zeros(3, 5, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(nll, -logp.gather(2, y[..., None]).squeeze(2), atol=1e-12, rtol=1e-12)
    assert (getattr(model.softmax, "weight", None) is model.embed.weight) == tie and model.fc is None
    small = RNNLanguageModel(9, embed_dim=4, hidden=4, tie=tie, softmax="adaptive", cutoffs=[2000])
    assert small(torch.randint(0, 9, (2, 3))).shape == (2, 3, 9)   # a vocabulary under every cutoff
    with pytest.raises(DeepzooError, match="model.cutoffs"):
        RNNLanguageModel(60, embed_dim=8, hidden=8, tie=tie, softmax="adaptive", cutoffs=[30, 12])


def test_an_older_run_reads_with_the_values_it_was_trained_with():
    """Keys added with a default that differs from what earlier runs did (schema.ADDED) read back as the
    earlier behaviour when a run's config.json lacks them, and as written when it has them."""
    from deepzoo import recipes, schema
    vit = schema.for_recipe(recipes.get("vit-cifar10"))
    assert schema.upgrade(vit, {"model": {}})["model"]["pool"] == "cls"
    assert schema.upgrade(vit, {"model": {"pool": "mean"}})["model"]["pool"] == "mean"
    w2v = schema.for_recipe(recipes.get("word2vec-ptb"))
    assert schema.upgrade(w2v, {"model": {"sg": True}})["model"]["shared_negatives"] is False


def test_adaptive_softmax_recipe_trains_predicts_and_exports(tmp_path):
    """model.softmax=adaptive through the whole recipe: the target rides in the training input, evaluation
    reads exact log-probabilities, the run folder predicts and exports like the full softmax's."""
    from deepzoo.export import export
    s = train("lstm-ptb", preset="quick", sets=["model.softmax=adaptive", "model.cutoffs=[300, 1500]",
                                                 "train.epochs=1", "data.batch_size=8"],
              out=tmp_path / "run", progress=False, log=lambda m: None)
    assert math.isfinite(s["value"]) and 1 < s["value"] < 5000
    [result] = predict(tmp_path / "run", ["the company said"])
    assert len(result["greedy"].split()) == 20
    path = export(tmp_path / "run", "onnx", log=lambda m: None)   # checked by onnxruntime against torch
    assert path.stat().st_size > 0
