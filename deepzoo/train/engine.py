"""The training engine shared by every gradient-trained family.

A recipe builds a :class:`Task` (model, data splits, loss, metrics); :class:`Trainer` runs the loop

    for each epoch:
        for each mini-batch (x, y):
            lr      <- optim.lr * schedule(step)
            loss    <- L(model(x), y)                 stop if loss is NaN or inf
            grads   <- d loss / d weights              (backpropagation)
            grads   <- grads * min(1, c / ||grads||)   (optional clipping to norm c)
            weights <- optimizer step
        evaluate on the validation split; log; maybe stop early
        checkpoint atomically, if train.checkpoint_seconds have passed since the last (and after the last epoch)
    evaluate the best checkpoint on the test split; write summary.json and curves.png

A run is a folder: ``config.json``, ``metrics.jsonl`` (one JSON object per epoch), ``checkpoints/``,
``curves.png`` and ``summary.json``. Resuming restores weights, optimizer, step, random-number
generators and early-stopping state, so a killed run ends with the same weights as an unbroken one.

Checkpoints are written by the clock, not by the epoch: after an epoch that ends ``train.checkpoint_seconds``
(30) or more after the last write, and after the last epoch; 0 writes one every epoch. A run of 200
ten-millisecond epochs (gcn-cora) would otherwise spend more time writing and flushing 200 checkpoints than
training. A killed run loses at most that much time; the best epoch's weights, if no checkpoint was written
at it, are held in memory and written (weights only) with the next checkpoint, so the best weights are never
lost while the run goes on.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from deepzoo.data.batches import Batches
from deepzoo.errors import DeepzooError, TrainingDiverged
from deepzoo.nn import optimizer_class
from deepzoo.files import append_jsonl, atomic_write_bytes, atomic_write_json, fsync_file
from deepzoo.train import checkpoint, distributed, tensorboard
from deepzoo.train.metrics import Metric
from deepzoo.train.schedules import lr_factor

# Engine keys every recipe has; a recipe overrides the values, never the set of keys.
ENGINE_DEFAULTS = {
    "seed": 0,
    "optim": {"name": "adam", "impl": "torch", "lr": 1e-3, "momentum": 0.9, "nesterov": False,
              "weight_decay": 0.0, "schedule": "constant", "warmup_epochs": 0.0, "gamma": 0.1,
              "step_size": 1, "min_lr_factor": 0.0, "decay_start": 0},
    "train": {"epochs": 10, "clip_grad_norm": 0.0, "early_stopping": 0, "device": "auto",
              "keep_checkpoints": 1, "checkpoint_seconds": 30.0, "precision": "fp32", "log_steps": False, "tensorboard": False},
}

PRECISIONS = ("fp32", "bf16", "fp16", "fp64", "auto")
DIVERGED = "diverged.json"   # written into the run folder when the loss becomes NaN or infinite


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where the hardware runs it natively (a CPU with AVX-512 BF16 or AMX, unless its kernels
    are capped below them, as ``python -m deepzoo.cputarget avx2`` does; a CUDA GPU with bf16), else fp32. On a CPU without them bf16 is emulated and slower than fp32.

    ``fp64``: the weights, inputs, activations, gradients and optimizer state all in double precision.
    Several times slower; it is for checking that two code paths (one process or several, one kernel or
    another) compute the same maths: their rounding differences shrink from ~1e-7 to ~1e-16, far below
    any real fault, whatever the CPU's kernels."""
    if precision not in PRECISIONS:
        raise DeepzooError(f"train.precision: unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu":
        from deepzoo.cputarget import hides_bf16
        native = any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported",
                                                                       "_is_amx_tile_supported"))
        return "bf16" if native and not hides_bf16() else "fp32"   # (python -m deepzoo.cputarget avx2: fp32)
    return "fp32"


