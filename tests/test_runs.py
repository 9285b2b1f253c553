"""`deepzoo list` and the figures file it reads (the README's table is generated from the same file), and
`deepzoo runs`: the run folders' states, the settings changed, --compare's plot; train.tensorboard.

CLI calls run in this process (deepzoo.cli.main with capsys): a subprocess costs seconds of torch import."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from deepzoo import figures, recipes
from deepzoo.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


# --- the figures file, deepzoo list, the README ----------------------------------------------------

def test_figures_file_holds_one_default_entry_per_recipe_and_is_consistent():
    names = [r.name for r in recipes.all_recipes()]
    data = figures.load()
    assert figures.problems(data, names) == []
    heads = {e["recipe"]: e for e in data["entries"] if e["variant"] is None}
    for name in names:
        e = heads[name]
        assert e["metric"] == recipes.get(name).reference.metric, name     # beside the reference: like for like
        if e["status"] == "measured":
            assert e["command"] and e["machine"] and e["date"], name


def test_list_fits_100_columns_sorted_by_family_and_agrees_with_the_file(capsys):
    rc, out, _ = run_cli(capsys, "list")
    assert rc == 0
    lines = out.rstrip("\n").splitlines()
    assert max(map(len, lines)) <= 100
    heads = {e["recipe"]: e for e in figures.entries() if e["variant"] is None}
    rows = {l.split()[0]: l for l in lines[2:] if l and l.split()[0] in heads}
    assert sorted(rows) == sorted(r.name for r in recipes.all_recipes())
    order = [l.split()[0] for l in lines[2:] if l and l.split()[0] in heads]
    assert order == sorted(order, key=lambda n: (recipes.get(n).family.lower(), n))
    for name, line in rows.items():
        r, e = recipes.get(name), heads[name]
        assert figures.short_status(e) in line
        if r.reference.value is not None:
            assert figures.format_value(r.reference.metric, r.reference.value) in line
    assert "99.12%" in rows["logreg-binary"] and "97.50%" in rows["logreg-binary"] and "meets" in rows["logreg-binary"]
    assert "0.523" in rows["mlp-regression"] and "106.70" in rows["vae-mnist"] and "98.91" in rows["vae-mnist"]
    assert "not yet" in rows["bilstm-waimai"]


def test_list_json_parses_and_agrees_with_the_file(capsys):
    rc, out, _ = run_cli(capsys, "list", "--json")
    assert rc == 0
    data = json.loads(out)
    groups = figures.by_recipe()
    assert [r["recipe"] for r in data["recipes"]] == sorted(
        (r.name for r in recipes.all_recipes()), key=lambda n: (recipes.get(n).family.lower(), n))
    for r in data["recipes"]:
        assert r["figures"] == groups[r["recipe"]]
        head = groups[r["recipe"]][0]
        assert r["reached"]["text"] == figures.reached_text(head, plain=True)
        assert r["reached"]["value"] == head["value"]
        assert r["reference"]["value"] == recipes.get(r["recipe"]).reference.value


def test_list_wide_gives_commands_machines_and_variants(capsys):
    rc, out, _ = run_cli(capsys, "list", "--wide")
    assert rc == 0
    assert "command: python -m deepzoo.cputarget avx2 -- python benchmarks/cifar.py" in out
    assert "results: benchmarks/results/cifar-avx2.json" in out
    assert "machine: AMD EPYC, AVX-512" in out
    assert "GloVe 6B 50-d vectors: 83.72% dev accuracy" in out


def test_readme_table_is_generated_from_the_figures_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert figures.replace_block(readme, figures.readme_block()) == readme, \
        "README.md's recipe table is out of date: python scripts/readme_table.py"
    table = readme[readme.index(figures.BEGIN):readme.index(figures.END)]
    for e in figures.entries():
        assert figures.reached_text(e) in table
    low = readme.lower()      # it cites benchmarks and commands, not issues or notes kept outside the repository
    assert not re.search(r"\bissues?\s*#?\d|closing notes?|the notes'", low)


def test_format_value_is_one_format_per_metric():
    assert figures.format_value("test_acc", 0.9911) == "99.11%"
    assert figures.format_value("eval_success_rate", 0.7) == "70.00%"
    assert figures.format_value("test_nelbo", 106.7) == "106.70"
    assert figures.format_value("test_fd", 214.4582) == "214.5"
    assert figures.format_value("ws353_spearman", 0.1755) == "0.176"      # half up, as written
    assert figures.format_value("test_ppl", 114.5) == "114.50"
    assert figures.format_value("vocab_size", 12345) == "12,345"
    assert figures.seconds_text(2346.88) == "2,347 s" and figures.seconds_text(0.2) == "<1 s"


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (ROOT / "benchmarks" / "results").is_dir(), reason="benchmarks/ not in this checkout")
def test_benchmarks_record_the_figures_their_results_hold(tmp_path, monkeypatch):
    """Each benchmark's --record, fed its stored JSON output, sets the figure the file already holds."""
    copy = tmp_path / "figures.json"
    shutil.copy(figures.FILE, copy)
    monkeypatch.setattr(figures, "FILE", copy)
    before = {(e["recipe"], e["variant"]): e for e in figures.entries()}
    for bench, results in [("cifar", "cifar-avx2.json"), ("generative", "generative.json"), ("ptb", "ptb.json"),
                           ("translation", "translation.json"), ("charlm", "charlm.json"),
                           ("qlearning", "qlearning.json"), ("dqn", "dqn.json"), ("gcn", "gcn.json"),
                           ("word2vec", "word2vec-ptb-once.json")]:
        path = f"benchmarks/results/{results}"
        _load_benchmark(bench).record(json.loads((ROOT / path).read_text()), str(ROOT / path))
    after = {(e["recipe"], e["variant"]): e for e in figures.entries()}
    assert after.keys() == before.keys()
    changed = [k for k in after if after[k] != before[k]]
    assert len(changed) == 13
    for k in changed:
        new, old = after[k], before[k]
        assert (new["value"], new["metric"], new["results"]) == (old["value"], old["metric"], old["results"]), k
        assert new["family"] == old["family"] and new["cpu_flags"] is not None
        assert figures.format_value(new["metric"], new["value"]) in figures.reached_text(new)
    assert figures.problems(figures.load(), [r.name for r in recipes.all_recipes()]) == []


