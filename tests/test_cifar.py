"""Deep CNNs: from-scratch BatchNorm against nn.BatchNorm2d, ResNet / plain / VGG shapes and parameter
counts, the residual shortcut, CIFAR-10 loaders (pickles, archive, npz) and the batch augmentation."""

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from deepzoo.data import cifar
from deepzoo.errors import DeepzooError
from deepzoo.models.resnet import ConvStack, ResidualBlock, ResNetCIFAR
from deepzoo.nn import layers

F64 = torch.float64
# Float64 comparisons of our BatchNorm with torch's: the statistics are sums of <= 168 values of size
# <= ~12 and torch's kernel (vectorised per CPU) adds them in another order; in float64 (u = 1.1e-16)
# any two orders differ by at most 2 * 168 * u * 2000 ~ 7e-11 per sum in the worst case, ~1e-14 in
# practice (seen: <= 2e-14), on any CPU. A biased variance (m / (m - 1) = 1.006) or a wrong eps is
# off by > 1e-6.
TOL = dict(atol=1e-9, rtol=1e-9)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# BatchNorm2d from scratch == torch.nn.BatchNorm2d

def _pair(dtype=F64, **kw):
    ref = nn.BatchNorm2d(5, dtype=dtype, **kw)
    mine = layers.BatchNorm2d(5, dtype=dtype, **kw)
    if ref.weight is not None:  # non-trivial affine parameters
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            ref.bias.uniform_(-0.5, 0.5)
    mine.load_state_dict(ref.state_dict())
    return ref, mine


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batchnorm_training_outputs_gradients_and_running_stats(momentum, channels_last):
    ref, mine = _pair(momentum=momentum)
    for step in range(3):  # several steps: the running averages accumulate
        x = torch.randn(4, 5, 6, 7, dtype=F64) * 3 + 2
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        xr, xm = x.clone().requires_grad_(), x.clone().requires_grad_()
        yr, ym = ref(xr), mine(xm)
        assert_close(ym, yr, **TOL)
        g = torch.randn(yr.shape, dtype=F64)
        yr.backward(g)
        ym.backward(g)
        assert_close(xm.grad, xr.grad, **TOL)
        assert_close(mine.weight.grad, ref.weight.grad, **TOL)
        assert_close(mine.bias.grad, ref.bias.grad, **TOL)
        ref.weight.grad = ref.bias.grad = mine.weight.grad = mine.bias.grad = None
        assert_close(mine.running_mean, ref.running_mean, **TOL)
        assert_close(mine.running_var, ref.running_var, **TOL)  # the unbiased variance m / (m - 1)
        assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked) == step + 1


def test_batchnorm_eval_uses_running_statistics():
    ref, mine = _pair()
    for _ in range(2):
        x = torch.randn(8, 5, 4, 4, dtype=F64) * 2 - 1
        ref(x), mine(x)
    ref.eval(), mine.eval()
    x = torch.randn(3, 5, 4, 4, dtype=F64)
    xr, xm = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, ym = ref(xr), mine(xm)
    assert_close(ym, yr, **TOL)
    yr.sum().backward(), ym.sum().backward()
    assert_close(xm.grad, xr.grad, **TOL)
    assert_close(mine.weight.grad, ref.weight.grad, **TOL)
    # one image alone gives the same output as inside its batch: no batch statistics in evaluation
    # (elementwise with the running statistics: the same operations on the same numbers, exact)
    assert torch.equal(mine(x[:1]), ym[:1].detach())
    assert int(mine.num_batches_tracked) == 2  # evaluation does not update the statistics


@pytest.mark.parametrize("kw", [{"affine": False}, {"track_running_stats": False}])
def test_batchnorm_variants(kw):
    ref, mine = _pair(**kw)
    ref.eval(), mine.eval()  # without running stats, evaluation still normalises by the batch
    x = torch.randn(4, 5, 3, 3, dtype=F64)
    assert_close(mine(x), ref(x), **TOL)
    ref.train(), mine.train()
    assert_close(mine(x), ref(x), **TOL)


