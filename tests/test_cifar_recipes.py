"""CIFAR-10 recipes end to end (quick presets on the packaged sample), predict on an image file, the
receptive-field explanation, the degradation experiment, and the engine's precision flag."""

import json

import numpy as np
import pytest
import torch

from deepzoo.errors import DeepzooError
from deepzoo.explain.receptive_field import comparison, explain, from_spec, layer_table
from deepzoo.train.engine import autocast, resolve_precision
from deepzoo.train.run import predict, train


quiet = dict(progress=False, log=lambda m: None)


def test_receptive_field_three_3x3_equal_one_7x7_with_fewer_weights():
    rows, header = comparison(channels=64)
    by = {r[0]: r for r in rows}
    assert by["one 7x7 conv"][1:4] == ["7", "49 C²", f"{49 * 64 * 64:,}"]
    assert by["three 3x3 convs"][1:4] == ["7", "27 C²", f"{27 * 64 * 64:,}"]
    assert by["three 3x3 convs"][4] == "3" and by["one 7x7 conv"][4] == "1"


def test_receptive_field_recursion_with_strides_and_pools():
    rows = layer_table(from_spec("conv3,pool2,conv3,conv3s2,conv3", 4), (4, 32, 32))
    # r: 3, +1*1 -> 4, +2*2 -> 8, +2*2 -> 12 (jump 4 after the stride), +2*4 -> 20
    assert [r.field for r in rows] == [3, 4, 8, 12, 20]
    assert [r.output for r in rows][-1] == (4, 8, 8)


def test_receptive_field_of_recipes():
    text = explain("cnn-mnist")
    assert "features.3" in text and " 14 " in text and "25,050" in text  # the LeNet table of models/cnn.py
    rows = layer_table(__import__("deepzoo.recipes", fromlist=["get"]).get("resnet20-cifar10")
                       .make_model({"model": {"depth": 20, "residual": True, "shortcut": "B", "width": 16,
                                              "channels_last": False, "impl": "torch"}}), (3, 32, 32))
    shortcuts = [r for r in rows if not r.on_path]
    assert len(shortcuts) == 2 and all(r.kernel == 1 for r in shortcuts)
    convs = [r for r in rows if r.kind == "Conv2d" and r.on_path]
    # 19 3x3 convolutions, two of stride 2: 1 + 2 * (7 * 1 + 6 * 2 + 6 * 4) = 87
    assert len(convs) == 19 and convs[-1].field == 81
    with pytest.raises(DeepzooError, match="not an image model"):
        explain("lstm-ptb")
    with pytest.raises(DeepzooError, match="cannot read 'conv'"):
        explain("conv3,conv")


@pytest.mark.parametrize("name", ["resnet20-cifar10", "plain20-cifar10", "vgg-cifar10", "cnn7-cifar10"])
def test_quick_preset_trains_and_learns(name, quick_tour):
    s = json.loads((quick_tour / name / "summary.json").read_text())      # the tour's quick-preset run
    rows = [json.loads(l) for l in (quick_tour / name / "metrics.jsonl").read_text().splitlines()]
    assert "train_acc" in rows[0] and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert s["precision"] == resolve_precision("auto", torch.device("cpu"))
    assert 0.0 <= s["value"] <= 1.0


def test_predict_an_image_file_and_resume(tmp_path):
    from PIL import Image

    from deepzoo.data.cifar import LABEL_NAMES, load_cifar10
    run = tmp_path / "r"
    train("resnet20-cifar10", preset="quick", out=run, sets=["train.epochs=1"], **quiet)
    image = load_cifar10(sample=True)["test"][0][0]
    path = tmp_path / "cat.png"
    Image.fromarray(np.kron(image, np.ones((3, 3, 1), np.uint8))).save(path)  # 96x96: resized to 32x32
    (result,) = predict(run, [str(path)])
    assert result["class"] in LABEL_NAMES
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)   # 10 rounded to 4 decimals: <= 5e-4
    with pytest.raises(DeepzooError, match="does not exist"):
        predict(run, [str(tmp_path / "none.png")])
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DeepzooError, match="cannot read image"):
        predict(run, [str(tmp_path / "bad.png")])


