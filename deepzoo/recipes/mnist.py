"""MNIST recipes: ``mlp-mnist`` (the dense network) and ``cnn-mnist`` (LeNet-style CNN).

Data: the 60,000 training images minus a held-out validation set of 5,000 (which picks the best
epoch), and the 10,000 official test images, used once at the end. Pixels are scaled to [0, 1] and
standardised with the training set's mean 0.1307 and deviation 0.3081. Training images are shifted
by up to 2 pixels at random each epoch (augmentation): the digit stays the same digit.

Your own images (``--set data.path=...``: class folders, IDX files or an .npz; deepzoo/data/images.py)
replace MNIST: the networks take the data's channels, size and classes, the pixels are standardised with
the training split's own per-channel mean and deviation, and the run folder keeps both and the class names,
so ``deepzoo predict`` resizes and standardises a new picture the same way and names its class.
"""

from __future__ import annotations

import numpy as np
import torch

from deepzoo.data.batches import TensorBatches, random_shift, split
from deepzoo.errors import DeepzooError
from deepzoo.files import image_name, read_image
from deepzoo.models.cnn import LeNet
from deepzoo.models.mlp import MLP
from deepzoo.nn import loss_functions
from deepzoo.recipes import Recipe, Reference, register
from deepzoo.train.engine import Task
from deepzoo.train.metrics import Accuracy

MEAN, STD = 0.1307, 0.3081

DATA_DEFAULTS = {"sample": False, "val_size": 5000, "batch_size": 128, "augment_shift": 2, "path": "",
                 "image_size": 0, "split": [0.8, 0.1, 0.1], "skip_bad_rows": False}
