"""Recipes: a name (model-dataset) bound to a dataset, a model, a loss, metrics, default
hyper-parameters, a ``quick`` preset, and the published figure the default config should reach.

``deepzoo list`` prints this registry; ``deepzoo train NAME`` builds the recipe's :class:`Task` and
hands it to the engine.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

# A recipe with its own loop checkpoints at its loop's own points (a batch of words, an episode, an epoch)
# once this many seconds have passed since the last (train.checkpoint_seconds).
LOOP_CHECKPOINT_SECONDS = 60.0

from deepzoo.errors import DeepzooError


@dataclass(frozen=True)
class Reference:
    """The published (or peer) figure a recipe is measured against."""
    metric: str          # a key of the run's results, e.g. "test_acc"
    value: float | None  # None: there is no published figure (the source says why)
    source: str
    url: str = ""
    higher_is_better: bool = True   # declared, never guessed from the name: perplexity, loss, FD are False

    def met_by(self, value: float) -> bool | None:
        if self.value is None:
            return None
        return value >= self.value if self.higher_is_better else value <= self.value


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    dataset: str
    description: str
    reference: Reference
    defaults: dict                      # data/model sections, and overrides of engine defaults
    build: Callable[[dict, Any], Any]   # (config, data_dir) -> Task
    presets: dict = field(default_factory=dict)
    predict: Callable | None = None     # (task, config, inputs: list, **options) -> one dict per input
    predict_help: str = ""
    predict_options: tuple = ()         # keyword arguments of predict that `deepzoo predict` flags may set
    score: Callable | None = None       # (task, config) -> extra test results from the best weights (e.g. BLEU)
    # Recipes that do not train through the engine (word2vec's compiled kernel) give these three:
    # (built, config, run_dir, progress, log, append_metrics, checkpoints) -> dict; checkpoints is a
    # deepzoo.train.checkpoint.LoopCheckpoints (its ``resumed``: the state to continue from, or None)
    fit: Callable | None = None
    load: Callable | None = None        # (run_dir, config) -> what predict and evaluate take
    evaluate: Callable | None = None    # (loaded, config, data_dir) -> results dict
    # A run folder is a portable model (deepzoo/artefacts.py). Engine-trained recipes give both:
    artefacts: Callable | None = None   # (task, config) -> {file name: JSON-able | str | bytes} inference needs
    restore: Callable | None = None     # (config, Artefacts) -> Task with the model and context, no data
    sample: Callable | None = None      # generative recipes: (task, config, n, seed) -> n images in [0, 1]
    # Image recipes give their model without data, for `deepzoo explain receptive-field` and benchmarks:
    make_model: Callable | None = None  # (config) -> torch.nn.Module
    input_shape: tuple = ()             # (channels, height, width) of one input image
    # Where the published figure depends on the config (the GCN's follows data.name: Cora, CiteSeer, PubMed):
    reference_for: Callable | None = None   # (config) -> Reference
    # Recipes that start from another recipe's run (fine-tuning a pre-trained encoder): (config key, recipe)
    # pairs; the tour trains that recipe first and sets the key to its run folder.
    needs: tuple = ()

    def reference_of(self, cfg: dict) -> Reference:
        """The published figure a run with config ``cfg`` is measured against."""
        return self.reference if self.reference_for is None else self.reference_for(cfg)

    def full_defaults(self) -> dict:
        if self.fit is not None:  # its own loop: no optimiser or engine settings (its defaults say what it has)
            return _merge({"seed": 0, "train": {"checkpoint_seconds": LOOP_CHECKPOINT_SECONDS}}, self.defaults)
        from deepzoo.train.engine import ENGINE_DEFAULTS
        return _merge(copy.deepcopy(ENGINE_DEFAULTS), self.defaults)


def each(predict_one: Callable) -> Callable:
    """A recipe's ``predict`` over a list of inputs, from a function that answers one input at a time
    (for families where inputs do not batch: episodes played, word queries)."""
    import functools

    @functools.wraps(predict_one)
    def predict(task, cfg: dict, items: list, **options) -> list[dict]:
        return [predict_one(task, cfg, item, **options) for item in items]
    return predict


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


RECIPES: dict[str, Recipe] = {}
MODULES: dict[str, str] = {}        # recipe name -> the module that registered it (for the index)


def register(recipe: Recipe) -> Recipe:
    if recipe.name in RECIPES:
        raise ValueError(f"recipe {recipe.name} registered twice")
    if "quick" not in recipe.presets:
        raise ValueError(f"recipe {recipe.name} has no quick preset")
    RECIPES[recipe.name] = recipe
    MODULES[recipe.name] = sys._getframe(1).f_globals.get("__name__", "")   # the caller: a recipe module
    return recipe


def _load_all() -> None:
    # each module registers its recipes
    from deepzoo.recipes import (autograd, charlm, cifar, generative, graph, lm, mnist, pretrain, rl,  # noqa: F401
                                 tabular, text, translation, vit, word2vec)


def get(name: str) -> Recipe:
    if name not in RECIPES:              # import only the module the index names (a command that trains
        module = _index_modules().get(name)   # one recipe need not import the other thirteen)
        if module:
            importlib.import_module(module)
    if name not in RECIPES:              # not in the index (a recipe registered since): every module
        _load_all()
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DeepzooError(f"unknown recipe {name!r}{hint} (deepzoo list shows all recipes)")
    return RECIPES[name]


def all_recipes() -> list[Recipe]:
    _load_all()
    return list(RECIPES.values())


# --- the index: what `deepzoo list` shows, without importing the recipes (and torch) ------------------

INDEX = Path(__file__).with_name("index.json")


@dataclass(frozen=True)
class Summary:
    """A recipe as `deepzoo list` shows it: read from index.json, so that listing costs no torch import
    (about 2.5 s of a 2-core machine's start-up). tests/test_recipes.py checks the index equals the
    registry; ``python scripts/readme_table.py`` rewrites it."""
    name: str
    family: str
    dataset: str
    description: str
    reference: Reference
    module: str = ""


def index_json() -> dict:
    """The index as the registry gives it today (what index.json must hold)."""
    return {"recipes": [{"name": r.name, "family": r.family, "dataset": r.dataset, "description": r.description,
                         "reference": asdict(r.reference), "module": MODULES[r.name]}
                        for r in sorted(all_recipes(), key=lambda r: r.name)]}   # (registration order is import order)


def write_index() -> bool:
    """Rewrite index.json from the registry; True if it changed."""
    from deepzoo.files import atomic_write_bytes
    text = json.dumps(index_json(), indent=1, ensure_ascii=False) + "\n"
    if INDEX.exists() and INDEX.read_text(encoding="utf-8") == text:
        return False
    atomic_write_bytes(INDEX, text.encode("utf-8"))
    return True


@functools.lru_cache(maxsize=1)
def _index_rows() -> tuple[dict, ...]:
    return tuple(json.loads(INDEX.read_text(encoding="utf-8"))["recipes"])


def _index_modules() -> dict[str, str]:
    try:
        return {row["name"]: row["module"] for row in _index_rows()}
    except (OSError, ValueError, KeyError):
        return {}


def summaries() -> list[Summary]:
    """Every recipe's name, family, dataset, description and reference, from index.json."""
    return [Summary(**{**row, "reference": Reference(**row["reference"])}) for row in _index_rows()]
