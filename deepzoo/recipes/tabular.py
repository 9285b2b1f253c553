"""Tabular recipes: the two other output heads of the notes.

- ``logreg-binary``: logistic regression, ``p = sigmoid(w . x + b)`` trained with binary
  cross-entropy ``-[y log p + (1 - y) log(1 - p)]``, on the Wisconsin diagnostic breast-cancer data
  (569 tumours, 30 features, malignant = 1).
- ``mlp-regression``: an MLP with a linear head trained with mean squared error on the diabetes data
  of Efron et al. (2004): 442 patients, 10 baseline variables, disease progression after one year.

Both files ship inside the package (deepzoo/samples/tabular, from scikit-learn's copies). Either
recipe reads the user's own numeric CSV with ``--set data.path=my.csv --set data.target=column``.
Rows are split 60/20/20 into train/validation/test with ``data.split_seed``; features are
standardised with the training rows' mean and deviation, kept inside the model as buffers so that
``deepzoo predict RUN_DIR rows.csv`` works on raw values.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from deepzoo.data.batches import TensorBatches, split
from deepzoo.data.registry import samples_dir
from deepzoo.errors import DeepzooError
from deepzoo.models.mlp import MLP
from deepzoo.nn import loss_functions
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import R2, RMSE, Accuracy


def read_numeric_csv(path: Path, target: str, require_target: bool = True):
    """Read a CSV of numbers with a header row; return feature names, X [N, D] and y [N].

    Without ``require_target`` a file lacking the target column is read as features only (y is None).
    """
    try:
        f = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise DeepzooError(f"cannot open data file {path}: {e.strerror}") from None
    with f:
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
        except csv.Error:          # one column, or rows of differing shapes: plain commas, checked below
            dialect = csv.excel
        rows = csv.reader(f, dialect)
        header = next(rows, None)
        if not header:
            raise DeepzooError(f"{path}: the file is empty; expected a header row of column names")
        header = [h.strip() for h in header]
        if target not in header and require_target:
            raise DeepzooError(f"{path}, line 1: no column named '{target}' (columns: {', '.join(header)}); "
                               f"set data.target")
        t = header.index(target) if target in header else None
        xs, ys = [], []
        for line_no, row in enumerate(rows, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DeepzooError(f"{path}, line {line_no}: {len(row)} fields, expected {len(header)}")
            try:
                values = [float(c) for c in row]
            except ValueError:
                bad = next(c for c in row if not _is_float(c))
                raise DeepzooError(f"{path}, line {line_no}: '{bad}' is not a number "
                                   f"(these recipes need numeric columns)") from None
            if not all(math.isfinite(v) for v in values):
                raise DeepzooError(f"{path}, line {line_no}: missing or infinite value")
            ys.append(values.pop(t) if t is not None else 0.0)
            xs.append(values)
    if require_target and len(xs) < 10:
        raise DeepzooError(f"{path}: only {len(xs)} data rows; need at least 10")
    if not xs:
        raise DeepzooError(f"{path}: no data rows")
    names = [h for h in header if h != target]
    y = torch.tensor(ys, dtype=torch.float32) if t is not None else None
    return names, torch.tensor(xs, dtype=torch.float32), y


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def tabular_splits(cfg: dict, default_file: str, default_target: str, names: list | None = None):
    """Read and split 60/20/20; return (train, val, test) as (x, y) pairs (and put the feature names in
    ``names`` when given)."""
    d = cfg["data"]
    path = Path(d["path"]) if d["path"] else samples_dir() / "tabular" / default_file
    features, x, y = read_numeric_csv(path, d["target"] or default_target)
    if names is not None:
        names.extend(features)
    val_idx, test_idx, train_idx = split(len(x), (0.2, 0.2), seed=d["split_seed"])
    return [(x[i], y[i]) for i in (train_idx, val_idx, test_idx)]


class Tabular(torch.nn.Module):
    """``z = mu_y + sd_y * net((x - mu_x) / sd_x)``.

    The network sees standardised features and predicts a standardised target; the statistics of the
    training rows are buffers, saved with the weights, so the model takes and returns raw values.
    For a classifier mu_y = 0 and sd_y = 1 (the output is a logit).
    """

    def __init__(self, net: torch.nn.Module, x_train: torch.Tensor, mu_y: float = 0.0, sd_y: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mu_x", x_train.mean(0))
        self.register_buffer("sd_x", x_train.std(0).clamp_min(1e-8))
        self.register_buffer("mu_y", torch.tensor(mu_y))
        self.register_buffer("sd_y", torch.tensor(sd_y))

    @classmethod
    def empty(cls, net: torch.nn.Module, features: int) -> "Tabular":
        """The same module before its statistics are loaded (with the weights) from a run folder."""
        return cls(net, torch.zeros(2, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu_y + self.sd_y * self.net((x - self.mu_x) / self.sd_x).squeeze(-1)


def build_logreg(cfg: dict, data_dir) -> Task:
    names: list[str] = []
    tr, va, te = tabular_splits(cfg, "breast_cancer.csv", "malignant", names)
    for name, (_, y) in zip(("train", "validation", "test"), (tr, va, te)):
        if not torch.all((y == 0) | (y == 1)):
            raise DeepzooError(f"logreg-binary: the target column must hold 0 and 1 only ({name} rows do not)")
    impl, bs = cfg["model"]["impl"], cfg["data"]["batch_size"]
    model = Tabular(logreg_net(cfg, tr[0].shape[1]), tr[0])
    bce = loss_functions(impl).binary_cross_entropy_with_logits
    return Task(model=model,
                train=TensorBatches(*tr, bs, shuffle=True), val=TensorBatches(*va, 1024),
                test=TensorBatches(*te, 1024),
                loss=bce, metrics=[Accuracy],
                monitor="val_loss", headline="test_acc", context={"features": names})


def logreg_net(cfg: dict, features: int) -> MLP:
    return MLP(features, [], 1, impl=cfg["model"]["impl"])  # no hidden layer: logistic regression


def regression_net(cfg: dict, features: int) -> MLP:
    m = cfg["model"]
    return MLP(features, m["hidden"], 1, activation=m["activation"], dropout=m["dropout"], impl=m["impl"])


def build_regression(cfg: dict, data_dir) -> Task:
    names: list[str] = []
    tr, va, te = tabular_splits(cfg, "diabetes.csv", "progression", names)
    m, bs = cfg["model"], cfg["data"]["batch_size"]
    # Predict the target in its own units, but measure the loss on the standardised scale
    # ((z - mu) / sd): the same minimiser, and a loss near 1 means "no better than the mean".
    mu, sd = float(tr[1].mean()), float(tr[1].std())
    model = Tabular(regression_net(cfg, tr[0].shape[1]), tr[0], mu, sd)
    mse = loss_functions(m["impl"]).mse_loss
    return Task(model=model,
                train=TensorBatches(*tr, bs, shuffle=True), val=TensorBatches(*va, 1024),
                test=TensorBatches(*te, 1024),
                loss=lambda z, y: mse((z - mu) / sd, (y - mu) / sd),
                metrics=[RMSE, R2], monitor="val_loss", headline="test_r2", context={"features": names})


def ols_test_r2(cfg: dict) -> float:
    """Ordinary least squares on the same split, the peer reference of ``mlp-regression``."""
    tr, _, te = tabular_splits(cfg, "diabetes.csv", "progression")
    add1 = lambda x: torch.cat([x, torch.ones(len(x), 1)], 1).double()
    w = torch.linalg.lstsq(add1(tr[0]), tr[1].double()[:, None]).solution
    pred, y = (add1(te[0]) @ w).squeeze(1), te[1].double()
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def artefacts(task: Task, cfg: dict) -> dict:
    """The feature columns, in the model's order (the scaling statistics are buffers of the weights)."""
    target = cfg["data"]["target"] or DEFAULT_TARGET[cfg["recipe"]]
    return {"inference.json": {"features": task.context["features"], "target": target}}


