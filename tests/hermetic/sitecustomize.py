"""Loopback only: a test that reaches for the network fails instead of passing by luck.

Installed twice: `tests/conftest.py` imports it into the pytest process, and it is this
folder's `sitecustomize`, so every Python subprocess a test starts (the `tunelab` CLI, a
server) loads it too, because conftest puts this folder first on PYTHONPATH. A blocked
attempt raises `NetworkBlocked` (an OSError, so code that handles network errors sees one)
and is appended to the file named by TUNELAB_TEST_NETWORK_LOG; the autouse fixture in
conftest fails the test that made it, even when the code under test swallowed the error.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

LOG_ENV = "TUNELAB_TEST_NETWORK_LOG"
_LOCAL_NAMES = {None, "", "localhost", "localhost.localdomain"}


class NetworkBlocked(OSError):
    """A test tried to reach something other than this machine's loopback."""


def _is_loopback_host(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _record(what: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()}: {what}\n")


def _allowed(sock: socket.socket, address) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True  # netlink and friends: not the network
    return _is_loopback_host(address[0])


def install() -> None:
    """Patch connect, connect_ex and name lookups (idempotent)."""
    if getattr(socket, "_tunelab_hermetic", False):
        return
    connect, connect_ex, getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )
    own_names = {socket.gethostname()}

    def guarded_connect(self, address):
        if not _allowed(self, address):
            _record(f"connect to {address!r}")
            raise NetworkBlocked(
                errno.ENETUNREACH, f"tests may only connect to loopback, not {address!r}"
            )
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if not _allowed(self, address):
            _record(f"connect_ex to {address!r}")
            return errno.ENETUNREACH
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not (_is_loopback_host(host) or host in own_names or _is_ip_literal(host)):
            _record(f"name lookup of {host!r}")
            raise NetworkBlocked(
                errno.ENETUNREACH, f"tests may not look up {host!r}: loopback only"
            )
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    socket._tunelab_hermetic = True


def _is_ip_literal(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host))
    except ValueError:
        return False
    return True


if os.environ.get(LOG_ENV):  # only inside a test run: conftest sets it
    install()
