"""Word2Vec: vocabulary statistics, the Huffman tree, the compiled kernel equal to the PyTorch losses,
KeyedVectors, the word2vec file formats (read back by gensim when it is installed), and training."""

import json
import math

import numpy as np
import pytest
import torch

from deepzoo.data.corpus import LineCorpus, ListCorpus
from deepzoo.errors import DeepzooError
from deepzoo.models import word2vec as w2v
from deepzoo.models.keyedvectors import KeyedVectors, spearman
from deepzoo.models.word2vec_fast import Word2Vec, _draw, _hierarchical, _negative, _window_shared, alias_table


def test_keep_probability_is_gensims_formula():
    counts = np.array([1000, 100, 10, 1])
    keep = w2v.keep_probabilities(counts, 1e-2)
    f = counts / counts.sum()
    expected = np.minimum((np.sqrt(f / 1e-2) + 1) * 1e-2 / f, 1.0)
    np.testing.assert_allclose(keep, expected)   # float64, elementwise: a few ulps, rtol 1e-7 is far above
    assert keep[0] < keep[1] < 1.0 and keep[-1] == 1.0
    assert (w2v.keep_probabilities(counts, 0) == 1).all()


def test_noise_distribution_flattens_frequencies():
    p = w2v.noise_distribution(np.array([81, 1]))
    assert p.sum() == pytest.approx(1.0) and p[0] / p[1] == pytest.approx(81 ** 0.75)


def test_alias_table_draws_the_noise_distribution():
    p = w2v.noise_distribution(np.array([500, 120, 40, 9, 3, 1, 1]))
    threshold, alias = alias_table(p)
    n = len(p)
    implied = threshold / 2 ** 32 / n  # each column: its own word with its threshold, else its alias
    for i in range(n):
        implied[alias[i]] += (1 - threshold[i] / 2 ** 32) / n
    # thresholds are rounded to integers out of 2^32: each column's share is off by <= 0.5 / 2^32 / n,
    # and a word collects at most n columns: <= 1.2e-10 (float64 rounding adds ~1e-16)
    np.testing.assert_allclose(implied, p, atol=1e-9)
    state, draws = np.uint64(7), np.zeros(n)
    for _ in range(50_000):
        w, state = _draw(threshold, alias, state)
        draws[w] += 1
    # statistical: 50,000 draws, sd <= sqrt(0.25 / 50000) = 2.2e-3, so 0.01 is > 4 sd; the generator
    # is integer arithmetic, the same draws on every CPU
    np.testing.assert_allclose(draws / draws.sum(), p, atol=0.01)


def test_huffman_codes_are_prefix_free_and_frequent_words_are_short():
    counts = np.array([50, 30, 10, 5, 3, 1, 1])
    codes, points = w2v.huffman_tree(counts)
    strings = ["".join(map(str, c)) for c in codes]
    assert len(set(strings)) == len(strings)
    assert not any(a != b and b.startswith(a) for a in strings for b in strings)
    lengths = [len(c) for c in codes]
    assert lengths == sorted(lengths) and lengths[0] == 1
    assert all(p[0] == len(counts) - 2 for p in points)  # every path starts at the root
    assert max(max(p) for p in points) == len(counts) - 2 and min(min(p) for p in points) == 0
    # Kraft equality for a full binary tree
    assert sum(2.0 ** -n for n in lengths) == pytest.approx(1.0)   # powers of 2: exact in float64


def _tables(V, D, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((V, D)) * 0.3).astype(np.float32)


