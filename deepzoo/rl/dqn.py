"""Deep Q-learning (Mnih et al., Nature 2015), with the Double-DQN target (van Hasselt et al., 2016).

A network Q_θ(s, ·) gives one value per action. Transitions (s, a, r, s', terminal) go into a replay
buffer; every ``train_every`` environment steps a minibatch drawn uniformly from it is fitted to the
one-step target computed with a *target network* Q_θ⁻, a lagged copy of Q_θ:

    y = r + γ (1 - terminal) · Q_θ⁻(s', argmax_a' Q_θ⁻(s', a'))       (DQN)
    y = r + γ (1 - terminal) · Q_θ⁻(s', argmax_a' Q_θ (s', a'))       (Double DQN: θ picks, θ⁻ rates)
    loss = Huber(Q_θ(s, a) - y)                                         (δ = 1: L2 near 0, L1 beyond)

The replay buffer breaks the correlation between consecutive steps; the target network keeps the
target from chasing its own updates. θ⁻ follows θ either by a hard copy every ``target_every`` steps
(``tau`` = 1) or by a soft update θ⁻ <- τ θ + (1 - τ) θ⁻ every ``target_every`` steps. Actions are ε-greedy,
ε decaying linearly from ``eps_start`` to ``eps_end`` over the first ``eps_fraction`` of the steps.

The defaults of the dqn-cartpole recipe are those of rl-baselines3-zoo for CartPole-v1 (128 updates
every 256 steps, a hard target copy every 10 steps, ε to 0.04 over the first 8,000 steps), with the
Double-DQN target.

Every ``eval_every`` steps the greedy policy (ε = 0) plays ``eval_episodes`` episodes; the weights
with the best mean return are kept, and training stops once that mean reaches ``target_return``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepzoo.rl.envs import play
from deepzoo.rl.qlearning import linear


def q_network(obs_dim: int, actions: int, hidden: tuple = (128, 128)) -> nn.Sequential:
    layers, width = [], obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, actions))


class ReplayBuffer:
    """A ring buffer of the last ``capacity`` transitions, sampled uniformly."""

    def __init__(self, capacity: int, obs_dim: int, rng: np.random.Generator) -> None:
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminal = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.pos, self.rng = capacity, 0, 0, rng

    def add(self, s, a, r, s2, terminal: bool) -> None:
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.terminal[i] = s, a, r, s2, terminal
        self.pos, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, n: int) -> tuple[torch.Tensor, ...]:
        idx = self.rng.integers(0, self.size, n)
        return tuple(torch.from_numpy(a[idx]) for a in (self.obs, self.actions, self.rewards, self.next_obs,
                                                        self.terminal))

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminal")

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """The filled rows (a checkpoint) and where the ring stands."""
        return {f"buffer.{k}": getattr(self, k)[:self.size] for k in self.FIELDS}, {"size": self.size, "pos": self.pos}

    def load(self, arrays: dict, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for k in self.FIELDS:
            getattr(self, k)[:self.size] = arrays[f"buffer.{k}"]


@dataclass
class Config:
    total_steps: int = 100_000
    lr: float = 1e-3
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    train_every: int = 1          # every this many environment steps ...
    gradient_steps: int = 1       # ... this many minibatch updates
    target_every: int = 1
    tau: float = 0.005            # 1.0: a hard copy every target_every steps
    double: bool = True
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_fraction: float = 0.2
    hidden: tuple = (128, 128)
    clip_grad_norm: float = 10.0
    eval_every: int = 2_500
    eval_episodes: int = 100
    target_return: float | None = None   # stop once the evaluation mean reaches it


def td_loss(q: nn.Module, q_target: nn.Module, batch, gamma: float, double: bool) -> torch.Tensor:
    s, a, r, s2, terminal = batch
    with torch.no_grad():
        next_q = q_target(s2)
        pick = q(s2).argmax(1, keepdim=True) if double else next_q.argmax(1, keepdim=True)
        y = r + gamma * (1 - terminal) * next_q.gather(1, pick).squeeze(1)
    return F.smooth_l1_loss(q(s).gather(1, a[:, None]).squeeze(1), y)      # Huber, δ = 1


def _state(q, q_target, optimizer, buffer: ReplayBuffer, best: dict, curve: list, losses: list) -> tuple[dict, dict]:
    """A checkpoint's arrays and JSON state, besides the position and the generators."""
    from deepzoo.train.checkpoint import split_optimizer_state
    arrays, state = buffer.state()
    opt_tensors, opt_meta = split_optimizer_state(optimizer.state_dict())
    for prefix, tensors in (("q.", q.state_dict()), ("target.", q_target.state_dict()), ("best.", best["state"]),
                            ("adam.", opt_tensors)):
        arrays.update({prefix + k: v.detach().cpu().numpy() for k, v in tensors.items()})
    arrays["curve"] = np.array(curve, dtype=np.float64).reshape(-1, 2)
    return arrays, {"buffer": state, "adam": opt_meta, "best_return": float(best["return"]), "best_step": best["step"],
                    "losses": losses}


