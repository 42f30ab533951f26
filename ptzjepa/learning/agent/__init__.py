"""The agent: moves, dreams, the Q-network, replay memory and double DQN."""
