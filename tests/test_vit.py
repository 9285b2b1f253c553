"""The Vision Transformer (deepzoo/models/vit.py, deepzoo/recipes/vit.py): the patch embedding is unfold +
linear, the whole model equals one assembled from torch's built-ins, the class token and the positions do
what the paper says, the quick presets learn, a copied run folder predicts alone, your own images train
and a size the patches do not divide is one error line; and `deepzoo experiment vit-vs-resnet --quick`."""

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from conftest import deepzoo_main
from deepzoo.errors import DeepzooError
from deepzoo.models.vit import PatchEmbedding, ViT

quiet = dict(progress=False, log=lambda m: None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: a second thread gains nothing, and under CPU contention every operation would wait for it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- the maths ----------------------------------------------------------------------------------------

def test_patch_embedding_is_unfold_then_linear():
    torch.manual_seed(0)
    embed = PatchEmbedding(3, 16, patch=4).double()
    x = torch.randn(2, 3, 12, 8, dtype=torch.float64, requires_grad=True)
    conv = embed(x)
    assert conv.shape == (2, 6, 16)                            # (12 / 4) x (8 / 4) = 6 patches of width 16
    # the long way, by hand: patch i is rows 4r..4r+3, columns 4c..4c+3, row by row, flattened channel-first
    patches = x.reshape(2, 3, 3, 4, 2, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 6, 48)
    E = embed.proj.weight.reshape(16, 48).T                    # (C P^2, D)
    torch.testing.assert_close(conv, patches @ E + embed.proj.bias, rtol=1e-12, atol=1e-12)
    unfold = embed.unfold_linear(x)
    torch.testing.assert_close(conv, unfold, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(conv)
    grads_conv = torch.autograd.grad(conv, [x, embed.proj.weight, embed.proj.bias], g)
    grads_unfold = torch.autograd.grad(unfold, [x, embed.proj.weight, embed.proj.bias], g)
    for a, b in zip(grads_conv, grads_unfold):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


class TorchViT(nn.Module):
    """The same ViT from torch's own modules: Conv2d, nn.TransformerEncoderLayer (pre-norm, GELU), nn.LayerNorm."""

    def __init__(self, dim, depth, heads, mlp_dim, patch, channels, classes, tokens, head_hidden, pool="cls"):
        super().__init__()
        self.pool = pool
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos = nn.Parameter(torch.zeros(tokens, dim))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, head_hidden), nn.Tanh(), nn.Linear(head_hidden, classes))

    def forward(self, x):
        z = self.proj(x).flatten(2).transpose(1, 2)
        if self.pool == "cls":
            z = torch.cat([self.cls.expand(len(x), -1, -1), z], dim=1)
        z = z + self.pos
        for layer in self.layers:
            z = layer(z)
        return self.head(self.norm(z)[:, 0] if self.pool == "cls" else self.norm(z).mean(dim=1))


def _copy_into(ref: TorchViT, vit: ViT) -> dict:
    """Copy vit's weights into ref; return {vit parameter name: ref parameter}."""
    pairs = {"patch_embed.proj.weight": ref.proj.weight, "patch_embed.proj.bias": ref.proj.bias,
             "positions.table.weight": ref.pos, "norm.weight": ref.norm.weight, "norm.bias": ref.norm.bias}
    if ref.cls is not None:
        pairs["cls_token"] = ref.cls
    for i, layer in enumerate(ref.layers):                    # deepzoo's EncoderLayer keeps torch's names
        for name, p in layer.named_parameters():
            pairs[f"blocks.{i}.{name}"] = p
    for name, p in ref.head.named_parameters():
        pairs[f"head.{name}"] = p
    mine = dict(vit.named_parameters())
    assert sorted(mine) == sorted(pairs)
    with torch.no_grad():
        for name, p in pairs.items():
            p.copy_(mine[name])
    return pairs