def test_batchnorm_float32_and_state_dict_names():
    ref, mine = _pair(dtype=torch.float32)
    assert list(mine.state_dict()) == list(ref.state_dict())
    # Float32 is the point here, and a float32 sum of m = 1024 values may err by up to m * u = 6e-5
    # relative in the worst case, in an order that depends on the CPU's vector width. So the inputs are
    # chosen to make the statistics exact in any order: per channel, 512 values on a 1/8 grid in [-4, 4],
    # their negatives and an offset c/4 (mean exactly c/4), shuffled. Every partial sum of x and of
    # (x - mean)^2 is then a multiple of 1/64 below 2^14, exactly representable in float32, so both
    # implementations get the exact mean and variance; what is left is the elementwise normalisation,
    # a few roundings of outputs <= ~3 (<= ~1e-6), well inside 1e-5.
    g = torch.randint(-32, 33, (5, 512)) / 8
    v = torch.cat([g, -g], 1)[:, torch.randperm(1024)] + torch.arange(5)[:, None] / 4
    x = v.reshape(5, 16, 8, 8).transpose(0, 1).contiguous()
    assert torch.equal(x.mean((0, 2, 3)), torch.arange(5) / 4)
    y = mine(x)
    assert y.dtype == torch.float32
    assert_close(y, ref(x), rtol=1e-5, atol=1e-5)


def test_batchnorm_rejects_non_image_input():
    with pytest.raises(ValueError, match="4-D"):
        layers.BatchNorm2d(3)(torch.randn(2, 3))


# ---------------------------------------------------------------------------------------------
# ResNet, plain nets, VGG-style

def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("depth,expected", [(20, 0.27), (32, 0.46), (56, 0.85)])
def test_resnet_parameter_counts_match_the_paper(depth, expected):
    # He et al. 2016, Table 6 (shortcut A has no parameters): 0.27M, 0.46M, 0.85M
    m = ResNetCIFAR(depth)
    assert round(n_params(m) / 1e6, 2) == expected
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_plain_net_has_the_same_layers_without_shortcuts():
    res, plain = ResNetCIFAR(20, residual=True), ResNetCIFAR(20, residual=False)
    assert [k for k, _ in res.named_parameters()] == [k for k, _ in plain.named_parameters()]
    torch.manual_seed(1)
    res = ResNetCIFAR(20, channels_last=False)
    plain = ResNetCIFAR(20, residual=False, channels_last=False)
    plain.load_state_dict(res.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(res(x), plain(x))  # the shortcuts change the function


def test_projection_shortcut_and_depth_errors():
    m = ResNetCIFAR(20, shortcut="B")
    assert n_params(m) > n_params(ResNetCIFAR(20))  # two 1x1 projections with BN
    with pytest.raises(DeepzooError, match="6n"):
        ResNetCIFAR(21)
    with pytest.raises(DeepzooError, match="shortcut"):
        ResNetCIFAR(20, shortcut="C")


def test_residual_block_is_identity_plus_branch():
    """y = relu(F(x) + x); with the last BN's scale at zero, F = 0 and the block passes relu(x)."""
    block = ResidualBlock(8, 8).eval()
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 8, 5, 5)
    # (a zero BN scale makes the branch exactly 0 and x + 0 == x: exact, whatever the CPU)
    assert torch.equal(block(x), torch.relu(x))
    down = ResidualBlock(8, 16, stride=2).eval()       # shortcut A: every 2nd pixel, channels zero-padded
    nn.init.zeros_(down.bn2.weight)
    y = down(x)
    assert y.shape == (2, 16, 3, 3)
    assert torch.equal(y[:, :8], torch.relu(x[:, :, ::2, ::2]))
    assert torch.all(y[:, 8:] == 0)