def restore(make_net):
    def restore(cfg: dict, stored) -> Task:
        info = stored.json()
        return Task.for_inference(Tabular.empty(make_net(cfg, len(info["features"])), len(info["features"])),
                                  {"features": info["features"], "target": info["target"]})
    return restore


def _rows(item, features: list[str], target: str) -> tuple[str, torch.Tensor]:
    """(name, x [N, D]) of one input: a CSV path (columns matched by name, any order, others ignored), a
    dict {column: value} (one row), or a sequence of D numbers (one row, in the model's order)."""
    if isinstance(item, dict):
        missing = [f for f in features if f not in item]
        if missing:
            raise DeepzooError(f"the row lacks the feature(s) {', '.join(missing)} (the model takes: "
                               f"{', '.join(features)})")
        try:
            return "<row>", torch.tensor([[float(item[f]) for f in features]])
        except (TypeError, ValueError):
            bad = next(f for f in features if not _is_float(str(item[f])))
            raise DeepzooError(f"the row's {bad!r} is {item[bad]!r}, not a number") from None
    if isinstance(item, (str, Path)):
        path = Path(item)
        names, x, _ = read_numeric_csv(path, target, require_target=False)
        missing = [f for f in features if f not in names]
        if missing:
            raise DeepzooError(f"{path}, line 1: no column {', '.join(repr(f) for f in missing)} (the model "
                               f"takes the training file's columns: {', '.join(features)})")
        return str(path), x[:, [names.index(f) for f in features]]
    x = torch.as_tensor(item, dtype=torch.float32)
    if x.ndim != 1 or len(x) != len(features):
        raise DeepzooError(f"a row must hold {len(features)} numbers ({', '.join(features)}); got shape "
                           f"{tuple(x.shape)}")
    return "<row>", x[None]


