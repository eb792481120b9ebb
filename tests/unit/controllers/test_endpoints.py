"""Endpoints from Services and pods: the pure subset building, and which keys a change queues."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers
from tuik8s.controllers.endpoints import (
    HEADLESS_LABEL,
    OVER_CAPACITY_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
    EndpointsController,
    TriggerTimeTracker,
    build_subsets,
    desired_endpoints,
    find_port,
    format_rfc3339_nano,
    truncate_subsets,
)
from tuik8s.controllers.runner import ControllerContext

Obj = dict[str, Any]


def svc(
    ports: list[Obj] | None = None,
    selector: Obj | None = None,
    cluster_ip: str = "10.96.0.10",
    labels: Obj | None = None,
    **spec: Any,
) -> Obj:
    return {
        "metadata": {
            "name": "web", "namespace": "default", "labels": labels or {"app": "web"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "selector": selector if selector is not None else {"app": "web"},
            "clusterIP": cluster_ip,
            "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            **spec,
        },
    }


def pod(
    name: str,
    ip: str | None = "10.1.0.1",
    ready: bool = True,
    port: int = 8080,
    port_name: str = "http",
    phase: str = "Running",
    deleting: bool = False,
    labels: Obj | None = None,
    namespace: str = "default",
    since: str = "2026-01-01T00:00:05Z",
    **spec: Any,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    status: Obj = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}]}],
            **spec,
        },
        "status": status,
    }


def ips(subset: Obj, field: str = "addresses") -> list[str]:
    return [a["ip"] for a in subset.get(field) or []]


# ---- which pods, which ports ----------------------------------------------------


def test_ready_and_not_ready_pods_share_a_subset_in_their_own_lists() -> None:
    subsets = build_subsets(svc(), [pod("a", "10.1.0.2"), pod("b", "10.1.0.1"), pod("c", "10.1.0.3", ready=False)])
    assert len(subsets) == 1
    assert ips(subsets[0]) == ["10.1.0.1", "10.1.0.2"]  # sorted
    assert ips(subsets[0], "notReadyAddresses") == ["10.1.0.3"]
    assert subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}]


def test_an_address_names_its_node_and_pod() -> None:
    [subset] = build_subsets(svc(), [pod("a")])
    assert subset["addresses"][0] == {
        "ip": "10.1.0.1",
        "nodeName": "node-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"},
    }


def test_pods_resolving_a_named_port_differently_get_subsets_of_their_own() -> None:
    subsets = build_subsets(svc(), [pod("a", "10.1.0.1", port=8080), pod("b", "10.1.0.2", port=9090)])
    assert [(ips(s), s["ports"][0]["port"]) for s in subsets] == [(["10.1.0.1"], 8080), (["10.1.0.2"], 9090)]


def test_a_numeric_target_port_needs_no_container_port() -> None:
    service = svc(ports=[{"port": 80, "targetPort": 3000, "protocol": "TCP"}])
    [subset] = build_subsets(service, [pod("a")])
    assert subset["ports"] == [{"port": 3000, "protocol": "TCP"}]


def test_ports_served_by_the_same_pods_share_a_subset() -> None:
    service = svc(ports=[
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP"},
    ])
    [subset] = build_subsets(service, [pod("a", "10.1.0.1"), pod("b", "10.1.0.2")])
    assert ips(subset) == ["10.1.0.1", "10.1.0.2"]
    assert [p["name"] for p in subset["ports"]] == ["http", "metrics"]


def test_a_pod_without_the_named_port_is_left_out_of_that_port() -> None:
    subsets = build_subsets(svc(), [pod("a", "10.1.0.1"), pod("b", "10.1.0.2", port_name="web")])
    assert [ips(s) for s in subsets] == [["10.1.0.1"]]


@pytest.mark.parametrize(
    "excluded",
    [
        pytest.param(pod("x", ip=None), id="no-ip-yet"),
        pytest.param(pod("x", deleting=True), id="terminating"),
        pytest.param(pod("x", phase="Succeeded"), id="succeeded"),
        pytest.param(pod("x", phase="Failed"), id="failed"),
        pytest.param(pod("x", ip="fd00::1"), id="other-ip-family"),
    ],
)
def test_pods_that_cannot_serve_are_left_out(excluded: Obj) -> None:
    assert build_subsets(svc(), [excluded]) == []


def test_publish_not_ready_addresses_lists_every_pod_as_ready_even_terminating() -> None:
    service = svc(publishNotReadyAddresses=True)
    [subset] = build_subsets(service, [pod("a", "10.1.0.1", ready=False), pod("b", "10.1.0.2", deleting=True)])
    assert ips(subset) == ["10.1.0.1", "10.1.0.2"]
    assert "notReadyAddresses" not in subset


def test_a_headless_service_without_ports_lists_addresses_only() -> None:
    [subset] = build_subsets(svc(ports=[], cluster_ip="None"), [pod("a")])
    assert ips(subset) == ["10.1.0.1"] and "ports" not in subset


def test_a_service_with_a_cluster_ip_and_no_ports_gets_no_addresses() -> None:
    assert build_subsets(svc(ports=[]), [pod("a")]) == []


def test_hostname_is_set_when_the_pod_names_the_service_as_subdomain() -> None:
    [subset] = build_subsets(svc(), [pod("a", hostname="a-0", subdomain="web"), pod("b", "10.1.0.2", hostname="b-0")])
    assert [a.get("hostname") for a in subset["addresses"]] == ["a-0", None]


def test_find_port_matches_name_and_protocol() -> None:
    p = pod("a", port=53, port_name="dns")
    assert find_port(p, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) == 53
    assert find_port(p, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) is None
    assert find_port(p, {"port": 80}) == 80  # no targetPort: the port itself


# ---- the Endpoints object ---------------------------------------------------------


def test_a_new_endpoints_carries_the_service_labels_and_the_trigger_time() -> None:
    service = svc()
    new = desired_endpoints(service, build_subsets(service, [pod("a")]), None, "2026-01-01T00:00:05Z")
    assert new is not None
    assert new["metadata"]["name"] == "web" and new["metadata"]["namespace"] == "default"
    assert new["metadata"]["labels"] == {"app": "web"}
    assert new["metadata"]["annotations"] == {TRIGGER_TIME_ANNOTATION: "2026-01-01T00:00:05Z"}


def test_a_headless_service_marks_its_endpoints() -> None:
    service = svc(cluster_ip="None")
    new = desired_endpoints(service, [], None, None)
    assert new is not None and new["metadata"]["labels"] == {"app": "web", HEADLESS_LABEL: ""}


def test_an_unchanged_endpoints_is_not_written_again() -> None:
    service = svc(cluster_ip="None")
    subsets = build_subsets(service, [pod("a")])
    current = desired_endpoints(service, subsets, None, "2026-01-01T00:00:05Z")
    assert current is not None
    # as stored: a pod resourceVersion in the reference changes nothing
    current["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "42"
    assert desired_endpoints(service, build_subsets(service, [pod("a")]), current, None) is None


def test_a_readiness_change_or_label_change_is_written() -> None:
    service = svc()
    current = desired_endpoints(service, build_subsets(service, [pod("a")]), None, None)
    assert current is not None
    flipped = desired_endpoints(service, build_subsets(service, [pod("a", ready=False)]), current, None)
    assert flipped is not None and ips(flipped["subsets"][0], "notReadyAddresses") == ["10.1.0.1"]
    relabelled = desired_endpoints(svc(labels={"app": "web", "tier": "front"}), current["subsets"], current, None)
    assert relabelled is not None and relabelled["metadata"]["labels"]["tier"] == "front"


def test_more_than_a_thousand_addresses_are_truncated_ready_first() -> None:
    ready = [{"ip": f"10.1.{i // 250}.{i % 250 + 1}"} for i in range(900)]
    not_ready = [{"ip": f"10.2.{i // 250}.{i % 250 + 1}"} for i in range(300)]
    subsets = [{"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 80}]}]
    assert truncate_subsets(subsets)
    assert len(subsets[0]["addresses"]) == 900 and len(subsets[0]["notReadyAddresses"]) == 100
    service = svc()
    new = desired_endpoints(service, [{"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 80}]}], None, None)
    assert new is not None and new["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION] == "truncated"
    # the truncated object, once stored, is recognised as up to date
    assert desired_endpoints(service, [{"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 80}]}], new, None) is None


# ---- last-change-trigger-time ------------------------------------------------------


def test_trigger_time_is_the_service_creation_first_then_the_earliest_change() -> None:
    tracker = TriggerTimeTracker()
    service = svc()
    a, b = pod("a", since="2026-01-01T00:00:05Z"), pod("b", since="2026-01-01T00:00:06Z")
    assert tracker.compute("default/web", service, [a, b]) == datetime(2026, 1, 1, tzinfo=UTC)
    assert tracker.compute("default/web", service, [a, b]) is None  # nothing moved
    a2 = pod("a", since="2026-01-01T00:00:09Z")
    b2 = pod("b", since="2026-01-01T00:00:08Z")
    assert tracker.compute("default/web", service, [a2, b2]) == datetime(2026, 1, 1, 0, 0, 8, tzinfo=UTC)


def test_trigger_time_is_printed_as_go_rfc3339_nano() -> None:
    assert format_rfc3339_nano(datetime(2026, 1, 1, 0, 0, 8, tzinfo=UTC)) == "2026-01-01T00:00:08Z"
    assert format_rfc3339_nano(datetime(2026, 1, 1, 0, 0, 8, 120000, tzinfo=UTC)) == "2026-01-01T00:00:08.12Z"


# ---- which services a pod change queues ------------------------------------------------


class _NoTransport:
    async def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the unit under test must not call the API")


@pytest.fixture
def controller() -> EndpointsController:
    client = ApiClient(_NoTransport())  # type: ignore[arg-type]
    return EndpointsController(ControllerContext(client, SharedInformers(client)))


async def _drain(c: EndpointsController) -> set[str]:
    keys = set()
    while len(c.queue):
        key = await c.queue.get()
        c.queue.done(key)
        keys.add(key)
    return keys


async def test_a_pod_change_queues_only_the_services_that_select_it(controller: EndpointsController) -> None:
    services = controller.services
    for ns, name, selector in [
        ("default", "web", {"app": "web"}),
        ("default", "web-canary", {"app": "web", "track": "canary"}),
        ("default", "db", {"app": "db"}),
        ("other", "web", {"app": "web"}),
    ]:
        services._upsert({"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector}})
    services._upsert({"metadata": {"name": "manual", "namespace": "default"}, "spec": {}})
    await _drain(controller)
    p = pod("a")
    controller.pods._upsert(p)
    assert await _drain(controller) == {"default/web"}
    canary = pod("a", labels={"app": "web", "track": "canary"})
    controller.pods._upsert(canary)
    assert await _drain(controller) == {"default/web", "default/web-canary"}
    annotated = pod("a", labels={"app": "web", "track": "canary"})
    annotated["metadata"]["annotations"] = {"note": "nothing that matters to endpoints"}
    controller.pods._upsert(annotated)
    assert await _drain(controller) == set()
    moved = pod("a", labels={"app": "db"})
    controller.pods._upsert(moved)
    assert await _drain(controller) == {"default/web", "default/web-canary", "default/db"}
    controller.pods._remove(moved)
    assert await _drain(controller) == {"default/db"}


def test_a_sync_reads_the_pods_of_the_selector_only(controller: EndpointsController) -> None:
    for i in range(50):
        controller.pods._upsert(pod(f"db-{i}", labels={"app": "db"}))
    controller.pods._upsert(pod("web-1", labels={"app": "web", "track": "stable"}))
    controller.pods._upsert(pod("web-2", labels={"app": "web", "track": "canary"}))
    controller.pods._upsert(pod("elsewhere", labels={"app": "web", "track": "stable"}, namespace="other"))
    picked = controller.pods_for("default", {"app": "web", "track": "stable"})
    assert [p["metadata"]["name"] for p in picked] == ["web-1"]