def test_record_adds_a_variant_and_replaces_it(tmp_path):
    path = tmp_path / "figures.json"
    figures.write({"format": 1, "entries": []}, path)
    figures.record("logreg-binary", 0.98, variant="lr 0.01", command="deepzoo train logreg-binary --set optim.lr=0.01",
                   train_seconds=3.2, path=path, date="2026-12-03")
    e, = figures.entries(path)
    assert (e["value"], e["time"], e["reached"], e["date"]) == (0.98, "3 s", "{value} test_acc", "2026-12-03")
    figures.record("logreg-binary", 0.99, variant="lr 0.01", path=path)
    e, = figures.entries(path)
    assert e["value"] == 0.99 and e["figures"] == {"test_acc": 0.99}
    with pytest.raises(figures.DeepzooError, match="time"):
        figures.record("logreg-binary", 0.9, train_seconds=50, time="3 s", path=path)


# --- deepzoo runs ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A folder with a finished, a killed (checkpoints and metrics, no summary), a diverged and a
    not-started run."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "logreg-binary", "--epochs", "3", "--set", "optim.lr=0.01", "--out", str(root / "fin"),
                 "--quiet"]) == 0
    assert main(["train", "logreg-binary", "--epochs", "2", "--out", str(root / "other"), "--quiet"]) == 0
    killed = root / "killed"
    killed.mkdir()
    for name in ("config.json", "checkpoints", "inference"):
        src = root / "fin" / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, killed / name)
    (killed / "metrics.jsonl").write_text("".join((root / "fin" / "metrics.jsonl").read_text().splitlines(True)[:2]))
    # SGD at lr 100 on a squared loss: the loss overflows within a few steps (within the schema's lr range)
    assert main(["train", "mlp-regression", "--set", "optim.name=sgd", "--set", "optim.lr=100", "--set",
                 "optim.momentum=0.0", "--epochs", "3", "--out", str(root / "div"), "--quiet"]) == 3
    (root / "waiting").mkdir()
    shutil.copy(root / "fin" / "config.json", root / "waiting" / "config.json")
    (root / "not-a-run").mkdir()
    return root


