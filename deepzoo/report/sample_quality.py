r"""How good are generated digits? One measure for every generative model, computed the same way.

It is **not** the Inception FID of papers (that uses an ImageNet Inception network on colour images);
it follows the same idea with a classifier trained on MNIST itself, deepzoo's ``cnn-mnist`` (LeNet):

* **Fréchet distance** between the classifier's penultimate features (the 500 ReLU units before the
  last layer) of the generated images and of real test images, each set summarised by a Gaussian
  N(mu, Sigma):

      FD = ||mu_g - mu_r||^2 + Tr(Sigma_g) + Tr(Sigma_r) - 2 Tr( (Sigma_r^{1/2} Sigma_g Sigma_r^{1/2})^{1/2} )

  (Dowson & Landau 1982; Heusel et al. 2017). 0 for identical distributions; lower is better. Only
  figures computed with the same classifier run and the same number of images are comparable.
* **Mean confidence**: the average of the classifier's top softmax probability; blurry or
  ambiguous digits score low.
* **Class entropy** H = -sum_k p_k ln p_k of the histogram of predicted classes: ln 10 = 2.303 nats when
  the ten digits are equally frequent, lower when the generator drops some (mode collapse).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepzoo.errors import DeepzooError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet (2-Wasserstein) distance squared between N(mu1, sigma1) and N(mu2, sigma2).

    The trace of the matrix square root is taken on the symmetric form
    Sigma_2^{1/2} Sigma_1 Sigma_2^{1/2}, whose eigenvalues are those of Sigma_1 Sigma_2, with
    ``numpy.linalg.eigh`` in float64 (tiny negative eigenvalues from rounding are set to 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w, v = np.linalg.eigh(s2)
    root2 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root2 @ s1 @ root2
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of feature rows."""
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


@torch.no_grad()
def classify(classifier: torch.nn.Module, images: torch.Tensor, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features [N, 500], softmax probabilities [N, 10]) of a LeNet for images in [0, 1]."""
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise DeepzooError(f"sample quality needs images [N, 1, 28, 28], got {tuple(images.shape)}")
    classifier.eval()
    head = classifier.classifier
    feats, probs = [], []
    for i in range(0, len(images), batch):
        x = (images[i:i + batch].float().clamp(0, 1) - MNIST_MEAN) / MNIST_STD
        if classifier.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = head[:3](classifier.features(x))          # Flatten, Linear, ReLU: the 500 features
        feats.append(h.double().numpy())
        probs.append(torch.softmax(head[3:](h), dim=-1).double().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def class_histogram(probs: np.ndarray) -> tuple[np.ndarray, float]:
    """The share of each predicted class, and its entropy -sum_k p_k ln p_k in nats."""
    histogram = np.bincount(probs.argmax(1), minlength=10) / len(probs)
    nonzero = histogram[histogram > 0]
    return histogram, float(-(nonzero * np.log(nonzero)).sum())


def sample_quality(generated: torch.Tensor, real: torch.Tensor, classifier: torch.nn.Module) -> dict:
    """The three figures for ``generated`` images against ``real`` ones (both [N, 1, 28, 28] in [0, 1])."""
    if len(generated) < 2 or len(real) < 2:
        raise DeepzooError("sample quality needs at least 2 generated and 2 real images")
    f_gen, p_gen = classify(classifier, generated)
    f_real, _ = classify(classifier, real)
    histogram, entropy = class_histogram(p_gen)
    return {"frechet_distance": round(frechet_distance(*gaussian(f_gen), *gaussian(f_real)), 4),
            "mean_confidence": round(float(p_gen.max(1).mean()), 4),
            "class_entropy": round(entropy, 4),
            "max_class_entropy": round(math.log(10), 4),
            "class_histogram": [round(float(h), 4) for h in histogram],
            "images": len(generated), "real_images": len(real)}