@pytest.mark.parametrize("impl,pool", [("torch", "cls"), ("scratch", "cls"), ("torch", "mean"), ("scratch", "mean")])
def test_vit_equals_the_same_net_from_torch_builtins(impl, pool):
    torch.manual_seed(0)
    vit = ViT((8, 12), patch=4, in_channels=3, num_classes=5, dim=16, depth=2, heads=4, mlp_dim=24,
              head_hidden=8, impl=impl, pool=pool).double()
    ref = TorchViT(16, 2, 4, 24, 4, 3, 5, tokens=(pool == "cls") + 2 * 3, head_hidden=8, pool=pool).double()
    pairs = _copy_into(ref, vit)
    x = torch.randn(3, 3, 8, 12, dtype=torch.float64)
    y = torch.tensor([0, 3, 4])
    ours, theirs = vit(x), ref(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    nn.functional.cross_entropy(ours, y).backward()
    nn.functional.cross_entropy(theirs, y).backward()
    for name, p in vit.named_parameters():
        torch.testing.assert_close(p.grad, pairs[name].grad, rtol=1e-9, atol=1e-10, msg=name)


def test_shapes_and_the_class_token():
    torch.manual_seed(0)
    vit = ViT((28, 28), patch=4, in_channels=1, num_classes=10, dim=32, depth=2, heads=4, mlp_dim=64).double().eval()
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    assert vit.num_patches == 49 and vit.embed(x).shape == (5, 50, 32)
    assert vit.features(x).shape == (5, 32) and vit(x).shape == (5, 10)
    torch.testing.assert_close(vit(x[:2]), vit(x)[:2])          # each image on its own: no batch statistics
    # the head reads the class token's final state: a different class token, different scores
    with torch.no_grad():
        before = vit(x)
        vit.cls_token.add_(torch.randn_like(vit.cls_token))  # (not a constant: every LayerNorm would remove it)
        assert not torch.allclose(vit(x), before)
    # attention alone sees a set: without position embeddings, moving whole patches changes nothing;
    # with them, it does
    perm = torch.randperm(49, generator=torch.Generator().manual_seed(1))
    patches = x.reshape(5, 1, 7, 4, 7, 4).permute(0, 2, 4, 1, 3, 5).reshape(5, 49, 1, 4, 4)
    shuffled = patches[:, perm].reshape(5, 7, 7, 1, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape(5, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(vit(shuffled), vit(x))
        vit.positions.table.weight.zero_()
        torch.testing.assert_close(vit(shuffled), vit(x), rtol=1e-10, atol=1e-10)
    vit.train()
    vit.cls_token.grad = None
    vit(x).sum().backward()
    assert vit.cls_token.grad.abs().sum() > 0                   # the class token is trained
    with pytest.raises(DeepzooError, match="this model was built for 49"):
        vit(torch.randn(1, 1, 32, 32, dtype=torch.float64))
    with pytest.raises(DeepzooError, match="not divisible by the 3 heads"):
        ViT(dim=32, heads=3)


def test_mean_pooling_has_no_class_token_and_averages_every_patch():
    torch.manual_seed(0)
    vit = ViT((28, 28), patch=4, in_channels=1, dim=32, depth=2, heads=4, mlp_dim=64, pool="mean").double()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    assert vit.cls_token is None and "cls_token" not in vit.state_dict()
    assert vit.embed(x).shape == (3, 49, 32) and vit.positions.table.weight.shape == (49, 32)
    z = vit.embed(x)
    for block in vit.blocks:
        z = block(z)
    torch.testing.assert_close(vit.features(x), vit.norm(z).mean(dim=1))      # y = mean_i LN(z_L^i)
    vit(x).sum().backward()
    assert (vit.positions.table.weight.grad.abs().sum(dim=1) > 0).all()      # every patch reaches the loss
    with pytest.raises(DeepzooError, match='pool must be "cls"'):
        ViT(pool="max")


# --- the recipes ------------------------------------------------------------------------------------------

def _learned(run_dir, test_labels) -> dict:
    from deepzoo.report.learned import verdict
    summary = json.loads((run_dir / "summary.json").read_text())
    majority = float(np.bincount(test_labels).max()) / len(test_labels)
    return verdict("test_acc", summary["results"]["test_acc"], {"majority class": majority}, n=len(test_labels))


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    from deepzoo.train.run import train
    run = tmp_path_factory.mktemp("vit") / "vit-mnist"
    train("vit-mnist", preset="quick", out=run, **quiet)
    return run


def test_vit_mnist_quick_preset_learns(mnist_run):
    from deepzoo.data.mnist import load_mnist
    v = _learned(mnist_run, load_mnist(sample=True)["test"][1])
    assert v["learned"], v
    config = json.loads((mnist_run / "config.json").read_text())["config"]
    assert config["optim"]["name"] == "adamw" and config["model"]["patch"] == 4


def test_a_copied_vit_mnist_run_folder_predicts_alone(mnist_run, tmp_path):
    from PIL import Image

    from deepzoo.data.mnist import load_mnist
    moved = tmp_path / "elsewhere"
    shutil.copytree(mnist_run, moved)
    Image.fromarray(255 - load_mnist(sample=True)["test"][0][0]).save(tmp_path / "digit.png")   # dark on light
    status, out, err = deepzoo_main("predict", str(moved), str(tmp_path / "digit.png"))
    assert status == 0, err
    assert "digit.png: class " in out and out.split("class ")[1][0] in "0123456789"


def test_vit_cifar10_quick_preset_learns_and_a_copied_run_folder_predicts_alone(tmp_path):
    from PIL import Image

    from deepzoo.data.cifar import LABEL_NAMES, load_cifar10
    from deepzoo.train.run import predict, train
    run = tmp_path / "r"
    train("vit-cifar10", preset="quick", out=run, **quiet)
    sample = load_cifar10(sample=True)
    v = _learned(run, sample["test"][1])
    assert v["learned"], v
    assert json.loads((run / "inference" / "inference.json").read_text())["classes"] == list(LABEL_NAMES)
    moved = tmp_path / "moved"
    shutil.move(run, moved)
    image = sample["test"][0][0]
    Image.fromarray(np.kron(image, np.ones((3, 3, 1), np.uint8))).save(tmp_path / "photo.png")  # 96x96 -> 32x32
    (result,) = predict(moved, [str(tmp_path / "photo.png")])
    assert result["class"] in LABEL_NAMES
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_schema_takes_the_vit_keys(tmp_path):
    from deepzoo import recipes, schema
    keys = schema.for_recipe(recipes.get("vit-cifar10")).keys
    assert keys["model.depth"].ok(6)                            # not the ResNets' 6n + 2 of "*-cifar10"
    assert keys["model.pool"].ok("mean") and not keys["model.pool"].ok("max")
    assert "model.patch" in keys and "data.crop_padding" in keys
    keys = schema.for_recipe(recipes.get("vit-mnist")).keys
    assert keys["data.augment_shift"].ok(2) and "data.path" in keys
    status, _, err = deepzoo_main("train", "vit-mnist", "--preset", "quick", "--set", "model.dim=30",
                                  "--out", str(tmp_path / "bad"))
    assert status == 2 and "model.dim (30) must be a multiple of model.heads (4)" in err
    assert not (tmp_path / "bad").exists()


def _npz(path, size: int, n: int = 60):
    """Red, green and blue noisy squares of size x size: three classes a ViT separates in a few steps."""
    rng = np.random.default_rng(0)
    colours = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)])
    y = np.arange(n) % 3
    x = np.clip(colours[y][:, None, None] + rng.normal(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)
    np.savez(path, x_train=x, y_train=np.array(["red", "green", "blue"])[y])
    return path


def test_your_own_images_train_and_predict_with_their_class_names(tmp_path):
    from PIL import Image
    data = _npz(tmp_path / "colours.npz", 16)
    run = tmp_path / "run"
    status, _, err = deepzoo_main("train", "vit-cifar10", "--preset", "quick", "--set", f"data.path={data}",
                                  "--set", "train.epochs=3", "--set", "model.depth=1", "--set", "model.dim=16",
                                  "--set", "model.mlp_dim=16", "--set", "optim.lr=3e-3", "--out", str(run), "--quiet")
    assert status == 0, err
    info = json.loads((run / "inference" / "inference.json").read_text())
    assert info["classes"] == ["blue", "green", "red"] and info["input"]["height"] == 16
    Image.fromarray(np.full((16, 16, 3), (210, 30, 30), np.uint8)).save(tmp_path / "red.png")
    moved = tmp_path / "moved"
    shutil.move(run, moved)
    from deepzoo.train.run import predict
    (result,) = predict(moved, [str(tmp_path / "red.png")])
    assert set(result["probabilities"]) == {"blue", "green", "red"}


def test_images_the_patches_do_not_divide_are_one_error_line(tmp_path):
    data = _npz(tmp_path / "odd.npz", 18)
    status, _, err = deepzoo_main("train", "vit-cifar10", "--preset", "quick", "--set", f"data.path={data}",
                                  "--out", str(tmp_path / "r"))
    assert status == 2 and "multiples of 4" in err and "data.image_size=16" in err
    assert not (tmp_path / "r").exists()


# --- the experiment ------------------------------------------------------------------------------------------

def test_experiment_vit_vs_resnet_quick_writes_its_table_and_plot(quick_tour):
    from deepzoo.experiments.vit_vs_resnet import QUICK_SIZES, verdict
    out = quick_tour / "experiments" / "vit-vs-resnet"          # the session's `deepzoo tour --quick`
    result = json.loads((out / "vit_vs_resnet.json").read_text())
    assert result["quick"] and result["sizes"] == list(QUICK_SIZES)
    assert sorted((r["net"], r["train_size"]) for r in result["runs"]) == sorted(
        (net, n) for net in ("vit-cifar10", "resnet20-cifar10") for n in QUICK_SIZES)
    for r in result["runs"]:
        assert 0 <= r["test_acc"] <= 1 and r["train_images_per_s"] > 0 and r["epochs"] >= 1
        assert (out / r["run_dir"] / "summary.json").exists()
    table = (out / "vit_vs_resnet.md").read_text()
    assert "| vit-cifar10 |" in table and "| resnet20-cifar10 |" in table and verdict(result) in table
    assert (out / "vit_vs_resnet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result["findings"]["gap_resnet_minus_vit"]) == {str(n) for n in QUICK_SIZES}   # (JSON keys: strings)
