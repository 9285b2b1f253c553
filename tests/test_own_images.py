"""Your own images through every door (deepzoo/data/images.py): class folders (with or without train/ and
test/ folders), IDX files and .npz files (channels first or last, 1 or 3 channels, sizes other than 28 and
32) train the image recipes through the command line, learn a separable pattern, and predict with their
class names from the run folder alone; bad inputs are one error line, exit status 2, and no run folder."""

import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import deepzoo_main
from deepzoo.data.mnist import write_idx

SMALL_LENET = ("model.c1=6", "model.c2=12", "model.hidden=32")   # the tests teach patterns, not MNIST
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
FORMATS = (".png", ".jpg", ".bmp", ".webp")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The images are tiny: a second thread gains nothing, and under CPU contention every small operation
    would wait for it."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def colour_image(rng, colour, size: int = 20) -> np.ndarray:
    """A noisy patch of one colour: uint8 [size, size, 3]."""
    return np.clip(np.array(colour)[None, None] + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)


def stripes(rng, vertical: bool, size: int = 16) -> np.ndarray:
    """Grey stripes size/8 pixels wide (at least 2; as wide as the gaps), at a random phase, with noise:
    uint8 [size, size]. Resized to 16 x 16 they stay stripes 2 pixels wide."""
    width = max(2, size // 8)
    on = (np.arange(size) - int(rng.integers(2 * width))) % (2 * width) < width
    a = np.where(on[None, :] if vertical else on[:, None], 210.0, 40.0) * np.ones((size, size))
    return np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)


def colour_folder(root, per_class: int = 40, size: int = 20, formats=FORMATS, classes=COLOURS):
    rng = np.random.default_rng(0)
    for name, colour in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(colour_image(rng, colour, size)).save(root / name / f"{i:03d}{formats[i % len(formats)]}")
    return root


def train(tmp_path, recipe, data, *sets, out="run"):
    status, stdout, stderr = deepzoo_main("train", recipe, "--preset", "quick", "--quiet", "--set", f"data.path={data}",
                                          *[a for s in sets for a in ("--set", s)], "--out", str(tmp_path / out))
    assert status == 0, stderr
    import json
    return json.loads((tmp_path / out / "summary.json").read_text()), stdout


def moved(tmp_path, run="run"):
    """The run folder copied elsewhere: what predict reads must all be inside it."""
    shutil.copytree(tmp_path / run, tmp_path / "elsewhere" / run)
    return tmp_path / "elsewhere" / run


def predict(run, *items):
    status, stdout, stderr = deepzoo_main("predict", str(run), *map(str, items))
    assert status == 0, stderr
    return stdout


# --------------------------------------------------------------------------------------------------
# the three layouts train and predict

def test_class_folders_every_format_train_and_predict_with_names(tmp_path):
    data = colour_folder(tmp_path / "colours")
    summary, _ = train(tmp_path, "cnn-mnist", data, "data.batch_size=16", "train.epochs=3", *SMALL_LENET)
    assert summary["results"]["test_acc"] >= 0.9          # chance: 1/3
    run = moved(tmp_path)
    shutil.rmtree(data)                                   # predict needs no dataset
    Image.fromarray(colour_image(np.random.default_rng(9), COLOURS["green"])).save(tmp_path / "new.png")
    Image.fromarray(colour_image(np.random.default_rng(9), COLOURS["red"], 50)).save(tmp_path / "big.jpg")
    out = predict(run, tmp_path / "new.png", tmp_path / "big.jpg")    # another size is resized
    assert "new.png: class green" in out and "big.jpg: class red" in out


