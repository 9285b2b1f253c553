"""Word2Vec recipes: ``word2vec-ptb``, ``word2vec-chinese`` and ``word2vec-text`` (your own corpus).

They train with the compiled kernel (deepzoo/models/word2vec_fast.py), not through the engine: a run
folder holds ``config.json``, ``metrics.jsonl`` (one line per epoch: words/s, loss), ``vectors.bin``
(word2vec.c's binary format, which gensim reads) and ``summary.json`` with the evaluation; while training,
``checkpoints/`` (every train.checkpoint_seconds, after a job of words: the tables and the position in the
corpus), from which ``deepzoo resume`` continues a killed run (exactly with ``model.workers=1``).

Corpora (``data.corpus``):

- ``ptb``: the PTB training text (887k words), as in Dive into Deep Learning's word2vec chapter.
- ``chinese``: the Chinese review texts, segmented with jieba: the *training* splits of ChnSentiCorp
  and waimai_10k (the same fixed splits as the sentiment recipes, so vectors trained here never saw
  the sentiment recipes' validation or test texts).
- ``path``: ``data.path``, a text file or a folder of them, streamed line by line (never loaded whole),
  tokenised by ``data.tokenizer`` (``space``: as written; ``en``; ``zh``: jieba; ``zh-char``).

English vectors are evaluated on the Google analogy questions (3CosAdd, among the ``eval.restrict_vocab``
most frequent words), WordSim-353 and SimLex-999 (Spearman correlation), when ../shared/data/wordvec-eval
(or ``deepzoo data fetch wordvec-eval``) is present.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from deepzoo.data.corpus import LineCorpus, ListCorpus
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.recipes import Recipe, Reference, each, register

MODEL_KEYS = ("vector_size", "window", "min_count", "sg", "hs", "negative", "ns_exponent", "cbow_mean",
              "sample", "alpha", "min_alpha", "workers", "compute_loss", "shared_negatives")


@dataclass
class Job:
    corpus: object
    description: str
    data_dir: object = None


def _eval_folder(data_dir):
    from deepzoo.data import registry
    try:
        return registry.locate("wordvec-eval", data_dir)
    except DeepzooError:
        return None


def build(cfg: dict, data_dir) -> Job:
    d = cfg["data"]
    if d["corpus"] == "ptb":
        if d["sample"]:
            path = samples_dir() / "text" / "ptb" / "sample-ptb.train.txt"
        else:
            from deepzoo.data import registry
            path = registry.locate("ptb", data_dir) / "ptb.train.txt"
        return Job(LineCorpus(path, "space"), f"PTB train ({path.name})", data_dir)
    if d["corpus"] == "chinese":
        from deepzoo.data.text import get_tokenizer
        from deepzoo.recipes.text import read_splits
        texts = []
        for name in ("chnsenticorp", "waimai"):
            sub = {"data": {"dataset": name, "sample": d["sample"], "split_seed": 0, "path": ""}}
            texts += read_splits(sub, data_dir)[0]["train"][0]
        tokenize = get_tokenizer("zh")
        return Job(ListCorpus([t for t in (tokenize(x) for x in texts) if t]),
                   f"ChnSentiCorp + waimai_10k training reviews ({len(texts)})", data_dir)
    if d["corpus"] == "path":
        if not d["path"]:
            raise DeepzooError("data.path: give a text file or folder, e.g. --set data.path=corpus.txt")
        return Job(LineCorpus(d["path"], d["tokenizer"]), str(d["path"]), data_dir)
    raise DeepzooError(f"data.corpus: unknown corpus '{d['corpus']}' (ptb, chinese, path)")


TABLES = ("syn0", "syn1neg", "syn1")   # input vectors, negative-sampling and hierarchical-softmax outputs


def fit(job: Job, cfg: dict, run_dir: Path, progress: bool, log, append_metrics, checkpoints) -> dict:
    """Train; every train.checkpoint_seconds, after a job of words, checkpoint the three tables and the
    position in the corpus (epoch, job, the epoch's sums); a resumed run reads the corpus again (the same
    vocabulary, checked by its fingerprint) and goes on from that job."""
    from deepzoo.models.word2vec_fast import Word2Vec
    m = cfg["model"]
    try:
        model = Word2Vec(epochs=cfg["train"]["epochs"], seed=cfg["seed"] + 1, **{k: m[k] for k in MODEL_KEYS})
        model.build_vocab(job.corpus)
    except ValueError as e:
        raise DeepzooError(str(e)) from None
    log(f"corpus: {job.description}: {model.corpus_words:,} words in {model.corpus_sentences:,} lines; "
        f"vocabulary {len(model.words):,} (min_count {m['min_count']})")
    digest, position, before = model.vocabulary_digest(), None, 0.0
    if checkpoints.resumed is not None:
        arrays, state = checkpoints.resumed
        if state["vocabulary"] != digest:
            raise DeepzooError(f"{job.description} is not the corpus this run's checkpoint was trained on (its "
                               f"vocabulary differs); train again into a new folder")
        for name in TABLES:
            getattr(model, name)[...] = arrays[name]
        position, before = state["position"], state["train_seconds"]
        log(f"resuming {run_dir} in epoch {position['epoch'] + 1}, after {position['words']:,} of its words")
    start = time.perf_counter() - before

    def on_epoch(row):
        append_metrics({"epoch": row["epoch"], **({"train_loss": row["loss"]} if row["loss"] is not None else {}),
                        "words_per_s": row["words_per_s"], "train_seconds": round(time.perf_counter() - start, 3)})
        log(f"epoch {row['epoch']}/{cfg['train']['epochs']}  {row['words_per_s']:,.0f} words/s"
            + (f"  loss {row['loss']:.4f}" if row["loss"] is not None else ""))

    def on_position(where: dict) -> None:
        if checkpoints.due():
            checkpoints.save(f"epoch-{where['epoch'] + 1:04d}-job-{where['job']:06d}",
                             {name: getattr(model, name) for name in TABLES},
                             {"position": where, "vocabulary": digest, "train_seconds": time.perf_counter() - start})

    model.train(job.corpus, progress=progress, on_epoch=on_epoch, on_position=on_position, start=position)
    seconds = time.perf_counter() - start
    kv = model.wv
    kv.save_word2vec_format(run_dir / "vectors.bin", binary=True)
    return {"results": evaluate(kv, cfg, job.data_dir), "epochs_run": cfg["train"]["epochs"],
            "train_seconds": seconds, "parameters": int(model.syn0.size + model.syn1neg.size + model.syn1.size)}


def load(run_dir: Path, cfg: dict):
    from deepzoo.models.keyedvectors import KeyedVectors
    path = Path(run_dir) / "vectors.bin"
    if not path.exists():
        raise DeepzooError(f"{run_dir} has no vectors.bin yet; the run did not finish (train it again)")
    return KeyedVectors.load_word2vec_format(path, binary=True)


def _english(cfg: dict) -> bool:
    """Whether the corpus is English text, which the English evaluation sets can score."""
    d = cfg["data"]
    return d["corpus"] == "ptb" or (d["corpus"] == "path" and d["tokenizer"] in ("en", "space"))


def evaluate(kv, cfg: dict, data_dir) -> dict:
    """Vocabulary size, and for English vectors the analogy accuracy and the word-similarity scores."""
    results = {"vocab_size": len(kv)}
    folder = _eval_folder(data_dir) if _english(cfg) else None
    if folder is None:
        return results
    restrict = cfg["eval"]["restrict_vocab"]
    analogies = kv.evaluate_word_analogies(folder / "questions-words.txt", restrict_vocab=restrict)
    results.update(analogy_acc=analogies["accuracy"], analogy_questions=analogies["total"])
    for name, file in (("ws353", "wordsim353.tsv"), ("simlex", "simlex999.txt")):
        try:
            pairs = kv.evaluate_word_pairs(folder / file, restrict_vocab=restrict)
        except DeepzooError:  # too few pairs in the vocabulary (a tiny corpus)
            continue
        results[f"{name}_spearman"], results[f"{name}_oov_ratio"] = pairs["spearman"], pairs["oov_ratio"]
    return results


ANALOGY = re.compile(r"^\s*(\S+)\s*:\s*(\S+)\s*::\s*(\S+?)\s*(?::\s*\??\s*)?$")


def predict(kv, cfg: dict, text: str) -> dict:
    """``word`` -> its nearest neighbours; ``a:b::c:?`` -> the analogy's answers."""
    match = ANALOGY.match(text)
    if match:
        a, b, c = match.groups()
        return {"input": text, "analogy": f"{a} : {b} :: {c} : ?",
                "answers": [{"word": w, "cosine": round(s, 4)} for w, s in kv.analogy(a, b, c, topn=5)]}
    words = text.split()
    if len(words) != 1:
        raise DeepzooError(f"'{text}': give one word (its neighbours) or an analogy a:b::c:?")
    return {"input": text, "neighbours": [{"word": w, "cosine": round(s, 4)} for w, s in kv.most_similar(words[0])]}


