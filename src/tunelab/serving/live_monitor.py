"""/metrics' live drift and estimate gauges: every `every_s` seconds, the newest window of each
served model's logged rows against its run's reference (monitor/), as `tunelab monitor` would
compute it, so the dashboards that already scrape /metrics see drift without a new tool.

A model whose run cannot give a reference (a bare hub model, a folder without its run) has no
gauges; that is logged once. The work runs in its own thread, off the request path.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("tunelab.serving")

# gauge name -> (help, dotted path in window_stats' dict)
GAUGES = {
    "tunelab_drift_mmd_p": ("embedding drift: MMD permutation p-value", "embedding.mmd_p"),
    "tunelab_drift_domain_auc": ("embedding drift: domain classifier AUC", "embedding.domain_auc"),
    "tunelab_prediction_psi": ("predicted-label PSI against the reference", "prediction.psi"),
    "tunelab_mean_confidence": ("mean top-class probability", "prediction.mean_confidence"),
    "tunelab_estimated_accuracy": ("label-free accuracy estimate (CBPE)", "estimate.accuracy"),
    "tunelab_estimated_f1_macro": ("label-free macro-F1 estimate (CBPE)", "estimate.f1_macro"),
    "tunelab_unk_rate": ("unknown-token rate of the inputs", "input.unk_rate"),
    "tunelab_error_rate": ("share of logged requests that failed", "ops.error_rate"),
}


class LiveMonitor:
    def __init__(self, registry, url: str, metrics, every_s: float = 60.0, window: int = 200):
        from prometheus_client import Gauge

        self.registry, self.url, self.every_s, self.window = registry, url, every_s, window
        self.gauges = {
            name: Gauge(
                name, text + " (newest logged window)", ["model"], registry=metrics.registry
            )
            for name, (text, _) in GAUGES.items()
        }
        self.alerts = Gauge(
            "tunelab_monitor_alerts",
            "alerts the default rules raise on the newest logged window",
            ["model"],
            registry=metrics.registry,
        )
        self._references: dict[str, object] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _reference(self, served):
        # by folder: a followed alias (alias_watch.py) swaps in a version with its own run
        if served.path not in self._references:
            from tunelab.monitor.reference import load_reference

            try:
                self._references[served.path] = load_reference(served.path)
            except Exception as exc:  # no run to compare against: no gauges for this model
                log.info("no drift gauges for %s: %s", served.name, exc)
                self._references[served.path] = None
        return self._references[served.path]

    def check(self) -> None:
        """One round: each model's newest window -> its gauges."""
        from tunelab.monitor.rules import DEFAULT_RULES, evaluate, lookup
        from tunelab.monitor.windows import window_stats
        from tunelab.store.predictions import read_predictions

        for served in list(self.registry.models.values()):
            if self._stop.is_set():
                return
            ref = self._reference(served)
            if ref is None:
                continue
            rows = read_predictions(self.url, model=served.name, last=self.window)
            if len(rows) < min(50, self.window):
                continue
            stats = window_stats(rows, ref)
            for name, (_, path) in GAUGES.items():
                value = lookup(stats, path)
                if value is not None:
                    self.gauges[name].labels(served.name).set(value)
            self.alerts.labels(served.name).set(len(evaluate(stats, DEFAULT_RULES)))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception:
                log.exception("live monitor: a round failed; the next one tries again")
