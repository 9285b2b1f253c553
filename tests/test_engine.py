"""The training engine: schedules, metrics, augmentation, checkpoints, the NaN guard, early stopping,
and resuming a run killed with SIGKILL to bit-identical weights."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from deepzoo.data.batches import TensorBatches, random_shift
from deepzoo.errors import TrainingDiverged
from deepzoo.files import atomic_write_json
from deepzoo.train import checkpoint
from deepzoo.train.engine import ENGINE_DEFAULTS, Task, Trainer, read_metrics
from deepzoo.train.metrics import R2, RMSE, Accuracy
from deepzoo.train.schedules import lr_factor


def test_schedules():
    assert lr_factor("constant", 50, 100, 10) == 1.0
    assert lr_factor("cosine", 0, 100, 10) == 1.0
    assert lr_factor("cosine", 50, 100, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, 100, 10, min_factor=0.1) == pytest.approx(0.1)
    assert lr_factor("linear", 75, 100, 10) == pytest.approx(0.25)
    assert [lr_factor("cosine", s, 100, 10, warmup_steps=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor("step", 35, 100, 10, gamma=0.5, step_size=2) == pytest.approx(0.5)  # epoch 3
    assert lr_factor("exponential", 35, 100, 10, gamma=0.7) == pytest.approx(0.7 ** 3)


def test_metrics():
    acc = Accuracy()
    acc.update(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
    acc.update(torch.tensor([[-1.0], [2.0]]), torch.tensor([0, 0]))  # binary logits: sign
    assert acc.compute() == pytest.approx(3 / 5)
    y, p = torch.randn(50), torch.randn(50)
    r2, rmse = R2(), RMSE()
    for i in range(0, 50, 7):
        r2.update(p[i:i + 7], y[i:i + 7])
        rmse.update(p[i:i + 7], y[i:i + 7])
    expected = 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2.compute() == pytest.approx(float(expected), rel=1e-5)
    assert rmse.compute() == pytest.approx(float(((p - y) ** 2).mean().sqrt()), rel=1e-5)


def test_random_shift_moves_each_image_rigidly():
    x = torch.rand(64, 2, 9, 9) + 1.0  # strictly positive, so padding zeros are recognisable
    out = random_shift(2)(x, torch.Generator().manual_seed(0))
    seen = set()
    for n in range(64):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(out[n], torch.roll(torch.nn.functional.pad(x[n], (2, 2, 2, 2)),
                                                     (dy, dx), (1, 2))[:, 2:11, 2:11])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10, "offsets should vary across the batch"


def _toy_task(n=256, nan_after=None):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 2))
    calls = {"n": 0}

    def loss(out, target):
        calls["n"] += 1
        value = torch.nn.functional.cross_entropy(out, target)
        return value * float("nan") if nan_after is not None and calls["n"] > nan_after else value

    return Task(model=model, train=TensorBatches(x[:192], y[:192], 32, shuffle=True),
                val=TensorBatches(x[192:], y[192:], 64), test=TensorBatches(x[192:], y[192:], 64),
                loss=loss, metrics=[Accuracy], monitor="val_acc", headline="test_acc")


def _cfg(**train):
    cfg = json.loads(json.dumps(ENGINE_DEFAULTS))
    cfg["train"].update({"checkpoint_seconds": 0.0, **train})    # a checkpoint every epoch, unless a test says
    return cfg


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    task = _toy_task(nan_after=7 + 3)  # 6 training steps and 1 validation batch per epoch
    trainer = Trainer(task, _cfg(epochs=5), tmp_path, progress=False, log=lambda s: None)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2.*epoch-0001\) is kept"):
        trainer.fit()
    latest = checkpoint.read_latest(tmp_path / "checkpoints")
    assert latest["last"] == "epoch-0001"
    weights = load_file(str(tmp_path / "checkpoints" / "epoch-0001" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_early_stopping_and_checkpoint_pruning(tmp_path):
    task = _toy_task()
    cfg = _cfg(epochs=30, early_stopping=2)
    cfg["optim"]["lr"] = 0.0  # nothing improves after epoch 1
    trainer = Trainer(task, cfg, tmp_path, progress=False, log=lambda s: None)
    trainer.fit()
    assert trainer.stopped_early and trainer.epoch == 3 and trainer.best_epoch == 1
    dirs = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir())
    assert dirs == ["epoch-0001", "epoch-0003"], "keeps the best and the last, prunes the rest"
    assert checkpoint.read_latest(tmp_path / "checkpoints") == {"last": "epoch-0003", "best": "epoch-0001"}


def test_checkpoints_by_the_clock_keep_the_best_weights_and_the_same_results(tmp_path):
    # nothing is due by the clock in this short run: one checkpoint at the end, and the best epoch's weights
    # (held in memory since epoch 1) written beside it; the same files, weights and metrics as every epoch
    cfg = _cfg(epochs=30, early_stopping=2)
    cfg["optim"]["lr"] = 0.0
    runs = {}
    for name, seconds in (("every", 0.0), ("clock", 1e6)):
        cfg["train"]["checkpoint_seconds"] = seconds
        trainer = Trainer(_toy_task(), cfg, tmp_path / name, progress=False, log=lambda s: None)
        runs[name] = trainer.fit()
    root = tmp_path / "clock" / "checkpoints"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["epoch-0001", "epoch-0003"]
    assert checkpoint.read_latest(root) == {"last": "epoch-0003", "best": "epoch-0001"}
    assert sorted(p.name for p in (root / "epoch-0001").iterdir()) == ["model.safetensors"]
    for ckpt in ("epoch-0001", "epoch-0003"):
        a = load_file(str(tmp_path / "every" / "checkpoints" / ckpt / "model.safetensors"))
        b = load_file(str(root / ckpt / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs["every"] == runs["clock"]
    rows = lambda name: [{k: v for k, v in r.items() if k != "train_seconds"}   # noqa: E731
                         for r in read_metrics(tmp_path / name)]
    assert rows("every") == rows("clock") and len(rows("clock")) == 3


def test_epochs_are_judged_on_the_val_estimate_and_the_figures_on_the_whole_val(tmp_path):
    task = _toy_task()
    task.val_estimate = TensorBatches(task.val.x[:16], task.val.y[:16], 64)
    cfg = _cfg(epochs=2)
    cfg["optim"]["lr"] = 0.0                                  # the weights stay: every figure is computable
    trainer = Trainer(task, cfg, tmp_path, progress=False, log=lambda s: None)
    final = trainer.fit()
    part, whole = trainer.evaluate(task.val_estimate, "val"), trainer.evaluate(task.val, "val")
    assert part["val_loss"] != whole["val_loss"]
    assert [r["val_loss"] for r in read_metrics(tmp_path)] == [part["val_loss"]] * 2
    assert final["val_loss"] == whole["val_loss"]


def test_a_better_epoch_between_checkpoints_becomes_the_best_on_disk(tmp_path):
    task = _toy_task()
    trainer = Trainer(task, _cfg(epochs=4, checkpoint_seconds=1e6), tmp_path, progress=False, log=lambda s: None)
    trainer.fit()
    latest = checkpoint.read_latest(tmp_path / "checkpoints")
    assert latest["last"] == "epoch-0004" and latest["best"] == f"epoch-{trainer.best_epoch:04d}"
    assert (tmp_path / "checkpoints" / latest["best"] / "model.safetensors").exists()


def test_best_epoch_follows_the_metric_class_direction_not_its_name(tmp_path):
    """The best epoch is picked the way the monitored metric's class declares: a new metric named like an
    accuracy but declared lower-is-better is minimised; an undeclared monitor is an error, never a guess."""
    from deepzoo.errors import DeepzooError
    from deepzoo.train.engine import maximises
    from deepzoo.train.metrics import Metric

    class Epoch(Metric):                 # the epoch number itself: 1, 2, 3 ... grows every epoch
        name, higher_is_better = "score_acc", False
        count = 0

        def reset(self):
            pass

        def update(self, output, target):
            pass

        def compute(self):
            return float(Epoch.count)

    assert maximises("val_acc", [Accuracy]) and not maximises("val_rmse", [RMSE]) and not maximises("val_loss", [])
    assert not maximises("val_score_acc", [Epoch])
    with pytest.raises(DeepzooError, match="'val_bleu', is neither a loss nor one of this task's metrics"):
        maximises("val_bleu", [Accuracy])
    task = _toy_task()
    task.metrics, task.monitor = [Epoch], "val_score_acc"
    trainer = Trainer(task, _cfg(epochs=3), tmp_path, progress=False, log=lambda s: None)
    original = trainer.evaluate

    def counting(batches, split):
        Epoch.count += split == "val"
        return original(batches, split)
    trainer.evaluate = counting
    trainer.fit()
    assert trainer.best_epoch == 1          # 1 < 2 < 3: the smallest, because the class says lower is better
    # (a guess from the name's suffix, 'acc', would have kept epoch 3)


def test_in_process_resume_is_bit_identical(tmp_path):
    full = Trainer(_toy_task(), _cfg(epochs=4), tmp_path / "a", progress=False, log=lambda s: None)
    full.fit()
    first = Trainer(_toy_task(), _cfg(epochs=2), tmp_path / "b", progress=False, log=lambda s: None)
    first.fit()
    second = Trainer(_toy_task(), _cfg(epochs=4), tmp_path / "b", progress=False, log=lambda s: None)
    assert second.restore() and second.epoch == 2
    second.fit()
    a = load_file(str(tmp_path / "a/checkpoints/epoch-0004/model.safetensors"))
    b = load_file(str(tmp_path / "b/checkpoints/epoch-0004/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fp64_precision_trains_in_double_and_matches_an_fp64_reference_loop(tmp_path):
    """train.precision=fp64: weights, inputs and gradients in double; the engine's updates equal a plain
    double-precision loop over the same batches (the same maths in the same order: equal to ~1e-15)."""
    task = _toy_task()
    task.model[2].p = 0.0                                   # no dropout: the reference loop draws no noise
    reference = json.loads(json.dumps(task.model.double().state_dict(), default=lambda t: t.tolist()))
    trainer = Trainer(task, _cfg(epochs=2, precision="fp64"), tmp_path, progress=False, log=lambda s: None)
    trainer.fit()
    saved = load_file(str(tmp_path / "checkpoints/epoch-0002/model.safetensors"))
    assert all(t.dtype == torch.float64 for t in saved.values())

    model = _toy_task().model.double()
    model[2].p = 0.0
    model.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in reference.items()})
    opt = torch.optim.Adam(model.parameters(), lr=ENGINE_DEFAULTS["optim"]["lr"])
    generator = torch.Generator().manual_seed(0)            # the engine's shuffling generator (seed 0)
    for _ in range(2):
        for x, y in _toy_task().train.epoch(generator):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x.double()), y).backward()
            opt.step()
    for k, v in model.state_dict().items():
        assert (saved[k] - v).abs().max() <= 1e-12 * v.abs().max(), k


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "f.json"
    atomic_write_json(path, {"a": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": Boom()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_writes_give_new_files_and_checkpoints_the_umask_mode_and_keep_an_old_files_mode(tmp_path):
    model = torch.nn.Linear(2, 1)
    mask = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "new.json", {})
        old = tmp_path / "old.json"
        old.write_text("{}")
        old.chmod(0o600)
        atomic_write_json(old, {"a": 1})
        ckpt = checkpoint.save(tmp_path / "ckpt", 1, model, torch.optim.SGD(model.parameters(), lr=0.1),
                               {}, best=True)
    finally:
        os.umask(mask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640      # 0o666 less the umask, not mkstemp's 0o600
    assert old.stat().st_mode & 0o777 == 0o600 and json.loads(old.read_text()) == {"a": 1}
    assert ckpt.stat().st_mode & 0o777 == 0o750                          # 0o777 less the umask, not mkdtemp's 0o700
    assert (tmp_path / "ckpt/latest.json").stat().st_mode & 0o777 == 0o640


def _run(args, **kw):
    # One thread per process: with several, a BLAS under CPU contention may split a product differently
    # from one run to the next, which changes the rounding; bit-identical resumption is promised for
    # the same thread layout, and this pins it.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "deepzoo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_sigkill_mid_epoch_then_resume_gives_bit_identical_weights(tmp_path):
    """The headline guarantee: kill -9 during epoch 2, resume, and end with the same weights."""
    args = ["train", "mlp-mnist", "--preset", "quick", "--epochs", "3", "--quiet",
            "--set", "train.checkpoint_seconds=0"]          # a checkpoint after every epoch
    ref = _run(args + ["--out", str(tmp_path / "ref")])
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    rows = [json.loads(l) for l in (tmp_path / "ref/metrics.jsonl").read_text().splitlines()]
    epoch_seconds = rows[1]["train_seconds"] - rows[0]["train_seconds"]

    killed = _run(args + ["--out", str(tmp_path / "killed")])
    latest = tmp_path / "killed/checkpoints/latest.json"
    deadline = time.time() + 300
    while not latest.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.01)
    time.sleep(0.4 * epoch_seconds)  # well inside epoch 2
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert json.loads(latest.read_text())["last"] == "epoch-0001", "the kill must land inside epoch 2"

    resumed = _run(["resume", str(tmp_path / "killed"), "--quiet"])
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "resuming" in out and "after epoch 1" in out

    a = load_file(str(tmp_path / "ref/checkpoints/epoch-0003/model.safetensors"))
    b = load_file(str(tmp_path / "killed/checkpoints/epoch-0003/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows_b = [json.loads(l) for l in (tmp_path / "killed/metrics.jsonl").read_text().splitlines()]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rs]
    assert strip(rows_b) == strip(rows), "metrics.jsonl continues without duplicates or gaps"
    summary_a = json.loads((tmp_path / "ref/summary.json").read_text())
    summary_b = json.loads((tmp_path / "killed/summary.json").read_text())
    assert summary_a["results"] == summary_b["results"]