MODEL = {"vector_size": 100, "window": 5, "min_count": 5, "sg": True, "hs": False, "negative": 5,
         "ns_exponent": 0.75, "cbow_mean": True, "sample": 1e-3, "alpha": 0.025, "min_alpha": 1e-4,
         "workers": 0, "compute_loss": True, "shared_negatives": True}
DATA = {"corpus": "ptb", "sample": False, "path": "", "tokenizer": "space"}
EVAL = {"restrict_vocab": 30_000}


def _recipe(name, dataset, description, reference, data, quick):
    register(Recipe(
        name=name, family="Word2Vec", dataset=dataset, description=description, reference=reference,
        defaults={"data": {**DATA, **data}, "model": dict(MODEL), "eval": dict(EVAL), "train": {"epochs": 5}},
        presets={"quick": quick}, build=build, fit=fit, load=load, evaluate=evaluate, predict=each(predict),
        predict_help="a word (its neighbours) or an analogy a:b::c:?"))


# A peer figure: gensim 4.4.0 trained on the same corpus with the same settings, mean of 3 seeds, measured
# by `python benchmarks/word2vec.py --corpus ../shared/data/ptb/ptb.train.txt --seeds 3 --models
# skipgram-ns --big-words 0` (benchmarks/results/word2vec-ptb-once.json). One run moves by about 0.01-0.02.
GENSIM_PTB = Reference("ws353_spearman", 0.1755, "gensim 4.4.0, same corpus and settings, mean of 3 seeds "
                       "(benchmarks/word2vec.py)", "https://radimrehurek.com/gensim/")
_recipe("word2vec-ptb", "ptb", "skip-gram, negative sampling, on PTB train (887k words)", GENSIM_PTB,
        {"corpus": "ptb"}, {"data": {"sample": True}, "model": {"min_count": 2, "vector_size": 32}, "train": {"epochs": 2}})
_recipe("word2vec-chinese", "Chinese reviews", "skip-gram on the ChnSentiCorp and waimai training reviews (jieba)",
        Reference("vocab_size", None, "no published figure; judged by the sentiment recipes it initialises"),
        {"corpus": "chinese"}, {"data": {"sample": True}, "model": {"min_count": 2, "vector_size": 32},
                                "train": {"epochs": 2}})
_recipe("word2vec-text", "your corpus", "skip-gram on your text file or folder (streamed)",
        Reference("vocab_size", None, "your corpus has no published figure"),
        {"corpus": "path", "tokenizer": "en"},
        {"data": {"path": str(samples_dir() / "text" / "ptb" / "sample-ptb.train.txt"), "tokenizer": "space"},
         "model": {"min_count": 2, "vector_size": 32}, "train": {"epochs": 2}})
