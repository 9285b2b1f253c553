"""Did the model learn? A trained run's figure beside the same figure for a model that learned nothing.

The baseline is measured, not assumed, on the same split as the run's own figure:

- every recipe trained by the engine: the *untrained* model, built from the run's config with the run's
  seed (so with the very weights training started from), evaluated on the same split; for classifiers
  also the majority-class rate of that split (always answering its most frequent class);
- GANs: the Fréchet distance of 1,000 samples of the trained and of the untrained model to the test
  images, on the features of the tour's cnn-mnist run (without one, on 7x7 average-pooled pixels);
- DDPM: its loss (the noise-prediction error) on 1,000 test images, each noised at a step drawn from a
  fixed seed, the same draws for the trained and the untrained model;
- autograd-mlp-mnist: its untrained NumPy network on the test split, and the majority class;
- word2vec: the loss at the start, measured by one pass over the same corpus with learning rate 0, beside
  the mean loss of the last training epoch (a conservative comparison: that mean includes the epoch's
  early steps);
- reinforcement learning: a uniformly random policy, played on (the first 100 of) the same evaluation
  episodes (the same reset seeds).

"Learned" means clearly better than the strongest baseline (:func:`verdict`): for a proportion (accuracy,
success rate) at least 3 binomial standard deviations of the baseline rate over the items scored, and at
least 5 points; for a mean return 3 standard errors of the difference; for a loss, perplexity, -ELBO or
Fréchet distance at least 10% lower; for R² at least 0.1 above both the untrained model and 0 (the
training mean); for BLEU at least 1 point.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

PROPORTION = ("acc", "success_rate")


def kind_of(metric: str) -> str:
    """How a figure is compared: proportion, return, r2, bleu or lower (a loss-like figure)."""
    if metric.endswith(PROPORTION):
        return "proportion"
    if metric.endswith("return"):
        return "return"
    if metric.endswith("r2"):
        return "r2"
    if "bleu" in metric:
        return "bleu"
    return "lower"


def verdict(metric: str, trained: float, baselines: dict[str, float], n: int | None = None,
            spread: dict | None = None) -> dict:
    """Compare ``trained`` with the strongest of ``baselines`` (name -> figure) by the rule of ``metric``'s
    kind; ``n`` is the number of items a proportion was measured on; ``spread`` (for returns) holds
    ``trained_sd``, ``baseline_sd``, ``trained_n`` and ``baseline_n``."""
    kind = kind_of(metric)
    higher = kind != "lower"
    name, base = (max if higher else min)(baselines.items(), key=lambda kv: kv[1])
    if kind == "proportion":
        n = n or 1
        threshold = max(binomial_threshold(n, base), base + 0.05)
        rule = (f"a share of {n:,} items that a model right with the baseline's probability reaches less than "
                f"once in 1,000 tries, and at least 5 points above it")
    elif kind == "return":
        s = spread or {}
        se = math.sqrt(s.get("trained_sd", 0) ** 2 / max(s.get("trained_n", 1), 1)
                       + s.get("baseline_sd", 0) ** 2 / max(s.get("baseline_n", 1), 1))
        margin = max(3 * se, 1e-9)
        threshold, rule = base + margin, f"at least {margin:.3g} above the baseline (3 standard errors)"
    elif kind == "r2":
        threshold, rule = max(base, 0.0) + 0.1, "at least 0.1 above the baseline and above 0 (the training mean)"
    elif kind == "bleu":
        threshold, rule = base + 1.0, "at least 1 BLEU point above the baseline"
    else:
        threshold, rule = 0.9 * base, "at least 10% below the baseline"
    learned = bool(trained >= threshold) if higher else bool(trained <= threshold)
    return {"metric": metric, "trained": _round(trained), "baselines": {k: _round(v) for k, v in baselines.items()},
            "baseline": _round(base), "baseline_name": name, "threshold": _round(threshold),
            "higher_is_better": higher, "learned": learned, "rule": rule, **({"n": n} if n else {})}


def binomial_threshold(n: int, p: float, alpha: float = 1e-3) -> float:
    """The smallest share k / n with P(X >= k) < ``alpha`` for X ~ Binomial(n, p): a model that is right
    with probability p on each of n items scores that much or more less than once in 1/alpha tries."""
    if p <= 0:
        return 1 / n
    if p >= 1:
        return 1.0 + 1 / n                      # unreachable: nothing beats a perfect baseline
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
            + (n - k) * math.log1p(-p) for k in range(n + 1)]
    tail = 0.0
    for k in range(n, -1, -1):                  # P(X >= k), from the top
        tail += math.exp(logs[k])
        if tail >= alpha:
            return (k + 1) / n
    return 0.0


def _round(x: float) -> float:
    return float(f"{float(x):.6g}")


class _KeepRandomState:
    """Measuring the untrained model must not change what training then draws: the global random states
    of Python, NumPy and torch are put back afterwards (a tour's run equals a plain ``deepzoo train``)."""

    def __enter__(self):
        import random
        self.states = random.getstate(), np.random.get_state(), torch.get_rng_state()

    def __exit__(self, *exc):
        import random
        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        torch.set_rng_state(self.states[2])


def before(recipe, task, cfg: dict) -> dict:
    """The baselines, measured on what ``deepzoo train`` built (``task``: the untrained model, the data)
    before any training: the hook :func:`deepzoo.train.run.train` calls as ``on_built``."""
    with _KeepRandomState(), torch.no_grad():
        if recipe.name.startswith("word2vec"):
            return _word2vec_start(task, cfg)
        if recipe.family == "RL":
            return _rl_random(recipe, cfg)
        if recipe.name == "autograd-mlp-mnist":
            return _autograd(task, cfg)
        if recipe.sample is not None and recipe.name != "vae-mnist":
            if hasattr(task.model, "add_noise"):          # a diffusion model: its loss on the test images
                images = task.context["test_images"][:SAMPLES] * 2 - 1
                return {"untrained_samples": recipe.sample(task, cfg, 32, 0), "test_images": images,
                        "untrained_loss": _diffusion_loss(task.model, images)}
            return {"untrained_samples": recipe.sample(task, cfg, SAMPLES, 0)}
        return _engine(recipe, task, cfg)


def after(recipe, run_dir, measured: dict, classifier=None) -> dict:
    """The verdict for the finished run in ``run_dir`` against ``measured`` (:func:`before`);
    ``classifier``: a cnn-mnist run folder that scores generated digits (else 7x7 pooled pixels). The
    untrained model's samples of a generative recipe come back under ``_untrained_samples`` (not JSON)."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    if recipe.name.startswith("word2vec"):
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        return verdict("train_loss", rows[-1]["train_loss"], {"untrained vectors (loss at the start)": measured["loss"]})
    if "untrained_loss" in measured:                  # DDPM: the loss it minimises, on the same noised test images
        import deepzoo
        trained = _diffusion_loss(deepzoo.load(run_dir).module, measured["test_images"])
        out = verdict(f"test_loss (noise prediction MSE, {len(measured['test_images']):,} test images)", trained,
                      {"untrained model": measured["untrained_loss"]})
        out["_untrained_samples"] = measured["untrained_samples"]
        return out
    if "untrained_samples" in measured:
        return _generative(recipe, run_dir, measured["untrained_samples"], classifier)
    results = summary["results"]
    if recipe.family == "RL":
        metric = summary["metric"]
        r = measured["random"]
        if metric.endswith("success_rate"):
            return verdict(metric, summary["value"], {"random policy": r["success_rate"]}, r["episodes"])
        spread = {"trained_sd": results.get("eval_std_return", 0.0), "trained_n": results.get("eval_episodes", 1),
                  "baseline_sd": r["std_return"], "baseline_n": r["episodes"]}
        return verdict(metric, summary["value"], {"random policy": r["mean_return"]}, spread=spread)
    metric = summary["metric"]
    return verdict(metric, summary["value"], measured["baselines"], measured.get("n"))


def check(run_dir, data_dir=None, classifier=None) -> dict:
    """The comparison for a finished run outside a tour: its task is built again (the data read again) to
    measure the untrained model."""
    from deepzoo.train.run import _build, read_run
    _, meta, recipe, cfg = read_run(run_dir)
    task = _build(recipe, cfg, data_dir or meta.get("data_dir"))
    return after(recipe, run_dir, before(recipe, task, cfg), classifier)


SAMPLES = 1000   # generated digits scored for the Fréchet distance


def _engine(recipe, task, cfg: dict) -> dict:
    """The untrained model (the weights training starts from) on the split of the run's headline figure."""
    from deepzoo.train.engine import Trainer
    metric = recipe.reference.metric
    split = metric.split("_", 1)[0]
    batches = task.test if split == "test" else task.val
    with tempfile.TemporaryDirectory(prefix="deepzoo-untrained-") as tmp:
        trainer = Trainer(task, cfg, Path(tmp), progress=False, log=lambda *_: None)
        untrained = trainer.evaluate(batches, split)
    name = "untrained model"
    if metric not in untrained and "test_ids" in task.context:   # translation: BLEU of greedy decoding
        from deepzoo.recipes.translation import bleu, translate       # (beam search would take 4x longer
        refs = [t for _, t in task.context["test_text"]]              # and make no other score of noise)
        out = translate(task.model, task.context["tokenizer"], [s for s, _ in task.context["test_ids"]], beam=1)
        untrained[metric], name = bleu(out, refs, lowercase=metric.endswith("_lc")), "untrained model (greedy)"
    elif metric not in untrained and recipe.score is not None:
        untrained.update(recipe.score(task, cfg))
    task.model.train()
    out = {"baselines": {name: untrained[metric]}}
    if kind_of(metric) in ("proportion", "r2"):
        y = torch.cat([torch.as_tensor(t).reshape(-1) for _, t in batches.epoch()])
        if y.is_floating_point() and y.numel() and torch.equal(y, y.round()):
            y = y.long()                             # 0./1. targets of a binary classifier
        if kind_of(metric) == "proportion" and y.numel() and not y.is_floating_point() and y.min() >= 0:
            out["n"] = len(y)
            out["baselines"]["majority class"] = float(torch.bincount(y.long()).max()) / len(y)
        elif kind_of(metric) == "r2" and hasattr(task.train, "y"):
            y, mean = y.double(), float(task.train.y.double().mean())
            out["baselines"]["training mean"] = float(1 - ((y - mean) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return out


def _autograd(job, cfg: dict) -> dict:
    from deepzoo.recipes.autograd import accuracy, make_model
    return {"n": len(job.y_test),
            "baselines": {"untrained model": accuracy(make_model(cfg, cfg["seed"]), job.x_test, job.y_test),
                          "majority class": float(np.bincount(job.y_test).max()) / len(job.y_test)}}


def _word2vec_start(job, cfg: dict) -> dict:
    """The loss at the start: one pass over the corpus with learning rate 0 (the vectors as initialised)."""
    from deepzoo.models.word2vec_fast import Word2Vec
    from deepzoo.recipes.word2vec import MODEL_KEYS
    m = {k: cfg["model"][k] for k in MODEL_KEYS}
    m.update(alpha=0.0, min_alpha=0.0, compute_loss=True)
    model = Word2Vec(epochs=1, seed=cfg["seed"] + 1, **m)
    model.build_vocab(job.corpus)
    return {"loss": model.train(job.corpus)[0]["loss"]}


def _rl_random(recipe, cfg: dict) -> dict:
    """A uniformly random policy on the run's evaluation episodes (the same reset seeds)."""
    from deepzoo.recipes.rl import env_maker
    from deepzoo.rl.envs import play
    make = env_maker(cfg, "discrete" if recipe.name.startswith("qlearning") else "box")
    episodes = min(cfg["eval"].get("final_episodes", cfg["eval"]["episodes"]), 100)   # the first 100 of them
    env = make()
    actions = env.action_space.n
    env.close()
    rng = np.random.default_rng(cfg["seed"])
    seed = 1_000_000 + 100_000 * cfg["seed"]
    return {"random": play(make, lambda obs: rng.integers(actions, size=len(obs)), episodes, seed).summary()}


@torch.no_grad()
def _diffusion_loss(model, images: torch.Tensor, batch: int = 250) -> float:
    """The noise-prediction MSE on ``images`` (in [-1, 1]), steps and noise drawn from a fixed seed: the same
    draws for the untrained and the trained model."""
    generator = torch.Generator().manual_seed(1234)
    was, total = model.training, 0.0
    model.eval()
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        total += float(model.loss(x, generator)) * len(x)
    model.train(was)
    return total / len(images)


def _features(images: torch.Tensor, classifier) -> np.ndarray:
    if classifier is not None:
        from deepzoo.report.sample_quality import classify
        return classify(classifier, images)[0]
    return torch.nn.functional.avg_pool2d(images.float(), 4).reshape(len(images), -1).double().numpy()


def _generative(recipe, run_dir: Path, untrained: torch.Tensor, classifier_run) -> dict:
    """Fréchet distance to the test images of the samples of the trained and of the untrained model."""
    import deepzoo
    from deepzoo.data.mnist import load_mnist
    from deepzoo.report.sample_quality import frechet_distance, gaussian
    classifier = None
    if classifier_run is not None:
        from deepzoo.recipes.generative import load_classifier
        classifier = load_classifier(str(classifier_run))
    model = deepzoo.load(run_dir)
    data_dir = json.loads((run_dir / "config.json").read_text()).get("data_dir")
    real = load_mnist(data_dir, sample=model.config["data"]["sample"])["test"][0][:SAMPLES]
    real = torch.from_numpy(real).float().div(255).unsqueeze(1)
    trained = model.sample(len(untrained), seed=0)
    ref = gaussian(_features(real, classifier))
    fd = {k: frechet_distance(*gaussian(_features(x, classifier)), *ref) for k, x in
          (("trained", trained), ("untrained", untrained))}
    where = "cnn-mnist features" if classifier is not None else "7x7 pooled pixels"
    out = verdict(f"sample_fd ({where}, {len(untrained):,} samples)", fd["trained"],
                  {"untrained model": fd["untrained"]})
    out["_untrained_samples"] = untrained[:32]
    return out
