"""CIFAR-10 recipes: ResNet-20/56 and their plain twins, a VGG-style net and the notes' 7-layer CNN.

Data: the training images (all 30,000 of the shared partial copy, or 50,000 from the canonical
pickles), augmented on every batch by a random 32x32 crop of the image padded by 4 and a random
horizontal flip; the test images (1,000 or 10,000) are used once at the end. ``data.val_size`` holds
out training images to choose the best epoch by; it is 0 by default, so the figure is that of the
last epoch, chosen by nothing. ``data.train_size`` trains on the first N images only (0: all).

``data.path`` reads CIFAR-10 in its canonical layouts (the python pickles' folder or archive), or your own
images: class folders, IDX files or an .npz (deepzoo/data/images.py), with their own channels, size,
classes and per-channel statistics, kept in the run folder for ``deepzoo predict``. The ResNets take any
size (global average pooling); the conv stacks need a side of at least 2^(number of "M" pools).

Training is close to He et al. 2016 (SGD with momentum 0.9, batch 128; here with Nesterov momentum and
weight decay 5e-4 where they use 1e-4), but with a short schedule: the learning rate warms up over 2 epochs to 0.1 and
then falls linearly to 0 (a one-cycle policy), so a few tens of epochs replace their 164: 30 by default,
16 for ResNet-20, which then reaches 86.5% in 17.6 minutes of training on 2 AVX2-only cores (fp32;
benchmarks/results/cifar-avx2.json; 88.5% after 30 epochs on a CPU with AMX, cifar.json).
``train.precision=auto`` runs the convolutions in bf16 on CPUs that have bf16 instructions, in training
and in evaluation (so the test figure is that of the bf16 model); see benchmarks/cifar.py for what that
and channels-last buy.
"""

from __future__ import annotations

import numpy as np
import torch

from deepzoo.data.batches import TensorBatches, split
from deepzoo.errors import DeepzooError
from deepzoo.files import read_image
from deepzoo.models.resnet import ConvStack, ResNetCIFAR
from deepzoo.nn import loss_functions
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Accuracy

DATA = {"sample": False, "path": "", "val_size": 0, "train_size": 0, "batch_size": 128,
        "crop_padding": 4, "flip": True, "image_size": 0, "split": [0.8, 0.1, 0.1], "skip_bad_rows": False}
OPTIM = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
         "schedule": "linear", "warmup_epochs": 2.0}
TRAIN = {"epochs": 30, "precision": "auto"}


def quick(epochs: int, lr: float, width: int | None = None, adam: bool = False) -> dict:
    """A quick preset: the 500 packaged training images, all trained on (no validation split: the figure is
    the last epoch's, on the 500 packaged test images), without crops and flips (over a few epochs of 500
    images they slow the fitting more than they help), batches of 32, a short warm-up; 56-layer nets at
    half width (8/16/32 channels), 4x fewer multiply-adds, at the full depth.

    Plain-56 is the exception that makes the notes' point: with SGD it stays at chance for its first hundreds
    of steps (8 or 12 epochs here: 8-19% test accuracy, changing with the seed and the CPU's rounding), the
    degradation He et al. describe; Adam at 3e-3 over 12 epochs lifts it above chance (18.4% and 18.6% for
    seeds 0 and 1, against 11.4% for the most frequent class of the 500 test images; seed 2: 13.0%, so it is
    still a lottery), far below ResNet-56's 27% from 6 epochs of SGD."""
    optim = ({"name": "adam", "lr": lr, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0} if adam
             else {"lr": lr})
    return {"data": {"sample": True, "val_size": 0, "batch_size": 32, "crop_padding": 0, "flip": False},
            "train": {"epochs": epochs}, "optim": {**optim, "warmup_epochs": 0.5},
            **({"model": {"width": width}} if width else {})}


QUICK = {"resnet20-cifar10": quick(4, 0.05), "resnet56-cifar10": quick(6, 0.05, width=8),
         "plain20-cifar10": quick(4, 0.05), "plain56-cifar10": quick(12, 3e-3, width=8, adam=True),
         "vgg-cifar10": quick(4, 0.01), "cnn7-cifar10": quick(4, 0.02)}

VGG_CONFIG = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"]  # VGG's 64-512 halved: CPU-sized
NOTES_CONFIG = [32, 32, "M", 64, 64, "M", 128, 128, "M"]


