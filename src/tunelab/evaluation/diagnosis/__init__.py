"""Training diagnosis: what went right or wrong, read from a run's metrics.jsonl."""