def test_negative_sampling_update_equals_a_torch_sgd_step():
    V, D, alpha, word, noise_word = 12, 8, 0.05, 3, 7
    syn1neg = _tables(V, D, 1)
    l1 = _tables(1, D, 2)[0]
    threshold, alias = alias_table(np.eye(V)[noise_word])  # every draw is noise_word
    model = w2v.SkipGram(V, D)
    with torch.no_grad():
        model.out_embed.weight.copy_(torch.from_numpy(syn1neg))
    h = torch.tensor(l1, requires_grad=True)
    loss = model.negative_sampling_loss(h[None], torch.tensor([word]), torch.tensor([[noise_word]]))
    loss.backward()
    work = np.zeros(D, dtype=np.float32)
    kernel_loss, _ = _negative(l1.copy(), word, syn1neg, threshold, alias, 1, alpha, work, np.uint64(1))
    # Float32 is the point (the compiled kernel works in float32, and fastmath lets LLVM vectorise its dot
    # products in an order that depends on the CPU). Each dot of D = 8 products (sum|terms| <= ~2) errs by
    # <= 2 * 8 * u * 2 ~ 2e-6 (u = 6e-8); sigmoid' <= 1/4 and alpha = 0.05 make each coefficient g good
    # to ~3e-8; work and the rows add g x (values <= ~1) for 2 words: <= ~1.5e-7 with the roundings, so
    # atol 5e-7 (seen: <= 2e-9). The loss (~1.4 nats) is within ~4e-6 of exact: rel 1e-5. A wrong
    # label, sign or alpha is off by > 1e-3.
    assert kernel_loss == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(work, -alpha * h.grad.numpy(), rtol=1e-5, atol=5e-7)
    expected = model.out_embed.weight.detach() - alpha * model.out_embed.weight.grad
    np.testing.assert_allclose(syn1neg, expected.numpy(), rtol=1e-5, atol=5e-7)


def test_shared_negatives_window_update_equals_one_torch_sgd_step_on_the_window_loss():
    """The window's m context vectors against the centre word and the same noise words: the kernel's update
    is one SGD step (rate alpha) on the sum of the window's negative-sampling losses, all scored with the
    vectors from before the window; a context word that occurs twice takes both updates."""
    V, D, alpha, word, noise_word = 12, 8, 0.05, 3, 7
    syn0, syn1neg = _tables(V, D, 2), _tables(V, D, 1)
    ctx = np.array([1, 5, 5, 9, 0, 0], dtype=np.int64)    # 5 twice; the tail past m = 4 is unused
    threshold, alias = alias_table(np.eye(V)[noise_word])  # every draw is noise_word
    negative, m = 1, 4     # one noise word: a word drawn twice would see its first update (docstring)
    inp, out = torch.tensor(syn0, requires_grad=True), torch.tensor(syn1neg, requires_grad=True)
    h = inp[torch.from_numpy(ctx[:m])]                                    # m, D
    targets = torch.tensor([word] + [noise_word] * negative)
    labels = torch.tensor([1.0] + [0.0] * negative)
    scores = h @ out[targets].T                                         # m, 1 + negative
    loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, labels.expand(m, -1), reduction="sum")
    loss.backward()
    grads, upd = np.zeros((6, D), dtype=np.float32), np.zeros(D, dtype=np.float32)
    kernel_loss, _ = _window_shared(syn0, syn1neg, ctx, m, word, threshold, alias, negative, alpha, grads, upd,
                                    np.uint64(1), True)
    # float32 as above: dots of 8 terms, each row updated by <= 4 x 3 terms of size <= alpha: atol 5e-7;
    # a score taken after an update instead of before moves rows by ~1e-4
    assert kernel_loss == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(syn0, (inp - alpha * inp.grad).detach().numpy(), rtol=1e-5, atol=5e-7)
    np.testing.assert_allclose(syn1neg, (out - alpha * out.grad).detach().numpy(), rtol=1e-5, atol=5e-7)


@pytest.mark.parametrize("shared", [True, False])
def test_skipgram_with_or_without_shared_negatives_separates_two_topics(shared):
    corpus = ListCorpus(_topic_corpus())
    model = Word2Vec(vector_size=16, window=3, min_count=1, sg=True, negative=5, sample=0, epochs=5, workers=1,
                     seed=3, compute_loss=True, shared_negatives=shared).build_vocab(corpus)
    history = model.train(corpus)
    assert history[-1]["loss"] < history[0]["loss"]
    assert {w for w, _ in model.wv.most_similar("cat", topn=4)} == {"dog", "horse", "cow", "sheep"}


