"""Prometheus metrics of one server (own registry, so several apps in a process never clash)."""

from __future__ import annotations

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tunelab_requests", "HTTP requests", ["path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "tunelab_request_seconds",
            "request latency (streams: until the last byte)",
            ["path"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "tunelab_batch_size",
            "rows per forward pass (classify: texts per batch; generate: rows per decoding step)",
            ["model", "kind"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "tunelab_generated_tokens", "tokens generated", ["model"], registry=self.registry
        )
        self.prompt_tokens = Counter(
            "tunelab_prompt_tokens", "prompt tokens read", ["model"], registry=self.registry
        )
        self.queued = Gauge(
            "tunelab_queued_requests",
            "requests waiting for their model (classify/entities: texts); 429 past --max-queue",
            ["model"],
            registry=self.registry,
        )
        # shadow mode (serving/shadow.py): inputs the shadow answered, agreed on, or skipped
        self.shadow_compared = Counter(
            "tunelab_shadow_compared",
            "inputs the shadow model answered beside the served one",
            ["model"],
            registry=self.registry,
        )
        self.shadow_agreed = Counter(
            "tunelab_shadow_agreed",
            "shadowed inputs where the shadow gave the served model's answer",
            ["model"],
            registry=self.registry,
        )
        self.shadow_skipped = Counter(
            "tunelab_shadow_skipped",
            "inputs the shadow skipped because its queue was full",
            ["model"],
            registry=self.registry,
        )
        self.ready = Gauge("tunelab_ready", "1 once the models are loaded", registry=self.registry)

    def watch_log(self, served_log) -> None:
        """Gauges of the prediction log: rows written, rows waiting (a database that is down
        grows the backlog; nothing is dropped)."""
        from prometheus_client import Gauge

        Gauge(
            "tunelab_log_rows_written", "prediction log rows written", registry=self.registry
        ).set_function(lambda: served_log.written)
        Gauge(
            "tunelab_log_backlog",
            "prediction log rows not yet in the database",
            registry=self.registry,
        ).set_function(lambda: served_log.backlog)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