def test_scratch_resnet_equals_torch_resnet():
    # Float64: unfold + matmul convolutions and scratch BatchNorm against torch's kernels, summing in other
    # orders. The longest sums (weight gradients over 4 x 32 x 32 = 4096 positions, then 7 more layers)
    # are within ~1e-9 of each other in float64 even in the worst case (seen: <= 5e-15); 1e-7 holds on any
    # CPU and still catches any real fault (a wrong stride, padding or shortcut moves results by > 1e-2).
    tol = dict(atol=1e-7, rtol=1e-7)
    torch.manual_seed(0)
    ref = ResNetCIFAR(8, channels_last=False, impl="torch").double()
    mine = ResNetCIFAR(8, channels_last=False, impl="scratch").double()
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(4, 3, 32, 32, dtype=F64)
    xr, xm = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, ym = ref(xr), mine(xm)
    assert_close(ym, yr, **tol)
    yr.sum().backward(), ym.sum().backward()
    assert_close(xm.grad, xr.grad, **tol)
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert_close(q.grad, p.grad, **tol, msg=name)


def test_conv_stack_shapes_and_errors():
    m = ConvStack([32, 32, "M", 64, 64, "M", 128, 128, "M"])
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    fcs = [l for l in m.modules() if isinstance(l, nn.Linear)]
    assert len(convs) + len(fcs) == 7  # the notes' 7-layer CNN
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(DeepzooError, match="pools"):
        ConvStack([8, "M", "M", "M", "M", "M", "M"])


# ---------------------------------------------------------------------------------------------
# CIFAR-10 files

def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def _batch_bytes(x, y):
    """A batch in the canonical layout: rows of 1024 R, 1024 G, 1024 B values."""
    d = {b"batch_label": b"testing batch", b"labels": [int(v) for v in y],
         b"data": x.transpose(0, 3, 1, 2).reshape(-1, 3072), b"filenames": [b"x.png"] * len(y)}
    return pickle.dumps(d, protocol=2)


@pytest.fixture
def pickle_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    parts = {}
    for i, name in enumerate(cifar.TRAIN_BATCHES + (cifar.TEST_BATCH,)):
        parts[name] = _images(6, seed=i)
        (folder / name).write_bytes(_batch_bytes(*parts[name]))
    return folder, parts


def test_pickle_folder_and_archive_give_the_images(pickle_folder, tmp_path):
    folder, parts = pickle_folder
    data = cifar.load_path(folder.parent)  # the folder above cifar-10-batches-py is accepted too
    x_train = np.concatenate([parts[n][0] for n in cifar.TRAIN_BATCHES])
    assert np.array_equal(data["train"][0], x_train)
    assert np.array_equal(data["test"][1], parts[cifar.TEST_BATCH][1])
    archive = tmp_path / cifar.ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    from_tar = cifar.load_path(archive)
    assert np.array_equal(from_tar["train"][0], x_train)
    assert np.array_equal(from_tar["test"][0], parts[cifar.TEST_BATCH][0])
    # found in a data folder without data.path
    assert np.array_equal(cifar.load_cifar10(tmp_path)["train"][0], x_train)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_pickled_with_any_protocol_load(protocol):
    x, y = _images(3)
    d = {b"labels": [int(v) for v in y], b"data": x.transpose(0, 3, 1, 2).reshape(-1, 3072)}
    got_x, got_y = cifar.read_batch(pickle.dumps(d, protocol=protocol), "batch")
    assert np.array_equal(got_x, x) and np.array_equal(got_y, y)


def test_keras_style_labels_and_single_batch_path(tmp_path):
    x, y = _images(4)
    np.savez(tmp_path / "k.npz", x_train=x, y_train=y[:, None], x_test=x, y_test=y[:, None])
    assert cifar.load_npz(tmp_path / "k.npz")["train"][1].shape == (4,)
    (tmp_path / "data_batch_1").write_bytes(_batch_bytes(x, y))
    with pytest.raises(DeepzooError, match="is one batch; give the folder"):
        cifar.load_path(tmp_path / "data_batch_1")


