"""Memory and time planner: what a run needs before any weights load (docs/planning.md)."""
