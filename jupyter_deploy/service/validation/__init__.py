"""Every rule a checkpoint, a node or an alias must meet, checked before anything is stored:
names.py (names, variables, flags), checkpoints.py, nodes.py (instance range, health,
autoscale, sticky, capture), containers.py (Docker-image nodes, instance configurations,
secrets) and aliases.py (weights, shadow)."""
