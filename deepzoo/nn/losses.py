"""Loss functions written out from elementary tensor operations.

Each function computes one loss value per element (or per sample) and then reduces it:
``reduction="mean"`` (the default) averages, ``"sum"`` adds up, ``"none"`` returns them all,
exactly like the ``torch.nn.functional`` functions of the same names.
"""

import torch

from deepzoo.nn.layers import log_softmax


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(pred, target, reduction="mean"):
    """Mean squared error: loss_i = (pred_i - target_i)^2."""
    return _reduce((pred - target) ** 2, reduction)


def binary_cross_entropy(prob, target, reduction="mean"):
    """Binary cross-entropy on probabilities p in [0, 1] and targets y in [0, 1]:

        loss_i = -( y_i * log(p_i) + (1 - y_i) * log(1 - p_i) )

    As in torch, each log is clamped below at -100, so a confident wrong answer (p = 0 with
    y = 1) costs 100 rather than infinity, and log(1 - p) is computed as log1p(-p), which stays
    accurate when p is tiny.

    At p = 0 (or 1) the log is -inf and its derivative 1/p is infinite. ``torch.where`` alone
    would still send a zero gradient through that branch, and 0 * inf = NaN, so the argument of
    the log is first swapped for a harmless value there (the "double where" trick). The gradient
    there is then finite (torch's hand-written backward gives (p - y) / 1e-12 instead; both are
    multiplied by a zero sigmoid slope in practice). Prefer :func:`binary_cross_entropy_with_logits`,
    which never forms p at all.
    """
    p_pos = prob > 0
    p_below_one = prob < 1
    log_p = torch.where(p_pos, torch.log(torch.where(p_pos, prob, 1.0)), -100.0)
    log_1mp = torch.where(p_below_one, torch.log1p(-torch.where(p_below_one, prob, 0.0)), -100.0)
    loss = -(target * log_p.clamp_min(-100) + (1 - target) * log_1mp.clamp_min(-100))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy on logits z (p = sigmoid(z)), computed without forming p.

    Substituting p = 1 / (1 + exp(-z)) into the cross-entropy gives

        loss_i = log(1 + exp(z)) - z * y = max(z, 0) - z * y + log(1 + exp(-|z|))

    The right-hand form (the log-sum-exp trick) never exponentiates a positive number, so it
    cannot overflow, and log1p keeps the last term accurate when exp(-|z|) is tiny. As in
    :func:`deepzoo.nn.layers.sigmoid`, max(z, 0) and -|z| are both written with ``where(z >= 0, ...)``
    so that at z = 0 the gradient comes out right: sigmoid(0) - y = 1/2 - y.
    """
    z, y = logits, target
    z_pos = z >= 0
    max_z_0 = torch.where(z_pos, z, 0.0)
    minus_abs_z = torch.where(z_pos, -z, z)
    loss = max_z_0 - z * y + torch.log1p(torch.exp(minus_abs_z))
    return _reduce(loss, reduction)


def cross_entropy(logits, target, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    """Softmax cross-entropy on logits (N, C) or (N, C, d1, ...) and class indices (N) or (N, d1, ...).

    With log p = log_softmax(logits) over the class dimension (dim 1) and K = C classes,

        loss_i = -log p_i[y_i]                                          (label_smoothing = 0)
        loss_i = -(1 - eps) * log p_i[y_i] - (eps / K) * sum_k log p_i[k]    (label_smoothing = eps)

    i.e. the negative log-likelihood of the target distribution (1 - eps) * onehot(y) + eps / K.
    Samples whose target equals ``ignore_index`` get loss 0 and are left out of the mean, as in
    ``torch.nn.functional.cross_entropy``.
    """
    num_classes = logits.shape[1]
    log_p = log_softmax(logits, dim=1)

    valid = target != ignore_index
    safe_target = torch.where(valid, target, 0)  # any real class index; masked out below
    nll = -log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    loss = nll
    if label_smoothing > 0:
        smooth = -log_p.sum(dim=1) / num_classes
        loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    loss = torch.where(valid, loss, 0.0)

    if reduction == "mean":
        return loss.sum() / valid.sum()
    return _reduce(loss, reduction)
