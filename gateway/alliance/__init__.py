"""The alliance's part in the hub's log: witnesses cosign its checkpoints (docs/alliance.md)."""