def test_runs_table_tells_finished_killed_diverged_and_not_started(run_folder, capsys):
    rc, out, err = run_cli(capsys, "runs", str(run_folder))
    assert rc == 0, err
    rows = {l.split()[0]: l for l in out.splitlines()[2:]}
    assert sorted(rows) == ["div", "fin", "killed", "other", "waiting"]
    assert "finished" in rows["fin"] and "93.86%" not in rows["killed"]
    assert "lr=0.01" in rows["fin"] and "epochs=3" in rows["fin"] and "97.50%" in rows["fin"]
    assert rows["killed"].rstrip().endswith("stopped after epoch 2/3")
    assert rows["div"].rstrip().endswith("diverged at epoch 1/3") and "lr=100" in rows["div"]
    assert rows["waiting"].rstrip().endswith("not started")
    assert "epochs=2" in rows["other"] and "lr=" not in rows["other"]
    diverged = json.loads((run_folder / "div" / "diverged.json").read_text())
    assert diverged["epoch"] == 1 and "loss became" in diverged["message"]
    rc, out, _ = run_cli(capsys, "runs", str(run_folder), "--json")
    states = {r["run"]: r["state"] for r in json.loads(out)}
    assert states == {"fin": "finished", "other": "finished", "killed": "stopped", "div": "diverged",
                      "waiting": "not started"}


def test_runs_compare_draws_one_plot_and_prints_side_by_side(run_folder, capsys, tmp_path):
    from PIL import Image
    png = tmp_path / "cmp.png"
    rc, out, err = run_cli(capsys, "runs", str(run_folder), "--compare", "fin", str(run_folder / "killed"),
                           "other", "--out", str(png))
    assert rc == 0, err
    assert Image.open(png).size[0] > 500
    lines = out.splitlines()
    assert lines[0].split() == ["fin", str(run_folder / "killed"), "other"]
    table = {l.split()[0]: l for l in lines[2:] if l.strip()}
    assert "val_acc" in table["monitored"] and "(epoch" in table["best"]
    assert "stopped after epoch 2/3" in table["state"]
    rc, _, err = run_cli(capsys, "runs", str(run_folder), "--compare", "nope")
    assert rc == 2 and "nope is not a run folder" in err


def test_runs_on_a_missing_folder_is_one_line(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "runs", str(tmp_path / "none"))
    assert rc == 2 and err.count("\n") == 1 and "is not a folder" in err
    rc, out, _ = run_cli(capsys, "runs", str(tmp_path))
    assert rc == 0 and "no run folders" in out


# --- train.tensorboard ---------------------------------------------------------------------------

def test_tensorboard_without_the_package_is_one_line(capsys, tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)      # import fails, as without the package
    rc, _, err = run_cli(capsys, "train", "logreg-binary", "--epochs", "1", "--set", "train.tensorboard=true",
                         "--out", str(tmp_path / "r"), "--quiet")
    assert rc == 2 and err.count("\n") == 1 and "pip install tensorboard" in err


def test_tensorboard_event_files_hold_each_epoch_and_step(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed "
                                              "(pip install -e \".[tensorboard]\")")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    assert main(["train", "logreg-binary", "--epochs", "2", "--set", "train.tensorboard=true",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 0
    acc = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "val/loss", "val/acc", "lr", "step/train_loss"} <= set(tags)
    assert [e.step for e in acc.Scalars("val/acc")] == [1, 2]
    rows = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in acc.Scalars("val/acc")] == pytest.approx([r["val_acc"] for r in rows])
    assert len(acc.Scalars("step/train_loss")) == rows[-1]["step"]