def cifar_task(cfg: dict, data_dir, make, fits=None) -> Task:
    from deepzoo.data.cifar import LABEL_NAMES, canonical_path, crop_and_flip, load_cifar10, to_tensor
    d = cfg["data"]
    if d["crop_padding"] < 0:
        raise DeepzooError(f"data.crop_padding must be 0 (no random crop) or more, got {d['crop_padding']}")
    if d["path"] and not canonical_path(d["path"]):   # your own images
        from deepzoo.recipes.mnist import own_images_task
        augment = crop_and_flip(d["crop_padding"], d["flip"]) if (d["crop_padding"] or d["flip"]) else None
        return own_images_task(cfg, make, fits, augment, train_metrics=True, drop_last=True, eval_batch=500)
    model = make(cfg)
    data = load_cifar10(data_dir, path=d["path"] or None, sample=d["sample"])
    (x_all, y_all), (x_test, y_test) = data["train"], data["test"]
    if d["train_size"] < 0 or d["train_size"] > len(x_all):
        raise DeepzooError(f"data.train_size must be between 0 (all) and {len(x_all)}, got {d['train_size']}")
    if d["train_size"]:
        x_all, y_all = x_all[:d["train_size"]], y_all[:d["train_size"]]
    if not 0 <= d["val_size"] < len(x_all):
        raise DeepzooError(f"data.val_size must be between 0 and {len(x_all) - 1}, got {d['val_size']}")
    if d["batch_size"] < 1:
        raise DeepzooError(f"data.batch_size must be at least 1, got {d['batch_size']}")
    val_idx, train_idx = split(len(x_all), (d["val_size"],), seed=cfg["seed"])
    x_all, y_all = to_tensor(x_all), torch.from_numpy(y_all)
    augment = crop_and_flip(d["crop_padding"], d["flip"]) if (d["crop_padding"] or d["flip"]) else None
    train = TensorBatches(x_all[train_idx], y_all[train_idx], d["batch_size"], shuffle=True,
                          drop_last=len(train_idx) > d["batch_size"], transform=augment)
    val = TensorBatches(x_all[val_idx], y_all[val_idx], 500) if d["val_size"] > 0 else None
    test = TensorBatches(to_tensor(x_test), torch.from_numpy(y_test), 500)
    return Task(model=model, train=train, val=val, test=test,
                loss=loss_functions(cfg["model"]["impl"]).cross_entropy, metrics=[Accuracy],
                monitor="val_acc", headline="test_acc", train_metrics=True,
                context={"labels": LABEL_NAMES, "source": data["source"]})


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_common(m: dict) -> None:
    if not 0 <= m.get("dropout", 0.0) < 1:
        raise DeepzooError(f"model.dropout must be in [0, 1), got {m['dropout']}")
    bad = [h for h in m.get("hidden", []) if not _positive_int(h)]
    if bad:
        raise DeepzooError(f"model.hidden: each entry is a positive layer width, got {bad[0]!r}")


def resnet(cfg: dict, shape: tuple = (3, 32, 32), classes: int = 10) -> ResNetCIFAR:
    m = cfg["model"]
    if not _positive_int(m["width"]):
        raise DeepzooError(f"model.width must be a positive integer, got {m['width']!r}")
    return ResNetCIFAR(depth=m["depth"], num_classes=classes, residual=m["residual"], shortcut=m["shortcut"],
                       width=m["width"], channels_last=m["channels_last"], impl=m["impl"], in_channels=shape[0])


def conv_stack(cfg: dict, shape: tuple = (3, 32, 32), classes: int = 10) -> ConvStack:
    m = cfg["model"]
    _check_common(m)
    bad = [v for v in m["config"] if v != "M" and not _positive_int(v)]
    if bad:
        raise DeepzooError(f"model.config: each entry is a channel count or \"M\" (a 2x2 max-pool), got {bad[0]!r}")
    return ConvStack(m["config"], hidden=m["hidden"], num_classes=classes, batch_norm=m["batch_norm"],
                     dropout=m["dropout"], image_size=tuple(shape[1:]), channels_last=m["channels_last"],
                     impl=m["impl"], in_channels=shape[0])


def stack_fits(cfg: dict, data) -> None:
    """The conv stack halves the image at each "M": the sides must be at least 2^pools."""
    from deepzoo.data.images import check_min_size
    pools = cfg["model"]["config"].count("M")
    check_min_size(data, cfg["recipe"], "conv stack", (2 ** pools, 2 ** pools),
                   f"model.config has {pools} 2x2 max-pools")


def build_resnet(cfg: dict, data_dir) -> Task:
    return cifar_task(cfg, data_dir, resnet)


def build_stack(cfg: dict, data_dir) -> Task:
    return cifar_task(cfg, data_dir, conv_stack, stack_fits)


def load_image(item) -> torch.Tensor:
    """Any picture (a path, a PIL image or an array) -> the model's input: RGB, resized to 32x32 (CIFAR's
    size), standardised: [1, 3, 32, 32]."""
    from PIL import Image

    from deepzoo.data.cifar import to_tensor
    img = read_image(item, "RGB")
    img = img.resize((32, 32), Image.BILINEAR, reducing_gap=None)
    return to_tensor(np.array(img, dtype=np.uint8)[None])