def test_split_folders_grey_resized_on_a_conv_stack(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "stripes"
    for split, n in (("train", 24), ("test", 8)):
        for name in ("horizontal", "vertical"):
            (root / split / name).mkdir(parents=True)
            for i in range(n):          # two sizes: data.image_size makes them one
                Image.fromarray(stripes(rng, name == "vertical", 24 if i % 2 else 32)).save(
                    root / split / name / f"{i}.png")
    summary, _ = train(tmp_path, "cnn7-cifar10", root, "data.image_size=16", "train.epochs=4",
                       "data.batch_size=8", 'model.config=[8, "M", 16, "M"]')
    assert summary["results"]["test_acc"] >= 0.9
    run = moved(tmp_path)
    info = (run / "inference" / "inference.json").read_text()
    assert '"height": 16' in info and '"channels": 1' in info
    assert '"train": 43' in info and '"val": 5' in info and '"test": 16' in info   # val: 1/9 of train/
    Image.fromarray(stripes(rng, True, 32)).save(tmp_path / "v.png")
    assert "v.png: class vertical" in predict(run, tmp_path / "v.png")


def test_idx_files_gzipped_or_not_with_their_label_values(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "idx"
    folder.mkdir()

    def make(n):
        labels = np.array([3, 7] * (n // 2), dtype=np.uint8)
        return np.stack([stripes(rng, lab == 7, 14) for lab in labels]), labels
    x, y = make(120)
    write_idx(folder / "train-images-idx3-ubyte.gz", x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y)
    x, y = make(40)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y)
    import gzip
    raw = folder / "t10k-labels-idx1-ubyte"                # the uncompressed file reads the same
    raw.write_bytes(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    summary, _ = train(tmp_path, "mlp-mnist", folder, "data.batch_size=16", "train.epochs=3", "model.hidden=[64]")
    assert summary["results"]["test_acc"] >= 0.9
    run = moved(tmp_path)
    Image.fromarray(stripes(rng, True, 14)).save(tmp_path / "seven.png")
    assert "seven.png: class 7" in predict(run, tmp_path / "seven.png")


def test_npz_channels_first_colour_on_a_resnet(tmp_path):
    rng = np.random.default_rng(3)
    y = np.arange(150) % 3
    x = np.stack([colour_image(rng, list(COLOURS.values())[k], 12) for k in y]).transpose(0, 3, 1, 2)
    np.savez(tmp_path / "first.npz", x_train=x, y_train=y, class_names=np.array(list(COLOURS)))
    summary, _ = train(tmp_path, "resnet20-cifar10", tmp_path / "first.npz", "train.epochs=4", "model.width=4",
                       "model.depth=8", "data.batch_size=16")
    assert summary["results"]["test_acc"] >= 0.9
    Image.fromarray(colour_image(rng, COLOURS["blue"], 12)).save(tmp_path / "b.png")
    assert "b.png: class blue" in predict(moved(tmp_path), tmp_path / "b.png")


def test_npz_channels_last_grey_floats_string_labels(tmp_path):
    rng = np.random.default_rng(4)
    names = np.array(["flat", "upright"] * 50)
    x = np.stack([stripes(rng, n == "upright", 18) for n in names])[..., None] / 255.0   # [N, H, W, 1] floats
    np.savez(tmp_path / "last.npz", x_train=x[:80], y_train=names[:80], x_test=x[80:], y_test=names[80:, None])
    summary, _ = train(tmp_path, "cnn-mnist", tmp_path / "last.npz", "data.batch_size=16", "train.epochs=3",
                       *SMALL_LENET)
    assert summary["results"]["test_acc"] >= 0.9
    Image.fromarray(stripes(rng, False, 18)).save(tmp_path / "f.png")
    assert "f.png: class flat" in predict(moved(tmp_path), tmp_path / "f.png")


@pytest.mark.parametrize("recipe, layout, sets", [
    ("vae-mnist", "npz-grey-12", ["data.batch_size=16"]),
    ("gan-mnist", "npz-grey-12", ["data.batch_size=16"]),
    ("dcgan-mnist", "one-class-folder-16", ["data.batch_size=16"]),
    ("ddpm-mnist", "npz-colour-8", ["data.batch_size=16", "model.schedule=cosine", "model.steps=10",
                                    "eval.sample_steps=5"]),
])
def test_generative_recipes_take_your_images(tmp_path, recipe, layout, sets):
    rng = np.random.default_rng(5)
    if layout == "one-class-folder-16":        # no labels needed: one class folder is enough
        data = colour_folder(tmp_path / "faces", per_class=48, size=16, formats=(".png",),
                             classes={"faces": COLOURS["red"]})
        shape = (3, 16, 16)
    elif layout == "npz-grey-12":
        x = np.stack([stripes(rng, bool(i % 2), 12) for i in range(60)])
        np.savez(tmp_path / "g.npz", x_train=x, y_train=np.zeros(60, dtype=np.int64))
        data, shape = tmp_path / "g.npz", (1, 12, 12)
    else:
        x = np.stack([colour_image(rng, COLOURS["blue"], 8) for _ in range(60)]).transpose(0, 3, 1, 2)
        np.savez(tmp_path / "c.npz", x_train=x, y_train=np.zeros(60, dtype=np.int64))
        data, shape = tmp_path / "c.npz", (3, 8, 8)
    train(tmp_path, recipe, data, *sets, "train.epochs=1")
    predict(moved(tmp_path), tmp_path / "s.png")
    grid = np.asarray(Image.open(tmp_path / "s.png"))
    # 8 x 8 images of H x W, 1-pixel gaps, each pixel 2 x 2
    assert grid.shape[:2] == (2 * (8 * (shape[1] + 1) + 1), 2 * (8 * (shape[2] + 1) + 1))
    assert (grid.ndim == 3) == (shape[0] == 3)


# --------------------------------------------------------------------------------------------------
# bad inputs: one line, exit status 2, no run folder

def _corrupt(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4)
    (root / "red" / "zz.png").write_bytes(b"not a png at all")
    return "cnn-mnist", root, [], f"data.path: cannot read image {root / 'red' / 'zz.png'} (cannot identify image " \
                                 f"file); fix or delete it, or set data.skip_bad_rows=true to skip unreadable images"


def _empty_class(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4)
    (root / "yellow").mkdir()
    (root / "yellow" / "notes.txt").write_text("no pictures here")
    return "cnn-mnist", root, [], f"data.path: class folder {root / 'yellow'} holds no images (PNG, JPEG, BMP or WebP)"


def _single_class(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4, classes={"cat": COLOURS["red"]})
    return "resnet20-cifar10", root, [], f"data.path: {root} has one class (cat) in its training images; a " \
                                        f"classifier needs at least two"


def _npz_lengths(tmp_path):
    np.savez(tmp_path / "m.npz", x_train=np.zeros((10, 20, 20), np.uint8), y_train=np.zeros(9, np.int64))
    return "mlp-mnist", tmp_path / "m.npz", [], \
        f"data.path: {tmp_path / 'm.npz'}: x_train has 10 images but y_train has 9 labels"


def _too_small(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4, size=12)
    return "cnn-mnist", root, [], f"data.path: {root} has 12x12 images, but cnn-mnist's LeNet needs at least 16x16 " \
                                  f"(two 5x5 convolutions and two 2x2 max-pools); set data.image_size=16 or more " \
                                  f"to resize them"


def _not_multiple(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4, size=18)
    return "dcgan-mnist", root, [], f"data.path: {root} has 18x18 images, but dcgan-mnist's DCGAN takes sides that " \
                                    f"are multiples of 4 (it starts at a quarter of the size and doubles twice); " \
                                    f"set data.image_size=16 to resize them"


def _mixed_sizes(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=4)
    Image.fromarray(colour_image(np.random.default_rng(0), COLOURS["red"], 24)).save(root / "red" / "zz.png")
    return "cnn-mnist", root, [], f"data.path: the images differ in size ({root / 'blue' / '000.png'} is 20x20, " \
                                  f"{root / 'red' / 'zz.png'} is 24x24); set data.image_size=N to resize every " \
                                  f"image to NxN"


@pytest.mark.parametrize("case", [_corrupt, _empty_class, _single_class, _npz_lengths, _too_small, _not_multiple,
                                  _mixed_sizes])
def test_bad_input_is_one_error_line_and_no_run_folder(tmp_path, case):
    recipe, data, sets, line = case(tmp_path)
    status, _, stderr = deepzoo_main("train", recipe, "--preset", "quick", "--quiet", "--set", f"data.path={data}",
                                     *sets, "--out", str(tmp_path / "run"))
    assert (status, stderr) == (2, f"deepzoo: error: {line}\n")
    assert not (tmp_path / "run").exists()


def test_skip_bad_rows_skips_unreadable_images_and_says_how_many(tmp_path):
    root = colour_folder(tmp_path / "d", per_class=8)
    (root / "red" / "zz.png").write_bytes(b"not a png at all")
    (root / "blue" / "cut.png").write_bytes((root / "blue" / "000.png").read_bytes()[:60])   # truncated
    summary, stdout = train(tmp_path, "cnn-mnist", root, "data.skip_bad_rows=true", "train.epochs=1", *SMALL_LENET)
    assert f"skipped 2 unreadable images of {root} (data.skip_bad_rows = true); the first: cannot read image " \
           f"{root / 'blue' / 'cut.png'}" in stdout
    assert summary["results"]["test_acc"] is not None
