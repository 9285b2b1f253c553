"""Reinforcement learning: the Q-learning update, exact returns from an environment's model, greedy
evaluation episodes, the DQN target and buffer, and the recipes (the tabular bars are checked here)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from deepzoo.errors import DeepzooError
from deepzoo.rl import dqn, envs, qlearning


class Chain(gym.Env):
    """State 0. Action 1 ends the episode with reward 1; action 0 stays, reward 0 (``loop_reward``)."""
    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, loop_reward=0.0, terminal_action=True):
        self.loop_reward, self.terminal_action = loop_reward, terminal_action

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, a):
        if a == 1 and self.terminal_action:
            return 0, 1.0, True, False, {}
        return 0, self.loop_reward, False, False, {}


def test_q_learning_converges_to_the_bellman_values():
    # Q(0, 1) = 1 (terminal: no bootstrap); Q(0, 0) = 0 + γ max Q(0, ·) = γ
    q = qlearning.train(gym.wrappers.TimeLimit(Chain(), 20), episodes=3000, gamma=0.9, lr=(0.5, 0.5, 1.0),
                        eps=(1.0, 1.0, 1.0), seed=0)
    # a convergence band, not a rounding one: each update (lr 0.5, gamma 0.9) shrinks the error by a
    # factor <= 0.95, and thousands of updates take it to float64 rounding (seen: 1e-16); NumPy scalar
    # arithmetic, the same on every CPU
    np.testing.assert_allclose(q[0], [0.9, 1.0], atol=1e-3)


def test_truncation_bootstraps_but_termination_does_not():
    # reward 1 forever, cut every 5 steps by the time limit: the fixed point is 1 / (1 - γ) = 10, not <= 5
    env = gym.wrappers.TimeLimit(Chain(loop_reward=1.0, terminal_action=False), 5)
    q = qlearning.train(env, episodes=3000, gamma=0.9, lr=(0.5, 0.5, 1.0), eps=(1.0, 1.0, 1.0), seed=0)
    np.testing.assert_allclose(q[0], [10.0, 10.0], atol=1e-2)   # converged as above (seen: 2e-14 off)


def test_exact_returns_on_deterministic_frozenlake():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    right_then_down = np.zeros((16, 4))
    for s in (0, 1, 2, 6, 10, 14):                     # 0 → 1 → 2 ↓ 6 ↓ 10 ↓ 14 → 15
        right_then_down[s, 2 if s in (0, 1, 14) else 1] = 1
    out = qlearning.exact_returns(env, right_then_down)
    assert out["optimal_return"] == 1.0 and out["policy_return"] == 1.0 and out["horizon"] == 100
    into_hole = np.zeros((16, 4))
    into_hole[0, 1], into_hole[4, 2] = 1, 1            # down to 4, then right into the hole at 5
    assert qlearning.exact_returns(env, into_hole)["policy_return"] == 0.0


def test_policy_grid_marks_holes_and_goal():
    env = gym.make("FrozenLake-v1")
    q = np.zeros((16, 4))
    q[:, 2] = 1                                         # right everywhere
    assert qlearning.policy_grid(q, env.unwrapped.desc).splitlines() == [
        "→ → → →", "→ H → H", "→ → → H", "H → → G"]
    assert qlearning.is_grid_world(env, q) and not qlearning.is_grid_world(gym.make("Taxi-v4"), np.zeros((500, 6)))


def test_play_is_the_same_whatever_the_parallelism():
    make = lambda: envs.make("CartPole-v1")
    rng = np.random.default_rng(0)
    w = rng.normal(size=4)
    policy = lambda obs: (obs @ w > 0).astype(np.int64)
    a, b = envs.play(make, policy, 9, seed=3, parallel=1), envs.play(make, policy, 9, seed=3, parallel=4)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert a.summary()["episodes"] == 9 and (a.lengths == a.returns).all()   # CartPole: +1 per step


@pytest.mark.parametrize("env_id, observations, message", [
    ("CartPol-v1", "any", "env.id 'CartPol-v1'.*Did you mean"),
    ("Pendulum-v1", "any", "Q-learning and DQN need discrete actions"),
    ("CartPole-v1", "discrete", "tabular Q-learning needs a finite state set"),
    ("FrozenLake-v1", "box", "takes a vector"),
])
def test_environment_errors(env_id, observations, message):
    with pytest.raises(DeepzooError, match=message):
        envs.make(env_id, observations=observations)


def test_replay_buffer_wraps_around():
    buf = dqn.ReplayBuffer(3, 2, np.random.default_rng(0))
    for i in range(5):
        buf.add(np.full(2, i), i % 2, float(i), np.full(2, i + 1), i == 4)
    assert buf.size == 3 and sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]
    s, a, r, s2, term = buf.sample(50)
    assert set(r.tolist()) <= {2.0, 3.0, 4.0} and torch.equal(s2[:, 0], s[:, 0] + 1)
    assert torch.equal(term, (r == 4.0).float())


@pytest.mark.parametrize("double", [False, True])
def test_td_loss_target(double):
    torch.manual_seed(0)
    # float64: the loss against the formula written out, sums in other orders and batch shapes; in float64
    # a few roundings of values ~1 (~1e-16) cannot flip the argmax or reach the tolerance, while a
    # bootstrapped terminal state, the wrong chooser or an MSE for the Huber is off by > 1e-2
    q, q_target = dqn.q_network(3, 2, (8,)).double(), dqn.q_network(3, 2, (8,)).double()
    s, s2 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    a, r = torch.tensor([0, 1, 1, 0, 1]), torch.randn(5, dtype=torch.float64)
    term = torch.tensor([0.0, 0, 1, 0, 0], dtype=torch.float64)
    loss = dqn.td_loss(q, q_target, (s, a, r, s2, term), 0.9, double)
    with torch.no_grad():
        chooser = q if double else q_target
        best = chooser(s2).argmax(1)
        y = r + 0.9 * (1 - term) * q_target(s2)[torch.arange(5), best]
        pred = q(s)[torch.arange(5), a]
        d = (pred - y).abs()
        huber = torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()
    torch.testing.assert_close(loss, huber, atol=1e-12, rtol=1e-10)


# --------------------------------------------------------------------------------------------------
# recipes

def quiet(*_):
    pass


def test_qlearning_frozenlake_meets_the_threshold(tmp_path):
    from deepzoo.train.run import predict, train
    s = train("qlearning-frozenlake", out=tmp_path / "run", progress=False, log=quiet)
    r = s["results"]
    assert r["eval_episodes"] == 1000 and r["eval_success_rate"] >= 0.70
    assert r["exact_policy_return"] >= 0.70 and r["exact_policy_return"] <= r["exact_optimal_return"] + 1e-9
    (policy,) = predict(tmp_path / "run", ["policy"])
    assert policy["policy"].count("H") == 4 and policy["policy"].endswith("G")
    (played,) = predict(tmp_path / "run", ["50"])
    assert played["episodes"] == 50 and 0 <= played["success_rate"] <= 1


def test_a_run_made_with_the_old_epsilon_names_still_loads(tmp_path):
    """Q-learning called agent.eps_start / eps_end / eps_fraction epsilon / epsilon_end / decay_fraction (which
    also drove α, now agent.lr_fraction): a run folder written then is read with the new names."""
    import json

    from deepzoo.train.run import evaluate, predict, read_run, train
    run = tmp_path / "run"
    train("qlearning-frozenlake", preset="quick", out=run, progress=False, log=quiet)
    before = evaluate(run)["results"]
    meta = json.loads((run / "config.json").read_text())
    agent = meta["config"]["agent"]
    assert agent["lr_fraction"] == agent["eps_fraction"] == 0.8
    meta["config"]["agent"] = {"gamma": agent["gamma"], "lr": agent["lr"], "lr_end": agent["lr_end"],
                               "epsilon": agent["eps_start"], "epsilon_end": agent["eps_end"], "decay_fraction": 0.8}
    (run / "config.json").write_text(json.dumps(meta))
    assert read_run(run)[3]["agent"] == agent
    assert evaluate(run)["results"] == before
    assert predict(run, ["20"])[0]["episodes"] == 20


def test_qlearning_taxi_learns_the_optimal_policy(tmp_path):
    """The exact optimum of Taxi-v4 is 7.93 (below gymnasium's threshold of 8): the bar is optimality."""
    from deepzoo.train.run import train
    r = train("qlearning-taxi", out=tmp_path / "run", progress=False, log=quiet)["results"]
    # exact_returns rounds both to 4 decimals (the same float64 backups, with max or with the greedy
    # action): equal roundings when the policy is optimal; approx only absorbs 7.93's binary form
    assert r["exact_optimal_return"] == pytest.approx(7.93)
    assert r["exact_policy_return"] == pytest.approx(r["exact_optimal_return"])


def test_dqn_quick_run_writes_weights_curves_and_plays(tmp_path):
    from deepzoo.train.run import evaluate, predict, train
    s = train("dqn-cartpole", preset="quick", out=tmp_path / "run", progress=False, log=quiet)
    run = tmp_path / "run"
    assert (run / "model.safetensors").exists() and (run / "returns.png").stat().st_size > 5000
    assert s["results"]["eval_episodes"] == 10 and s["epochs_run"] == 2          # evaluations at 1,500 and 3,000
    (played,) = predict(run, ["3"])
    assert played["episodes"] == 3 and played["mean_return"] >= 1
    assert evaluate(run)["results"]["eval_mean_return"] == s["results"]["eval_mean_return"]   # same seeds
    with pytest.raises(DeepzooError, match="give a number of episodes"):
        predict(run, ["many"])


def test_bad_rl_config_fails_before_a_folder_is_made(tmp_path):
    from deepzoo.train.run import train
    for sets, message in ((["env.id=Pendulum-v1", "env.kwargs="], "discrete actions"), (["agent.gamma=1.5"], "agent.gamma must be in"),
                          (["env.kwargs=map_name ="], "env.kwargs must be TOML pairs"),
                          (["env.kwargs=colour = 'red'"], "env.kwargs for FrozenLake-v1")):
        with pytest.raises(DeepzooError, match=message):
            train("qlearning-frozenlake", preset="quick", out=tmp_path / "run", sets=sets, progress=False)
    with pytest.raises(DeepzooError, match="agent.hidden must be a list"):
        train("dqn-cartpole", preset="quick", out=tmp_path / "run", sets=["agent.hidden=[0]"], progress=False)
    assert not (tmp_path / "run").exists()
