"""The command line as a user meets it: listing, one-line errors, train/eval/predict, tour, data."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import run_deepzoo
from deepzoo.data.mnist import load_mnist


def _one_error_line(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert lines[0].startswith("deepzoo: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_list_shows_every_recipe_with_its_reference():
    out = run_deepzoo("list", check=True).stdout
    for name, ref in [("mlp-mnist", "98.40%"), ("cnn-mnist", "99.25%"), ("logreg-binary", "97.50%"),
                      ("mlp-regression", "0.523")]:
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert ref in line


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--wide"], ["list", "--json"], ["train", "--help"]])
def test_help_and_list_do_not_import_torch(argv):
    # importing torch is ~2.5 s of start-up on a 2-core machine: the commands that only read
    # (help, the recipe list) must not pay it (the index the list reads is checked in test_recipes.py)
    code = ("import sys, contextlib, io\nfrom deepzoo import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        cli.main({argv!r})\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False", f"deepzoo {' '.join(argv)} imported torch"


def test_help_explains():
    out = run_deepzoo("--help", check=True).stdout
    assert "deepzoo tour " in out and "resume" in out
    assert "--print-config" in run_deepzoo("train", "--help", check=True).stdout


def test_unknown_recipe_is_one_line():
    _one_error_line(run_deepzoo("train", "cnn-mnsit"), "unknown recipe 'cnn-mnsit'", "did you mean cnn-mnist")


def test_wrong_set_key_is_one_line(tmp_path):
    proc = run_deepzoo("train", "cnn-mnist", "--set", "optim.lrr=0.1", "--out", str(tmp_path / "r"))
    _one_error_line(proc, "unknown config key 'optim.lrr'", "optim.lr")
    assert not (tmp_path / "r").exists(), "a bad config must not create a run folder"


def test_print_config_lists_keys():
    out = run_deepzoo("train", "cnn-mnist", "--print-config", "--set", "optim.lr=0.01", check=True).stdout
    assert "optim.lr = 0.01" in out and "model.impl = \"torch\"" in out


def test_corrupted_mnist_is_one_line(shared_data, tmp_path):
    dst = tmp_path / "mnist"
    shutil.copytree(shared_data / "mnist", dst)
    path = dst / "train-labels-idx1-ubyte.gz"
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    proc = run_deepzoo("train", "mlp-mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"))
    _one_error_line(proc, "train-labels-idx1-ubyte.gz", "deepzoo data fetch mnist")


def test_missing_mnist_is_one_line(tmp_path):
    proc = run_deepzoo("train", "cnn-mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "r"))
    _one_error_line(proc, "mnist", "deepzoo data fetch mnist")


def test_existing_run_folder_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    run_deepzoo("train", "logreg-binary", "--epochs", "2", "--out", str(out), "--quiet", check=True)
    before = (out / "summary.json").read_bytes()
    _one_error_line(run_deepzoo("train", "logreg-binary", "--out", str(out)), "already holds a run",
                    "deepzoo resume")
    assert (out / "summary.json").read_bytes() == before


def test_train_eval_predict_on_the_shipped_sample(tmp_path):
    run = tmp_path / "cnn"
    out = run_deepzoo("train", "cnn-mnist", "--preset", "quick", "--out", str(run), "--quiet", check=True).stdout
    assert "cnn-mnist: test_acc" in out
    for name in ("config.json", "metrics.jsonl", "summary.json", "curves.png", "checkpoints/latest.json"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reference"]["value"] == 0.9925 and summary["metric"] == "test_acc"
    assert summary["value"] > 0.8, "three epochs on 4,000 images should already be far above chance"

    ev = run_deepzoo("eval", str(run), check=True).stdout
    assert f"{100 * summary['value']:.2f}%" in ev, "eval reproduces the summary's test figure"

    images, labels = load_mnist(sample=True)["test"]
    # One digit as MNIST stores it (white on black), and the same digit as a scan (black on white,
    # larger, off-centre): preprocessing must bring both to the same class.
    plain, scan = tmp_path / "digit.png", tmp_path / "scan.jpg"
    Image.fromarray(images[0]).save(plain)
    big = np.full((120, 100), 255, np.uint8)
    big[10:94, 5:89] = 255 - np.asarray(Image.fromarray(images[0]).resize((84, 84)))
    Image.fromarray(big).save(scan, quality=95)
    pred = run_deepzoo("predict", str(run), str(plain), str(scan), "--json", check=True).stdout
    results = [json.loads(l) for l in pred.splitlines() if l.startswith("{")]
    assert len(results) == 2
    for r in results:
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
    assert results[0]["class"] == results[1]["class"]

    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    _one_error_line(run_deepzoo("predict", str(run), str(bad)), "cannot read image", "not-an-image.png")


def test_tabular_predict_and_user_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 2 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=200)
    csv = tmp_path / "mine.csv"
    csv.write_text("a,b,c,target\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(x, y)))
    run = tmp_path / "reg"
    run_deepzoo("train", "mlp-regression", "--set", f"data.path={csv}", "--set", "data.target=target",
                "--epochs", "60", "--out", str(run), "--quiet", check=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["value"] > 0.9, "an almost linear target must be fitted well (test R^2)"
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c\n1,0,0\n0,1,0\n")
    pred = json.loads(run_deepzoo("predict", str(run), str(rows), check=True).stdout)
    values = [p["prediction"] for p in pred["predictions"]]
    assert values[0] == pytest.approx(2.0, abs=0.4) and values[1] == pytest.approx(-1.0, abs=0.4)

    broken = tmp_path / "broken.csv"
    broken.write_text("a,b,c,target\n1,2,3,4\n1,2,x,4\n")
    _one_error_line(run_deepzoo("train", "mlp-regression", "--set", f"data.path={broken}",
                                "--set", "data.target=target", "--out", str(tmp_path / "r2")),
                    "broken.csv, line 3", "'x' is not a number")
    _one_error_line(run_deepzoo("train", "mlp-regression", "--set", f"data.path={csv}",
                                "--set", "data.target=nope", "--out", str(tmp_path / "r3")),
                    "no column named 'nope'")


def test_tour_quick_writes_one_report(quick_tour):
    out = quick_tour
    report = (out / "report.html").read_text()
    from deepzoo.recipes import all_recipes
    for recipe in all_recipes():
        assert recipe.name in report
        assert (out / recipe.name / "summary.json").exists()
    # one training-curves plot per recipe trained by the engine (the RL recipes show their returns instead, the
    # word2vec and autograd ones have no per-epoch curves); the rest of what each model does: tests/test_tour.py
    curves = report.count("alt='training curves of ")
    assert curves == sum((out / r.name / "curves.png").exists() and not r.name.startswith(("qlearning", "dqn"))
                         for r in all_recipes()) and curves >= 25
    assert "tour report:" in (out / "stdout.txt").read_text()


def test_data_list_and_fetch_errors(shared_data):
    out = run_deepzoo("data", "list", "--data-dir", str(shared_data), check=True).stdout
    assert "mnist" in out and "verified" in out
    _one_error_line(run_deepzoo("data", "fetch", "mnsit"), "unknown dataset 'mnsit'")


def test_diverging_run_exits_3_with_one_line(tmp_path):
    # plain SGD at the largest rate the schema allows (100) sends a regression's squared error to inf in a few steps
    proc = run_deepzoo("train", "mlp-regression", "--set", "optim.name=sgd", "--set", "optim.lr=100",
                       "--set", "optim.momentum=0.0", "--epochs", "3", "--out", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "loss became" in proc.stderr
