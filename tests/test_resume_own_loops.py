"""The recipes with loops of their own (word2vec's kernel, DQN, tabular Q-learning, the NumPy MLP) checkpoint
as the engine does and `deepzoo resume` continues them after a SIGKILL to the very result of an unbroken
run: the same learned tables or weights, byte for byte, and the same metrics rows."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# One thread (the word2vec kernel races with more; BLAS may split products differently under contention).
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
       "PYTHONWARNINGS": "ignore"}

# recipe arguments, the file holding what was learned, the metrics fields that are timings
CASES = {
    "word2vec-text": (["--epochs", "40", "--set", "model.workers=1"], "vectors.bin", ("train_seconds", "words_per_s")),
    "qlearning-frozenlake": (["--set", "train.episodes=6000"], "qtable.safetensors", ("train_seconds",)),
    "dqn-cartpole": (["--set", "train.steps=6000", "--set", "eval.every=1000"], "model.safetensors", ("train_seconds",)),
    "autograd-mlp-mnist": (["--epochs", "12"], "weights.safetensors", ("train_seconds",)),
}


def run(args):
    return subprocess.Popen([sys.executable, "-m", "deepzoo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def metrics(folder, timings):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in timings} for r in rows]


@pytest.mark.parametrize("recipe", list(CASES))
def test_sigkill_then_resume_ends_as_the_unbroken_run(recipe, tmp_path):
    extra, learned, timings = CASES[recipe]
    # a checkpoint every 0.3 s at the loop's own points: after a batch of words, an episode or an epoch
    args = ["train", recipe, "--preset", "quick", *extra, "--set", "train.checkpoint_seconds=0.3", "--quiet"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    p = run(args + ["--out", str(ref)])
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]

    p = run(args + ["--out", str(killed)])
    latest, names, deadline = killed / "checkpoints/latest.json", set(), time.time() + 300
    while len(names) < 2 and time.time() < deadline and p.poll() is None:   # the second checkpoint, then a bit
        try:
            names.add(json.loads(latest.read_text())["last"])
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    time.sleep(0.15)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert p.returncode == -signal.SIGKILL, "the run ended before the kill: make it longer"
    assert not (killed / "summary.json").exists()
    at = json.loads(latest.read_text())["last"]

    p = run(["resume", str(killed), "--quiet"])
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    assert f"resuming {killed}" in out, out
    assert (ref / learned).read_bytes() == (killed / learned).read_bytes(), f"resumed from {at}: {learned} differs"
    assert metrics(killed, timings) == metrics(ref, timings), "metrics.jsonl goes on without gaps or repeats"
    a, b = (json.loads((f / "summary.json").read_text())["results"] for f in (ref, killed))
    assert a == b


def test_resume_refuses_a_changed_corpus(tmp_path):
    """word2vec reads the corpus again on resume: a corpus changed since the checkpoint is one clear error."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 200)
    run_dir = tmp_path / "run"
    args = ["train", "word2vec-text", "--preset", "quick", "--set", f"data.path={corpus}", "--set", "model.min_count=1",
            "--set", "train.checkpoint_seconds=0", "--epochs", "3", "--out", str(run_dir), "--quiet"]
    p = run(args)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    (run_dir / "summary.json").unlink()                    # as if killed after its last checkpoint
    corpus.write_text("the cat sat on the mat\nthe bird sang in the tree\n" * 200)
    p = run(["resume", str(run_dir), "--quiet"])
    _, err = p.communicate(timeout=300)
    assert p.returncode != 0 and "is not the corpus this run's checkpoint was trained on" in err
    assert "Traceback" not in err