def test_cached_epochs_train_as_streamed_ones():
    """Epochs 2.. read the ids kept from epoch 1 (a corpus under cache_words) or the corpus again: the same
    jobs in the same order, so the same vectors, bit for bit (one thread)."""
    corpus = ListCorpus(_topic_corpus(60))
    runs = []
    for cache_words in (10**9, 0):
        m = Word2Vec(vector_size=8, min_count=1, epochs=3, workers=1, seed=5, job_words=50,
                     cache_words=cache_words).build_vocab(corpus)
        m.train(corpus)
        runs.append(m.syn0.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("cache_words", [10**9, 0])
@pytest.mark.parametrize("stop", [2, 7, 9])      # inside epoch 1, inside epoch 2, at the start of epoch 3
def test_training_continues_from_any_position_as_the_unbroken_run(stop, cache_words):
    """Stop after the stop-th position (a job, or an epoch's end), build a new model, load the three tables
    and go on from that position: the same tables, bit for bit, as the unbroken run (one thread), whether
    the later epochs read the cached ids or the corpus again."""
    corpus = ListCorpus(_topic_corpus(60))
    make = lambda: Word2Vec(vector_size=8, min_count=1, epochs=3, workers=1, seed=5, job_words=50, hs=True,
                            compute_loss=True, cache_words=cache_words).build_vocab(corpus)
    unbroken, seen = make(), []
    history = unbroken.train(corpus, on_position=lambda p: seen.append(
        (p, [t.copy() for t in (unbroken.syn0, unbroken.syn1neg, unbroken.syn1)])))
    assert len(seen) > 9 and [p["job"] for p, _ in seen].count(0) == 2     # jobs, and the two epoch ends
    position, tables = seen[stop - 1]
    resumed = make()
    for t, saved in zip((resumed.syn0, resumed.syn1neg, resumed.syn1), tables):
        t[...] = saved
    rest = resumed.train(corpus, start=position)
    for a, b in zip((unbroken.syn0, unbroken.syn1neg, unbroken.syn1), (resumed.syn0, resumed.syn1neg, resumed.syn1)):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in rest] == [r["loss"] for r in history[position["epoch"]:]]
    assert [r["words"] for r in rest] == [r["words"] for r in history[position["epoch"]:]]
    # and a start one job later than the tables (job 3's tables, going on from job 4's end) differs
    (position, tables), wrong = seen[2], make()
    for t, saved in zip((wrong.syn0, wrong.syn1neg, wrong.syn1), tables):
        t[...] = saved
    wrong.train(corpus, start={**position, "job": position["job"] + 1})
    assert not np.array_equal(wrong.syn0, unbroken.syn0)


def test_hierarchical_softmax_update_equals_a_torch_sgd_step():
    counts = np.array([40, 20, 9, 6, 5, 3, 2, 1])
    V, D, alpha, word = len(counts), 6, 0.1, 5
    codes, points = w2v.huffman_tree(counts)
    depth = max(map(len, codes))
    P = np.zeros((V, depth), np.int32)
    C = np.zeros((V, depth), np.int8)
    for w in range(V):
        P[w, :len(points[w])], C[w, :len(codes[w])] = points[w], codes[w]
    L = np.array([len(c) for c in codes], np.int32)
    syn1 = _tables(V - 1, D, 3)
    l1 = _tables(1, D, 4)[0]
    model = w2v.SkipGram(V, D)
    with torch.no_grad():
        model.node_embed.weight.copy_(torch.from_numpy(syn1))
    h = torch.tensor(l1, requires_grad=True)
    loss = model.hierarchical_softmax_loss(h[None], *w2v.path_tensors(torch.tensor([word]), codes, points))
    loss.backward()
    work = np.zeros(D, dtype=np.float32)
    kernel_loss = _hierarchical(l1.copy(), word, syn1, P, C, L, alpha, work)
    # float32, as above: dots of D = 6 products, alpha = 0.1, one term per node of the path (5 here):
    # work within ~3e-7, the rows within ~1.5e-7 (seen: <= 8e-9); the loss within ~1e-5 of ~3.5 nats
    assert len(codes[word]) <= 5
    assert kernel_loss == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(work, -alpha * h.grad.numpy(), rtol=1e-5, atol=5e-7)
    expected = model.node_embed.weight.detach() - alpha * model.node_embed.weight.grad
    np.testing.assert_allclose(syn1, expected.numpy(), rtol=1e-5, atol=5e-7)
    # and the path probabilities of all words sum to one: a proper softmax over the vocabulary
    with torch.no_grad():
        total = sum(math.exp(-float(model.hierarchical_softmax_loss(
            h[None], *w2v.path_tensors(torch.tensor([w]), codes, points)))) for w in range(V))
    assert total == pytest.approx(1.0, rel=1e-5)   # float32 path products: <= ~5e-6 relative each


