"""Optimizers with their update rules written out.

They subclass ``torch.optim.Optimizer``, which supplies parameter groups, ``zero_grad``,
``state_dict`` / ``load_state_dict`` and compatibility with ``torch.optim.lr_scheduler``. Only
``step()`` is ours. The per-parameter state uses torch's key names ("momentum_buffer"; "step",
"exp_avg", "exp_avg_sq"), so state dicts load into ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` and back.

Notation: theta = a parameter, g = its gradient, lr = learning rate, lambda = weight decay, t = step.
"""

import torch


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay.

        g   <- g + lambda * theta                 (weight decay, i.e. an L2 penalty)
        buf <- g                                  (first step)
        buf <- mu * buf + g                       (later steps; momentum mu)
        d   <- g + mu * buf   if nesterov   else   buf        (d = g when mu = 0)
        theta <- theta - lr * d
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, nesterov=False):
        if lr < 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"invalid momentum: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires momentum > 0")
        # dampening is always 0 here; it is stored only so that torch.optim.SGD can load our state dicts.
        defaults = dict(lr=lr, momentum=momentum, dampening=0.0, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g = theta.grad
                if wd != 0:
                    g = g + wd * theta
                if mu != 0:
                    state = self.state[theta]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = g.clone()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(mu).add_(g)
                    g = g + mu * buf if group["nesterov"] else buf
                theta.add_(g, alpha=-lr)
        return loss


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba, 2015); AdamW (Loshchilov & Hutter, 2019) with decoupled_weight_decay=True.

        theta <- theta * (1 - lr * lambda)      (AdamW: decay the weights directly)
        g     <- g + lambda * theta             (Adam: weight decay as an L2 penalty in the gradient)
        m     <- beta1 * m + (1 - beta1) * g          (running mean of gradients)
        v     <- beta2 * v + (1 - beta2) * g^2        (running mean of squared gradients)
        m_hat  = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)     (bias correction: m, v start at 0)
        theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)

    The last line is evaluated as torch does, to agree with it to the last bits:
    denom = sqrt(v) / sqrt(1 - beta2^t) + eps and theta <- theta - (lr / (1 - beta1^t)) * m / denom.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        if lr < 0:
            raise ValueError(f"invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"invalid epsilon: {eps}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid betas: {betas}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g = theta.grad
                state = self.state[theta]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)  # a tensor, as torch stores it
                    state["exp_avg"] = torch.zeros_like(theta, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(theta, memory_format=torch.preserve_format)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"].item()

                if wd != 0:
                    if group["decoupled_weight_decay"]:
                        theta.mul_(1 - lr * wd)
                    else:
                        g = g + wd * theta

                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).add_(g * g, alpha=1 - beta2)

                bias_correction1 = 1 - beta1**t
                bias_correction2 = 1 - beta2**t
                denom = v.sqrt() / bias_correction2**0.5 + eps
                step_size = lr / bias_correction1
                theta.add_(m / denom, alpha=-step_size)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (see :class:`Adam`); weight_decay defaults to 1e-2 as in torch."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        # Loading any Adam state dict into AdamW keeps the decay decoupled (torch.optim.AdamW does the same).
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
