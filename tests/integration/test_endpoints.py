"""Endpoints follow the pods behind a Service, as `kubectl get endpoints` shows them.

No kubelet runs here (tests/integration/hollow_fixtures.py does not exist yet): the test
plays the kubelet's part, binding its pods to a Node it registers and writing their
status (phase, IP, Ready) through pods/NAME/status. The node monitor grace is stretched
so that the node lifecycle controller leaves that silent Node alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import (
    RunningServer,
    free_port,
    ready_node,
    start_server,
    stop_server,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore")

NODE = "ep-node"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("tuik8s-endpoints")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=("--node-monitor-grace", "3600"))
    try:
        apply(srv, ready_node(NODE))
        yield srv
    finally:
        stop_server(srv)


def apply(server: RunningServer, *objects: dict) -> None:
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)


def service(name: str, ns: str, selector: dict | None, ports: list[dict], **spec: object) -> dict:
    body: dict = {"ports": ports, **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": {"team": "blue"}}, "spec": body}


def pod(name: str, ns: str, labels: dict, port: int, port_name: str = "http") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": "app", "image": "nginx", "ports": [{"name": port_name, "containerPort": port}]}],
        },
    }


def run_pod(server: RunningServer, ns: str, name: str, ip: str, ready: bool = True) -> None:
    """What a kubelet reports: the pod runs, has an IP, and is (not) ready."""
    status = "True" if ready else "False"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": status, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
    }}
    server.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", yaml.safe_dump(patch), check=True)


def endpoints_column(server: RunningServer, ns: str, name: str) -> str | None:
    """The ENDPOINTS column of `kubectl get endpoints NAME`, or None if there is none."""
    result = server.kubectl("get", "endpoints", name, "-n", ns, "--no-headers")
    if result.returncode != 0:
        return None
    return result.stdout.split()[1]


def endpoints(server: RunningServer, ns: str, name: str) -> dict | None:
    result = server.kubectl("get", "endpoints", name, "-n", ns, "-o", "yaml")
    return yaml.safe_load(result.stdout) if result.returncode == 0 else None



# ---- tests --------------------------------------------------------------------------------


def test_endpoints_list_ready_pods_with_their_named_ports(server: RunningServer, ns: str) -> None:
    apply(server,
          service("web", ns, {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "http"}]),
          pod("web-1", ns, {"app": "web"}, 8080),
          pod("web-2", ns, {"app": "web"}, 9090),
          pod("other", ns, {"app": "db"}, 5432))
    run_pod(server, ns, "web-1", "10.244.1.11")
    run_pod(server, ns, "web-2", "10.244.1.12")
    run_pod(server, ns, "other", "10.244.1.13")
    wait_for(lambda: endpoints_column(server, ns, "web") == "10.244.1.11:8080,10.244.1.12:9090", timeout=10)

    ep = endpoints(server, ns, "web")
    assert ep is not None
    assert ep["metadata"]["labels"] == {"team": "blue"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    # a port each pod names differently: two subsets, as upstream
    assert [s["ports"] for s in ep["subsets"]] == [
        [{"name": "http", "port": 8080, "protocol": "TCP"}], [{"name": "http", "port": 9090, "protocol": "TCP"}],
    ]
    address = ep["subsets"][0]["addresses"][0]
    assert address["nodeName"] == NODE
    assert address["targetRef"]["kind"] == "Pod" and address["targetRef"]["name"] == "web-1"


def test_endpoints_follow_readiness_and_graceful_deletion(server: RunningServer, ns: str) -> None:
    apply(server,
          service("api", ns, {"app": "api"}, [{"port": 80, "targetPort": 8080}]),
          pod("api-1", ns, {"app": "api"}, 8080),
          pod("api-2", ns, {"app": "api"}, 8080))
    run_pod(server, ns, "api-1", "10.244.2.1")
    wait_for(lambda: endpoints_column(server, ns, "api") == "10.244.2.1:8080", timeout=10)
    run_pod(server, ns, "api-2", "10.244.2.2", ready=False)

    def not_ready() -> list[str]:
        ep = endpoints(server, ns, "api") or {}
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []]

    wait_for(lambda: not_ready() == ["10.244.2.2"], timeout=10)
    assert endpoints_column(server, ns, "api") == "10.244.2.1:8080"

    run_pod(server, ns, "api-2", "10.244.2.2", ready=True)
    wait_for(lambda: endpoints_column(server, ns, "api") == "10.244.2.1:8080,10.244.2.2:8080", timeout=10)

    # a pod being deleted stops receiving traffic at once, while its kubelet stops it
    server.kubectl("delete", "pod", "api-1", "-n", ns, "--wait=false", check=True)
    assert server.kubectl_json("get", "pod", "api-1", "-n", ns)["metadata"].get("deletionTimestamp")
    wait_for(lambda: endpoints_column(server, ns, "api") == "10.244.2.2:8080", timeout=10)


def test_publish_not_ready_addresses_lists_unready_pods(server: RunningServer, ns: str) -> None:
    apply(server,
          service("peers", ns, {"app": "peers"}, [{"port": 7000}], clusterIP="None", publishNotReadyAddresses=True),
          pod("peer-0", ns, {"app": "peers"}, 7000))
    run_pod(server, ns, "peer-0", "10.244.3.1", ready=False)
    wait_for(lambda: endpoints_column(server, ns, "peers") == "10.244.3.1:7000", timeout=10)
    ep = endpoints(server, ns, "peers")
    assert ep is not None and ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_a_service_without_selector_keeps_the_users_endpoints(server: RunningServer, ns: str) -> None:
    apply(server,
          service("external", ns, None, [{"port": 5432}]),
          {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "namespace": ns},
           "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]})
    # a later Service the controller must handle: once its Endpoints exist, the
    # controller has seen everything before it
    apply(server, service("later", ns, {"app": "later"}, [{"port": 80}]))
    wait_for(lambda: endpoints(server, ns, "later") is not None, timeout=10)
    assert endpoints_column(server, ns, "external") == "192.0.2.10:5432"


def test_deleting_a_service_deletes_its_endpoints(server: RunningServer, ns: str) -> None:
    apply(server, service("short", ns, {"app": "short"}, [{"port": 80}]))
    wait_for(lambda: endpoints(server, ns, "short") is not None, timeout=10)
    assert endpoints_column(server, ns, "short") == "<none>"
    server.kubectl("delete", "service", "short", "-n", ns, check=True)
    wait_for(lambda: endpoints(server, ns, "short") is None, timeout=10)


def test_deleted_endpoints_are_recreated(server: RunningServer, ns: str) -> None:
    apply(server, service("web", ns, {"app": "web"}, [{"port": 80}]), pod("web-1", ns, {"app": "web"}, 80))
    run_pod(server, ns, "web-1", "10.244.4.1")
    wait_for(lambda: endpoints_column(server, ns, "web") == "10.244.4.1:80", timeout=10)
    server.kubectl("delete", "endpoints", "web", "-n", ns, check=True)
    wait_for(lambda: endpoints_column(server, ns, "web") == "10.244.4.1:80", timeout=10)


def test_the_kubernetes_service_has_the_api_servers_endpoints(tmp_path: Path) -> None:
    """As upstream's endpoint reconciler: 10.96.0.1:443 leads to where the API server answers
    (its advertised address), so pods reach it through kube-proxy; a restart on another port
    rewrites them."""
    for port in (free_port(), free_port()):
        srv = start_server(tmp_path / "data", tmp_path / "home", port=port, extra=("--advertise", "192.0.2.10"))
        try:
            ep = srv.kubectl_json("get", "endpoints", "kubernetes", "-n", "default")
        finally:
            stop_server(srv)
        assert ep["subsets"] == [
            {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
        ]
