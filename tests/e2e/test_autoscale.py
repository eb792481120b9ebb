"""Automatic scaling on the real lab: real kubelets measure real containers.

One Docker-in-Docker node runs the real kubelet; its `/metrics/resource` comes from the
node's Docker engine and cgroups, the API server's scraper reads it, and `kubectl top`
and the HPA see it. The load is a busy loop in the Deployment's own pods, switched on and
off by a file on the node (a hostPath), and capped by a CPU limit so three busy pods
cost the shared machine well under one core. The ingress that should carry a load
generator's requests is not here yet: this load is direct.

The server runs with the lab's timings: scrapes every 5 s, HPA syncs every 5 s,
scale-down stabilization 30 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LabServer, start_lab_server, stop_lab_server, wait_for

pytestmark = pytest.mark.lab

LOAD_DIR = "/tmp/tuik8s-autoscale-load"
STABILIZATION = 30.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("autoscale"), "autoscale")
    try:
        server.lab("up", "--nodes", "1")
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def burner() -> str:
    loop = "while true; do while [ -f /load/on ]; do :; done; sleep 1; done"
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burner"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "burner"}},
            "template": {
                "metadata": {"labels": {"app": "burner"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "burn", "image": "tuik8s/busybox", "imagePullPolicy": "Never",
                        "command": ["sh", "-c", loop],
                        "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}, "limits": {"cpu": "300m"}},
                        "volumeMounts": [{"name": "switch", "mountPath": "/load"}],
                    }],
                    "volumes": [{"name": "switch", "hostPath": {"path": LOAD_DIR, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    })


def top(lab: LabServer, *args: str) -> list[list[str]]:
    result = lab.kubectl("top", *args, check=False)
    return [line.split() for line in result.stdout.splitlines()[1:]] if result.returncode == 0 else []


def replicas(lab: LabServer) -> int:
    return int(json.loads(lab.kubectl("get", "deployment", "burner", "-o", "json").stdout)["spec"]["replicas"])


def millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def test_kubectl_top_shows_what_the_node_really_uses(lab: LabServer) -> None:
    lab.kubectl("apply", "-f", "-", input=burner())
    rows = wait_for(lambda: top(lab, "nodes"), timeout=60)
    assert rows[0][0] == "node1" and rows[0][1].endswith("m") and rows[0][3].endswith("Mi")
    assert rows[0][2].endswith("%") and rows[0][4].endswith("%")  # allocatable is known
    pods = wait_for(lambda: top(lab, "pods"), timeout=60)
    assert pods[0][0].startswith("burner-") and millicores(pods[0][1]) < 50  # idle: the switch is off


def test_load_scales_up_within_a_minute_and_back_after_the_window(lab: LabServer) -> None:
    lab.kubectl("apply", "-f", "-", input=burner())
    lab.kubectl("autoscale", "deployment", "burner", "--cpu-percent=50", "--min=1", "--max=3")
    wait_for(lambda: top(lab, "pods", "-l", "app=burner"), timeout=60)
    lab.in_node("node1", "sh", "-c", f"mkdir -p {LOAD_DIR} && touch {LOAD_DIR}/on")
    started = time.monotonic()
    try:
        wait_for(lambda: replicas(lab) == 3, timeout=60, interval=1)
    finally:
        lab.in_node("node1", "rm", "-f", f"{LOAD_DIR}/on", check=False)
    rose = time.monotonic() - started
    hpa = json.loads(lab.kubectl("get", "hpa", "burner", "-o", "json").stdout)
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
    stopped = time.monotonic()
    wait_for(lambda: replicas(lab) == 1, timeout=STABILIZATION + 60, interval=1)
    fell = time.monotonic() - stopped
    assert fell >= STABILIZATION - 5, f"scaled down {fell:.0f}s after the load stopped: inside the window"
    events = json.loads(lab.kubectl("get", "events", "--field-selector", "reason=SuccessfulRescale", "-o", "json").stdout)
    messages = [e["message"] for e in events["items"]]
    assert any(m.startswith("New size: 3; reason: cpu resource utilization") for m in messages), messages
    assert "New size: 1; reason: All metrics below target" in messages
    print(f"replicas rose in {rose:.0f}s and fell {fell:.0f}s after the load stopped")