@dataclass
class Task:
    """Everything the engine needs to train and evaluate one model.

    ``metrics`` are factories (classes) so each evaluation starts fresh. ``monitor`` names the
    validation figure that chooses the best epoch (for example ``"val_acc"``); ``headline`` the test
    figure compared with the published reference (for example ``"test_acc"``).
    ``train``, ``val`` and ``test`` are any :class:`~deepzoo.data.batches.Batches`. ``val_estimate``, if
    given, is a part of ``val`` scored after every epoch instead of the whole (it picks the best epoch and
    draws the curves); the final figures score the whole ``val``.
    """
    model: torch.nn.Module
    train: Batches
    val: Batches | None
    test: Batches | None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metrics: list[type[Metric]] = field(default_factory=list)
    monitor: str = "val_loss"
    headline: str = "test_loss"
    context: dict = field(default_factory=dict)  # what prediction needs besides the model (a vocabulary, ...)
    train_metrics: bool = False  # also compute the metrics on the training batches (train_acc, ...)
    # For training that is not "one loss, one backward, one step" (a GAN's two players):
    train_step: Callable | None = None   # (trainer, x, y) -> {"loss": float, other logged floats}; it steps itself
    players: tuple[str, ...] = ()        # the model's parts train_step trains, each in DDP under torchrun (Trainer.part)
    optimizer: torch.optim.Optimizer | None = None  # the recipe's own (e.g. one param group per player)
    epoch_end: Callable | None = None    # (trainer) -> extra floats for the epoch's row (e.g. a mode-collapse signal)
    val_estimate: Batches | None = None  # scored after each epoch instead of the whole val (a long text's)

    @classmethod
    def for_inference(cls, model: torch.nn.Module, context: dict | None = None) -> "Task":
        """A model and what prediction needs, with no data: what a run folder restores (deepzoo/artefacts.py)."""
        return cls(model=model, train=None, val=None, test=None, loss=None, context=context or {})


def to_device(x, device: torch.device, dtype: torch.dtype | None = None):
    """A batch's input is a tensor or a tuple of tensors (for text: token ids and lengths); floating-point
    tensors are cast to ``dtype`` when one is given (train.precision=fp64), integer ones are left alone."""
    if isinstance(x, tuple):
        return tuple(to_device(t, device, dtype) for t in x)
    if dtype is not None and x.is_floating_point():
        return x.to(device, dtype, non_blocking=True)
    return x.to(device, non_blocking=True)


def forward(model: torch.nn.Module, x):
    return model(*x) if isinstance(x, tuple) else model(x)


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DeepzooError(f"train.device: unknown device '{name}' (auto, cpu, cuda, cuda:N, mps)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeepzooError("train.device: CUDA was asked for but this PyTorch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeepzooError("train.device: MPS was asked for but is not available here")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """The forward-pass context of ``train.precision``: fp32 (none), or automatic mixed precision, where
    matrix products and convolutions run in bf16 / fp16 and reductions, losses and the weights stay fp32.
    On CPUs with AVX-512 BF16 or AMX, bf16 convolutions (oneDNN) are markedly faster; see benchmarks/cifar.py."""
    import contextlib
    precision = resolve_precision(precision, device)
    if precision in ("fp32", "fp64"):
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise DeepzooError("train.precision: fp16 needs a CUDA GPU; on a CPU use bf16")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _float(out):
    """A model's output (a tensor or a tuple of them) in fp32: under autocast it may be bf16 / fp16.
    A double-precision output (train.precision=fp64) stays double."""
    if isinstance(out, tuple):
        return tuple(_float(o) for o in out)
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != torch.float64:
        return out.float()
    return out


def build_optimizer(model: torch.nn.Module, o: dict) -> torch.optim.Optimizer:
    cls = optimizer_class(o["name"], o["impl"])
    if o["name"] == "sgd":
        return cls(model.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                   weight_decay=o["weight_decay"])
    return cls(model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])