def test_cbow_hidden_is_the_mean_or_the_sum_of_the_context():
    model = w2v.CBOW(10, 4, mean=True)
    inputs, mask = torch.tensor([[1, 2, 0]]), torch.tensor([[1.0, 1.0, 0.0]])
    E = model.in_embed.weight
    # the same two-term sum in float32 (the masked word adds an exact 0): an ulp at most
    torch.testing.assert_close(model.hidden(inputs, mask), ((E[1] + E[2]) / 2)[None])
    model.mean = False
    torch.testing.assert_close(model.hidden(inputs, mask), (E[1] + E[2])[None])


def _topic_corpus(n=300, seed=0):
    """Two topics that never share a sentence: words group by topic after training."""
    rng = np.random.default_rng(seed)
    animals, metals = ["cat", "dog", "horse", "cow", "sheep"], ["iron", "gold", "zinc", "lead", "tin"]
    return [list(rng.choice(animals if i % 2 else metals, 8)) for i in range(n)]


@pytest.mark.parametrize("sg, hs, negative", [(True, False, 5), (False, False, 5), (True, True, 0), (False, True, 0)])
def test_fast_training_separates_two_topics(sg, hs, negative):
    corpus = ListCorpus(_topic_corpus())
    model = Word2Vec(vector_size=16, window=3, min_count=1, sg=sg, hs=hs, negative=negative, sample=0,
                     epochs=5, workers=1, seed=3, compute_loss=True).build_vocab(corpus)
    history = model.train(corpus)
    assert len(history) == 5 and history[-1]["loss"] < history[0]["loss"]
    wv = model.wv
    assert {w for w, _ in wv.most_similar("cat", topn=4)} == {"dog", "horse", "cow", "sheep"}
    assert wv.similarity("cat", "dog") > wv.similarity("cat", "iron")
    assert wv.doesnt_match(["cat", "dog", "horse", "gold"]) == "gold"


def test_torch_training_separates_two_topics():
    corpus = _topic_corpus(200)
    words, counts = w2v.build_vocab(w2v.count_words(corpus)[0], min_count=1)
    index = {w: i for i, w in enumerate(words)}
    model, losses = w2v.train_torch([[index[w] for w in s] for s in corpus], counts, dim=16, window=3,
                                    sample=0, epochs=3, alpha=0.025, batch_size=8)
    assert losses[-1] < losses[0]
    wv = KeyedVectors(words, model.in_embed.weight.detach().numpy())
    assert wv.similarity("cat", "dog") > wv.similarity("cat", "iron")


