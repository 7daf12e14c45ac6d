"""Ctrl-C during training: finish the current step, write a checkpoint, then stop.

A second Ctrl-C stops at once (the default handler is back after the first)."""

from __future__ import annotations

import signal
import threading


class GracefulInterrupt:
    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        print(
            "\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to abort)",
            flush=True,
        )

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
