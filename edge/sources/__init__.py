"""The agent's sources: each receives input its own way and hands it to the Intake."""
