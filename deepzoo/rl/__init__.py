"""Reinforcement learning on gymnasium environments: tabular Q-learning and DQN.

- :mod:`deepzoo.rl.envs`: making environments (clear errors for unknown ids and unsupported spaces) and
  playing evaluation episodes with a greedy policy, many environments at a time.
- :mod:`deepzoo.rl.qlearning`: the Q-table and its temporal-difference update.
- :mod:`deepzoo.rl.dqn`: a Q-network, an experience-replay buffer, a target network, ε-greedy exploration.
"""
