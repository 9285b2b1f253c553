"""deepzoo from Python, the way the command line reads: train a recipe, load a run folder, predict.

    import deepzoo

    model = deepzoo.train("cnn-mnist", epochs=3, optim={"lr": 1e-3})   # --epochs 3 --set optim.lr=0.001
    model.summary["results"]["test_acc"]

    model = deepzoo.load("runs/cnn-mnist-20261203-101500")   # the run folder alone: no dataset needed
    model.predict("digit.png")                  # {"class": "7", "probabilities": {...}, ...}
    model.predict(["a.png", pil_image, array])  # a list is a batch: one forward pass, one answer each
    deepzoo.load("runs/gan-mnist-...").sample(16)             # generative runs: 16 images in [0, 1]

A run folder is the model (deepzoo/artefacts.py): :func:`load` reads its config, its ``inference/`` files
and its best checkpoint, and nothing else. ``model.module`` is the plain ``torch.nn.Module``.
"""

from __future__ import annotations

import json
from numbers import Number
from pathlib import Path
from typing import Any

from deepzoo.errors import DeepzooError


class Model:
    """A trained run, ready to predict. Made by :func:`load` or :func:`train`."""

    def __init__(self, run_dir: str | Path) -> None:
        from deepzoo.train.run import load_model
        self.run_dir = Path(run_dir)
        recipe, self.config, self._task = load_model(self.run_dir)
        self._recipe = recipe
        self.recipe, self.family = recipe.name, recipe.family
        summary = self.run_dir / "summary.json"
        self.summary: dict | None = json.loads(summary.read_text()) if summary.exists() else None

    @property
    def module(self):
        """The trained network (``torch.nn.Module``; for word2vec the vectors, for Q-learning the table)."""
        return getattr(self._task, "model", self._task)

    @property
    def context(self) -> dict:
        """What prediction uses besides the network: labels, vocabulary, tokenizer, graph, ..."""
        return getattr(self._task, "context", {})

    def predict(self, x: Any, **options) -> dict | list[dict]:
        """The answer for one input, or a list of answers for a list of inputs (batched in one forward pass
        where the family allows). Inputs are what ``deepzoo predict`` takes, or their in-memory forms:

        - image classifiers: a file path, a PIL image, or an array (HxW, HxWxC or CxHxW; uint8 or [0, 1]);
        - text classifiers: a sentence; language models: a prompt (``length``, ``temperature``,
          ``top_k``, ``seed``); translation: a sentence (``beam``);
        - tabular: a CSV path, a dict {column: value}, or a list of numbers in the training columns' order;
        - GCN: a node id; word vectors: a word or ``a:b::c:?``; RL: a number of episodes, or ``policy``.

        ``options`` are the same as ``deepzoo predict``'s flags (``temperature=0.8``).
        """
        if self._recipe.predict is None:
            raise DeepzooError(f"{self.recipe} has no predict; use evaluate()")
        unknown = sorted(set(options) - set(self._recipe.predict_options))
        if unknown:
            raise DeepzooError(f"{self.recipe} predict does not take {', '.join(unknown)} "
                               f"(it takes {', '.join(self._recipe.predict_options) or 'no options'})")
        batch = isinstance(x, (list, tuple)) and not (x and all(isinstance(v, Number) for v in x))
        items = list(x) if batch else [x]
        if not items:
            return []
        results = self._recipe.predict(self._task, self.config, items, **options)
        return results if batch else results[0]

    def sample(self, n: int = 16, seed: int = 0):
        """``n`` generated images, a tensor [n, channels, height, width] in [0, 1] (generative recipes)."""
        if self._recipe.sample is None:
            raise DeepzooError(f"{self.recipe} is not a generative model; it has predict(), not sample()")
        if n < 1:
            raise DeepzooError(f"sample: n must be at least 1, got {n}")
        return self._recipe.sample(self._task, self.config, n, seed)

    def evaluate(self, data_dir=None) -> dict:
        """Validation and test figures of the run's weights; the one call that reads the dataset again."""
        from deepzoo.train.run import evaluate
        return evaluate(self.run_dir, data_dir=data_dir)["results"]

    def __repr__(self) -> str:
        figure = ""
        if self.summary and self.summary.get("value") is not None:
            from deepzoo.train.metrics import format_metric
            figure = f", {self.summary['metric']} {format_metric(self.summary['metric'], self.summary['value'])}"
        return f"<deepzoo.Model {self.recipe} ({self.family}) from {self.run_dir}{figure}>"


def load(run_dir: str | Path) -> Model:
    """The trained model in a run folder (``deepzoo train --out RUN``, or a folder copied from elsewhere)."""
    return Model(run_dir)


def train(recipe: str, *, preset: str | None = None, epochs: int | None = None, seed: int | None = None,
          out: str | Path | None = None, data_dir: str | Path | None = None, config: str | Path | None = None,
          progress: bool = True, quiet: bool = False, **sections: dict) -> Model:
    """Train ``recipe`` as ``deepzoo train`` does and return the trained :class:`Model`.

    Each keyword section overrides config keys, like ``--set``: ``optim={"lr": 1e-3}`` is
    ``--set optim.lr=0.001``; ``model={"hidden": [256, 256]}``; ``train={"precision": "bf16"}``.
    ``config`` is a TOML file of overrides, ``preset`` a named preset (``"quick"``).
    """
    from deepzoo.train.run import train as train_run
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise DeepzooError(f"train(): {name}= must be a dict of keys in that config section, e.g. "
                               f"optim={{'lr': 0.001}}; got {value!r}")
    log = (lambda *_: None) if quiet else print
    summary = train_run(recipe, preset=preset, config_file=config, epochs=epochs, seed=seed, out=out,
                        data_dir=data_dir, progress=progress and not quiet, log=log, overrides=sections)
    return Model(summary["run_dir"])


def list_recipes() -> list[str]:
    """The names of every recipe (``deepzoo list``)."""
    from deepzoo.recipes import all_recipes
    return [r.name for r in all_recipes()]
