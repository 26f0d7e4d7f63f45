"""A rotation leaves no connection open: the engine closes the client it made.

Sockets are counted the way the kernel sees them: the process's open file descriptors
(`/proc/self/fd`, each socket a `socket:[inode]` link) matched against `/proc/net/tcp`
(and `tcp6`) for connections to the landscape's ports. Garbage collection is off while
the rotation runs, so a client that is merely unreachable (not closed) still holds its
connections when they are counted.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
from rotation_kit import request_for

from cf_sandbox import Landscape
from cpi_cert_rotate.rotation import rotate

pytestmark = pytest.mark.e2e


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _connections_to(ports: set[int]) -> list[str]:
    """This process's TCP sockets whose remote end is one of `ports` (client sides)."""
    mine = _socket_inodes()
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port in ports and fields[9] in mine:
                found.append(f"{fields[1]} -> {fields[2]} state {fields[3]}")
    return found


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_rotation_leaves_no_connection_open(landscape: Landscape) -> None:
    ports = {_port(landscape.api_url), _port(landscape.uaa_url), _port(landscape.cpi_url)}
    minted = landscape.mint(cn="ntifext-client", days=90)
    assert _connections_to(ports) == []
    gc.collect()
    gc.disable()
    try:
        report = rotate(request_for(landscape, minted.chain_pem, minted.key_pem))
        assert report.rotated, report.error
        left = _connections_to(ports)
    finally:
        gc.enable()
    assert left == [], f"connections left open after the rotation: {left}"


def test_the_counting_sees_an_open_connection(landscape: Landscape) -> None:
    """The check above can fail: a client that is not closed is seen."""
    from cpi_cert_rotate.cf import CfClient
    from cpi_cert_rotate.models import CfAuth

    auth = CfAuth(
        username=landscape.username, password=landscape.password, origin=landscape.origin,
        ca_pem=landscape.ca_pem,
    )  # fmt: skip
    client = CfClient(landscape.api_url, auth)
    client.root()
    deadline = time.monotonic() + 5
    assert _connections_to({_port(landscape.api_url)}), "an open connection was not seen"
    client.close()
    while _connections_to({_port(landscape.api_url)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _connections_to({_port(landscape.api_url)}) == []