def test_single_thread_training_is_repeatable():
    corpus = ListCorpus(_topic_corpus(60))
    runs = []
    for _ in range(2):
        m = Word2Vec(vector_size=8, min_count=1, epochs=2, workers=1, seed=5).build_vocab(corpus)
        m.train(corpus)
        runs.append(m.syn0.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_bad_parameters_and_tiny_corpus_are_clear_errors():
    with pytest.raises(ValueError, match="hierarchical softmax"):
        Word2Vec(hs=False, negative=0)
    with pytest.raises(ValueError, match="min_count"):
        Word2Vec(min_count=5).build_vocab(ListCorpus([["a", "b"]]))
    with pytest.raises(ValueError, match="build_vocab"):
        Word2Vec().train(ListCorpus([["a"]]))


def test_most_similar_analogy_and_formats_round_trip(tmp_path):
    words = ["king", "queen", "man", "woman", "apple"]
    vectors = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], dtype=np.float32) + 0.01
    kv = KeyedVectors(words, vectors)
    assert kv.analogy("man", "king", "woman")[0][0] == "queen"
    assert kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"
    assert "king" not in [w for w, _ in kv.most_similar("king")]
    with pytest.raises(DeepzooError, match="'prince' is not in the vocabulary"):
        kv.most_similar("prince")
    for binary in (False, True):
        path = tmp_path / f"v.{'bin' if binary else 'txt'}"
        kv.save_word2vec_format(path, binary=binary)
        back = KeyedVectors.load_word2vec_format(path, binary=binary)
        assert back.index_to_key == words
        # binary: exact; text: 6 significant digits, <= 5e-6 relative
        np.testing.assert_allclose(back.vectors, kv.vectors, rtol=1e-5)


def test_gensim_reads_our_files(tmp_path):
    gensim = pytest.importorskip("gensim", reason="gensim is not installed (pip install gensim)")
    kv = KeyedVectors(["我们", "hello", "world"], np.arange(12, dtype=np.float32).reshape(3, 4) / 7)
    for binary in (False, True):
        path = tmp_path / f"v{binary}"
        kv.save_word2vec_format(path, binary=binary)
        theirs = gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert list(theirs.index_to_key) == kv.index_to_key
        np.testing.assert_allclose(theirs.vectors, kv.vectors, rtol=1e-5)   # text: 6 digits, <= 5e-6 relative


def test_malformed_vector_file_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("2 3\na 1 2 3\nb 1 2\n")
    with pytest.raises(DeepzooError, match=r"bad.txt, line 3: expected a word and 3 numbers"):
        KeyedVectors.load_word2vec_format(path)


def test_spearman_matches_a_hand_computed_value():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486833, rel=1e-6)   # 3 / sqrt(10), to 7 digits


def test_word_evaluations_on_a_toy_file(tmp_path):
    kv = KeyedVectors(["king", "queen", "man", "woman"],
                      np.array([[1, 1], [1, -1], [0.1, 1], [0.1, -1]], dtype=np.float32))
    q = tmp_path / "q.txt"
    q.write_text(": royal\nman king woman queen\nman king woman prince\nwoman queen man king\n")
    result = kv.evaluate_word_analogies(q)
    assert result["total"] == 2 and result["skipped"] == 1 and result["correct"] == 2
    pairs = tmp_path / "p.tsv"
    pairs.write_text("# header\nking\tqueen\t5\nking\tman\t9\nqueen\twoman\t9\nman\tzebra\t1\n")
    scores = kv.evaluate_word_pairs(pairs)
    assert scores["used"] == 3 and scores["oov_ratio"] == pytest.approx(0.25)


def test_line_corpus_streams_files_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world\n\nthe END\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("我们 喜欢\n")
    (tmp_path / ".hidden").write_text("skip me\n")
    corpus = LineCorpus(tmp_path, "space")
    assert list(corpus) == [["Hello", "world"], ["the", "END"], ["我们", "喜欢"]]
    assert list(corpus) == list(corpus)  # re-iterable
    (tmp_path / "sub" / "c.txt").write_bytes("ok\n".encode() + "坏".encode("gbk") + b"\n")
    with pytest.raises(DeepzooError, match=r"c.txt, line 2: not UTF-8"):
        list(LineCorpus(tmp_path, "en"))
    with pytest.raises(DeepzooError, match="does not exist"):
        LineCorpus(tmp_path / "nope")


