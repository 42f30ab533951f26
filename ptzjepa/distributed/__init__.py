"""Nodes sharing models: leases, the shared store, contributions, model choice, Redis, the swarm."""
