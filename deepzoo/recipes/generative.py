"""Generative recipes on MNIST: ``vae-mnist`` (the variational autoencoder).

Data: MNIST pixels scaled to [0, 1] (not standardised: they are the Bernoulli targets of the
decoder), the 60,000 training images minus 5,000 for validation (which picks the best epoch), and
the 10,000 test images, on which the figure, the negative ELBO in nats per image, is measured once.
The loss, reconstruction (binary cross-entropy summed over the 784 pixels) plus KL, is exactly what
pytorch/examples' VAE reports, so the two figures compare directly.

With ``--set eval.classifier=RUN_DIR`` (a trained ``cnn-mnist`` run) the best weights also draw
``eval.samples`` images (10,000 by default) and the results gain the sample-quality figures of
:mod:`deepzoo.report.sample_quality` against the test images: ``sample_fd`` (Fréchet distance of the
classifier's features), ``sample_confidence`` and ``sample_class_entropy``.

``deepzoo predict RUN out.png`` writes a grid of 64 samples to out.png, a grid of latent
interpolations between test digits to out-interpolation.png and, for a 2-D latent, the latent map
to out-latent-map.png.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepzoo.data.batches import TensorBatches, split
from deepzoo.errors import DeepzooError
from deepzoo.models.vae import VAE, interpolate, latent_map, negative_elbo, negative_elbo_terms
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Metric


class _Term(Metric):
    index = 0

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, output, target) -> None:
        self.total += float(negative_elbo_terms(output, target)[self.index]) * len(target)
        self.count += len(target)

    def compute(self) -> float:
        return self.total / max(self.count, 1)


class Reconstruction(_Term):
    """Nats per image of the reconstruction term (BCE summed over pixels)."""
    name, index, higher_is_better = "recon", 0, False


class KL(_Term):
    """Nats per image of KL(q(z|x) || N(0, I))."""
    name, index, higher_is_better = "kl", 1, False


class NegativeELBO(Metric):
    """The negative ELBO in nats per image (the loss, reported under its own name)."""
    name, higher_is_better = "nelbo", False

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, output, target) -> None:
        self.total += float(negative_elbo(output, target)) * len(target)
        self.count += len(target)

    def compute(self) -> float:
        return self.total / max(self.count, 1)


def _pixels(images) -> torch.Tensor:
    return (torch.from_numpy(images).float() / 255.0).unsqueeze(1)


def make_vae(cfg: dict) -> VAE:
    m = cfg["model"]
    return VAE(latent=m["latent"], hidden=m["hidden"], layers=m["layers"], kind=m["kind"], channels=m["channels"])


def build_vae(cfg: dict, data_dir) -> Task:
    from deepzoo.data.mnist import load_mnist
    d = cfg["data"]
    if cfg["eval"]["classifier"]:
        check_classifier(cfg["eval"]["classifier"])  # before any training
    data = load_mnist(data_dir, sample=d["sample"])
    (x_all, _), (x_test, _) = data["train"], data["test"]
    if not 0 <= d["val_size"] < len(x_all):
        raise DeepzooError(f"data.val_size must be between 0 and {len(x_all) - 1}, got {d['val_size']}")
    val_idx, train_idx = split(len(x_all), (d["val_size"],), seed=cfg["seed"])
    x_all, x_test = _pixels(x_all), _pixels(x_test)
    train = TensorBatches(x_all[train_idx], x_all[train_idx], d["batch_size"], shuffle=True)
    val = TensorBatches(x_all[val_idx], x_all[val_idx], 1000) if d["val_size"] > 0 else None
    test = TensorBatches(x_test, x_test, 1000)
    return Task(model=make_vae(cfg), train=train, val=val, test=test, loss=negative_elbo,
                metrics=[NegativeELBO, Reconstruction, KL], monitor="val_nelbo", headline="test_nelbo",
                context={"test_images": x_test[:20]})


def check_classifier(path: str) -> None:
    from deepzoo.train.run import read_run
    _, _, recipe, _ = read_run(path)
    if recipe.name != "cnn-mnist":
        raise DeepzooError(f"eval.classifier must be a cnn-mnist run folder; {path} is a {recipe.name} run")


def load_classifier(path: str) -> torch.nn.Module:
    """The LeNet of a finished ``cnn-mnist`` run (its best weights), for the sample-quality measure."""
    from deepzoo.train.run import load_model
    check_classifier(path)
    return load_model(path)[2].model


@torch.no_grad()
def score_samples(task: Task, cfg: dict) -> dict:
    from deepzoo.report.sample_quality import sample_quality
    e = cfg["eval"]
    if not e["classifier"]:
        return {}
    if e["samples"] < 2:
        raise DeepzooError(f"eval.samples must be at least 2, got {e['samples']}")
    classifier = load_classifier(e["classifier"])
    model = task.model.eval()
    generated = model.sample(e["samples"], torch.Generator().manual_seed(cfg["seed"]))
    q = sample_quality(generated, task.test.x, classifier)
    return {"sample_fd": q["frechet_distance"], "sample_confidence": q["mean_confidence"],
            "sample_class_entropy": q["class_entropy"], "sample_class_histogram": q["class_histogram"]}


@torch.no_grad()
def predict_samples(task: Task, cfg: dict, path: str, seed: int = 0) -> dict:
    from deepzoo.report.plots import save_image_grid
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise DeepzooError(f"give the PNG file to write, e.g. samples.png (got {path})")
    if not out.parent.is_dir():
        raise DeepzooError(f"folder {out.parent} does not exist")
    model = task.model.eval()
    wrote = [save_image_grid(model.sample(64, torch.Generator().manual_seed(seed)), out, nrow=8)]
    digits = task.context["test_images"]
    rows = torch.cat([interpolate(model, digits[2 * i], digits[2 * i + 1], steps=10) for i in range(5)])
    wrote.append(save_image_grid(rows, out.with_name(out.stem + "-interpolation.png"), nrow=10))
    if model.latent == 2:
        wrote.append(save_image_grid(latent_map(model, 20), out.with_name(out.stem + "-latent-map.png"), nrow=20))
    return {"input": path, "wrote": [str(p) for p in wrote]}


register(Recipe(
    name="vae-mnist", family="VAE", dataset="mnist",
    description="variational autoencoder: MLP (or conv) encoder to N(mu, sigma^2), reparameterised z, "
                "Bernoulli decoder; loss = -ELBO in nats",
    reference=Reference("test_nelbo", 106.7, "pytorch/examples VAE (784-400-20 MLP), after 7 epochs",
                        "https://github.com/pytorch/examples/tree/main/vae"),
    defaults={"data": {"sample": False, "val_size": 5000, "batch_size": 128},
              "model": {"kind": "mlp", "latent": 20, "hidden": 512, "layers": 2, "channels": 32},
              "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine", "warmup_epochs": 0.0},
              "train": {"epochs": 30}, "eval": {"classifier": "", "samples": 10000}},
    presets={"quick": {"data": {"sample": True, "val_size": 500}, "train": {"epochs": 8}}},
    build=build_vae, score=score_samples, predict=predict_samples, predict_options=("seed",),
    predict_help="the PNG file to write samples to (plus -interpolation.png, -latent-map.png)",
))
