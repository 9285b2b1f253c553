"""The sample-quality measure: the Fréchet distance against scipy's matrix square root, its
invariants, and the classifier-based figures on real and degenerate image sets."""

import math

import numpy as np
import pytest
import torch

from deepzoo.errors import DeepzooError
from deepzoo.report.sample_quality import frechet_distance, gaussian, sample_quality


def _cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_equals_the_scipy_formula():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    for d in (1, 3, 20):
        mu1, mu2, s1, s2 = rng.normal(size=d), rng.normal(size=d), _cov(rng, d), _cov(rng, d)
        root = linalg.sqrtm(s1 @ s2).real
        expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
        # two float64 algorithms (eigh of a symmetric form vs a Schur square root), each accurate to
        # ~cond * u ~ 1e-14 relative for these covariances (eigenvalues >= 0.1), whatever the LAPACK
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_frechet_distance_invariants():
    rng = np.random.default_rng(1)
    mu, s = rng.normal(size=5), _cov(rng, 5)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)   # float64 eigenvalues: ~1e-14 off
    shift = np.ones(5)
    assert frechet_distance(mu + shift, s, mu, s) == pytest.approx(5.0)            # ||mu1 - mu2||^2
    s2 = _cov(rng, 5)
    assert frechet_distance(mu, s, mu, s2) == pytest.approx(frechet_distance(mu, s2, mu, s))  # symmetric
    # 1-D: (mu1 - mu2)^2 + (sigma1 - sigma2)^2
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(1 + (2 - 1) ** 2)


def test_sample_quality_sees_mode_collapse(tmp_path):
    from deepzoo.data.mnist import load_mnist
    from deepzoo.train.run import load_model, train
    train("cnn-mnist", preset="quick", sets=["train.epochs=1"], out=tmp_path / "cnn", progress=False,
          log=lambda m: None)
    classifier = load_model(tmp_path / "cnn")[2].model           # a briefly trained LeNet
    images = torch.from_numpy(load_mnist(sample=True)["test"][0][:400]).float().unsqueeze(1) / 255
    same = sample_quality(images[:200], images[200:], classifier)
    collapsed = sample_quality(images[:1].repeat(200, 1, 1, 1) + 0.01 * torch.rand(200, 1, 28, 28),
                               images[200:], classifier)
    assert collapsed["class_entropy"] < 0.5 < same["class_entropy"] <= math.log(10)
    assert collapsed["frechet_distance"] > 3 * same["frechet_distance"]
    assert sum(same["class_histogram"]) == pytest.approx(1.0)   # shares k / 200: 4-decimal rounding keeps them
    with pytest.raises(DeepzooError, match=r"\[N, 1, 28, 28\]"):
        sample_quality(torch.rand(5, 3, 32, 32), images, classifier)