def predict_images(task: Task, cfg: dict, items: list) -> list[dict]:
    """Pictures, each resized to 32x32 (or to the size of your images the run trained on), classified in
    one batch."""
    from deepzoo.recipes.mnist import classify
    if "input" in task.context:
        from deepzoo.data.images import prepare
        x = torch.cat([prepare(item, task.context["input"]) for item in items])
    else:
        x = torch.cat([load_image(item) for item in items])
    return classify(task.model, x, task.context["labels"], items)


def artefacts(task: Task, cfg: dict) -> dict:
    from deepzoo.data.cifar import MEAN, STD
    if "inference" in task.context:                    # your own images: their size, statistics and classes
        return {"inference.json": task.context["inference"]}
    return {"inference.json": {"input": {"channels": 3, "height": 32, "width": 32, "scale": 1 / 255,
                                         "mean": list(MEAN), "std": list(STD)},
                               "classes": list(task.context["labels"])}}


def restore(make_model):
    from deepzoo.recipes.mnist import restore as restore_classifier
    return restore_classifier(make_model, key="labels")


def _resnet_model(depth: int, residual: bool) -> dict:
    return {"depth": depth, "residual": residual, "shortcut": "A", "width": 16, "channels_last": True,
            "impl": "torch"}


_HE = "https://arxiv.org/abs/1512.03385"
_NOTE = " (50,000 training images, 10,000 test; the shared partial copy has 30,000 and the first 1,000)"
for name, depth, residual, ref in (
        ("resnet20-cifar10", 20, True, Reference("test_acc", 0.9125, "He et al. 2016, Table 6, ResNet-20" + _NOTE, _HE)),
        ("resnet56-cifar10", 56, True, Reference("test_acc", 0.9303, "He et al. 2016, Table 6, ResNet-56" + _NOTE, _HE)),
        ("plain20-cifar10", 20, False, Reference("test_acc", None, "He et al. 2016 give plain nets only in Fig. 6", _HE)),
        ("plain56-cifar10", 56, False, Reference("test_acc", None, "He et al. 2016 give plain nets only in Fig. 6", _HE))):
    kind = "ResNet" if residual else "plain net (ResNet without shortcuts)"
    register(Recipe(
        name=name, family="ResNet" if residual else "CNN (plain deep)", dataset="cifar10",
        description=f"{kind}, {depth} layers: 3x3 conv + BN + ReLU, stages of 16/32/64 channels, global pool",
        reference=ref, build=build_resnet, make_model=resnet, input_shape=(3, 32, 32),
        artefacts=artefacts, restore=restore(resnet),
        defaults={"data": DATA, "model": _resnet_model(depth, residual), "optim": OPTIM,
                  "train": {**TRAIN, "epochs": 16} if name == "resnet20-cifar10" else TRAIN},
        presets={"quick": QUICK[name]}, predict=predict_images, predict_help="a PNG/JPG image (resized to 32x32)",
    ))

register(Recipe(
    name="vgg-cifar10", family="CNN (VGG-style)", dataset="cifar10",
    description="VGG-style: pairs of 3x3 conv + BN + ReLU, a 2x2 max-pool after each, 32-256 channels, FC 256",
    reference=Reference("test_acc", None, "no published figure for this small VGG on CIFAR-10 "
                        "(VGG: Simonyan & Zisserman 2015, ImageNet)", "https://arxiv.org/abs/1409.1556"),
    defaults={"data": DATA, "model": {"config": VGG_CONFIG, "hidden": [256], "dropout": 0.3, "batch_norm": True,
                                      "channels_last": True, "impl": "torch"},
              "optim": OPTIM, "train": TRAIN},
    presets={"quick": QUICK["vgg-cifar10"]}, build=build_stack, make_model=conv_stack, input_shape=(3, 32, 32),
    artefacts=artefacts, restore=restore(conv_stack),
    predict=predict_images, predict_help="a PNG/JPG image (resized to 32x32)",
))

register(Recipe(
    name="cnn7-cifar10", family="CNN", dataset="cifar10",
    description="the notes' CNN: conv-conv-pool x3 (32/64/128 channels, BN) + one FC layer: 7 weight layers",
    reference=Reference("test_acc", None, "no published figure for this 7-layer example network"),
    defaults={"data": DATA, "model": {"config": NOTES_CONFIG, "hidden": [], "dropout": 0.0, "batch_norm": True,
                                      "channels_last": True, "impl": "torch"},
              "optim": OPTIM, "train": {"epochs": 20, "precision": "auto"}},
    presets={"quick": QUICK["cnn7-cifar10"]}, build=build_stack, make_model=conv_stack, input_shape=(3, 32, 32),
    artefacts=artefacts, restore=restore(conv_stack),
    predict=predict_images, predict_help="a PNG/JPG image (resized to 32x32)",
))
