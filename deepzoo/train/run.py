"""Runs: create a run folder, train, resume, evaluate, predict.

These functions are what the command line calls; they are equally usable from Python::

    from deepzoo.train.run import train
    summary = train("cnn-mnist", sets=["train.epochs=3"], out="runs/cnn3")
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from deepzoo import __version__
from deepzoo import artefacts as arts
from deepzoo import config as cfglib
from deepzoo import recipes, schema
from deepzoo.errors import DeepzooError
from deepzoo.report.plots import plot_curves
from deepzoo.files import append_jsonl, atomic_write_json
from deepzoo.train import checkpoint, distributed
from deepzoo.train.engine import Trainer, check_setup, count_parameters, read_metrics


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build(recipe: recipes.Recipe, cfg: dict, data_dir, run_dir: Path | None = None):
    """The recipe's task; for an existing run (``run_dir``: resumed or evaluated) with its stored inference
    files at hand (deepzoo.artefacts.reused), so a learnt tokenizer keeps the ids the weights know."""
    _seed_everything(cfg["seed"])  # model initialisation depends on the seed only
    if run_dir is None:
        return recipe.build(cfg, data_dir)
    with arts.reusing(run_dir, recipe.name):
        return recipe.build(cfg, data_dir)


def new_run_dir(out: str | Path | None, recipe: str, create: bool = True) -> Path:
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{recipe}-{stamp}"
        n = 1
        while out.exists():
            n += 1
            out = Path("runs") / f"{recipe}-{stamp}-{n}"
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if (out / "config.json").exists():
            raise DeepzooError(f"{out} already holds a run; continue it with `deepzoo resume {out}` "
                               f"or choose another --out")
        raise DeepzooError(f"{out} exists and is not empty; choose another --out")
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def read_run(run_dir: str | Path) -> tuple[Path, dict, recipes.Recipe, dict]:
    """Read a run folder's config.json: (folder, its metadata, the recipe, the run's config)."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.exists():
        raise DeepzooError(f"{run_dir} is not a deepzoo run folder (no config.json)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DeepzooError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("recipe"), str) or not isinstance(meta.get("config"), dict):
        raise DeepzooError(f"{path} is not a deepzoo run's config (it needs \"recipe\" and \"config\")")
    recipe = recipes.get(meta["recipe"])
    rules = schema.for_recipe(recipe)
    # keys an older deepzoo named otherwise take their new names, and keys added to a recipe after the run
    # was made take their defaults (an older run still resumes); then every value is checked, as for train
    config = recipes._merge(recipe.full_defaults(), schema.upgrade(rules, meta["config"]))
    rules.check(config, where=str(path))
    return run_dir, meta, recipe, {**config, "recipe": recipe.name, "preset": meta.get("preset")}


def read_default_run(run_dir: str | Path, recipe_name: str, ignore: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """(folder, summary) of a finished run of ``recipe_name`` trained with its default config, for
    benchmarks that report a default run's figures; any other run is one error naming what differs.
    Config sections named in ``ignore`` (e.g. ``("eval",)``, settings applied after training) may differ."""
    run_dir, meta, recipe, cfg = read_run(run_dir)
    drop = ("recipe", "preset", *ignore)
    config = {k: v for k, v in cfg.items() if k not in drop}  # keys added since: defaults
    defaults = {k: v for k, v in recipes.get(recipe_name).full_defaults().items() if k not in drop}
    if recipe.name != recipe_name or config != defaults or meta.get("preset"):
        want, have = cfglib.flatten(defaults), cfglib.flatten(config)
        changed = sorted(k for k in want.keys() | have.keys() if want.get(k, None) != have.get(k, None))
        raise DeepzooError(f"{run_dir}: not a {recipe_name} run with the default config (it is {recipe.name}; "
                           f"differs in {', '.join(changed) or 'preset'})")
    path = run_dir / "summary.json"
    if not path.exists():
        raise DeepzooError(f"{run_dir} has no summary.json: the run has not finished (deepzoo resume {run_dir})")
    return run_dir, json.loads(path.read_text())


def default_run(recipe_name: str, run_dir: str | Path | None = None, data_dir=None,
                log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """(folder, summary) of a default-config run of ``recipe_name``, for a benchmark: ``run_dir`` if
    given (checked by :func:`read_default_run`), else a fresh training run in a temporary folder."""
    if run_dir is not None:
        return read_default_run(run_dir, recipe_name)
    import tempfile
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-{recipe_name}-"))
    return run_dir, train(recipe_name, out=run_dir, data_dir=data_dir, progress=False, log=log)


def _summary(recipe: recipes.Recipe, results: dict, run_dir: Path, cfg: dict, *, epochs_run: int,
             best_epoch: int | None, stopped_early: bool, train_seconds: float, parameters: int,
             device: str, precision: str = "fp32") -> dict:
    ref = recipe.reference_of(cfg)
    value = results.get(ref.metric)
    summary = {
        "recipe": recipe.name, "family": recipe.family, "dataset": recipe.dataset,
        "preset": cfg.get("preset"),
        "metric": ref.metric, "value": value,
        "reference": {"value": ref.value, "source": ref.source, "url": ref.url},
        "meets_reference": None if value is None else ref.met_by(value),
        "results": results, "epochs_run": epochs_run, "best_epoch": best_epoch,
        "stopped_early": stopped_early, "train_seconds": round(train_seconds, 2),
        "parameters": parameters, "device": device, "precision": precision,
        "versions": {"deepzoo": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    atomic_write_json(run_dir / "summary.json", summary)
    plot_curves(read_metrics(run_dir), run_dir / "curves.png", f"{recipe.name}  ({run_dir.name})")
    return summary


def _fit(recipe, cfg, run_dir, data_dir, progress, log, resume, callbacks=(), task=None) -> dict:
    task = _build(recipe, cfg, data_dir, run_dir if resume else None) if task is None else task
    ctx = distributed.current()
    if recipe.fit is not None and ctx.enabled:
        raise DeepzooError(f"{recipe.name} has its own training loop, not the engine's: run it on one process "
                           f"(without torchrun)")
    if recipe.fit is not None:  # a recipe with its own training loop (e.g. word2vec's compiled kernel)
        checkpoints = checkpoint.LoopCheckpoints(run_dir, cfg["train"]["checkpoint_seconds"])
        if resume and checkpoints.restore() is None:
            log(f"{run_dir} has no checkpoint yet; starting from the beginning")
        out = recipe.fit(task, cfg, run_dir, progress=progress, log=log,
                         append_metrics=lambda row: append_jsonl(run_dir / "metrics.jsonl", row),
                         checkpoints=checkpoints)
        return _summary(recipe, out["results"], run_dir, cfg, epochs_run=out["epochs_run"],
                        best_epoch=out["epochs_run"], stopped_early=False, train_seconds=out["train_seconds"],
                        parameters=out["parameters"], device="cpu")
    if resume and ctx.main and recipe.artefacts is not None and not (run_dir / arts.FOLDER / arts.MANIFEST).exists():
        write_artefacts(recipe, task, cfg, run_dir)       # a run begun by an older deepzoo
    trainer = Trainer(task, cfg, run_dir, progress=progress, log=log)
    trainer.callbacks.extend(callbacks)
    if resume:
        if trainer.restore():
            log(f"resuming {run_dir} after epoch {trainer.epoch}")
        else:
            log(f"{run_dir} has no checkpoint yet; starting from the beginning")
    results = trainer.fit()
    if not ctx.main:            # under torchrun only rank 0 scores and writes the summary
        return {"recipe": recipe.name, "results": results, "rank": ctx.rank}
    if recipe.score is not None:  # figures that need the model itself (e.g. BLEU of decoded text)
        log("scoring the best weights on the test split ...")
        results.update(recipe.score(trainer.task, cfg))
    return _summary(recipe, results, run_dir, cfg, epochs_run=trainer.epoch, best_epoch=trainer.best_epoch,
                    stopped_early=trainer.stopped_early, train_seconds=trainer.train_seconds,
                    parameters=count_parameters(trainer.model), device=str(trainer.device),
                    precision=trainer.precision)



def write_artefacts(recipe: recipes.Recipe, task, cfg: dict, run_dir: Path) -> None:
    """``RUN/inference/``: what the run's model needs to predict with no dataset (deepzoo/artefacts.py)."""
    if recipe.artefacts is not None:
        arts.write(run_dir, recipe.artefacts(task, cfg), recipe.name,
                   weights="last" if task.val is None else "best")


def train(recipe_name: str, preset: str | None = None, config_file=None, sets=(), epochs=None, seed=None,
          out=None, data_dir=None, progress: bool = True, log: Callable[[str], None] = print,
          callbacks=(), overrides: dict | None = None, on_built: Callable | None = None) -> dict:
    """Train ``recipe_name`` into a new run folder; return its summary (and ``run_dir``). ``on_built(task,
    cfg)``, if given, sees the built task (the untrained model and the data) before any training: the tour
    measures the untrained model there (deepzoo/report/learned.py) without reading the data twice."""
    ctx = distributed.setup()     # joins the process group when started by torchrun
    recipe = recipes.get(recipe_name)
    # every value checked against the recipe's schema before anything is read or written
    cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, preset, config_file, sets, epochs, seed,
                         overrides, schema=schema.for_recipe(recipe))
    if distributed.restarts():    # torchrun --max-restarts brought the workers back after a failure
        earlier = distributed.broadcast(str(_elastic_run_dir(out, recipe.name) or ""))
        if earlier:
            if ctx.main:
                log(f"torchrun restarted the workers (restart {distributed.restarts()}): continuing {earlier} "
                    f"from its last complete checkpoint")
            return {**resume(earlier, data_dir, progress, log), "run_dir": earlier}
    run_dir = Path(distributed.broadcast(str(new_run_dir(out, recipe.name, create=False))))  # rank 0's name
    meta = {"recipe": recipe.name, "preset": preset, "data_dir": str(data_dir) if data_dir else None,
            "config": cfg, **({"torchrun_job": distributed.job_id()} if distributed.job_id() else {})}
    cfg = {**cfg, "recipe": recipe.name, "preset": preset}
    task = _build(recipe, cfg, data_dir)  # bad data fails here, before a folder is made
    if recipe.fit is None:
        check_setup(task, cfg)            # and a device or precision this machine lacks
    if on_built is not None:
        on_built(task, cfg)
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", meta)
        write_artefacts(recipe, task, cfg, run_dir)
        log(f"run folder: {run_dir}" + (f" ({ctx.world} processes, torch.distributed)" if ctx.enabled else ""))
    else:
        log = lambda *_: None  # noqa: E731
    distributed.barrier()
    summary = _fit(recipe, cfg, run_dir, data_dir, progress, log, resume=False, callbacks=callbacks, task=task)
    return {**summary, "run_dir": str(run_dir)}      # where it went (not in summary.json: a folder may move)


def _elastic_run_dir(out, recipe: str) -> Path | None:
    """The run folder an earlier attempt of this torchrun job made: ``out`` if it holds a run, else the
    newest runs/RECIPE-* whose config.json names this job; None if the failure came before any was made."""
    if out is not None:
        return Path(out) if (Path(out) / "config.json").exists() else None
    job = distributed.job_id()
    for folder in sorted(Path("runs").glob(f"{recipe}-*"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            if json.loads((folder / "config.json").read_text()).get("torchrun_job") == job:
                return folder
        except (OSError, ValueError):
            continue
    return None


def resume(run_dir, data_dir=None, progress: bool = True, log=print) -> dict:
    ctx = distributed.setup()
    run_dir, meta, recipe, cfg = read_run(run_dir)
    if not ctx.main:
        log = lambda *_: None  # noqa: E731
    return _fit(recipe, cfg, run_dir, data_dir or meta.get("data_dir"), progress, log, resume=True)


def _load_weights(model: torch.nn.Module, run_dir: Path, recipe: recipes.Recipe, which: str) -> None:
    latest = checkpoint.read_latest(run_dir / "checkpoints")
    if latest is None:
        raise DeepzooError(f"{run_dir} has no checkpoint yet; train it first (deepzoo resume {run_dir})")
    path = run_dir / "checkpoints" / latest[which] / "model.safetensors"
    if not path.exists():
        raise DeepzooError(f"{path} is missing (checkpoints/latest.json names it); copy the run folder again")
    try:
        model.load_state_dict(checkpoint.load_weights(path))
    except RuntimeError as e:      # missing / unexpected keys, or shapes that differ
        detail = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)
        raise DeepzooError(f"{path} does not fit the {recipe.name} model that config.json describes (a run of "
                           f"another deepzoo version?): {detail.strip()}") from None


def restore(recipe: recipes.Recipe, cfg: dict, run_dir: Path, data_dir=None, log=print):
    """The run's model (untrained) and prediction context, from config.json and ``inference/`` alone.

    A run made before deepzoo kept ``inference/`` is rebuilt from its training data, once, when
    ``data_dir`` is given: the folder is written and later calls need no data."""
    try:
        stored = arts.Artefacts(run_dir, recipe.name)
    except arts.MissingArtefacts:
        if data_dir is None:
            raise
        write_artefacts(recipe, _build(recipe, cfg, data_dir), cfg, run_dir)
        log(f"rebuilt {run_dir / arts.FOLDER} from the training data; this run no longer needs it to predict")
        stored = arts.Artefacts(run_dir, recipe.name)
    _seed_everything(cfg["seed"])
    task = recipe.restore(cfg, stored)
    return task, stored.weights


def load_model(run_dir, data_dir=None, which: str = "best", log=print):
    """A run's model with its best (or last) weights and what prediction needs; (recipe, cfg, task).

    Reads only the run folder (config.json, inference/, the checkpoint): no dataset."""
    run_dir, meta, recipe, cfg = read_run(run_dir)
    if recipe.load is not None:  # recipes with their own files (e.g. word vectors)
        return recipe, cfg, recipe.load(run_dir, cfg)
    task, weights = restore(recipe, cfg, run_dir, data_dir, log)
    _load_weights(task.model, run_dir, recipe, "last" if weights == "last" else which)
    return recipe, cfg, task


def load_with_data(run_dir, data_dir=None, log=print):
    """A run's task rebuilt from its dataset (the splits, for evaluation), with the run's weights loaded;
    (recipe, cfg, task). Warns when the data now give other inference files than training did."""
    run_dir, meta, recipe, cfg = read_run(run_dir)
    if recipe.load is not None:
        raise DeepzooError(f"{recipe.name} trains with its own loop; evaluate it with deepzoo eval {run_dir}")
    task = _build(recipe, cfg, data_dir or meta.get("data_dir"), run_dir)
    try:
        stored = arts.Artefacts(run_dir, recipe.name)
    except arts.MissingArtefacts:
        write_artefacts(recipe, task, cfg, run_dir)
    else:
        now = {k: hashlib.sha256(arts._encode(v)).hexdigest() for k, v in recipe.artefacts(task, cfg).items()}
        differ = sorted(k for k in now if stored.digests.get(k) != now[k])
        if differ:
            log(f"warning: the data found now give a different {', '.join(differ)} than training did "
                f"(another version of the dataset?); the figures below may not be comparable")
    _load_weights(task.model, run_dir, recipe, "last" if task.val is None else "best")
    return recipe, cfg, task


def evaluate(run_dir, data_dir=None, progress: bool = False, log=print) -> dict:
    """Validation and test figures of a run's best weights: the one command that reads the data again."""
    run_dir, meta, recipe, cfg = read_run(run_dir)
    if recipe.load is not None:
        results = recipe.evaluate(recipe.load(run_dir, cfg), cfg, data_dir)
    else:
        recipe, cfg, task = load_with_data(run_dir, data_dir, log)
        trainer = Trainer(task, cfg, Path(run_dir), progress=progress)
        results = {}
        for split, batches in (("val", task.val), ("test", task.test)):
            if batches is not None:
                results.update(trainer.evaluate(batches, split))
        if recipe.score is not None:
            results.update(recipe.score(task, cfg))
    ref = recipe.reference_of(cfg)
    value = results.get(ref.metric)
    return {"recipe": recipe.name, "results": results, "metric": ref.metric, "value": value,
            "reference": {"value": ref.value, "source": ref.source},
            "meets_reference": None if value is None else ref.met_by(value)}


def predict(run_dir, inputs: list, data_dir=None, options: dict | None = None) -> list[dict]:
    """Apply a run to the inputs, one result each (batched where the family allows). ``options`` (e.g.
    {"temperature": 0.8}) go to the recipe's predict as keyword arguments; a recipe accepts only the names
    in its ``predict_options``. Reads only the run folder."""
    run_dir, _, recipe, _ = read_run(run_dir)
    if recipe.predict is None:
        raise DeepzooError(f"{recipe.name} has no predict; use deepzoo eval {run_dir}")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(recipe.predict_options))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = ", ".join("--" + k.replace("_", "-") for k in recipe.predict_options) or "no options"
        raise DeepzooError(f"{recipe.name} predict does not take {flags} (it takes {takes})")
    _, cfg, task = load_model(run_dir, data_dir)
    return recipe.predict(task, cfg, list(inputs), **options)
