"""Generative recipes on MNIST: ``vae-mnist`` (the variational autoencoder), ``gan-mnist`` (the MLP GAN),
``dcgan-mnist`` (DCGAN) and ``ddpm-mnist`` (a diffusion model).

Data: MNIST pixels scaled to [0, 1] (not standardised: they are the Bernoulli targets of the
decoder), the 60,000 training images minus 5,000 for validation (which picks the best epoch), and
the 10,000 test images, on which the figure, the negative ELBO in nats per image, is measured once.
The loss, reconstruction (binary cross-entropy summed over the 784 pixels) plus KL, is exactly what
pytorch/examples' VAE reports, so the two figures compare directly.

With ``--set eval.classifier=RUN_DIR`` (a trained ``cnn-mnist`` run) the final weights also draw
``eval.samples`` images (10,000 by default) and the results gain the sample-quality figures of
:mod:`deepzoo.report.sample_quality` against the 10,000 test images: ``test_fd`` (Fréchet distance of the
classifier's features), ``test_confidence`` and ``test_class_entropy``. The GANs, which have no test loss,
then also log each epoch the class entropy and confidence of 1,000 samples: the mode-collapse signal.
The GANs train with the engine's learning-rate schedule but their own two-player step (no gradient
clipping); ddpm-mnist honours train.clip_grad_norm. Under torchrun each player (the DDPM's U-Net) is wrapped
in DDP, every process draws the global batch's latent codes (steps and noise) and keeps its rows, and
BatchNorm normalises over the global batch, so W processes make the updates one process makes
(tests/test_distributed.py); rank 0 draws the per-epoch samples and scores them.

ddpm-mnist draws its samples with ``eval.sample_steps`` (50) of the 1,000 steps and DDIM's ``eval.eta``:
1 (the default) puts fresh noise back at each step, the ancestral sampler on a sub-sequence of steps; 0 is
the deterministic DDIM. (benchmarks/generative.py --ddpm-samplers compares them.)

``deepzoo predict RUN out.png`` writes a grid of 64 samples to out.png, a grid of latent
interpolations between test digits to out-interpolation.png and, for a 2-D latent, the latent map
to out-latent-map.png. From Python, :func:`sample` (``Recipe.sample``) returns n images as a tensor.

Your own images (``--set data.path=...``: class folders, IDX files or an .npz; deepzoo/data/images.py;
the labels are not used, so one class folder is enough) replace MNIST: the networks take the images'
channels and size (the MLPs any size; the conv VAE and DCGAN sides that are multiples of 4; the U-Net
multiples of 2 x model.patch), and the training, validation and test images are the data's own splits or
are cut by ``data.split``. The sample-quality measure (``eval.classifier``) scores MNIST digits only.

A run folder predicts with no dataset (deepzoo/artefacts.py): ``inference/inference.json`` records the
image shape and pixel range and what the model is; a VAE run also keeps the 10 test digits its
interpolations start and end at (``inference/interpolation-digits.safetensors``, uint8 pixels, 8 KB). The
GANs and DDPM need nothing more: DDPM's noise schedule is recomputed from the config (non-persistent
buffers) and its moving-average weights (``ema_net.*``) are in the checkpoint. ``eval.classifier`` (a
cnn-mnist run) is read only to score, at training time and by ``deepzoo eval``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepzoo.artefacts import tensor_bytes
from deepzoo.data.batches import TensorBatches, split
from deepzoo.errors import DeepzooError
from deepzoo.models import gan
from deepzoo.models.ddpm import Diffusion
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


OWN_DATA = {"path": "", "image_size": 0, "split": [0.8, 0.1, 0.1], "skip_bad_rows": False}


def own_images(cfg: dict, fits=None) -> tuple[dict, tuple, dict]:
    """Your images (``data.path``) as pixels in [0, 1]: ({"train": x, "val": x | None, "test": x | None},
    (channels, height, width), what inference.json says of the data); ``fits(cfg, data)`` says, in one
    error line, if the network cannot take their size."""
    from deepzoo.data import images
    d = cfg["data"]
    if cfg["eval"]["classifier"]:
        raise DeepzooError("eval.classifier scores MNIST digits with a cnn-mnist run; it cannot score a model "
                           "of your own images (data.path): leave it empty")
    data = images.load(d["path"], d["image_size"], d["skip_bad_rows"])
    if fits is not None:
        fits(cfg, data)
    parts = images.split_data(data, d["split"], cfg["seed"])
    pixels = {k: None if v is None else torch.from_numpy(v[0]).float() / 255.0 for k, v in parts.items()}
    return pixels, data.shape, {"source": data.source, "layout": data.layout,
                                **{k: 0 if v is None else len(v) for k, v in pixels.items()}}


def _multiple_of(k: int, net: str, why: str):
    def fits(cfg: dict, data) -> None:
        from deepzoo.data.images import check_multiple
        check_multiple(data, cfg["recipe"], net, k, why)
    return fits


def make_vae(cfg: dict, image: tuple = (1, 28, 28)) -> VAE:
    m = cfg["model"]
    return VAE(latent=m["latent"], hidden=m["hidden"], layers=m["layers"], kind=m["kind"], channels=m["channels"],
               image=image)


def build_vae(cfg: dict, data_dir) -> Task:
    from deepzoo.data.mnist import load_mnist
    d = cfg["data"]
    if d["path"]:
        fits = _multiple_of(4, "conv VAE", "two stride-2 convolutions") if cfg["model"]["kind"] == "conv" else None
        x, image, facts = own_images(cfg, fits)
        check_common(cfg, len(x["train"]), drop_last=False)
        first = x["test"] if x["test"] is not None else x["train"]
        train = TensorBatches(x["train"], x["train"], d["batch_size"], shuffle=True)
        val = TensorBatches(x["val"], x["val"], 1000) if x["val"] is not None else None
        test = TensorBatches(x["test"], x["test"], 1000) if x["test"] is not None else None
        return Task(model=make_vae(cfg, image), train=train, val=val, test=test, loss=negative_elbo,
                    metrics=[NegativeELBO, Reconstruction, KL], monitor="val_nelbo", headline="test_nelbo",
                    context={"test_images": x["test"], "digits": first[:INTERPOLATION_DIGITS], "image": image,
                             "data": facts})
    data = load_mnist(data_dir, sample=d["sample"])
    (x_all, _), (x_test, _) = data["train"], data["test"]
    if not 0 <= d["val_size"] < len(x_all):
        raise DeepzooError(f"data.val_size must be between 0 and {len(x_all) - 1}, got {d['val_size']}")
    check_common(cfg, len(x_all) - d["val_size"], drop_last=False)  # before any training
    val_idx, train_idx = split(len(x_all), (d["val_size"],), seed=cfg["seed"])
    x_all, x_test = _pixels(x_all), _pixels(x_test)
    train = TensorBatches(x_all[train_idx], x_all[train_idx], d["batch_size"], shuffle=True)
    val = TensorBatches(x_all[val_idx], x_all[val_idx], 1000) if d["val_size"] > 0 else None
    test = TensorBatches(x_test, x_test, 1000)
    return Task(model=make_vae(cfg), train=train, val=val, test=test, loss=negative_elbo,
                metrics=[NegativeELBO, Reconstruction, KL], monitor="val_nelbo", headline="test_nelbo",
                context={"test_images": x_test, "digits": x_test[:INTERPOLATION_DIGITS]})


def check_classifier(path: str) -> dict:
    """The config of the cnn-mnist run folder ``path`` (the classifier of the sample-quality measure).

    Read here from config.json and the checkpoint (not through deepzoo.train.run, which needs the
    recipe registry that this module is part of)."""
    import json

    from deepzoo.recipes import _merge, get
    config = Path(path) / "config.json"
    try:
        meta = json.loads(config.read_text())
    except FileNotFoundError:
        raise DeepzooError(f"eval.classifier: {path} is not a deepzoo run folder (no config.json)") from None
    except (OSError, ValueError) as e:
        raise DeepzooError(f"eval.classifier: cannot read {config} ({e})") from None
    if meta.get("recipe") != "cnn-mnist":
        raise DeepzooError(f"eval.classifier must be a cnn-mnist run folder; {path} is a {meta.get('recipe')} run")
    return _merge(get("cnn-mnist").full_defaults(), meta.get("config", {}))


def load_classifier(path: str) -> torch.nn.Module:
    """The LeNet of a finished ``cnn-mnist`` run (its best weights), for the sample-quality measure."""
    from deepzoo.recipes.mnist import lenet
    from deepzoo.train import checkpoint
    cfg = check_classifier(path)
    latest = checkpoint.read_latest(Path(path) / "checkpoints")
    if latest is None:
        raise DeepzooError(f"eval.classifier: {path} has no checkpoint yet; train it first")
    model = lenet(cfg)
    model.load_state_dict(checkpoint.load_weights(Path(path) / "checkpoints" / latest["best"] / "model.safetensors"))
    return model.eval()


def _sample(model, cfg: dict, n: int, generator: torch.Generator, chunk: int = 250) -> torch.Tensor:
    """n samples in [0, 1] on the CPU, drawn ``chunk`` at a time (DDPM: DDIM with eval.sample_steps steps and
    eval.eta)."""
    out = []
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        if isinstance(model, Diffusion):
            out.append(model.sample(k, generator, sample_steps=cfg["eval"]["sample_steps"], eta=cfg["eval"]["eta"]).cpu())
        else:
            out.append(model.sample(k, generator).cpu())
    return torch.cat(out)


def check_common(cfg: dict, n_train: int, drop_last: bool) -> None:
    """Settings every generative recipe checks before training."""
    b, e = cfg["data"]["batch_size"], cfg["eval"]
    if b < 1 or (drop_last and b > n_train):
        raise DeepzooError(f"data.batch_size must be 1 to {n_train} (the training images), got {b}")
    if e["samples"] < 2:
        raise DeepzooError(f"eval.samples must be at least 2, got {e['samples']}")
    if e["classifier"]:
        check_classifier(e["classifier"])


@torch.no_grad()
def score_samples(task: Task, cfg: dict) -> dict:
    from deepzoo.report.sample_quality import sample_quality
    e = cfg["eval"]
    if not e["classifier"]:
        return {}
    classifier = load_classifier(e["classifier"])
    model = task.model.eval()
    generated = _sample(model, cfg, e["samples"], torch.Generator().manual_seed(cfg["seed"]))
    q = sample_quality(generated.cpu(), task.context["test_images"], classifier)
    return {"test_fd": q["frechet_distance"], "test_confidence": q["mean_confidence"],
            "test_class_entropy": q["class_entropy"], "test_class_histogram": q["class_histogram"]}


def _check_png(path) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise DeepzooError(f"give the PNG file to write, e.g. samples.png (got {path})")
    if not out.parent.is_dir():
        raise DeepzooError(f"folder {out.parent} does not exist")
    return out


@torch.no_grad()
def sample(task: Task, cfg: dict, n: int, seed: int = 0) -> torch.Tensor:
    """n new images [n, 1, 28, 28] (or [n, C, H, W] of your images) with pixel values in [0, 1], on the CPU;
    the same seed draws the same images (DDPM: eval.sample_steps steps of DDIM with eval.eta)."""
    if n < 1:
        raise DeepzooError(f"the number of samples must be at least 1, got {n}")
    return _sample(task.model.eval(), cfg, n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def predict_samples(task: Task, cfg: dict, items: list, seed: int = 0) -> list[dict]:
    """For each PNG path: 64 samples (``seed``) written there, and beside it the interpolations (VAE, GAN),
    the latent map (2-D VAE) or the denoising strip (DDPM). Every path is checked before any is written."""
    outs = [_check_png(item) for item in items]
    return [_predict_one(task, cfg, str(item), out, seed) for item, out in zip(items, outs)]


def _predict_one(task: Task, cfg: dict, path: str, out: Path, seed: int) -> dict:
    from deepzoo.report.plots import save_image_grid
    model = task.model.eval()
    wrote = [save_image_grid(sample(task, cfg, 64, seed), out, nrow=8)]
    if isinstance(model, Diffusion):  # ancestral sampling of 8 digits, 10 snapshots each from x_T to x_0
        _, strip = model.sample_ancestral(8, torch.Generator().manual_seed(seed), keep=10)
        rows = torch.stack(strip, 1).reshape(-1, *model.image)
        wrote.append(save_image_grid(rows, out.with_name(out.stem + "-denoising.png"), nrow=len(strip)))
        return {"input": path, "wrote": [str(p) for p in wrote]}
    if isinstance(model, VAE):      # between the latent means of pairs of test digits
        digits = task.context["digits"]
        pairs = min(5, len(digits) // 2)
        rows = torch.cat([interpolate(model, digits[2 * i], digits[2 * i + 1], steps=10) for i in range(pairs)]) \
            if pairs else None
    else:                           # a GAN has no encoder: between pairs of random latent points
        g = torch.Generator().manual_seed(seed + 1)
        ends = model.noise(10, g)
        t = torch.linspace(0, 1, 10, device=ends.device)[:, None]
        rows = torch.cat([model.decode((1 - t) * ends[2 * i] + t * ends[2 * i + 1]) for i in range(5)])
    if rows is not None:
        wrote.append(save_image_grid(rows, out.with_name(out.stem + "-interpolation.png"), nrow=10))
    if isinstance(model, VAE) and model.latent == 2:
        wrote.append(save_image_grid(latent_map(model, 20), out.with_name(out.stem + "-latent-map.png"), nrow=20))
    return {"input": path, "wrote": [str(p) for p in wrote]}


# --------------------------------------------------------------------------------------------------
# the run folder as a portable model (deepzoo/artefacts.py)

IMAGE = {"channels": 1, "height": 28, "width": 28, "range": [0.0, 1.0]}
INTERPOLATION_DIGITS = 10   # the first 10 test digits: the 5 pairs predict interpolates between
DIGITS_FILE = "interpolation-digits.safetensors"


def _facts(cfg: dict) -> dict:
    """What inference.json says of the model, besides the image: checked against config.json at restore."""
    m = cfg["model"]
    if cfg["recipe"] == "vae-mnist":
        return {"model": "vae", "kind": m["kind"], "latent": m["latent"],
                "pixels": "Bernoulli probabilities sigmoid(decoder logits)"}
    if cfg["recipe"] == "ddpm-mnist":
        return {"model": "diffusion", "steps": m["steps"], "schedule": m["schedule"], "ema": m["ema"],
                "sampler": {"sample_steps": cfg["eval"]["sample_steps"], "eta": cfg["eval"]["eta"]},
                "pixels": "trained on [-1, 1]; samples clipped to [-1, 1] and mapped by (x + 1) / 2",
                "note": "the noise schedule is recomputed from model.steps and model.schedule; the samplers "
                        "use the moving-average weights ema_net.* of the checkpoint" if m["ema"] > 0 else
                        "the noise schedule is recomputed from model.steps and model.schedule"}
    return {"model": "gan", "kind": m["kind"], "latent": m["latent"],
            "pixels": "generator output tanh in [-1, 1], mapped by (x + 1) / 2"}


def artefacts(task: Task, cfg: dict) -> dict:
    """inference.json (image shape, pixel range, the model's facts); for the VAE also the test digits that
    predict's interpolations start and end at (uint8 pixels when they are exactly k / 255, as MNIST's are).
    A run on your own images also says where they came from (``data``)."""
    files = {"inference.json": {"image": _image(task.model.image) if cfg["data"].get("path") else IMAGE,
                                **_facts(cfg)}}
    if cfg["data"].get("path"):
        files["inference.json"]["data"] = task.context["data"]
    if cfg["recipe"] == "vae-mnist":
        digits = task.context["digits"].detach().cpu().float()
        u8 = (digits * 255).round().clamp(0, 255).to(torch.uint8)
        keep = u8 if torch.equal(u8.float() / 255.0, digits) else digits
        files["inference.json"]["interpolation"] = {"file": DIGITS_FILE, "digits": len(digits),
                                                    "dtype": str(keep.dtype).removeprefix("torch."),
                                                    "from": f"the first {len(digits)} test images"}
        files[DIGITS_FILE] = tensor_bytes({"digits": keep})
    return files


def _image(shape: tuple) -> dict:
    return {"channels": shape[0], "height": shape[1], "width": shape[2], "range": [0.0, 1.0]}


def _read_facts(cfg: dict, stored) -> dict:
    """inference.json, checked against config.json; ``info["shape"]`` is the image (channels, height, width)."""
    info = stored.json()
    where = stored.folder / "inference.json"
    image = info.get("image")
    if cfg["data"].get("path"):                          # your own images: any size the model took
        try:
            shape = tuple(int(image[k]) for k in ("channels", "height", "width"))
            ok = shape[0] in (1, 3) and min(shape) > 0 and image.get("range") == [0.0, 1.0]
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise DeepzooError(f"{where}: image {image} is not an image shape; copy the run folder again")
        info["shape"] = shape
    elif image != IMAGE:
        raise DeepzooError(f"{where}: image {image}, but this deepzoo's {cfg['recipe']} makes {IMAGE}")
    else:
        info["shape"] = (1, 28, 28)
    want = _facts(cfg)
    differ = sorted(k for k in ("model", "kind", "latent", "steps", "schedule") if info.get(k) != want.get(k))
    if differ:
        raise DeepzooError(f"{where} does not match config.json (it differs in {', '.join(differ)}): the "
                           f"run folder was put together from two runs; copy it again")
    return info


def restore_vae(cfg: dict, stored) -> Task:
    shape = _read_facts(cfg, stored)["shape"]
    t = stored.tensors(DIGITS_FILE).get("digits")
    if t is None or t.ndim != 4 or tuple(t.shape[1:]) != shape:
        raise DeepzooError(f"{stored.folder / DIGITS_FILE} does not hold the digits [N, {', '.join(map(str, shape))}]")
    digits = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return Task.for_inference(make_vae(cfg, shape), {"digits": digits})


def make_gan(cfg: dict, image: tuple = (1, 28, 28)) -> gan.GAN:
    m = cfg["model"]
    return gan.GAN(kind=m["kind"], latent=m["latent"], width=m["width"], image=image)


def restore_gan(cfg: dict, stored) -> Task:
    return Task.for_inference(make_gan(cfg, _read_facts(cfg, stored)["shape"]))


def make_diffusion(cfg: dict, image: tuple = (1, 28, 28)) -> Diffusion:
    m = cfg["model"]
    return Diffusion(steps=m["steps"], schedule=m["schedule"], width=m["width"], ema=m["ema"],
                     patch=m["patch"], attention=m["attention"], image=image)


def restore_ddpm(cfg: dict, stored) -> Task:
    return Task.for_inference(make_diffusion(cfg, _read_facts(cfg, stored)["shape"]))


register(Recipe(
    name="vae-mnist", family="VAE", dataset="mnist",
    description="variational autoencoder: MLP (or conv) encoder to N(mu, sigma^2), reparameterised z, "
                "Bernoulli decoder; loss = -ELBO in nats",
    reference=Reference("test_nelbo", 106.7, "pytorch/examples VAE (784-400-20 MLP), after 7 epochs",
                        "https://github.com/pytorch/examples/tree/main/vae", higher_is_better=False),
    defaults={"data": {"sample": False, "val_size": 5000, "batch_size": 128, **OWN_DATA},
              "model": {"kind": "mlp", "latent": 20, "hidden": 512, "layers": 2, "channels": 32},
              "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine", "warmup_epochs": 0.0},
              "train": {"epochs": 30}, "eval": {"classifier": "", "samples": 10000}},
    presets={"quick": {"data": {"sample": True, "val_size": 500}, "train": {"epochs": 8}}},
    build=build_vae, score=score_samples, predict=predict_samples, predict_options=("seed",),
    artefacts=artefacts, restore=restore_vae, sample=sample,
    predict_help="the PNG file to write samples to (plus -interpolation.png, -latent-map.png)",
))


# --------------------------------------------------------------------------------------------------
# GAN and DCGAN

def _no_test_loss(out, y):
    raise DeepzooError("a GAN has no test loss; its figures are the sample-quality ones (eval.classifier)")


def build_gan(cfg: dict, data_dir) -> Task:
    from deepzoo.data.mnist import load_mnist
    d, o = cfg["data"], cfg["optim"]
    if not 0 <= o["beta1"] < 1:
        raise DeepzooError(f"optim.beta1 must be in [0, 1), got {o['beta1']}")
    if o["name"] != "adam":
        raise DeepzooError(f"the GAN recipes train with Adam (one parameter group per player); optim.name "
                           f"must be 'adam', got {o['name']!r}")
    if d["path"]:
        fits = _multiple_of(4, "DCGAN", "it starts at a quarter of the size and doubles twice") \
            if cfg["model"]["kind"] == "dcgan" else None
        x, image, facts = own_images(cfg, fits)
        x_train, x_test, context = x["train"], x["test"], {"image": image, "data": facts}
    else:
        data = load_mnist(data_dir, sample=d["sample"])
        x_train, x_test, image, context = _pixels(data["train"][0]), _pixels(data["test"][0]), (1, 28, 28), {}
    check_common(cfg, len(x_train), drop_last=True)
    model = make_gan(cfg, image)
    # Adam, one parameter group per player (lr 2e-4, beta1 0.5: DCGAN's settings)
    optimizer = torch.optim.Adam([{"params": model.generator.parameters()},
                                  {"params": model.discriminator.parameters()}],
                                 lr=o["lr"], betas=(o["beta1"], 0.999), weight_decay=o["weight_decay"])
    train = TensorBatches(x_train * 2 - 1, torch.zeros(len(x_train)), d["batch_size"], shuffle=True, drop_last=True)
    state = {}

    def mode_signal(trainer) -> dict:
        """Class entropy and confidence of 1,000 samples after each epoch (needs eval.classifier); under
        torchrun rank 0 draws and scores them, and every process gets its figures."""
        from deepzoo.report.sample_quality import class_histogram, classify
        from deepzoo.train import distributed
        if not cfg["eval"]["classifier"]:
            return {}
        row = {}
        if trainer.main:
            if "classifier" not in state:
                state["classifier"] = load_classifier(cfg["eval"]["classifier"])
            images = trainer.model.sample(1000, torch.Generator().manual_seed(cfg["seed"])).cpu()
            _, probs = classify(state["classifier"], images)
            row = {"sample_class_entropy": class_histogram(probs)[1], "sample_confidence": float(probs.max(1).mean())}
        return distributed.broadcast(row)

    def step(trainer, x, y) -> dict:
        # the global batch's latent codes, of which this process keeps the rows of its images
        z = trainer.share(trainer.model.noise(trainer.global_rows(x), trainer.generator))
        return gan.train_step(trainer.model, x, trainer.optimizer, z=z,
                              players=(trainer.part("generator"), trainer.part("discriminator")))

    return Task(model=model, train=train, val=None, test=None, loss=_no_test_loss, monitor="train_loss",
                headline="test_fd", optimizer=optimizer, epoch_end=mode_signal, train_step=step,
                players=("generator", "discriminator"), context={"test_images": x_test, **context})


_FD_REF = Reference("test_fd", None, "no published figure on this measure (Fréchet distance of cnn-mnist "
                    "features; needs --set eval.classifier=RUN)", higher_is_better=False)
for name, kind, desc, epochs in (
        ("gan-mnist", "mlp", "the notes' GAN: MLP generator 100-256-512-1024-784 (tanh) vs MLP discriminator, BCE", 50),
        ("dcgan-mnist", "dcgan", "DCGAN: transposed-conv generator with BatchNorm vs strided-conv discriminator", 5)):
    register(Recipe(
        name=name, family="GAN", dataset="mnist", description=desc, reference=_FD_REF,
        defaults={"data": {"sample": False, "batch_size": 64, **OWN_DATA},
                  "model": {"kind": kind, "latent": 100, "width": 64},
                  "optim": {"name": "adam", "lr": 2e-4, "beta1": 0.5, "schedule": "constant"},
                  "train": {"epochs": epochs}, "eval": {"classifier": "", "samples": 10000}},
        presets={"quick": {"data": {"sample": True, "batch_size": 32 if kind == "mlp" else 64},
                           "train": {"epochs": 4 if kind == "mlp" else 1},
                           "optim": {"lr": 1e-3 if kind == "mlp" else 2e-4},
                           "model": {"width": 64 if kind == "mlp" else 32}}},
        build=build_gan, score=score_samples, predict=predict_samples,
        predict_options=("seed",), artefacts=artefacts, restore=restore_gan, sample=sample,
        predict_help="the PNG file to write samples to (plus -interpolation.png)",
    ))


# --------------------------------------------------------------------------------------------------
# DDPM

def build_ddpm(cfg: dict, data_dir) -> Task:
    from deepzoo.data.mnist import load_mnist
    from deepzoo.train.engine import autocast
    d, m, e = cfg["data"], cfg["model"], cfg["eval"]
    if d["path"]:
        k = 2 * m["patch"]
        x, image, facts = own_images(cfg, _multiple_of(k, "U-Net", f"model.patch={m['patch']}: one fold into "
                                                               f"{m['patch']}x{m['patch']} squares, one halving"))
        x_train, x_test, context = x["train"], x["test"], {"image": image, "data": facts}
    else:
        data = load_mnist(data_dir, sample=d["sample"])
        x_train, x_test, image, context = _pixels(data["train"][0]), _pixels(data["test"][0]), (1, 28, 28), {}
    check_common(cfg, len(x_train), drop_last=True)
    model = make_diffusion(cfg, image)
    if not 1 <= e["sample_steps"] <= m["steps"]:
        raise DeepzooError(f"eval.sample_steps must be 1 to model.steps ({m['steps']}), got {e['sample_steps']}")
    if not 0 <= e["eta"] <= 1:
        raise DeepzooError(f"eval.eta must be in [0, 1] (0: deterministic DDIM, 1: ancestral noise), got {e['eta']}")
    train = TensorBatches(x_train * 2 - 1, torch.zeros(len(x_train)), d["batch_size"], shuffle=True, drop_last=True)
    clip = cfg["train"]["clip_grad_norm"]

    def step(trainer, x, y) -> dict:
        with autocast(trainer.device, trainer.precision):
            # steps and noise for the global batch (from the saved RNG); this process keeps its images' rows
            draws = trainer.share(trainer.model.draw(trainer.global_rows(x), trainer.generator))
            loss = trainer.model.loss(x, draws=draws, net=trainer.part("net"))
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scaler.scale(loss).backward()                     # (loss scaling only for fp16 on CUDA)
        if clip > 0:
            trainer.scaler.unscale_(trainer.optimizer)
            torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), clip)
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        trainer.model.update_ema()                                # the samplers' moving average
        return {"loss": float(loss.detach())}

    return Task(model=model, train=train, val=None, test=None, loss=_no_test_loss, monitor="train_loss",
                headline="test_fd", train_step=step, players=("net",), context={"test_images": x_test, **context})


register(Recipe(
    name="ddpm-mnist", family="Diffusion", dataset="mnist",
    description="DDPM: one time-conditioned U-Net predicts the added noise; ancestral sampling and DDIM",
    reference=_FD_REF, build=build_ddpm, score=score_samples, predict=predict_samples, predict_options=("seed",),
    artefacts=artefacts, restore=restore_ddpm, sample=sample,
    predict_help="the PNG file to write samples to (plus -denoising.png: x_T to x_0 for 8 digits)",
    defaults={"data": {"sample": False, "batch_size": 64, **OWN_DATA},
              "model": {"steps": 1000, "schedule": "linear", "width": 32, "patch": 2, "attention": True,
                        "ema": 0.999},
              "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine", "warmup_epochs": 0.2},
              "train": {"epochs": 5, "clip_grad_norm": 1.0, "precision": "auto"},
              "eval": {"classifier": "", "samples": 10000, "sample_steps": 50, "eta": 1.0}},
    presets={"quick": {"data": {"sample": True}, "train": {"epochs": 1},
                       "model": {"width": 16, "steps": 100, "ema": 0.9},
                       "eval": {"sample_steps": 10}}},
))
