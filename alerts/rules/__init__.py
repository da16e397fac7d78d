"""Rule tooling that needs more than the engine: the event store (visibility) and the data dir."""