def test_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DeepzooError, match="refusing to load"):
        cifar.read_batch(path.read_bytes(), str(path))


def test_bad_batches_are_clear_errors(pickle_folder, tmp_path):
    folder, _ = pickle_folder
    (folder / "data_batch_3").unlink()
    with pytest.raises(DeepzooError, match="data_batch_3 is missing"):
        cifar.load_pickle_folder(folder)
    bad = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DeepzooError, match=r"expected uint8 \[N, 3072\]"):
        cifar.read_batch(bad, "x")
    with pytest.raises(DeepzooError, match="0-9"):
        cifar.read_batch(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}), "x")
    with pytest.raises(DeepzooError, match="cannot read CIFAR batch x"):
        cifar.read_batch(b"not a pickle", "x")
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DeepzooError, match="is not a tar archive"):
        cifar.load_path(tmp_path / "broken.tar.gz")
    archive = tmp_path / "cut.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[:-300])  # a download cut short
    with pytest.raises(DeepzooError, match="cut.tar.gz"):
        cifar.load_archive(archive)
    with pytest.raises(DeepzooError, match="does not exist"):
        cifar.load_path(tmp_path / "nope.npz")


def test_npz_errors_name_the_array(tmp_path):
    x, y = _images(3)
    path = tmp_path / "c.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:, :16], y_test=y)
    with pytest.raises(DeepzooError, match="x_test"):
        cifar.load_npz(path)
    np.savez(path, x_train=x, y_train=y)
    with pytest.raises(DeepzooError, match="lacks the arrays x_test, y_test"):
        cifar.load_npz(path)


def test_packaged_sample_loads():
    data = cifar.load_cifar10(sample=True)
    assert data["train"][0].shape == (500, 32, 32, 3) and data["test"][0].shape == (500, 32, 32, 3)
    assert set(np.unique(data["train"][1])) == set(range(10))


def test_shared_npz_matches_its_manifest(shared_data):
    import hashlib
    data = cifar.load_cifar10(shared_data)
    assert data["train"][0].shape == (30000, 32, 32, 3) and len(data["test"][1]) == 1000
    assert hashlib.sha256(data["test"][0].tobytes()).hexdigest().startswith("da362006b996")
    assert data["test"][1][:5].tolist() == [3, 8, 8, 0, 6]  # the canonical test labels
    # the sample is the first images of it
    sample = cifar.load_cifar10(sample=True)
    for split, n in (("train", 500), ("test", 500)):
        assert np.array_equal(sample[split][0], data[split][0][:n])
        assert np.array_equal(sample[split][1], data[split][1][:n])


# ---------------------------------------------------------------------------------------------
# augmentation

def test_crop_and_flip_is_a_shift_and_a_mirror():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    same = cifar.crop_and_flip(padding=0, flip=False)(x, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    seen_flip = False
    for seed in range(20):
        y = cifar.crop_and_flip(padding=4)(x, torch.Generator().manual_seed(seed))
        assert y.shape == x.shape
        for n in range(2):
            # each output is x[n] (maybe mirrored) shifted by some (dy, dx) in [-4, 4], zeros coming in
            found = False
            for img, flipped in ((x[n], False), (x[n].flip(2), True)):
                padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
                for dy in range(9):
                    for dx in range(9):
                        if torch.equal(padded[:, dy:dy + 32, dx:dx + 32], y[n]):
                            found, seen_flip = True, seen_flip or flipped
            assert found
    assert seen_flip


def test_to_tensor_standardises_per_channel():
    x = np.full((1, 32, 32, 3), 255, np.uint8)
    t = cifar.to_tensor(x)
    assert t.shape == (1, 3, 32, 32)
    # the same float32 formula, elementwise (255 / 255 is exactly 1): within an ulp or two, far inside
    # the float32 default of 1e-5
    assert_close(t[0, :, 0, 0], (1 - torch.tensor(cifar.MEAN)) / torch.tensor(cifar.STD))
