"""Tabular Q-learning (Watkins 1989).

A table Q[s, a] estimates the discounted return of taking action a in state s and acting greedily
afterwards. After each step (s, a, r, s') it moves towards the one-step target:

    Q[s, a] <- Q[s, a] + α ( r + γ · max_a' Q[s', a'] · (1 - terminal) - Q[s, a] )

The target bootstraps from s' unless the episode *terminated* there (a hole, the goal, a drop-off); an
episode cut by the time limit (*truncated*) still bootstraps, since s' has a future.

Actions come from an ε-greedy policy: a random action with probability ε, else argmax_a Q[s, a] (ties
broken at random, so an untried state is explored evenly). ε and α decay linearly over the episodes
from their start to their end values; the final policy is greedy (ε = 0).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def linear(start: float, end: float, fraction: float, progress: float) -> float:
    """``start`` moving linearly to ``end`` over the first ``fraction`` of training (progress in [0, 1])."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(progress / fraction, 1.0)


def greedy(q: np.ndarray, state: int, rng: np.random.Generator) -> int:
    best = np.flatnonzero(q[state] == q[state].max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def train(env, episodes: int, gamma: float, lr: tuple, eps: tuple, seed: int,
          on_log: Callable[[dict], None] | None = None, log_every: int = 1000, tick=None,
          checkpoints=None) -> np.ndarray:
    """Learn Q for ``env`` (Discrete observations and actions) over ``episodes`` episodes.

    ``lr`` is (lr, lr_end, lr_fraction) and ``eps`` (eps_start, eps_end, eps_fraction), as the recipes'
    ``agent.*`` keys name them: a start value, an end value, and the fraction of the episodes over which
    it decays linearly from one to the other (DQN names its ε schedule the same). Every
    ``log_every`` episodes ``on_log`` receives the window's mean return and success rate.

    ``checkpoints`` (a :class:`deepzoo.train.checkpoint.LoopCheckpoints`): after an episode, when one is
    due, the table, the generator's state and the episode count are saved; its ``resumed`` state goes on
    from there. Each episode starts from ``reset(seed)`` with a seed from the generator, so nothing of the
    environment needs keeping.
    """
    from deepzoo.train.checkpoint import generator_state, set_generator_state
    rng = np.random.default_rng(seed)
    q = np.zeros((env.observation_space.n, env.action_space.n))
    window_returns, window_success, steps, first, before = [], [], 0, 0, 0.0
    if checkpoints is not None and checkpoints.resumed is not None:
        arrays, state = checkpoints.resumed
        q[...] = arrays["q"]
        set_generator_state(rng, state["rng"])
        window_returns, window_success = state["window_returns"], state["window_success"]
        steps, first, before = state["env_steps"], state["episodes"], state["train_seconds"]
        if tick is not None:
            tick(first)
    start = time.perf_counter() - before
    for episode in range(first, episodes):
        progress = episode / max(episodes - 1, 1)
        alpha, epsilon = linear(*lr, progress), linear(*eps, progress)
        s, _ = env.reset(seed=int(rng.integers(2**31)))
        total, done = 0.0, False
        while not done:
            a = int(rng.integers(env.action_space.n)) if rng.random() < epsilon else greedy(q, s, rng)
            s2, r, terminated, truncated, _ = env.step(a)
            target = r + (0.0 if terminated else gamma * q[s2].max())
            q[s, a] += alpha * (target - q[s, a])                 # the temporal-difference update
            s, total, done = s2, total + r, terminated or truncated
            steps += 1
        window_returns.append(total)
        window_success.append(bool(terminated and r > 0))
        if tick is not None:
            tick()
        if on_log is not None and (episode + 1) % log_every == 0:
            on_log({"episodes": episode + 1, "env_steps": steps, "train_return": float(np.mean(window_returns)),
                    "train_success": float(np.mean(window_success)), "epsilon": epsilon, "alpha": alpha,
                    "train_seconds": round(time.perf_counter() - start, 3)})
            window_returns, window_success = [], []
        if checkpoints is not None and episode + 1 < episodes and checkpoints.due():
            checkpoints.save(f"episode-{episode + 1:09d}", {"q": q},
                             {"episodes": episode + 1, "env_steps": steps, "rng": generator_state(rng),
                              "window_returns": window_returns, "window_success": window_success,
                              "train_seconds": time.perf_counter() - start})
    return q


ARROWS = "←↓→↑"   # FrozenLake's actions 0-3: left, down, right, up


def is_grid_world(env, q: np.ndarray) -> bool:
    """Whether ``env`` is FrozenLake-like: a map with one state per cell and the four moves."""
    desc = getattr(env.unwrapped, "desc", None)
    return desc is not None and np.asarray(desc).size == q.shape[0] and q.shape[1] == 4 and np.asarray(desc).ndim == 2


def policy_grid(q: np.ndarray, desc) -> str:
    """FrozenLake's map with the greedy action in every frozen cell (S start, F frozen, H hole, G goal)."""
    def text(c):
        return c.decode() if isinstance(c, bytes) else str(c)
    rows = ["".join(map(text, row)) if not isinstance(row, (str, bytes)) else text(row)
            for row in np.asarray(desc).tolist()]   # a [H, W] array of b"S" ... or a list of "SFFF" rows
    width = len(rows[0])
    out = []
    for i, row in enumerate(rows):
        cells = []
        for j, c in enumerate(row):
            s = i * width + j
            cells.append(c if c in "HG" else (ARROWS[int(q[s].argmax())] if q[s].any() else "·"))
        out.append(" ".join(cells))
    return "\n".join(out)


def exact_returns(env, q: np.ndarray, horizon: int | None = None) -> dict | None:
    """Expected undiscounted returns computed from the environment's own model (toy-text environments
    expose ``P[s][a] = [(prob, next_state, reward, terminated), ...]`` and the start distribution):

    - ``optimal_return``: the best any policy can do within the time limit (finite-horizon value
      iteration, V_h(s) = max_a Σ p (r + (1 - terminated) V_{h-1}(s')), h = 1..horizon);
    - ``policy_return``: what the greedy policy of ``q`` gets (the same backups with a = argmax Q[s]).

    None when the environment has no model.
    """
    u = env.unwrapped
    if not hasattr(u, "P") or not hasattr(u, "initial_state_distrib"):
        return None
    horizon = horizon or (env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 1000)
    n_s, n_a = q.shape
    k = max(len(u.P[s][a]) for s in range(n_s) for a in range(n_a))
    prob, nxt, rew, term = (np.zeros((n_s, n_a, k)) for _ in range(4))
    for s in range(n_s):
        for a in range(n_a):
            for j, (p, s2, r, d) in enumerate(u.P[s][a]):
                prob[s, a, j], nxt[s, a, j], rew[s, a, j], term[s, a, j] = p, s2, r, d
    nxt = nxt.astype(np.int64)
    greedy_actions = q.argmax(1)
    v_opt, v_pol = np.zeros(n_s), np.zeros(n_s)
    for _ in range(horizon):
        q_opt = (prob * (rew + (1 - term) * v_opt[nxt])).sum(2)
        q_pol = (prob * (rew + (1 - term) * v_pol[nxt])).sum(2)
        v_opt, v_pol = q_opt.max(1), q_pol[np.arange(n_s), greedy_actions]
    start = np.asarray(u.initial_state_distrib)
    return {"optimal_return": round(float(start @ v_opt), 4), "policy_return": round(float(start @ v_pol), 4),
            "horizon": int(horizon)}