def maximises(monitor: str, metrics: list[type[Metric]]) -> bool:
    """Whether a larger ``monitor`` (``val_acc``, ``train_loss``, ...) is better: a loss is minimised, a
    metric goes the way its class declares (``Metric.higher_is_better``)."""
    name = monitor.partition("_")[2]
    if name == "loss":
        return False
    for m in metrics:
        if m.name == name:
            return m.higher_is_better
    raise DeepzooError(f"the figure that picks the best epoch, {monitor!r}, is neither a loss nor one of this "
                       f"task's metrics ({', '.join(m.name for m in metrics) or 'none'})")


def check_setup(task: Task, cfg: dict, ctx=None) -> tuple[torch.device, str]:
    """The device and precision training ``task`` will use, or the error that it cannot: a GPU PyTorch does
    not see, fp16 on a CPU, torchrun for a recipe whose own step names no parts to wrap. What the config allows depends
    on the machine too; run.train asks here before it makes the run folder."""
    ctx = ctx or distributed.current()
    device = select_device(distributed.device_for(ctx, cfg["train"]["device"]))
    precision = resolve_precision(cfg["train"]["precision"], device)
    autocast(device, precision)  # an impossible precision fails here, before any training
    if ctx.enabled and task.train_step is not None and not task.players:
        raise DeepzooError(f"{cfg.get('recipe', 'this recipe')} trains with its own step and names no parts "
                           f"for DDP to wrap (Task.players); run it on one process")
    return device, precision


