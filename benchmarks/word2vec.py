"""Word2Vec: deepzoo's compiled kernel against gensim, same corpus, same settings, one command.

Settings (both libraries): vector_size 100, window 5, negative 5 (or hierarchical softmax), sample 1e-3,
min_count 5, 2 worker threads, 5 epochs, alpha 0.025 -> 0.0001. The corpus is PTB train repeated until
it has at least ``--words`` words (10 million by default), written once to a temporary file that both
libraries stream line by line (``--corpus PATH`` uses your own file instead).

Each (library, model, seed) trains in a fresh subprocess, so that its peak memory (max RSS) is its own.
With ``--seeds N`` every model trains N times per library (seeds 1..N); the table gives the mean and the
spread of each figure, since one run's WordSim-353 Spearman (about 240 pairs in PTB's vocabulary) moves by
a point or more from seed to seed.
Timed: ``train`` only (vocabulary building is reported apart); deepzoo's kernel is compiled (or read from
numba's cache) before the clock starts, as gensim's is compiled ahead. words/s = corpus words x epochs /
training seconds, for both. The whole process is timed too (``process_words_per_s``: from the worker's
launch until its vectors are trained: interpreter start, imports, numba's cache, vocabulary, training).
deepzoo runs with its defaults, so skip-gram draws one set of negatives per window (``shared_negatives``,
deepzoo/models/word2vec_fast.py); gensim draws them per context word. Both sets of vectors are scored by the same code (deepzoo's KeyedVectors):
Google analogies (3CosAdd, restrict_vocab 30,000) and WordSim-353 Spearman.

The streaming check trains deepzoo for one epoch on a corpus 5x larger (``--big-words``, 50 million by
default) with the same vocabulary and compares peak memory with the 10-million-word run's.

    pip install gensim          # optional: without it only deepzoo's side is measured
    python benchmarks/word2vec.py --data-dir ../shared/data
    python benchmarks/word2vec.py --data-dir ../shared/data --corpus ../shared/data/ptb/ptb.train.txt \
        --models skipgram-ns --seeds 3 --big-words 0 --record benchmarks/results/word2vec-ptb-once.json

``--record FILE`` also writes the JSON to FILE and, when the corpus is PTB train itself (``--corpus
.../ptb.train.txt``, the word2vec-ptb recipe's corpus, with its settings: skip-gram, negative sampling,
5 epochs), sets word2vec-ptb's figure in deepzoo/figures.json: the mean WordSim-353 Spearman of the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # a worker's process: imports done from here on count as its own

from deepzoo import figures  # noqa: E402

SETTINGS = dict(vector_size=100, window=5, min_count=5, sample=1e-3, alpha=0.025, min_alpha=1e-4, workers=2,
                epochs=5)
MODELS = {"skipgram-ns": dict(sg=1, hs=0, negative=5), "cbow-ns": dict(sg=0, hs=0, negative=5),
          "skipgram-hs": dict(sg=1, hs=1, negative=0), "cbow-hs": dict(sg=0, hs=1, negative=0)}


def make_corpus(source: Path, words: int, dest: Path) -> int:
    text = source.read_text()
    per_copy = len(text.split())
    copies = -(-words // per_copy)
    with open(dest, "w") as f:
        for _ in range(copies):
            f.write(text)
    return per_copy * copies


def worker(lib: str, model: str, corpus: str, eval_dir: str, epochs: int, seed: int = 1) -> dict:
    """One training in this process; prints a JSON line."""
    params = {**SETTINGS, **MODELS[model], "epochs": epochs}
    if lib == "gensim":
        from gensim.models import Word2Vec as GensimW2V
        from gensim.models.word2vec import LineSentence
        sentences = LineSentence(corpus)
        m = GensimW2V(**params, seed=seed)
        start = time.perf_counter()
        m.build_vocab(sentences)
        vocab_seconds = time.perf_counter() - start
        start = time.perf_counter()
        m.train(sentences, total_examples=m.corpus_count, epochs=epochs)
        seconds = time.perf_counter() - start
        words, vectors = list(m.wv.index_to_key), m.wv.vectors
        corpus_words = m.corpus_total_words
    else:
        from deepzoo.data.corpus import LineCorpus, ListCorpus
        from deepzoo.models.word2vec_fast import Word2Vec
        warm = Word2Vec(vector_size=8, min_count=1, workers=2, **{k: v for k, v in MODELS[model].items()})
        warm.build_vocab(ListCorpus([["a", "b", "c", "a"]] * 4)).train(ListCorpus([["a", "b", "c", "a"]] * 4))
        sentences = LineCorpus(corpus, "space")
        m = Word2Vec(**{k: (bool(v) if k in ("sg", "hs") else v) for k, v in params.items()}, seed=seed)
        start = time.perf_counter()
        m.build_vocab(sentences)
        vocab_seconds = time.perf_counter() - start
        start = time.perf_counter()
        m.train(sentences)
        seconds = time.perf_counter() - start
        words, vectors, corpus_words = m.words, m.syn0, m.corpus_words
    from deepzoo.models.keyedvectors import KeyedVectors
    kv = KeyedVectors(words, vectors)
    result = {"lib": lib, "model": model, "seed": seed, "corpus_words": int(corpus_words), "vocab": len(words),
              "epochs": epochs, "vocab_seconds": round(vocab_seconds, 2), "train_seconds": round(seconds, 2),
              "words_per_s": round(corpus_words * epochs / seconds, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    result["seconds_before_scoring"] = round(time.perf_counter() - STARTED, 2)
    if eval_dir:
        folder = Path(eval_dir)
        a = kv.evaluate_word_analogies(folder / "questions-words.txt", restrict_vocab=30_000)
        w = kv.evaluate_word_pairs(folder / "wordsim353.tsv", restrict_vocab=30_000)
        result.update(analogy_acc=round(a["accuracy"], 4), analogy_questions=a["total"],
                      ws353_spearman=round(w["spearman"], 4), ws353_oov_ratio=round(w["oov_ratio"], 3))
    return result


def run_worker(*args) -> dict:
    """One worker process; adds ``process_seconds``: from its launch until its vectors were trained (the
    interpreter's start, imports, vocabulary, training; not the scoring), and the words/s over that."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"worker {args[:2]} failed:\n{stderr[-3000:]}")
    r = json.loads(stdout.strip().splitlines()[-1])
    # the worker's clock starts once this script is imported; the interpreter's start-up before it is
    # taken from the launch, which the worker cannot see: wall minus the worker's time after training
    wall = time.perf_counter() - start
    r["process_seconds"] = round(wall - (r.pop("seconds_total") - r["seconds_before_scoring"]), 2)
    r["process_words_per_s"] = round(r["corpus_words"] * r["epochs"] / r["process_seconds"], 1)
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--corpus", help="your own text file (space-separated tokens) instead of repeated PTB")
    p.add_argument("--words", type=int, default=10_000_000)
    p.add_argument("--big-words", type=int, default=50_000_000, help="0 skips the streaming check")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    p.add_argument("--seeds", type=int, default=1, help="trainings per library and model (default 1)")
    p.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    figures.add_record_argument(p)
    args = p.parse_args()
    if args.worker:
        lib, model, corpus, eval_dir, epochs, seed = args.worker
        r = worker(lib, model, corpus, "" if eval_dir == "-" else eval_dir, int(epochs), int(seed))
        print(json.dumps({**r, "seconds_total": round(time.perf_counter() - STARTED, 2)}))
        return

    from deepzoo.data import registry
    from deepzoo.errors import DeepzooError
    try:
        eval_dir = str(registry.locate("wordvec-eval", args.data_dir))
    except DeepzooError:
        eval_dir = "-"
    try:
        import gensim
        libs, gensim_version = ["deepzoo", "gensim"], gensim.__version__
    except ImportError:
        libs, gensim_version = ["deepzoo"], None
    with tempfile.TemporaryDirectory() as tmp:
        if args.corpus:
            corpus, words = args.corpus, None
        else:
            ptb = registry.locate("ptb", args.data_dir) / "ptb.train.txt"
            corpus = str(Path(tmp) / "ptb-repeated.txt")
            words = make_corpus(ptb, args.words, Path(corpus))
        runs = []
        for model in args.models.split(","):
            for seed in range(1, args.seeds + 1):
                for lib in libs:
                    r = run_worker(lib, model, corpus, eval_dir, args.epochs, seed)
                    print(json.dumps(r), file=sys.stderr, flush=True)
                    runs.append(r)
        streaming = None
        if args.big_words and not args.corpus:
            big = str(Path(tmp) / "ptb-big.txt")
            big_words = make_corpus(ptb, args.big_words, Path(big))
            small_run = run_worker("deepzoo", "skipgram-ns", corpus, "-", 1, 1)
            big_run = run_worker("deepzoo", "skipgram-ns", big, "-", 1, 1)
            streaming = {"small_words": words, "big_words": big_words, "small_peak_rss_mb": small_run["peak_rss_mb"],
                         "big_peak_rss_mb": big_run["peak_rss_mb"],
                         "ratio": round(big_run["peak_rss_mb"] / small_run["peak_rss_mb"], 3)}
    table = {}
    for model in args.models.split(","):
        row = {}
        for lib in libs:
            mine = [r for r in runs if r["model"] == model and r["lib"] == lib]
            row[lib] = {"runs": mine, **{f"mean_{k}": round(statistics.mean(r[k] for r in mine), 4)
                                          for k in ("words_per_s", "process_words_per_s", "analogy_acc",
                                                    "ws353_spearman", "peak_rss_mb")
                                          if k in mine[0]}}
            if len(mine) > 1 and "ws353_spearman" in mine[0]:
                row[lib]["stdev_ws353_spearman"] = round(statistics.stdev(r["ws353_spearman"] for r in mine), 4)
                row[lib]["stdev_analogy_acc"] = round(statistics.stdev(r["analogy_acc"] for r in mine), 4)
        if "gensim" in row:
            d, g = row["deepzoo"], row["gensim"]
            row["speed_ratio"] = round(d["mean_words_per_s"] / g["mean_words_per_s"], 3)
            row["process_speed_ratio"] = round(d["mean_process_words_per_s"] / g["mean_process_words_per_s"], 3)
            if "mean_analogy_acc" in d:
                row["analogy_points_vs_gensim"] = round(100 * (d["mean_analogy_acc"] - g["mean_analogy_acc"]), 2)
                row["ws353_points_vs_gensim"] = round(100 * (d["mean_ws353_spearman"] - g["mean_ws353_spearman"]), 2)
        table[model] = row
    result = {"benchmark": "word2vec vs gensim", "settings": SETTINGS, "seeds": args.seeds, "corpus": corpus if args.corpus
              else f"PTB train repeated to {words} words", "gensim": gensim_version, "models": table,
              "streaming": streaming, "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine()}
    print(json.dumps(result, indent=1))
    if args.record:
        figures.write_results(args.record, result)
        if not (args.corpus and args.epochs == SETTINGS["epochs"] and record(result, args.record)):
            print("not recorded in deepzoo/figures.json: word2vec-ptb's figure needs --corpus .../ptb.train.txt, "
                  "skipgram-ns, the default epochs and the WordSim-353 data", file=sys.stderr)


def record(result: dict, path: str) -> bool:
    """word2vec-ptb's figure (deepzoo's mean WordSim-353 Spearman over the seeds, skip-gram with negative
    sampling on PTB train itself) into deepzoo/figures.json; False when this result does not measure it."""
    ours = result["models"].get("skipgram-ns", {}).get("deepzoo", {})
    if Path(str(result["corpus"])).name != "ptb.train.txt" or "mean_ws353_spearman" not in ours:
        return False
    seconds = [r["train_seconds"] for r in ours["runs"]]
    figures.record("word2vec-ptb", ours["mean_ws353_spearman"], results=path,
                   reached=f"WordSim-353 Spearman {{value}}, mean of {len(seconds)} seed"
                           f"{'s' if len(seconds) > 1 else ''} (deepzoo's kernel with the recipe's settings)",
                   time=f"{min(seconds):.0f}-{max(seconds):.0f} s a seed" if len(seconds) > 1
                   else figures.seconds_text(seconds[0]),
                   figures={"stdev": ours.get("stdev_ws353_spearman")})
    return True


if __name__ == "__main__":
    main()
