"""Reinforcement-learning recipes on gymnasium: tabular Q-learning (FrozenLake, Taxi) and DQN (CartPole).

They have their own loops (deepzoo/rl/), not the supervised engine: a run folder holds the config, the
learned table or network (safetensors, written atomically), metrics.jsonl (one row per log window or
evaluation), returns.png and summary.json, and while training ``checkpoints/`` (every
train.checkpoint_seconds, at the end of an episode: all the loop's state, so ``deepzoo resume`` continues a
killed run exactly; deepzoo/rl/dqn.py and qlearning.py say what is kept). ``env.id`` takes any gymnasium id with discrete actions
(and, for Q-learning, discrete observations); ``env.kwargs`` passes options to ``gymnasium.make``, as
TOML key = value pairs, e.g. ``--set "env.kwargs=map_name = '8x8', is_slippery = true"``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from deepzoo.errors import DeepzooError
from deepzoo.files import atomic_write_bytes
from deepzoo.recipes import Recipe, Reference, each, register


def env_kwargs(cfg: dict) -> dict:
    raw = cfg["env"]["kwargs"].strip()
    if not raw:
        return {}
    try:
        return tomllib.loads(f"v = {{{raw}}}")["v"]
    except tomllib.TOMLDecodeError as e:
        raise DeepzooError(f"env.kwargs must be TOML pairs such as \"map_name = '8x8', is_slippery = true\"; "
                           f"could not read {raw!r} ({e})") from None


def env_maker(cfg: dict, observations: str):
    from deepzoo.rl.envs import make
    kwargs = env_kwargs(cfg)
    make(cfg["env"]["id"], kwargs, observations).close()     # a bad id or option fails now, not mid-run
    return functools.partial(make, cfg["env"]["id"], kwargs, observations)


@dataclass
class Job:
    make_env: object


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise DeepzooError(f"{name} must be in [0, 1], got {value}")


def save_tensors(path: Path, tensors: dict) -> None:
    from safetensors.torch import save
    atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()}))


def load_tensors(path: Path) -> dict:
    from safetensors.torch import load_file
    if not path.exists():
        raise DeepzooError(f"{path} does not exist; the run did not finish (train it again)")
    return load_file(path)


def plot_returns(rows: list[dict], x: str, path: Path, title: str, threshold: float | None,
                 curve: list | None = None) -> None:
    from deepzoo.report.plots import plt, save_png
    fig, ax = plt.subplots(figsize=(7, 4))
    if curve:
        ax.plot([c[0] for c in curve], [c[1] for c in curve], color="lightsteelblue", lw=0.8,
                label="training episodes (ε-greedy)")
    xs = [r[x] for r in rows]
    for key, label in (("eval_return", "evaluation mean (ε = 0)"), ("train_return", "training mean (ε-greedy)")):
        if any(r.get(key) is not None for r in rows) and not (curve and key == "train_return"):
            ax.plot(xs, [r.get(key) for r in rows], marker=".", label=label)
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(xlabel=x.replace("_", " "), ylabel="return", title=title)
    ax.legend(fontsize=8)
    save_png(fig, path, dpi=100)


# --------------------------------------------------------------------------------------------------
# tabular Q-learning

def build_q(cfg: dict, data_dir) -> Job:
    a = cfg["agent"]
    for k in ("gamma", "lr", "lr_end", "lr_fraction", "eps_start", "eps_end", "eps_fraction"):
        _check_fraction(f"agent.{k}", a[k])
    if cfg["train"]["episodes"] < 1 or cfg["eval"]["episodes"] < 1:
        raise DeepzooError("train.episodes and eval.episodes must be at least 1")
    return Job(env_maker(cfg, "discrete"))


def fit_q(job: Job, cfg: dict, run_dir: Path, progress: bool, log, append_metrics, checkpoints) -> dict:
    import time

    from tqdm import tqdm

    from deepzoo.rl import qlearning
    a, t = cfg["agent"], cfg["train"]
    env = job.make_env()
    rows = checkpoints.metric_rows()            # a resumed run's rows so far (none for a new one)
    if checkpoints.resumed is not None:
        log(f"resuming {run_dir} after episode {checkpoints.resumed[1]['episodes']:,}")

    def on_log(row):
        rows.append(row)
        append_metrics({"epoch": len(rows), **row})
        if not progress:
            log(f"episodes {row['episodes']:,}  return {row['train_return']:.3f}  success {row['train_success']:.3f}"
                f"  ε {row['epsilon']:.3f}  α {row['alpha']:.4f}")
    bar = tqdm(total=t["episodes"], unit="episode", disable=not progress, leave=False)
    start = time.perf_counter()
    q = qlearning.train(env, t["episodes"], a["gamma"], (a["lr"], a["lr_end"], a["lr_fraction"]),
                        (a["eps_start"], a["eps_end"], a["eps_fraction"]), cfg["seed"], on_log,
                        log_every=max(1, t["episodes"] // 50), tick=bar.update, checkpoints=checkpoints)
    seconds = time.perf_counter() - start + (checkpoints.resumed[1]["train_seconds"] if checkpoints.resumed else 0)
    bar.close()
    save_tensors(run_dir / "qtable.safetensors", {"q": torch.from_numpy(q)})
    if qlearning.is_grid_world(env, q):
        log("greedy policy:\n" + qlearning.policy_grid(q, env.unwrapped.desc))
    env.close()
    plot_returns(rows, "episodes", run_dir / "returns.png", f"{cfg['recipe']} ({cfg['env']['id']})",
                 None)
    return {"results": evaluate_q(q, cfg, None), "epochs_run": t["episodes"], "train_seconds": seconds,
            "parameters": int(q.size)}


def load_q(run_dir: Path, cfg: dict):
    return load_tensors(Path(run_dir) / "qtable.safetensors")["q"].numpy()


def _play_q(q: np.ndarray, cfg: dict, episodes: int, seed: int):
    from deepzoo.rl.envs import play
    return play(env_maker(cfg, "discrete"), lambda obs: q[obs.astype(np.int64)].argmax(1), episodes, seed)


def evaluate_q(q: np.ndarray, cfg: dict, data_dir) -> dict:
    """The greedy policy over eval.episodes episodes, seeded apart from training; for environments that
    expose their model (FrozenLake, Taxi), also its exact expected return and the optimum."""
    from deepzoo.rl.qlearning import exact_returns
    r = _play_q(q, cfg, cfg["eval"]["episodes"], seed=1_000_000 + 100_000 * cfg["seed"]).summary()
    out = {"eval_" + k: v for k, v in r.items()}
    env = env_maker(cfg, "discrete")()
    exact = exact_returns(env, q)
    env.close()
    if exact is not None:
        out.update(exact_policy_return=exact["policy_return"], exact_optimal_return=exact["optimal_return"])
    return out


def predict_rl(loaded, cfg: dict, item: str, seed: int | None = None) -> dict:
    """``N`` (a number): play N greedy episodes and report their returns; ``policy``: the greedy action
    in each state (FrozenLake: on the map)."""
    seed = 2_000_000 if seed is None else seed
    if item == "policy":
        if not isinstance(loaded, np.ndarray):
            raise DeepzooError("'policy' is for the tabular recipes; give a number of episodes to play")
        from deepzoo.rl import qlearning
        env = env_maker(cfg, "discrete")()
        out = {"input": item, "policy": qlearning.policy_grid(loaded, env.unwrapped.desc)
               if qlearning.is_grid_world(env, loaded) else " ".join(map(str, loaded.argmax(1).tolist()))}
        env.close()
        return out
    try:
        n = int(item)
    except ValueError:
        raise DeepzooError(f"give a number of episodes to play (e.g. 100) or 'policy', got {item!r}") from None
    if n < 1:
        raise DeepzooError(f"the number of episodes must be at least 1, got {n}")
    if isinstance(loaded, np.ndarray):
        episodes = _play_q(loaded, cfg, n, seed)
    else:
        from deepzoo.rl.dqn import greedy_policy
        from deepzoo.rl.envs import play
        episodes = play(env_maker(cfg, "box"), greedy_policy(loaded), n, seed)
    return {"input": item, "env": cfg["env"]["id"], **episodes.summary(),
            "returns": [round(float(r), 3) for r in episodes.returns[:20]]}


# ε and α each decay linearly from their start to their end value over the first *_fraction of the episodes
# (the ε keys are DQN's names; an older deepzoo's epsilon, epsilon_end and decay_fraction are read as these)
_Q_AGENT = {"gamma": 0.99, "lr": 0.1, "lr_end": 0.01, "lr_fraction": 0.8,
            "eps_start": 1.0, "eps_end": 0.01, "eps_fraction": 0.8}
for name, env_id, kwargs, episodes, reference, quick in (
        ("qlearning-frozenlake", "FrozenLake-v1", "map_name = '4x4', is_slippery = true", 20_000,
         Reference("eval_success_rate", 0.70, "gymnasium's reward threshold for FrozenLake-v1 (slippery 4x4)",
                   "https://gymnasium.farama.org/environments/toy_text/frozen_lake/"), 2_000),
        ("qlearning-taxi", "Taxi-v4", "", 10_000,
         Reference("eval_mean_return", 8.0, "gymnasium's reward threshold for Taxi (above the exact optimum of "
                   "Taxi-v4, 7.93: see exact_optimal_return)",
                   "https://gymnasium.farama.org/environments/toy_text/taxi/"), 2_000)):
    register(Recipe(
        name=name, family="RL", dataset=env_id,
        description=f"tabular Q-learning, ε-greedy, on gymnasium {env_id}",
        reference=reference,
        defaults={"env": {"id": env_id, "kwargs": kwargs}, "agent": dict(_Q_AGENT),
                  "train": {"episodes": episodes}, "eval": {"episodes": 1000}},
        presets={"quick": {"train": {"episodes": quick}, "eval": {"episodes": 200}}},
        build=build_q, fit=fit_q, load=load_q, evaluate=evaluate_q, predict=each(predict_rl), predict_options=("seed",),
        predict_help="a number of greedy episodes to play, or 'policy'"))


# --------------------------------------------------------------------------------------------------
# DQN

def dqn_config(cfg: dict):
    from deepzoo.rl.dqn import Config
    a, t, e = cfg["agent"], cfg["train"], cfg["eval"]
    values = {**{k: a[k] for k in a}, "total_steps": t["steps"], "eval_every": e["every"],
              "eval_episodes": e["episodes"], "target_return": e["target_return"] or None}
    values["hidden"] = tuple(values["hidden"])
    names = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in values.items() if k in names})


def build_dqn(cfg: dict, data_dir) -> Job:
    a, t, e = cfg["agent"], cfg["train"], cfg["eval"]
    for k in ("gamma", "tau", "eps_start", "eps_end", "eps_fraction"):
        _check_fraction(f"agent.{k}", a[k])
    positive = {"train.steps": t["steps"], "agent.batch_size": a["batch_size"], "agent.buffer_size": a["buffer_size"],
                "agent.train_every": a["train_every"], "agent.gradient_steps": a["gradient_steps"],
                "agent.target_every": a["target_every"],
                "eval.every": e["every"], "eval.episodes": e["episodes"]}
    for k, v in positive.items():
        if v < 1:
            raise DeepzooError(f"{k} must be at least 1, got {v}")
    if not a["hidden"] or any(not isinstance(h, int) or h < 1 for h in a["hidden"]):
        raise DeepzooError(f"agent.hidden must be a list of layer widths such as [128, 128], got {a['hidden']}")
    if a["lr"] <= 0:
        raise DeepzooError(f"agent.lr must be positive, got {a['lr']}")
    return Job(env_maker(cfg, "box"))


def fit_dqn(job: Job, cfg: dict, run_dir: Path, progress: bool, log, append_metrics, checkpoints) -> dict:
    from tqdm import tqdm

    from deepzoo.rl import dqn
    c = dqn_config(cfg)
    rows = checkpoints.metric_rows()            # a resumed run's rows so far (none for a new one)
    if checkpoints.resumed is not None:
        log(f"resuming {run_dir} after step {checkpoints.resumed[1]['step']:,}")
    bar = tqdm(total=c.total_steps, unit="step", disable=not progress, leave=False)

    def on_eval(row):
        rows.append(row)
        append_metrics({"epoch": len(rows), **row})
        text = (f"step {row['env_steps']:,}  eval return {row['eval_return']:.1f} ± {row['eval_return_std']:.1f}"
                f"  ε {row['epsilon']:.3f}  {row['train_seconds']:.0f}s")
        bar.write(text) if progress else log(text)
    out = dqn.train(job.make_env, c, cfg["seed"], on_eval=on_eval, tick=bar.update, checkpoints=checkpoints)
    bar.close()
    q = out["q"]
    save_tensors(run_dir / "model.safetensors", q.state_dict())
    plot_returns(rows, "env_steps", run_dir / "returns.png", f"{cfg['recipe']} ({cfg['env']['id']})",
                 c.target_return, out["curve"])
    if out["reached_at_step"]:
        log(f"evaluation mean reached {c.target_return:g} after {out['reached_at_step']:,} steps "
            f"({out['train_seconds']:.0f}s)")
    results = evaluate_dqn(q, cfg, None)
    results.update({"selection_eval_return": out["best_return"], "selected_at_step": out["best_step"],
                    "reached_target_at_step": out["reached_at_step"], "env_steps": out["steps"]})
    return {"results": results, "epochs_run": len(rows), "train_seconds": out["train_seconds"],
            "parameters": sum(p.numel() for p in q.parameters())}


def load_dqn(run_dir: Path, cfg: dict):
    from deepzoo.rl.dqn import q_network
    env = env_maker(cfg, "box")()
    q = q_network(env.observation_space.shape[0], env.action_space.n, tuple(cfg["agent"]["hidden"]))
    env.close()
    q.load_state_dict(load_tensors(Path(run_dir) / "model.safetensors"))
    return q.eval()


def evaluate_dqn(q, cfg: dict, data_dir) -> dict:
    """The kept network, greedy, on eval.final_episodes fresh episodes (seeds apart from the selection's)."""
    from deepzoo.rl.dqn import greedy_policy
    from deepzoo.rl.envs import play
    r = play(env_maker(cfg, "box"), greedy_policy(q), cfg["eval"]["final_episodes"], seed=1_000_000 + 100_000 * cfg["seed"])
    return {"eval_" + k: v for k, v in r.summary().items()}


register(Recipe(
    name="dqn-cartpole", family="RL", dataset="CartPole-v1",
    description="DQN: replay buffer, target network (soft or hard), ε schedule, Double DQN, Huber loss",
    reference=Reference("eval_mean_return", 475.0, "gymnasium's reward threshold for CartPole-v1",
                        "https://gymnasium.farama.org/environments/classic_control/cart_pole/"),
    defaults={"env": {"id": "CartPole-v1", "kwargs": ""},
              # rl-baselines3-zoo's hyper-parameters for DQN on CartPole-v1, plus the Double-DQN target
              "agent": {"lr": 2.3e-3, "gamma": 0.99, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1_000,
                        "train_every": 256, "gradient_steps": 128, "target_every": 10, "tau": 1.0, "double": True,
                        "eps_start": 1.0, "eps_end": 0.04, "eps_fraction": 0.08, "hidden": [256, 256],
                        "clip_grad_norm": 10.0},
              "train": {"steps": 100_000},
              "eval": {"every": 2_500, "episodes": 100, "target_return": 475.0, "final_episodes": 100}},
    presets={"quick": {"train": {"steps": 3_000}, "agent": {"learning_starts": 500, "gradient_steps": 32},
                       "eval": {"every": 1_500, "episodes": 10, "final_episodes": 10}}},
    build=build_dqn, fit=fit_dqn, load=load_dqn, evaluate=evaluate_dqn, predict=each(predict_rl),
    predict_options=("seed",), predict_help="a number of greedy episodes to play"))