QUICK_DATA = {"sample": True, "val_size": 1000}


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] -> standardised float32 [N, 1, 28, 28]."""
    return ((torch.from_numpy(images).float() / 255.0 - MEAN) / STD).unsqueeze(1)


def own_images_task(cfg: dict, make, fits=None, augment=None, train_metrics: bool = False,
                    drop_last: bool = False, eval_batch: int = 1000) -> Task:
    """A classifier's task on your images (``data.path``): ``make(cfg, shape, classes)`` gives the model;
    ``fits(cfg, data)`` raises one error line if the network cannot take the images' size (before any
    folder is written). Shared by the MNIST and CIFAR recipes."""
    from deepzoo.data import images
    d = cfg["data"]
    data = images.load(d["path"], d["image_size"], d["skip_bad_rows"])
    images.require_classes(data)
    parts = images.split_data(data, d["split"], cfg["seed"])
    if d.get("train_size"):                              # the CIFAR recipes' data.train_size
        if d["train_size"] > len(parts["train"][1]):
            raise DeepzooError(f"data.train_size must be between 0 (all) and {len(parts['train'][1])} (the "
                               f"training images of {d['path']}), got {d['train_size']}")
        parts["train"] = tuple(a[:d["train_size"]] for a in parts["train"])
    if fits is not None:
        fits(cfg, data)
    model = make(cfg, data.shape, len(data.classes))
    mean, std = images.channel_stats(parts["train"][0])

    def batches(part, size, **kw):
        return TensorBatches(images.standardise(part[0], mean, std), torch.from_numpy(part[1]), size, **kw)
    n_train = len(parts["train"][1])
    train = batches(parts["train"], d["batch_size"], shuffle=True, transform=augment,
                    drop_last=drop_last and n_train > d["batch_size"])
    val = batches(parts["val"], eval_batch) if parts["val"] is not None else None
    test = batches(parts["test"], eval_batch) if parts["test"] is not None else None
    facts = images.inference_facts(data, parts, mean, std)
    return Task(model=model, train=train, val=val, test=test,
                loss=loss_functions(cfg["model"]["impl"]).cross_entropy, metrics=[Accuracy],
                monitor="val_acc", headline="test_acc", train_metrics=train_metrics,
                context={"inference": facts, "labels": data.classes, "source": data.source})


def mnist_task(cfg: dict, data_dir, make, fits=None) -> Task:
    from deepzoo.data.mnist import load_mnist
    d = cfg["data"]
    if d["path"]:
        augment = random_shift(d["augment_shift"]) if d["augment_shift"] > 0 else None
        return own_images_task(cfg, make, fits, augment)
    model = make(cfg)
    data = load_mnist(data_dir, sample=d["sample"])
    (x_all, y_all), (x_test, y_test) = data["train"], data["test"]
    if not 0 <= d["val_size"] < len(x_all):
        raise DeepzooError(f"data.val_size must be between 0 and {len(x_all) - 1}, got {d['val_size']}")
    val_idx, train_idx = split(len(x_all), (d["val_size"],), seed=cfg["seed"])
    x_all, y_all = to_tensor(x_all), torch.from_numpy(y_all).long()
    augment = random_shift(d["augment_shift"]) if d["augment_shift"] > 0 else None
    train = TensorBatches(x_all[train_idx], y_all[train_idx], d["batch_size"], shuffle=True, transform=augment)
    val = TensorBatches(x_all[val_idx], y_all[val_idx], 1000) if d["val_size"] > 0 else None
    test = TensorBatches(to_tensor(x_test), torch.from_numpy(y_test).long(), 1000)
    return Task(model=model, train=train, val=val, test=test,
                loss=loss_functions(cfg["model"]["impl"]).cross_entropy, metrics=[Accuracy],
                monitor="val_acc", headline="test_acc")


def build_mlp(cfg: dict, data_dir) -> Task:
    return mnist_task(cfg, data_dir, mlp)


def lenet(cfg: dict, shape: tuple = (1, 28, 28), classes: int = 10) -> LeNet:
    m = cfg["model"]
    return LeNet(in_channels=shape[0], num_classes=classes, c1=m["c1"], c2=m["c2"], hidden=m["hidden"],
                 dropout=m["dropout"], image_size=tuple(shape[1:]), channels_last=m["channels_last"], impl=m["impl"])


def lenet_fits(cfg: dict, data) -> None:
    from deepzoo.data.images import check_min_size
    check_min_size(data, cfg["recipe"], "LeNet", (16, 16), "two 5x5 convolutions and two 2x2 max-pools")


def build_cnn(cfg: dict, data_dir) -> Task:
    return mnist_task(cfg, data_dir, lenet, lenet_fits)


def load_digit(item) -> torch.Tensor:
    """Read a picture of one digit and prepare it the way MNIST was prepared: [1, 1, 28, 28], standardised.

    ``item`` is a file path, a PIL image or an array (deepzoo.files.read_image). MNIST digits are white on
    black, fitted into a 20x20 box and centred in 28x28. A photo or drawing is usually dark on light, so it
    is inverted when its border is bright; then the ink's bounding box is scaled to fit 20x20 and pasted in
    the centre.
    """
    from PIL import Image
    img = read_image(item, "L")
    a = np.asarray(img, dtype=np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 127:
        a = 255.0 - a
    ys, xs = np.nonzero(a > 0.2 * a.max()) if a.max() > 0 else ([], [])
    if len(ys) == 0:
        raise DeepzooError(f"image {image_name(item)} is blank: no digit found")
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = a.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(a.astype(np.uint8)).resize((nw, nh), Image.BILINEAR))
    canvas = np.zeros((28, 28), dtype=np.uint8)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    canvas[top:top + nh, left:left + nw] = small
    return to_tensor(canvas[None])


def classify(model: torch.nn.Module, x: torch.Tensor, names: list[str], inputs: list) -> list[dict]:
    """One forward pass over a batch of prepared images; class and probabilities of each."""
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=-1)
    return [{"input": image_name(item), "class": names[int(p.argmax())],
             "probabilities": {names[k]: round(float(q), 4) for k, q in enumerate(p)}}
            for item, p in zip(inputs, probs)]


def predict_digits(task: Task, cfg: dict, items: list) -> list[dict]:
    """Digits (paths, PIL images or arrays), prepared as MNIST was, classified in one batch; for a run on
    your own images, pictures resized and standardised as its training images were."""
    if "input" in task.context:
        from deepzoo.data.images import prepare
        x = torch.cat([prepare(item, task.context["input"]) for item in items])
    else:
        x = torch.cat([load_digit(item) for item in items])
    return classify(task.model, x, task.context["classes"], items)


def artefacts(task: Task, cfg: dict) -> dict:
    """What turns a picture into the model's input and its output into an answer."""
    if "inference" in task.context:                    # your own images: their size, statistics and classes
        return {"inference.json": task.context["inference"]}
    return {"inference.json": {"input": {"channels": 1, "height": 28, "width": 28, "scale": 1 / 255,
                                         "mean": [MEAN], "std": [STD]},
                               "classes": [str(k) for k in range(10)]}}


