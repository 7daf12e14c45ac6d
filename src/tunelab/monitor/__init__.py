"""Watching served models: reference statistics, drift tests, label-free performance
estimates, alert rules and sinks, and the monitor report."""
