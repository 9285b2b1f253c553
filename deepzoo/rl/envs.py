"""Environments: ``make`` with clear errors, and greedy evaluation episodes played in parallel.

An episode ends when the environment terminates (a goal or a failure: FrozenLake's hole, CartPole's
fall) or is truncated by its time limit. Its return is the undiscounted sum of rewards, and it counts
as a success when it terminated on a positive reward (FrozenLake's goal, Taxi's drop-off).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from deepzoo.errors import DeepzooError


def make(env_id: str, kwargs: dict | None = None, observations: str = "any"):
    """``gymnasium.make(env_id, **kwargs)`` for an environment with discrete actions.

    ``observations``: "discrete" (a tabular method needs a finite state set), "box" (a Q-network needs
    a vector), or "any".
    """
    try:
        import gymnasium as gym
    except ImportError:  # pragma: no cover (a dependency)
        raise DeepzooError("the RL recipes need gymnasium: pip install gymnasium") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            env = gym.make(env_id, **(kwargs or {}))
        except gym.error.Error as e:
            raise DeepzooError(f"env.id {env_id!r}: {e}") from None
        except TypeError as e:
            raise DeepzooError(f"env.kwargs for {env_id}: {e}") from None
        except Exception as e:  # an environment's own check of an option (FrozenLake's map_name='9x9': KeyError)
            raise DeepzooError(f"env.kwargs for {env_id}: {type(e).__name__}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise DeepzooError(f"{env_id} has {env.action_space} actions; Q-learning and DQN need discrete actions")
    space = env.observation_space
    if observations == "discrete" and not isinstance(space, gym.spaces.Discrete):
        env.close()
        raise DeepzooError(f"{env_id} observes {space}; tabular Q-learning needs a finite state set "
                           f"(Discrete observations): use dqn-cartpole with --set env.id={env_id}")
    if observations == "box" and not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        env.close()
        raise DeepzooError(f"{env_id} observes {space}; the DQN recipe takes a vector (a 1-D Box) of observations")
    return env


@dataclass
class Episodes:
    returns: np.ndarray     # [episodes] undiscounted returns
    lengths: np.ndarray     # [episodes] steps
    successes: np.ndarray   # [episodes] terminated on a positive reward

    def summary(self) -> dict:
        return {"mean_return": round(float(self.returns.mean()), 4), "std_return": round(float(self.returns.std()), 4),
                "success_rate": round(float(self.successes.mean()), 4),
                "mean_length": round(float(self.lengths.mean()), 2), "episodes": len(self.returns)}


def play(make_env: Callable, policy: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int,
         parallel: int = 100) -> Episodes:
    """Play ``episodes`` episodes with ``policy`` (a batch of observations -> a batch of actions), up to
    ``parallel`` environments at a time, so a network policy acts on a batch. Episode i starts from
    ``reset(seed=seed + i)``: the same episodes whatever the policy or the parallelism."""
    envs = [make_env() for _ in range(min(parallel, episodes))]
    returns, lengths, successes = np.zeros(episodes), np.zeros(episodes, dtype=np.int64), np.zeros(episodes, dtype=bool)
    obs, which = [None] * len(envs), [-1] * len(envs)
    started = 0
    for k, env in enumerate(envs):
        obs[k], _ = env.reset(seed=seed + started)
        which[k] = started
        started += 1
    live = list(range(len(envs)))
    while live:
        actions = policy(np.stack([np.asarray(obs[k]) for k in live]))
        still = []
        for k, action in zip(live, actions):
            o, r, terminated, truncated, _ = envs[k].step(int(action))
            i = which[k]
            returns[i] += r
            lengths[i] += 1
            if terminated or truncated:
                successes[i] = bool(terminated and r > 0)
                if started < episodes:
                    obs[k], _ = envs[k].reset(seed=seed + started)
                    which[k] = started
                    started += 1
                    still.append(k)
            else:
                obs[k] = o
                still.append(k)
        live = still
    for env in envs:
        env.close()
    return Episodes(returns, lengths, successes)
