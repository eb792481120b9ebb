"""EndpointSlices follow the pods behind a Service, as kubectl and the official client show them.

Deployments run on hollow nodes (their pods get IPs and turn Ready as on a real node).
For readiness flips the test plays the kubelet of a silent Node of its own, writing pod
status through pods/NAME/status, as tests/integration/test_endpoints.py does; the node
monitor grace is stretched so that the node lifecycle controller leaves that Node alone.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client, config

from tests.integration import hollow_fixtures
from tests.integration.conftest import (
    RunningServer,
    ready_node,
    start_server,
    stop_server,
    wait_for,
)
from tests.integration.test_endpoints import apply, pod, run_pod, service

pytestmark = pytest.mark.filterwarnings("ignore")

hollow = hollow_fixtures.hollow
SILENT_NODE = "ep-node"  # the name test_endpoints' pods are bound to
ADVERTISED = "192.0.2.10"
SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("tuik8s-endpointslices")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=("--node-monitor-grace", "3600", "--advertise", ADVERTISED))
    try:
        apply(srv, ready_node(SILENT_NODE, taints=[{"key": "silent", "effect": "NoSchedule"}]))
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def api(server: RunningServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.kubeconfig))



def slices(server: RunningServer, ns: str, svc: str) -> list[dict]:
    return server.kubectl_json("get", "endpointslices", "-n", ns, "-l", f"{SERVICE_NAME}={svc}")["items"]


def slice_addresses(server: RunningServer, ns: str, svc: str) -> list[str]:
    return sorted(a for s in slices(server, ns, svc) for e in s.get("endpoints") or [] for a in e["addresses"])


def running_pod_ips(server: RunningServer, ns: str, selector: str) -> list[str]:
    pods = server.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]
    ready = [
        p for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
    ]
    return sorted(p["status"]["podIP"] for p in ready)


def table(server: RunningServer, *args: str) -> list[list[str]]:
    out = server.kubectl("get", "endpointslices", *args, check=True).stdout
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]


def settled_on(server: RunningServer, ns: str, replicas: int) -> list[str] | None:
    """The pod IPs once exactly `replicas` ready pods are listed in the slices, else None."""
    ips = running_pod_ips(server, ns, "app=web")
    if len(ips) == replicas and slice_addresses(server, ns, "web") == ips:
        return ips
    return None


# ---- a Deployment behind a Service ----------------------------------------------------------


def test_slices_list_the_ready_pods_and_follow_a_scale(server: RunningServer, hollow, ns: str) -> None:
    server.kubectl("create", "deployment", "web", "-n", ns, "--image=tuik8s/web", "--replicas=2", "--port=8080", check=True)
    server.kubectl("expose", "deployment", "web", "-n", ns, "--port=80", "--target-port=8080", check=True)
    ips = wait_for(lambda: settled_on(server, ns, 2), timeout=30)

    [header, row] = table(server, "-n", ns)
    assert header == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert row[0].startswith("web-") and len(row[0]) == len("web-") + 5
    assert row[1:3] == ["IPv4", "8080"]
    assert sorted(row[3].split(",")) == ips
    assert table(server, "-n", ns, "-o", "wide")[0] == header

    [eps] = yaml.safe_load(server.kubectl("get", "endpointslices", "-n", ns, "-o", "yaml", check=True).stdout)["items"]
    svc_uid = server.kubectl_json("get", "service", "web", "-n", ns)["metadata"]["uid"]
    assert eps["metadata"]["generateName"] == "web-"
    assert eps["metadata"]["labels"] == {
        "app": "web", SERVICE_NAME: "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert eps["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc_uid, "controller": True, "blockOwnerDeletion": True,
    }]
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    for endpoint in eps["endpoints"]:
        assert endpoint["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert endpoint["nodeName"] in hollow.names
        assert endpoint["targetRef"]["kind"] == "Pod"

    server.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=4", check=True)
    wait_for(lambda: settled_on(server, ns, 4), timeout=30)
    server.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=1", check=True)
    wait_for(lambda: settled_on(server, ns, 1), timeout=30)
    assert len(slices(server, ns, "web")) == 1  # the same slice, rewritten

    # nothing changes: nothing is written
    rv = slices(server, ns, "web")[0]["metadata"]["resourceVersion"]
    server.kubectl("annotate", "service", "web", "-n", ns, "note=unrelated", check=True)
    server.kubectl("get", "service", "web", "-n", ns, check=True)
    assert slices(server, ns, "web")[0]["metadata"]["resourceVersion"] == rv


def test_deleting_the_service_garbage_collects_its_slices(server: RunningServer, hollow, ns: str) -> None:
    server.kubectl("create", "deployment", "web", "-n", ns, "--image=tuik8s/web", "--replicas=1", "--port=8080", check=True)
    server.kubectl("expose", "deployment", "web", "-n", ns, "--port=80", "--target-port=8080", check=True)
    wait_for(lambda: settled_on(server, ns, 1), timeout=30)
    server.kubectl("delete", "service", "web", "-n", ns, check=True)
    wait_for(lambda: not slices(server, ns, "web"), timeout=20)


def test_the_official_client_lists_slices(server: RunningServer, api: client.ApiClient, hollow, ns: str) -> None:
    server.kubectl("create", "deployment", "web", "-n", ns, "--image=tuik8s/web", "--replicas=2", "--port=8080", check=True)
    server.kubectl("expose", "deployment", "web", "-n", ns, "--port=80", "--target-port=8080", "--name=front", check=True)
    ips = wait_for(lambda: len(running_pod_ips(server, ns, "app=web")) == 2 and running_pod_ips(server, ns, "app=web"), timeout=30)
    discovery = client.DiscoveryV1Api(api)

    def listed() -> list[str]:
        found = discovery.list_namespaced_endpoint_slice(ns, label_selector=f"{SERVICE_NAME}=front")
        return sorted(a for s in found.items for e in s.endpoints or [] for a in e.addresses)

    wait_for(lambda: listed() == ips, timeout=20)
    [eps] = discovery.list_namespaced_endpoint_slice(ns).items
    assert eps.address_type == "IPv4"
    assert [(p.name, p.port, p.protocol) for p in eps.ports] == [("", 8080, "TCP")]
    assert all(e.conditions.ready and e.conditions.serving and not e.conditions.terminating for e in eps.endpoints)


# ---- readiness, as a kubelet reports it ---------------------------------------------------------


def silent_pod(name: str, ns: str) -> dict:
    body = pod(name, ns, {"app": "api"}, 8080)
    body["spec"]["tolerations"] = [{"key": "silent", "operator": "Exists"}]
    return body


def test_a_pod_that_turns_unready_stays_listed_as_not_ready(server: RunningServer, ns: str) -> None:
    apply(server,
          service("api", ns, {"app": "api"}, [{"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"}]),
          silent_pod("api-1", ns), silent_pod("api-2", ns))
    run_pod(server, ns, "api-1", "10.244.9.11")
    run_pod(server, ns, "api-2", "10.244.9.12")

    def conditions() -> dict[str, dict]:
        return {e["addresses"][0]: e["conditions"] for s in slices(server, ns, "api") for e in s.get("endpoints") or []}

    wait_for(lambda: len(conditions()) == 2 and all(c["ready"] for c in conditions().values()), timeout=15)
    [eps] = slices(server, ns, "api")
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}]
    assert eps["metadata"]["labels"]["team"] == "blue"

    run_pod(server, ns, "api-2", "10.244.9.12", ready=False)
    wait_for(lambda: conditions().get("10.244.9.12", {}).get("ready") is False, timeout=15)
    assert conditions()["10.244.9.12"] == {"ready": False, "serving": False, "terminating": False}
    assert conditions()["10.244.9.11"]["ready"] is True
    [[_, _, ports, endpoints, _]] = table(server, "-n", ns, "--no-headers")
    assert (ports, endpoints) == ("8080", "10.244.9.11,10.244.9.12")

    # a Service whose pods are all gone keeps one empty placeholder slice
    server.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", check=True)
    wait_for(lambda: table(server, "-n", ns, "--no-headers")[0][2:4] == ["<unset>", "<unset>"], timeout=15)


# ---- slices the controller does not manage ---------------------------------------------------


def manual_slice(name: str, ns: str, addresses: list[str], ports: list[dict] | None = None, **fields: object) -> dict:
    body: dict = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {SERVICE_NAME: "external"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a]} for a in addresses],
        **fields,
    }
    if ports is not None:
        body["ports"] = ports
    return body


def test_a_selectorless_service_keeps_the_slices_its_user_writes(server: RunningServer, ns: str) -> None:
    apply(server, service("external", ns, None, [{"port": 80}]),
          manual_slice("external-1", ns, [f"10.0.0.{i}" for i in range(1, 6)]),
          manual_slice("external-2", ns, ["10.0.1.1"], ports=[{"port": 80}, {"name": "b", "port": 81}, {"name": "c"},
                                                              {"name": "d", "port": 83}]))
    rows = {r[0]: r[1:4] for r in table(server, "-n", ns, "--no-headers")}
    assert rows == {
        "external-1": ["IPv4", "<unset>", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."],
        "external-2": ["IPv4", "80,81,c + 1 more...", "10.0.1.1"],
    }
    [eps] = [s for s in slices(server, ns, "external") if s["metadata"]["name"] == "external-2"]
    assert eps["ports"][0] == {"name": "", "port": 80, "protocol": "TCP"}  # defaulted
    # the controller has run meanwhile (a selector-bearing Service elsewhere would be synced by now)
    apply(server, service("other", ns, {"app": "none"}, [{"port": 80}]))
    wait_for(lambda: len(slices(server, ns, "other")) == 1, timeout=15)
    assert sorted(s["metadata"]["name"] for s in slices(server, ns, "external")) == ["external-1", "external-2"]


def test_the_api_server_publishes_its_own_slice(server: RunningServer) -> None:
    eps = server.kubectl_json("get", "endpointslice", "kubernetes", "-n", "default")
    assert eps["metadata"]["labels"] == {SERVICE_NAME: "kubernetes"}
    assert eps["addressType"] == "IPv4"
    assert eps["endpoints"] == [{"addresses": [ADVERTISED], "conditions": {"ready": True}}]
    assert eps["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]


# ---- the API ------------------------------------------------------------------------------------


def test_discovery_and_explain_know_endpointslices(server: RunningServer) -> None:
    out = server.kubectl("api-resources", "--api-group=discovery.k8s.io", "--no-headers", check=True).stdout
    assert out.split() == ["endpointslices", "discovery.k8s.io/v1", "true", "EndpointSlice"]
    explained = server.kubectl("explain", "endpointslice.addressType", check=True).stdout
    assert "GROUP:      discovery.k8s.io" in explained and "addressType" in explained


def post(server: RunningServer, path: str, body: dict) -> tuple[int, dict]:
    """POST as any client may, without the official client's own checks of the body."""
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(("body_fields", "message"), [
    ({"addressType": None}, 'EndpointSlice.discovery.k8s.io "bad" is invalid: addressType: Required value'),
    ({"addressType": "IPv5"}, 'addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"'),
    ({"endpoints": [{"addresses": []}]}, "endpoints[0].addresses: Required value: must contain at least 1 address"),
    ({"endpoints": [{"addresses": ["2001:db8::1"]}]}, 'endpoints[0].addresses[0]: Invalid value: "2001:db8::1": must be a valid IPv4 address'),
    ({"endpoints": [{"addresses": ["10.0.0.1"]}] * 1001}, "endpoints: Too many: 1001: must have at most 1000 items"),
], ids=["no-address-type", "bad-address-type", "no-addresses", "wrong-family", "too-many"])
def test_bad_slices_are_refused_with_a_line_naming_the_field(server: RunningServer, body_fields: dict, message: str) -> None:
    body = manual_slice("bad", "default", ["10.0.0.1"])
    body.update(body_fields)
    body = {k: v for k, v in body.items() if v is not None}
    code, status = post(server, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", body)
    assert (code, status["reason"]) == (422, "Invalid")
    assert message in status["message"] and "\n" not in status["message"]
    assert server.kubectl("get", "endpointslice", "bad", "-n", "default").returncode != 0

    result = server.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    assert result.returncode != 0
    assert message.split(": ", 1)[0].split()[-1] in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_address_type_cannot_change(server: RunningServer, api: client.ApiClient, ns: str) -> None:
    apply(server, manual_slice("fixed", ns, ["10.0.0.1"]))
    changed = manual_slice("fixed", ns, ["2001:db8::1"], addressType="IPv6")
    result = server.kubectl("apply", "-f", "-", input=yaml.safe_dump(changed))
    assert result.returncode != 0
    assert 'addressType: Invalid value: "IPv6": field is immutable' in result.stderr
    discovery = client.DiscoveryV1Api(api)
    with pytest.raises(client.ApiException) as raised:
        discovery.patch_namespaced_endpoint_slice("fixed", ns, {"addressType": "IPv6"})
    assert raised.value.status == 422
    eps = discovery.read_namespaced_endpoint_slice("fixed", ns)
    assert (eps.address_type, eps.endpoints[0].addresses) == ("IPv4", ["10.0.0.1"])