class Trainer:
    """Train ``task`` with the engine part of ``cfg`` into the folder ``run_dir``."""

    def __init__(self, task: Task, cfg: dict, run_dir: Path, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        self.task, self.cfg, self.run_dir = task, cfg, Path(run_dir)
        self.dist = distributed.current()            # torchrun: this process's rank among world
        self.main = self.dist.main                   # only rank 0 writes files and logs
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.progress, self.log = progress and self.main, (log if self.main else lambda *_: None)
        self.device, self.precision = check_setup(task, cfg, self.dist)   # (train() checked it before the folder)
        self.dtype = torch.float64 if self.precision == "fp64" else None   # inputs cast to it; else as built
        self.model = task.model.to(self.device, self.dtype)
        self.train_model = self.model                # what the training step calls: DDP(model) under torchrun
        self.parts: dict[str, torch.nn.Module] = {}  # a recipe's own step: DDP(part) for each of task.players
        if self.dist.enabled:
            distributed.check_batch(getattr(task.train, "batch_size", 0) or 0, self.dist)
            if hasattr(task.train, "shard"):
                task.train.shard(self.dist.rank, self.dist.world)
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            distributed.sync_batchnorm(self.model, self.device)   # BatchNorm over the global batch
            if task.train_step is None:
                self.train_model = DistributedDataParallel(self.model, device_ids=ids)
            else:
                self.parts = {name: DistributedDataParallel(getattr(self.model, name), device_ids=ids)
                              for name in task.players}
        # fp16 gradients can underflow: scale the loss up before backward, and the gradients back down
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.optimizer = task.optimizer if task.optimizer is not None else build_optimizer(self.model, cfg["optim"])
        for group in self.optimizer.param_groups:  # the schedule scales each group's own base rate
            group.setdefault("base_lr", group["lr"])
        self.generator = torch.Generator().manual_seed(cfg["seed"])  # shuffling and augmentation
        self.ckpt_root = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.epoch, self.step, self.train_seconds = 0, 0, 0.0
        self.best_value: float | None = None
        self.best_epoch, self.bad_epochs, self.stopped_early = 0, 0, False
        self.stop = False  # a callback may set it to end training after the current epoch
        self.saved_epoch, self.saved_at = 0, time.monotonic()   # the last checkpoint written, and when
        self.pending_best: tuple[int, dict] | None = None       # the best epoch's weights, not yet on disk
        self.callbacks: list[Callable[[Trainer, dict], None]] = []
        # train.log_steps: every step's (global-batch) loss, written to steps.jsonl after each epoch
        self.step_log: list[dict] | None = [] if cfg["train"].get("log_steps") else None
        self.tensorboard = None   # train.tensorboard: a SummaryWriter on rank 0, opened when fit() starts

    # --- what a recipe's own step (task.train_step) calls -----------------------------------------------
    def part(self, name: str) -> torch.nn.Module:
        """The model's part ``name`` (one of task.players) as a step calls it: under torchrun its DDP wrapper,
        which averages its gradients across processes during backward; the part itself on one process."""
        return self.parts[name] if name in self.parts else getattr(self.model, name)

    def global_rows(self, x) -> int:
        """The number of rows of the global batch whose local share is ``x``."""
        return len(x) * self.dist.world

    def share(self, draw):
        """This process's rows of ``draw``, random numbers drawn for the whole global batch (a tensor or a tuple):
        every process draws the same numbers from the same generator and keeps the rows of its images."""
        return distributed.local_rows(draw, self.dist) if self.dist.enabled else draw

    # --- the learning-rate schedule --------------------------------------------------------------
    def _set_lr(self) -> float:
        o, steps = self.cfg["optim"], len(self.task.train)
        total = steps * self.cfg["train"]["epochs"]
        factor = lr_factor(o["schedule"], self.step, total, steps, int(o["warmup_epochs"] * steps),
                           gamma=o["gamma"], step_size=o["step_size"], min_factor=o["min_lr_factor"],
                           decay_start=o["decay_start"])
        for group in self.optimizer.param_groups:
            group["lr"] = group.setdefault("base_lr", o["lr"]) * factor  # (older checkpoints lack it)
        return self.optimizer.param_groups[0]["lr"]

    # --- one pass over the training split ---------------------------------------------------------
    def train_epoch(self) -> dict:
        self.model.train()
        clip = self.cfg["train"]["clip_grad_norm"]
        seen = 0
        metrics = [m() for m in self.task.metrics] if self.task.train_metrics else []
        bar = tqdm(self.task.train.epoch(self.generator), total=len(self.task.train), leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.cfg['train']['epochs']}", unit="batch",
                   disable=None if self.progress else True)  # None: only on a terminal
        logged: dict[str, float] = {}  # sums over the epoch of what each step reports, weighted by batch size
        sharded = self.dist.enabled and not hasattr(self.task.train, "shard")
        for x, y in bar:
            if sharded:                                    # this process's rows of the global batch
                x, y = distributed.local_rows(x, self.dist), distributed.local_rows(y, self.dist)
            x, y = to_device(x, self.device, self.dtype), to_device(y, self.device, self.dtype)
            lr = self._set_lr()
            if self.task.train_step is not None:           # a recipe's own step (a GAN's two players)
                logs = self.task.train_step(self, x, y)
            else:
                logs = self._step(x, y, lr, clip, metrics)
            if self.dist.enabled:                          # the global batch's mean loss, on every process
                n, *sums = distributed.all_reduce_sum([len(y)] + [v * len(y) for v in logs.values()])
                logs, n_rows = {k: v / n for k, v in zip(logs, sums)}, int(n)
            else:
                n_rows = len(y)
            if not math.isfinite(logs["loss"]):
                self._diverged(logs["loss"], lr)
            self.step += 1
            if self.tensorboard is not None:
                self.tensorboard.add_scalar("step/train_loss", logs["loss"], self.step)
            if self.step_log is not None:
                self.step_log.append({"step": self.step, **logs})
            for k, v in logs.items():
                logged[k] = logged.get(k, 0.0) + v * n_rows
            seen += n_rows
            if self.step % 20 == 0:
                bar.set_postfix(loss=f"{logged['loss'] / seen:.4f}", lr=f"{lr:.2e}")
        bar.close()
        extra = {f"train_{k}": v / max(seen, 1) for k, v in logged.items() if k != "loss"}
        return {"train_loss": logged.get("loss", 0.0) / max(seen, 1), **extra,
                **{f"train_{m.name}": m.compute() for m in metrics}, "lr": lr}

    def _step(self, x, y, lr: float, clip: float, metrics: list) -> dict:
        """One loss, one backward, one optimizer step (with loss scaling for fp16 and optional clipping)."""
        with autocast(self.device, self.precision):
            out = forward(self.train_model, x)
        out = _float(out)
        loss = self.task.loss(out, y)                      # the loss in fp32 (fp64 under train.precision=fp64)
        if not torch.isfinite(loss):
            self._diverged(float(loss.detach()), lr)       # before the step: the weights stay finite
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        for m in metrics:
            m.update(out.detach(), y)
        return {"loss": float(loss.detach())}

    def _diverged(self, value: float, lr: float) -> None:
        latest = checkpoint.read_latest(self.ckpt_root)
        kept = (f"the last good checkpoint ({self.ckpt_root / latest['last']}) is kept"
                if latest else "no checkpoint had been written yet")
        message = (f"loss became {value} at epoch {self.epoch + 1}, step {self.step} (lr {lr:.3g}); "
                   f"training stopped and {kept}. Lower optim.lr or set train.clip_grad_norm")
        if self.main:            # the run folder says so (deepzoo runs); a later resume that trains removes it
            atomic_write_json(self.run_dir / DIVERGED, {"epoch": self.epoch + 1, "step": self.step,
                                                        "loss": str(value), "lr": lr, "message": message})
        if self.tensorboard is not None:
            self.tensorboard.close()
        raise TrainingDiverged(message)

    # --- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, batches: Batches, prefix: str) -> dict:
        self.model.eval()
        metrics = [m() for m in self.task.metrics]
        total_loss, seen = 0.0, 0
        for x, y in batches.epoch():
            x, y = to_device(x, self.device, self.dtype), to_device(y, self.device, self.dtype)
            with autocast(self.device, self.precision):
                out = forward(self.model, x)
            out = _float(out)
            total_loss += float(self.task.loss(out, y)) * len(y)
            seen += len(y)
            for m in metrics:
                m.update(out, y)
        result = {f"{prefix}_loss": total_loss / max(seen, 1)}
        result.update({f"{prefix}_{m.name}": m.compute() for m in metrics})
        return result

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict:
        epochs = self.cfg["train"]["epochs"]
        patience = self.cfg["train"]["early_stopping"]
        monitor = self.task.monitor if self.task.val is not None else "train_loss"
        maximise = maximises(monitor, self.task.metrics)
        if self.main:
            (self.run_dir / DIVERGED).unlink(missing_ok=True)
            if self.cfg["train"].get("tensorboard"):
                self.tensorboard = tensorboard.open_writer(self.run_dir, purge_step=self.step + 1)
        while self.epoch < epochs and not (self.stopped_early or self.stop):
            start = time.perf_counter()
            row = self.train_epoch()
            self.train_seconds += time.perf_counter() - start
            self.epoch += 1
            if self.task.val is not None:
                row.update(self.evaluate(self.task.val_estimate or self.task.val, "val"))
            if self.task.epoch_end is not None:
                row.update(self.task.epoch_end(self))
            value = row[monitor]
            improved = (self.best_value is None or
                        (value > self.best_value if maximise else value < self.best_value))
            if improved:
                self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            else:
                self.bad_epochs += 1
                self.stopped_early = patience > 0 and self.bad_epochs >= patience
            row = {"epoch": self.epoch, "step": self.step, **row, "train_seconds": round(self.train_seconds, 3)}
            if self.main:
                if self.step_log is not None:
                    for r in self.step_log:
                        append_jsonl(self.run_dir / "steps.jsonl", {"epoch": self.epoch, **r}, sync=False)
                    self.step_log.clear()
                append_jsonl(self.metrics_path, row, sync=False)     # flushed to disk with the checkpoint
                self._checkpoint(last=self.epoch >= epochs or self.stopped_early)
                if self.tensorboard is not None:
                    tensorboard.write_epoch(self.tensorboard, row)
            distributed.barrier()                          # the checkpoint is complete before anyone goes on
            self.log(self._format(row))
            for callback in self.callbacks:
                callback(self, row)
        if self.main and self.epoch > self.saved_epoch:   # a callback stopped the run between checkpoints
            self._save()
        distributed.barrier()                              # every process reads the best weights next
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.stopped_early:
            self.log(f"early stopping: {monitor} has not improved for {patience} epochs "
                     f"(best {self.best_value:.4f} at epoch {self.best_epoch})")
        return self.finish()

    def _format(self, row: dict) -> str:
        parts = [f"epoch {row['epoch']}/{self.cfg['train']['epochs']}"]
        for k, v in row.items():
            if k not in ("epoch", "step", "train_seconds"):
                parts.append(f"{k} {v:.3e}" if k == "lr" else f"{k} {v:.4f}")
        parts.append(f"{row['train_seconds']:.1f}s")
        return "  ".join(parts)

    def _state(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "train_seconds": self.train_seconds,
                "best_value": self.best_value, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "stopped_early": self.stopped_early,
                "rng": checkpoint.rng_state(self.generator), "grad_scaler": self.scaler.state_dict()}

    def _checkpoint(self, last: bool) -> None:
        """Write a checkpoint if one is due (by the clock, or the run's last epoch); else, if this epoch is the
        best so far, keep its weights in memory for the next checkpoint."""
        every = self.cfg["train"].get("checkpoint_seconds", 0.0)
        if last or every <= 0 or time.monotonic() - self.saved_at >= every:
            self._save()
        elif self.best_epoch == self.epoch:
            self.pending_best = (self.epoch, {k: v.detach().cpu().contiguous().clone()
                                             for k, v in self.model.state_dict().items()})

    def _save(self) -> None:
        best = self.best_epoch == self.epoch
        for path in (self.metrics_path, self.run_dir / "steps.jsonl"):   # the rows up to this checkpoint
            if path.exists():
                fsync_file(path)
        checkpoint.save(self.ckpt_root, self.epoch, self.model, self.optimizer, self._state(), best=best,
                        keep=self.cfg["train"]["keep_checkpoints"],
                        best_weights=None if best else self.pending_best)
        self.pending_best, self.saved_epoch, self.saved_at = None, self.epoch, time.monotonic()

    # --- resume -----------------------------------------------------------------------------------
    def restore(self) -> bool:
        """Continue from the latest checkpoint in the run folder; False if there is none."""
        latest = checkpoint.read_latest(self.ckpt_root)
        if latest is None:
            return False
        state = checkpoint.load(self.ckpt_root / latest["last"], self.model, self.optimizer)
        for key in ("epoch", "step", "train_seconds", "best_value", "best_epoch", "bad_epochs", "stopped_early"):
            setattr(self, key, state[key])
        checkpoint.set_rng_state(state["rng"], self.generator)
        if state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        if self.main:
            self._truncate_metrics()
        return True

    def _truncate_metrics(self) -> None:
        """Drop metric (and step) rows written after the checkpoint we resume from (a killed epoch's)."""
        for path in (self.metrics_path, self.run_dir / "steps.jsonl"):
            if not path.exists():
                continue
            keep = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by the kill
                if row.get("epoch", 0) <= self.epoch:
                    keep.append(line)
            atomic_write_bytes(path, "".join(l + "\n" for l in keep).encode())

    # --- the end of a run -------------------------------------------------------------------------
    def load_best(self) -> int:
        latest = checkpoint.read_latest(self.ckpt_root)
        if latest is None:
            raise DeepzooError(f"{self.run_dir} has no checkpoint yet")
        name = latest["best"] if self.task.val is not None else latest["last"]
        self.model.load_state_dict(checkpoint.load_weights(self.ckpt_root / name / "model.safetensors"))
        return int(name.split("-")[1])

    def finish(self) -> dict:
        epoch_used = self.load_best()
        result = {"epoch_used": epoch_used}
        if self.task.test is not None:
            result.update(self.evaluate(self.task.test, "test"))
        if self.task.val is not None:
            result.update(self.evaluate(self.task.val, "val"))
        return result


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