@torch.no_grad()
def predict_rows(task: Task, cfg: dict, items: list) -> list[dict]:
    """Predict for each input: a CSV holding the training file's feature columns (a result with one
    prediction per row), a dict {column: value}, or a list of numbers in the model's column order."""
    model, features, target = task.model.eval(), task.context["features"], task.context["target"]
    read = [_rows(item, features, target) for item in items]
    z = model(torch.cat([x for _, x in read]))
    out, start = [], 0
    for (name, x), item in zip(read, items):
        part, start = z[start:start + len(x)], start + len(x)
        if cfg["recipe"] == "logreg-binary":
            rows = [{"class": int(p > 0.5), "p": round(float(p), 4)} for p in torch.sigmoid(part)]
        else:
            rows = [{"prediction": round(float(v), 4)} for v in part]
        if isinstance(item, (str, Path)):
            out.append({"input": name, "predictions": [{"row": i + 2, **r} for i, r in enumerate(rows)]})
        else:
            out.append({"input": name, **rows[0]})
    return out


DEFAULT_TARGET = {"logreg-binary": "malignant", "mlp-regression": "progression"}
DATA = {"path": "", "target": "", "split_seed": 0, "batch_size": 32}
QUICK = {"train": {"epochs": 20}}

register(Recipe(
    name="logreg-binary", family="DNN / MLP", dataset="breast-cancer (shipped)",
    description="logistic regression: sigmoid + binary cross-entropy on 30 tumour features",
    reference=Reference("test_acc", 0.975, "Street, Wolberg & Mangasarian 1993 (UCI wdbc.names, 10-fold CV)",
                        "https://archive.ics.uci.edu/dataset/17"),
    defaults={"data": DATA, "model": {"impl": "torch"},
              "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3,
                        "schedule": "cosine"},
              "train": {"epochs": 100}},
    presets={"quick": QUICK}, build=build_logreg, predict=predict_rows,
    artefacts=artefacts, restore=restore(logreg_net),
    predict_help="a CSV of feature rows (same columns as the training file)",
))

register(Recipe(
    name="mlp-regression", family="DNN / MLP", dataset="diabetes (shipped)",
    description="10-64-64-1 tanh MLP, linear head + mean squared error",
    reference=Reference("test_r2", 0.5233, "ordinary least squares on the same split (peer figure, recomputed by tests)"),
    defaults={"data": DATA, "model": {"hidden": [64, 64], "activation": "tanh", "dropout": 0.0,
                                      "impl": "torch"},
              "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4, "schedule": "cosine"},
              "train": {"epochs": 200, "early_stopping": 40}},
    presets={"quick": QUICK}, build=build_regression, predict=predict_rows,
    artefacts=artefacts, restore=restore(regression_net),
    predict_help="a CSV of feature rows (same columns as the training file)",
))
