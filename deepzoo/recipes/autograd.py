"""``autograd-mlp-mnist``: an MLP on MNIST trained entirely by deepzoo's NumPy autograd engine
(deepzoo/autograd/): no torch in the forward pass, the backward pass or the optimiser.

Its own loop (the engine's is torch's): minibatches of shuffled training images, the cross-entropy,
``loss.backward()`` through the recorded graph, an Adam step; after each epoch the validation accuracy,
and the weights of the best epoch are kept (safetensors, written atomically) and tested. Every
train.checkpoint_seconds an epoch's end is checkpointed (weights, optimiser state, the shuffling
generator), and ``deepzoo resume`` continues a killed run exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes
from deepzoo.recipes import Recipe, Reference, register


@dataclass
class Job:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _pixels(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> standardised float32 [N, 784] (the mean and deviation of the torch recipes)."""
    from deepzoo.recipes.mnist import MEAN, STD
    return (images.reshape(len(images), -1).astype(np.float32) / 255.0 - MEAN) / STD


def build(cfg: dict, data_dir) -> Job:
    from deepzoo.data.batches import split
    from deepzoo.data.mnist import load_mnist
    d, m = cfg["data"], cfg["model"]
    if not m["hidden"] or any(not isinstance(h, int) or h < 1 for h in m["hidden"]):
        raise DeepzooError(f"model.hidden must be a list of layer widths such as [256, 128], got {m['hidden']}")
    if d["batch_size"] < 1 or cfg["optim"]["lr"] <= 0:
        raise DeepzooError("data.batch_size and optim.lr must be positive")
    data = load_mnist(data_dir, sample=d["sample"])
    x_all, y_all = data["train"]
    if not 0 < d["val_size"] < len(x_all):
        raise DeepzooError(f"data.val_size must be between 1 and {len(x_all) - 1}, got {d['val_size']}")
    val_idx, train_idx = (i.numpy() for i in split(len(x_all), (d["val_size"],), seed=cfg["seed"]))
    x_all = _pixels(x_all)
    return Job(x_all[train_idx], y_all[train_idx].astype(np.int64), x_all[val_idx], y_all[val_idx].astype(np.int64),
               _pixels(data["test"][0]), data["test"][1].astype(np.int64))


def make_model(cfg: dict, seed: int):
    from deepzoo.autograd.nn import MLP
    return MLP([784, *cfg["model"]["hidden"], 10], np.random.default_rng(seed))


def accuracy(model, x: np.ndarray, y: np.ndarray, batch: int = 2000) -> float:
    from deepzoo.autograd import Tensor
    right = sum(int((model(Tensor(x[i:i + batch])).data.argmax(1) == y[i:i + batch]).sum())
                for i in range(0, len(x), batch))
    return right / len(x)


def save(model, path: Path) -> None:
    from safetensors.numpy import save as to_bytes
    atomic_write_bytes(path, to_bytes({k: np.ascontiguousarray(p.data) for k, p in model.named_parameters().items()}))


