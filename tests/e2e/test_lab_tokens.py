"""A lab node's credential ends with the lab, on the real Docker engine.

Its own cluster ("e2e-tokens", one node) and API server: `lab node kill` keeps the node's
token (the node comes back), `lab down` revokes it and says so, the running server refuses
it from then on (401 to kubectl and to a plain HTTPS request), and a new `lab up` gives
the node a fresh token it becomes Ready with.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import LabServer, start_lab_server, stop_lab_server, wait_for

pytestmark = pytest.mark.lab

CLUSTER = "e2e-tokens"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("lab-tokens"), CLUSTER)
    try:
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def node_token(lab: LabServer) -> str:
    """The token `lab up` gave node1's kubelet."""
    return (lab.data_dir / "lab" / "nodes" / "node1" / "token").read_text().strip()


def status_code(lab: LabServer, token: str) -> int:
    """GET node1 with `token`, as any HTTPS client would: the status code."""
    cluster = yaml.safe_load(lab.kubeconfig.read_text())["clusters"][0]["cluster"]
    with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
        ca.write(base64.b64decode(cluster["certificate-authority-data"]))
        ca.flush()
        ctx = ssl.create_default_context(cafile=ca.name)
    req = urllib.request.Request(f"{cluster['server']}/api/v1/nodes/node1",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def ready(lab: LabServer) -> bool:
    node = lab.nodes().get("node1", {})
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


def test_lab_down_revokes_the_node_token_and_up_mints_a_fresh_one(lab: LabServer, tmp_path: Path) -> None:
    lab.lab("up", "--nodes", "1")
    assert ready(lab)
    old = node_token(lab)
    assert status_code(lab, old) == 200

    # a drill: the node comes back, so its credential stays
    lab.lab("node", "kill", "node1")
    assert status_code(lab, old) == 200
    assert lab.kubectl("--token", old, "get", "node", "node1").returncode == 0

    down = lab.lab("down")
    assert "revoked the API token of node1 (refused from the next request on)" in down.stdout + down.stderr
    # the running server refuses it at once: no reload interval to wait out
    assert status_code(lab, old) == 401
    refused = lab.kubectl("--token", old, "get", "node", "node1", check=False)
    assert refused.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in refused.stderr

    lab.lab("up", "--nodes", "1")
    wait_for(lambda: ready(lab), timeout=120, interval=1)
    new = node_token(lab)
    assert new != old
    assert status_code(lab, new) == 200
    assert status_code(lab, old) == 401