def test_bad_cifar_settings_are_clear_errors(tmp_path):
    with pytest.raises(DeepzooError, match="data.train_size"):
        train("resnet20-cifar10", preset="quick", sets=["data.train_size=100000"], out=tmp_path / "a", **quiet)
    with pytest.raises(DeepzooError, match="6n"):
        train("resnet20-cifar10", preset="quick", sets=["model.depth=21"], out=tmp_path / "b", **quiet)
    with pytest.raises(DeepzooError, match="model.config"):
        train("vgg-cifar10", preset="quick", sets=['model.config=[8, "X"]'], out=tmp_path / "c", **quiet)
    with pytest.raises(DeepzooError, match="data.path"):
        train("resnet20-cifar10", sets=[f"data.path={tmp_path / 'missing'}"], out=tmp_path / "d", **quiet)
    assert not (tmp_path / "a").exists()  # nothing written for a run that could not start


def test_degradation_experiment_quick(quick_tour):
    from deepzoo.experiments.degradation import QUICK_EPOCHS, verdict
    out = quick_tour / "experiments" / "degradation"            # the session's `deepzoo tour --quick`
    result = json.loads((out / "degradation.json").read_text())
    assert result["quick"] and result["epochs"] == QUICK_EPOCHS
    assert set(result["nets"]) == {"plain20-cifar10", "plain56-cifar10", "resnet20-cifar10", "resnet56-cifar10"}
    for net in result["nets"].values():
        assert [c["epoch"] for c in net["curve"]] == list(range(1, QUICK_EPOCHS + 1))
        assert all(0 <= c["train_error"] <= 1 and 0 <= c["test_error"] <= 1 for c in net["curve"])
    assert "plain-56 trains worse than plain-20" in verdict(result)
    assert (out / "degradation.md").read_text().count("\n| ") == 1 + 4
    assert (out / "degradation.png").stat().st_size > 10_000


def test_precision_flag():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("fp64", cpu) == "fp64"
    assert resolve_precision("auto", cpu) in ("fp32", "bf16")
    with pytest.raises(DeepzooError, match="unknown precision"):
        resolve_precision("int8", cpu)
    with pytest.raises(DeepzooError, match="fp16 needs a CUDA GPU"):
        autocast(cpu, "fp16")
    layer = torch.nn.Linear(4, 4)
    with autocast(cpu, "bf16"):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16   # the matmul runs in bf16
    assert layer.weight.dtype == torch.float32                    # the weights stay fp32


def test_bf16_step_follows_fp32_closely():
    """Mixed precision changes the rounding, not the maths: on one batch through ResNet-20 the bf16
    loss is within 1% of the fp32 one and the gradients point the same way (cosine > 0.99), while the
    weights and their gradients stay fp32."""
    from deepzoo.data.cifar import load_cifar10, to_tensor
    from deepzoo.models.resnet import ResNetCIFAR
    data = load_cifar10(sample=True)
    x, y = to_tensor(data["train"][0][:64]), torch.from_numpy(data["train"][1][:64])
    # A fixed initialisation: over 15 random ones the gradient cosine ranged 0.987..0.997, so without a
    # seed the test depended on what the tests before it drew. With this one: loss 1.8e-4 relative
    # apart, cosine 0.997.
    torch.manual_seed(0)
    model = ResNetCIFAR(20)
    result = {}
    for p in ("fp32", "bf16"):
        model.zero_grad()
        with autocast(torch.device("cpu"), p):
            out = model(x)
        assert out.dtype == (torch.float32 if p == "fp32" else torch.bfloat16)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        loss.backward()
        grad = torch.cat([q.grad.flatten() for q in model.parameters()])
        assert grad.dtype == torch.float32
        result[p] = (float(loss.detach()), grad)
    # bf16 is the point, so no float64 here. Its error comes from rounding operands to 8 significant bits
    # (2^-9 = 0.2%), round to nearest even, the same on every CPU; products are then accumulated in fp32
    # (natively with AVX512-BF16 / AMX, by conversion on AVX2), which differ per CPU only at the fp32
    # level, ~1e-7, far below the 1.8e-4 and 0.003 bf16 itself costs here, and the bands are 50x and 3x
    # those. A step running in fp32 (autocast off) or a loss taken in bf16 fails the dtype checks above.
    assert result["bf16"][0] == pytest.approx(result["fp32"][0], rel=0.01)
    assert torch.nn.functional.cosine_similarity(result["bf16"][1], result["fp32"][1], dim=0) > 0.99