def test_word2vec_recipes_train_predict_and_evaluate(tmp_path, shared_data):
    from deepzoo.train.run import evaluate, predict, train
    s = train("word2vec-ptb", preset="quick", out=tmp_path / "ptb", data_dir=shared_data, progress=False,
              log=lambda *_: None)
    assert s["results"]["vocab_size"] > 1000 and "ws353_spearman" in s["results"]
    assert -1 <= s["results"]["analogy_acc"] <= 1 and (tmp_path / "ptb" / "vectors.bin").exists()
    rows = [json.loads(line) for line in (tmp_path / "ptb" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["words_per_s"] > 0 for r in rows)
    near, analogy = predict(tmp_path / "ptb", ["stock", "stock:stocks::share:?"])
    assert len(near["neighbours"]) == 10 and len(analogy["answers"]) == 5
    again = evaluate(tmp_path / "ptb", data_dir=shared_data)
    # the same float32 vectors (binary file: exact), the same evaluation code: the same number
    assert again["results"]["ws353_spearman"] == s["results"]["ws353_spearman"]
    with pytest.raises(DeepzooError, match="one word"):
        predict(tmp_path / "ptb", ["two words"])


def test_word2vec_text_on_a_users_folder_and_chinese_quick(tmp_path):
    from deepzoo.train.run import predict, train
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(" ".join(s) for s in _topic_corpus(200)))
    s = train("word2vec-text", out=tmp_path / "run", progress=False, log=lambda *_: None,
              sets=[f"data.path='{folder}'", "data.tokenizer='space'", "model.min_count=1",
                    "model.vector_size=16", "model.sample=0.0"], epochs=5)
    assert s["results"]["vocab_size"] == 10
    top = predict(tmp_path / "run", ["gold"])[0]["neighbours"][0]["word"]
    assert top in {"iron", "zinc", "lead", "tin"}
    zh = train("word2vec-chinese", preset="quick", out=tmp_path / "zh", progress=False, log=lambda *_: None)
    assert zh["results"]["vocab_size"] > 100
    from conftest import run_deepzoo
    out = run_deepzoo("predict", str(tmp_path / "run"), "gold", "cat:dog::iron:?", check=True).stdout.splitlines()
    assert out[0].startswith("gold  ") and out[1].startswith("cat : dog :: iron : ?  ")
    bad = run_deepzoo("predict", str(tmp_path / "run"), "unicorn")
    assert bad.returncode == 2 and "'unicorn' is not in the vocabulary" in bad.stderr and "Traceback" not in bad.stderr


def test_truncated_or_corrupted_vectors_are_clear_errors(tmp_path):
    kv = KeyedVectors(["a", "b"], np.ones((2, 4), dtype=np.float32))
    kv.save_word2vec_format(tmp_path / "v.bin", binary=True)
    data = (tmp_path / "v.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:-6])
    with pytest.raises(DeepzooError, match="truncated at word 2 of 2"):
        KeyedVectors.load_word2vec_format(tmp_path / "cut.bin", binary=True)
    (tmp_path / "bad.bin").write_bytes(b"two 4\n" + data.partition(b"\n")[2])
    with pytest.raises(DeepzooError, match="line 1: expected the header"):
        KeyedVectors.load_word2vec_format(tmp_path / "bad.bin", binary=True)
    (tmp_path / "bad.txt").write_text("2 2\na 1 x\nb 1 2\n")
    with pytest.raises(DeepzooError, match="line 2: not a number"):
        KeyedVectors.load_word2vec_format(tmp_path / "bad.txt")


def test_chinese_vectors_are_not_scored_on_the_english_sets(shared_data):
    from deepzoo import recipes
    from deepzoo.recipes.word2vec import evaluate
    kv = KeyedVectors(["好", "差", "服务"], np.eye(3, 4, dtype=np.float32))
    cfg = recipes.get("word2vec-chinese").full_defaults()
    assert evaluate(kv, cfg, shared_data) == {"vocab_size": 3}
    cfg = recipes.get("word2vec-ptb").full_defaults()
    assert "analogy_acc" in evaluate(kv, cfg, shared_data)


def test_training_leaves_pytorchs_thread_count_as_it_was():
    """numba's OpenMP layer is PyTorch's: setting its threads for the kernel must not change what every later
    PyTorch computation in the process uses (the tour trains recipes after word2vec)."""
    import torch
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        corpus = ListCorpus(_topic_corpus(10))
        Word2Vec(vector_size=8, min_count=1, epochs=1, workers=2).build_vocab(corpus).train(corpus)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
