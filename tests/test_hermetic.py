"""The suite is hermetic: offline for the hub, loopback only for sockets, in-process and in
the subprocesses tests start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from conftest import hermetic

TEST_NET = ("192.0.2.1", 443)  # RFC 5737 documentation address: never a real host


@pytest.fixture
def network_log():
    """The guard's log, restored after the test so its own blocked attempts don't fail it."""
    path = os.environ[hermetic.LOG_ENV]
    with open(path, encoding="utf-8") as f:
        before = f.read()
    yield path
    with open(path, "w", encoding="utf-8") as f:
        f.write(before)


def test_hub_is_offline_for_every_test():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE


def test_connect_off_the_machine_is_blocked_and_logged(network_log):
    with socket.socket() as s, pytest.raises(hermetic.NetworkBlocked, match="loopback"):
        s.connect(TEST_NET)
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with open(network_log, encoding="utf-8") as f:
        log = f.read()
    assert "192.0.2.1" in log and "huggingface.co" in log


def test_loopback_stays_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            conn, _ = server.accept()
            conn.close()


def test_a_subprocess_is_guarded_too(network_log):
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection({TEST_NET!r}, timeout=1)\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "NetworkBlocked"
    with open(network_log, encoding="utf-8") as f:
        assert "pid " in f.read()