def fit(job: Job, cfg: dict, run_dir: Path, progress: bool, log, append_metrics, checkpoints) -> dict:
    """Train; after an epoch, when train.checkpoint_seconds have passed, checkpoint the weights, the
    optimiser's state, the shuffling generator and the best accuracy so far; a resumed run goes on from
    the next epoch exactly."""
    from tqdm import tqdm

    from deepzoo.autograd import Tensor
    from deepzoo.autograd import functional as F
    from deepzoo.autograd.nn import SGD, Adam
    from deepzoo.train.checkpoint import generator_state, set_generator_state
    o, epochs, b = cfg["optim"], cfg["train"]["epochs"], cfg["data"]["batch_size"]
    rng = np.random.default_rng(cfg["seed"])
    model = make_model(cfg, cfg["seed"])
    if o["name"] == "adam":
        optimizer = Adam(model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
    elif o["name"] == "sgd":
        optimizer = SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    else:
        raise DeepzooError(f"optim.name must be 'adam' or 'sgd', got {o['name']!r}")
    best, first, before = -1.0, 1, 0.0
    if checkpoints.resumed is not None:
        arrays, state = checkpoints.resumed
        for name, p in model.named_parameters().items():
            p.data = arrays[f"model.{name}"]
        optimizer.load_state_dict({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
        set_generator_state(rng, state["rng"])
        best, first, before = state["best"], state["epoch"] + 1, state["train_seconds"]
        log(f"resuming {run_dir} after epoch {state['epoch']}")
    start = time.perf_counter() - before
    for epoch in range(first, epochs + 1):
        order = rng.permutation(len(job.x_train))
        losses = []
        batches = range(0, len(order), b)
        for i in tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not progress, leave=False):
            idx = order[i:i + b]
            loss = F.cross_entropy(model(Tensor(job.x_train[idx])), job.y_train[idx])
            optimizer.zero_grad()
            loss.backward()                                   # through the graph recorded by the forward pass
            optimizer.step()
            losses.append(loss.item())
        val_acc = accuracy(model, job.x_val, job.y_val)
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_acc": val_acc,
               "train_seconds": round(time.perf_counter() - start, 3)}
        append_metrics(row)
        log(f"epoch {epoch}/{epochs}  train_loss {row['train_loss']:.4f}  val_acc {val_acc:.4f}  "
            f"{row['train_seconds']:.0f}s")
        if val_acc > best:
            best = val_acc
            save(model, run_dir / "weights.safetensors")
        if epoch < epochs and checkpoints.due():
            checkpoints.save(f"epoch-{epoch:04d}",
                             {**{f"model.{k}": p.data for k, p in model.named_parameters().items()},
                              **{f"optim.{k}": v for k, v in optimizer.state_dict().items()}},
                             {"epoch": epoch, "best": best, "rng": generator_state(rng),
                              "train_seconds": time.perf_counter() - start})
    seconds = time.perf_counter() - start
    best_model = load(run_dir, cfg)
    results = {"val_acc": best, **evaluate(best_model, cfg, None, job)}
    return {"results": results, "epochs_run": epochs, "train_seconds": seconds,
            "parameters": int(sum(p.data.size for p in model.parameters()))}


def load(run_dir: Path, cfg: dict):
    from safetensors.numpy import load_file
    path = Path(run_dir) / "weights.safetensors"
    if not path.exists():
        raise DeepzooError(f"{path} does not exist; the run did not finish an epoch (train it again)")
    model = make_model(cfg, 0)
    weights = load_file(path)
    for name, p in model.named_parameters().items():
        p.data = weights[name]
    return model


def evaluate(model, cfg: dict, data_dir, job: Job | None = None) -> dict:
    job = job or build(cfg, data_dir)
    return {"test_acc": accuracy(model, job.x_test, job.y_test)}


def predict(model, cfg: dict, items: list) -> list[dict]:
    """Digits (paths, PIL images or arrays), prepared as MNIST was, classified in one forward pass."""
    from deepzoo.autograd import Tensor
    from deepzoo.files import image_name
    from deepzoo.recipes.mnist import load_digit
    x = np.concatenate([load_digit(item).numpy().reshape(1, 784) for item in items])   # as _pixels
    probs = np.exp(model(Tensor(x)).log_softmax(1).data)
    return [{"input": image_name(item), "class": str(int(p.argmax())),
             "probabilities": {str(k): round(float(q), 4) for k, q in enumerate(p)}} for item, p in zip(items, probs)]


register(Recipe(
    name="autograd-mlp-mnist", family="Autograd (NumPy)", dataset="mnist",
    description="784-256-128-10 ReLU MLP trained by deepzoo's own NumPy autograd engine and Adam",
    reference=Reference("test_acc", 0.9705, "LeCun et al. 1998: 3-layer net, 500-150 hidden units, 2.95% error",
                        "http://yann.lecun.com/exdb/mnist/"),
    defaults={"data": {"sample": False, "val_size": 5000, "batch_size": 128},
              "model": {"hidden": [256, 128]},
              "optim": {"name": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
              "train": {"epochs": 10}},
    presets={"quick": {"data": {"sample": True, "val_size": 1000}, "train": {"epochs": 2}}},
    build=build, fit=fit, load=load, evaluate=evaluate, predict=predict,
    predict_help="an image of a handwritten digit (PNG, JPEG, ...)"))