def _restore(resumed, q, q_target, optimizer, buffer: ReplayBuffer, rng, env) -> tuple:
    """Load a checkpoint of :func:`_state` and the generators; (first step, seconds so far, curve, losses, best)."""
    from deepzoo.train import checkpoint
    arrays, state = resumed

    def tensors(prefix: str) -> dict:
        return {k[len(prefix):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith(prefix)}
    q.load_state_dict(tensors("q."))
    q_target.load_state_dict(tensors("target."))
    optimizer.load_state_dict(checkpoint.join_optimizer_state(tensors("adam."), state["adam"]))
    buffer.load(arrays, state["buffer"])
    checkpoint.set_generator_state(rng, state["rng"])
    checkpoint.set_generator_state(env.unwrapped.np_random, state["env_rng"])   # it starts the next episode
    checkpoint.set_torch_rng_state(state["torch_rng"])
    curve = [(int(a), float(b)) for a, b in arrays["curve"]]
    best = {"return": state["best_return"], "state": tensors("best."), "step": state["best_step"]}
    return state["step"] + 1, state["train_seconds"], curve, state["losses"], best


def greedy_policy(q: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return q(torch.as_tensor(obs, dtype=torch.float32)).argmax(1).numpy()
    return act


def train(make_env: Callable, cfg: Config, seed: int, on_eval: Callable[[dict], None] | None = None,
          tick: Callable[[int], None] | None = None, checkpoints=None) -> dict:
    """Train; return {"q": the best network, "best_return", "reached_at_step", "curve": training episodes}.

    ``checkpoints`` (a :class:`deepzoo.train.checkpoint.LoopCheckpoints`): at the end of an episode, when
    one is due, everything the rest of the run depends on is saved: both networks, Adam's moments, the
    replay buffer, the best weights so far, the generators (the agent's and the environment's, which
    starts the next episode) and the step; its ``resumed`` state goes on from there exactly."""
    from deepzoo.train import checkpoint
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    env = make_env()
    obs_dim, n_actions = env.observation_space.shape[0], env.action_space.n
    q = q_network(obs_dim, n_actions, tuple(cfg.hidden))
    q_target = copy.deepcopy(q)
    optimizer = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    buffer = ReplayBuffer(cfg.buffer_size, obs_dim, rng)
    best = {"return": -np.inf, "state": copy.deepcopy(q.state_dict()), "step": 0}
    curve, reached, losses = [], None, []
    s, _ = env.reset(seed=seed)          # s = None: the episode ended, and the next step starts a new one
    episode_return, first, before = 0.0, 1, 0.0
    if checkpoints is not None and checkpoints.resumed is not None:
        first, before, curve, losses, best = _restore(checkpoints.resumed, q, q_target, optimizer, buffer, rng, env)
        s = None
        if tick is not None:
            tick(first - 1)
    start = time.perf_counter() - before
    for step in range(first, cfg.total_steps + 1):
        if s is None:
            s, _ = env.reset()
        eps = linear(cfg.eps_start, cfg.eps_end, cfg.eps_fraction, step / cfg.total_steps)
        if rng.random() < eps:
            a = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                a = int(q(torch.as_tensor(s, dtype=torch.float32)[None]).argmax())
        s2, r, terminated, truncated, _ = env.step(a)
        buffer.add(s, a, r, s2, terminated)     # truncation is not terminal: s2 still has a future
        episode_return += r
        s = s2
        if terminated or truncated:
            curve.append((step, episode_return))
            episode_return, s = 0.0, None
        if step >= cfg.learning_starts and step % cfg.train_every == 0:
            for _ in range(cfg.gradient_steps):
                loss = td_loss(q, q_target, buffer.sample(cfg.batch_size), cfg.gamma, cfg.double)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad_norm > 0:
                    nn.utils.clip_grad_norm_(q.parameters(), cfg.clip_grad_norm)
                optimizer.step()
                losses.append(loss.detach().item())
        if step % cfg.target_every == 0:
            with torch.no_grad():
                for p_t, p in zip(q_target.parameters(), q.parameters()):
                    p_t.lerp_(p, cfg.tau)        # θ⁻ <- θ⁻ + τ (θ - θ⁻); τ = 1 copies
        if tick is not None:
            tick(1)
        if step % cfg.eval_every == 0 or step == cfg.total_steps:
            result = play(make_env, greedy_policy(q), cfg.eval_episodes, seed=seed * 1_000_003 + step).summary()
            recent = [ret for _, ret in curve[-20:]]
            row = {"env_steps": step, "eval_return": result["mean_return"], "eval_return_std": result["std_return"],
                   "train_return": float(np.mean(recent)) if recent else None, "epsilon": round(eps, 4),
                   "td_loss": float(np.mean(losses)) if losses else None,
                   "train_seconds": round(time.perf_counter() - start, 3)}
            losses = []
            if result["mean_return"] > best["return"]:
                best = {"return": result["mean_return"], "state": copy.deepcopy(q.state_dict()), "step": step}
            if on_eval is not None:
                on_eval(row)
            if cfg.target_return is not None and result["mean_return"] >= cfg.target_return:
                reached = step
                break
        if s is None and step < cfg.total_steps and checkpoints is not None and checkpoints.due():
            arrays, state = _state(q, q_target, optimizer, buffer, best, curve, losses)
            checkpoints.save(f"step-{step:09d}", arrays, {
                **state, "step": step, "rng": checkpoint.generator_state(rng),
                "env_rng": checkpoint.generator_state(env.unwrapped.np_random), "torch_rng": checkpoint.torch_rng_state(),
                "train_seconds": time.perf_counter() - start})
    env.close()
    q.load_state_dict(best["state"])
    return {"q": q, "best_return": best["return"], "best_step": best["step"], "reached_at_step": reached,
            "steps": step, "curve": curve, "train_seconds": time.perf_counter() - start}