def restore(make_model, key: str = "classes"):
    """Rebuild the model from config.json and inference.json; ``key`` names the class list in the context
    (``classes`` for the MNIST recipes, ``labels`` for the CIFAR ones)."""
    def restore(cfg: dict, stored) -> Task:
        from deepzoo.data.images import stored_input
        info = stored.json()
        own = stored_input(info, stored.folder / "inference.json")
        if own is None:
            return Task.for_inference(make_model(cfg), {key: info["classes"]})
        shape, classes = own
        return Task.for_inference(make_model(cfg, shape, len(classes)), {key: classes, "input": info["input"]})
    return restore


def mlp(cfg: dict, shape: tuple = (1, 28, 28), classes: int = 10) -> MLP:
    m = cfg["model"]
    return MLP(shape[0] * shape[1] * shape[2], m["hidden"], classes, activation=m["activation"],
               dropout=m["dropout"], impl=m["impl"])


QUICK = {"data": QUICK_DATA, "train": {"epochs": 3}}

register(Recipe(
    name="mlp-mnist", family="DNN / MLP", dataset="mnist",
    description="784-1024-1024-10 ReLU network with dropout, softmax + cross-entropy",
    reference=Reference("test_acc", 0.9840, "Keras mnist_mlp example (512-512 MLP, 20 epochs)",
                        "https://github.com/keras-team/keras/blob/2.3.1/examples/mnist_mlp.py"),
    defaults={"data": DATA_DEFAULTS,
              "model": {"hidden": [1024, 1024], "activation": "relu", "dropout": 0.2, "impl": "torch"},
              "optim": {"name": "adam", "lr": 1e-3, "schedule": "cosine", "warmup_epochs": 0.5},
              "train": {"epochs": 20}},
    presets={"quick": QUICK},
    build=build_mlp, artefacts=artefacts, restore=restore(mlp),
    predict=predict_digits, predict_help="a PNG/JPG image of one digit",
))

register(Recipe(
    name="cnn-mnist", family="CNN", dataset="mnist",
    description="LeNet: conv5x5(20)-ReLU-pool-conv5x5(50)-ReLU-pool-FC500-FC10",
    reference=Reference("test_acc", 0.9925, "Keras mnist_cnn example (12 epochs)",
                        "https://github.com/keras-team/keras/blob/2.3.1/examples/mnist_cnn.py"),
    defaults={"data": DATA_DEFAULTS,
              "model": {"c1": 20, "c2": 50, "hidden": 500, "dropout": 0.5, "channels_last": True,
                        "impl": "torch"},
              "optim": {"name": "adam", "lr": 2e-3, "schedule": "cosine", "warmup_epochs": 0.5},
              "train": {"epochs": 12}},
    presets={"quick": QUICK},
    build=build_cnn, make_model=lenet, input_shape=(1, 28, 28), artefacts=artefacts, restore=restore(lenet),
    predict=predict_digits, predict_help="a PNG/JPG image of one digit",
))
