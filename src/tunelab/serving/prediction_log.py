"""The served side of the prediction log: one row per served input, off the request path.

A route hands over what it already has (texts, outputs, latency, the request's metadata) and
gets the inputs' ids back at once; a prep thread hashes, scrubs PII (`--log-text`), counts
tokens and embeds (inference/embedding.py), then the store's batched writer inserts the rows.
On shutdown (uvicorn turns SIGTERM into one) `close()` drains both, so an answered request's
row is never lost; a database that goes away only grows the counted backlog.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict

log = logging.getLogger("tunelab.serving")

TEXT_MODES = ("none", "scrubbed", "raw")
# what classify results carry for the log only (popped before the reply)
INTERNAL = ("embedding", "n_tokens", "n_unk")
# answered inputs remembered in memory for feedback (their rows may still wait in the writer)
RECENT = 100_000


def row_ids(request_id: str, n: int) -> list[str]:
    """The ids of a request's n inputs: the request's own for a single input (so the
    X-Request-Id header names the row), a new one each in a batch."""
    return [request_id] if n == 1 else [uuid.uuid4().hex for _ in range(n)]


def model_version(path: str) -> str:
    """A short fingerprint of the served folder (store.lineage.folder_version, the one the
    registry records as a version's `served_version`): a retrained model under the same name
    logs a different version."""
    from tunelab.store.lineage import folder_version

    return folder_version(path)


def input_hash(text: str, pair: str | None = None) -> str:
    return hashlib.sha256((text if pair is None else f"{text}\x1f{pair}").encode()).hexdigest()


def split_internal(results: list[dict]) -> list[dict]:
    """Pop the log-only fields out of each result (in place); returns them per result."""
    return [{k: r.pop(k) for k in INTERNAL if k in r} for r in results]


def label_of(kind: str, out) -> str | None:
    return out.get("label") if kind == "classify" and isinstance(out, dict) else None


def confidence_of(kind: str, out) -> float | None:
    """The top class's probability (classify) or the answer span's (answer)."""
    if not isinstance(out, dict):
        return None
    key = {"classify": "score", "answer": "probability"}.get(kind)
    return out.get(key) if key else None


def _packed(vec) -> bytes | None:
    import numpy as np

    return None if vec is None else np.asarray(vec, dtype=np.float16).tobytes()


class ServedLog:
    """Rows of served inputs -> the database (store.log_writer.PredictionLog)."""

    def __init__(self, url: str, text_mode: str = "scrubbed", writer=None):
        from tunelab.store.log_writer import PredictionLog

        if text_mode not in TEXT_MODES:
            raise ValueError(f"log text mode {text_mode!r}: one of {', '.join(TEXT_MODES)}")
        self.url, self.text_mode = url, text_mode
        self.writer = writer or PredictionLog(url)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prediction-log-prep", daemon=True)
        self._tokenizers: dict[str, object] = {}
        self._versions: dict[str, str] = {}
        self._recent: OrderedDict[str, dict] = OrderedDict()
        self._recent_lock = threading.Lock()

    # -- the request side -------------------------------------------------------------------
    def start(self) -> None:
        """Open the database (StoreError when it cannot be reached) and start the threads."""
        self.writer.start()
        self._thread.start()

    def add(
        self,
        served,
        request_id: str,
        texts: list[str],
        outputs: list[dict | None],
        latency_ms: float,
        *,
        pairs: list[str] | None = None,
        extras: list[dict] | None = None,
        prompt_ids: list[list[int]] | None = None,
        meta: dict | None = None,
        status: int = 200,
        error: str | None = None,
    ) -> list[str]:
        """Queue one row per input; returns their ids (the first is `request_id` when there is
        a single input, so the X-Request-Id header names the row)."""
        ids = row_ids(request_id, len(texts))
        if status == 200:
            self._remember(served, ids, outputs)
        self._queue.put(
            {
                "served": served,
                "request_id": request_id,
                "time": time.time(),
                "texts": texts,
                "pairs": pairs,
                "outputs": outputs,
                "extras": extras,
                "prompt_ids": prompt_ids,
                "latency_ms": latency_ms,
                "meta": meta,
                "status": status,
                "error": error,
                "ids": ids,
            }
        )
        return ids

    def _remember(self, served, ids: list[str], outputs: list[dict | None]) -> None:
        with self._recent_lock:
            for i, out in zip(ids, outputs or [None] * len(ids)):
                scores = out.get("scores") if isinstance(out, dict) else None
                labels = list(scores) if isinstance(scores, dict) else None
                self._recent[i] = {"model": served.name, "kind": served.kind, "labels": labels}
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)

    def logged_input(self, row_id: str) -> dict | None:
        """{"model", "kind", "labels"} of a logged input: answered by this server (even while
        its row still waits to be written), else read from the database; None if unknown."""
        from tunelab.store.feedback import logged_input

        with self._recent_lock:
            hit = self._recent.get(row_id)
        return hit if hit is not None else logged_input(self.writer.engine, row_id)

    @property
    def engine(self):
        return self.writer.engine

    @property
    def backlog(self) -> int:
        return self._queue.qsize() + self.writer.backlog

    @property
    def written(self) -> int:
        return self.writer.written

    def close(self, timeout: float = 60.0) -> None:
        """Prepare and write everything queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        self.writer.close(timeout)

    # -- the prep thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.writer.write(self._rows(item))
            except Exception:  # a bad row must not stop the log; the request was answered
                log.exception("prediction log: could not prepare a row of %s", item["request_id"])

    def _tokenizer(self, served):
        # a private copy: the engines' threads call the shared one with other truncation
        # settings, and a Rust tokenizer refuses concurrent reconfiguration. By folder, not
        # name: a followed alias swaps another version in under the same name
        tok = self._tokenizers.get(served.path)
        if tok is None:
            tok = self._tokenizers[served.path] = copy.deepcopy(served.tokenizer)
        return tok

    def _version(self, served) -> str:
        """The fingerprint of the folder that answered (by folder: after an alias swap the
        same name logs the new version's, while late rows of the old one keep theirs)."""
        v = self._versions.get(served.path)
        if v is None:
            v = self._versions[served.path] = model_version(served.path)
        return v

    def _rows(self, item: dict) -> list[dict]:
        from tunelab.data.pii import redact
        from tunelab.inference.embedding import embed_token_ids, unk_counts

        served, texts, pairs = item["served"], item["texts"], item["pairs"]
        extras = item["extras"] or [{} for _ in texts]
        ok = item["status"] == 200
        ids_list = item["prompt_ids"]
        need = ok and any("embedding" not in e for e in extras)
        if ids_list is None and (need or any("n_tokens" not in e for e in extras)):
            tok = self._tokenizer(served)
            ids_list = [
                tok(t, p, truncation=True)["input_ids"]
                for t, p in zip(texts, pairs or [None] * len(texts))
            ]
        vectors = embed_token_ids(served.model, ids_list) if need else None
        unks = unk_counts(served.tokenizer, ids_list) if ids_list is not None else None

        def keep(text):
            if text is None or self.text_mode == "none":
                return None
            return redact(text)[0] if self.text_mode == "scrubbed" else text

        rows = []
        for i, text in enumerate(texts):
            pair = pairs[i] if pairs else None
            out = item["outputs"][i] if item["outputs"] else None
            extra = extras[i]
            vec = extra.get("embedding")
            if vec is None and vectors is not None:
                vec = vectors[i]
            rows.append(
                {
                    "id": item["ids"][i],
                    "request_id": item["request_id"],
                    "time": item["time"],
                    "model": served.name,
                    "version": self._version(served),
                    "kind": served.kind,
                    "task": served.task,
                    "input_hash": input_hash(text, pair),
                    "text": keep(text),
                    "pair": keep(pair),
                    "output": out,
                    "label": label_of(served.kind, out),
                    "confidence": confidence_of(served.kind, out),
                    "latency_ms": item["latency_ms"],
                    "status": item["status"],
                    "error": item["error"],
                    "n_tokens": extra.get("n_tokens", len(ids_list[i]) if ids_list else None),
                    "n_unk": extra.get("n_unk", unks[i] if unks else None),
                    "embedding": _packed(vec) if ok else None,
                    "meta": item["meta"],
                }
            )
        return rows
