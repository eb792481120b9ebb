"""EndpointSlices from Services and pods: the endpoints wanted, and the fewest writes to get there."""

from __future__ import annotations

import copy
from itertools import count
from typing import Any

from tests.unit.controllers.test_endpoints import _NoTransport, pod, svc
from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers
from tuik8s.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
    desired_endpoints,
    plan_slices,
    pod_endpoint,
    with_trigger_time,
)
from tuik8s.controllers.runner import ControllerContext

Obj = dict[str, Any]

_names = count()


def service(**kwargs: Any) -> Obj:
    s = svc(**kwargs)
    s["metadata"]["uid"] = "svc-uid"
    s["spec"].setdefault("ipFamilies", ["IPv4"])
    return s


def stored(plan_obj: Obj) -> Obj:
    """What the API server would hand back for a slice we asked it to create."""
    obj = copy.deepcopy(plan_obj)
    meta = obj["metadata"]
    if "name" not in meta:
        meta["name"] = f"{meta.pop('generateName')}{next(_names):05d}"
    meta["resourceVersion"] = "1"
    return obj


def converge(s: Obj, pods: list[Obj], existing: list[Obj], max_per_slice: int = 100) -> list[Obj]:
    """Apply one plan to `existing` as the server would, and return the slices after it."""
    plan = plan_slices(s, desired_endpoints(s, pods), existing, max_per_slice)
    gone = {e["metadata"]["name"] for e in plan.delete}
    updated = {e["metadata"]["name"]: e for e in plan.update}
    after = [updated.get(e["metadata"]["name"], e) for e in existing if e["metadata"]["name"] not in gone]
    return after + [stored(c) for c in plan.create]


def addresses(slices: list[Obj]) -> list[list[str]]:
    return [[a for e in sl.get("endpoints") or [] for a in e["addresses"]] for sl in slices]


def pods_n(n: int, **kwargs: Any) -> list[Obj]:
    return [pod(f"p{i:03d}", f"10.1.{i // 250}.{i % 250 + 1}", **kwargs) for i in range(n)]


# ---- the endpoint of a pod --------------------------------------------------------------


def test_a_ready_pod_is_ready_serving_and_not_terminating_with_its_node_and_pod() -> None:
    assert pod_endpoint(service(), pod("a", "10.1.0.7"), zone="zone-a") == {
        "addresses": ["10.1.0.7"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "node-1",
        "zone": "zone-a",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"},
    }


def test_a_terminating_ready_pod_is_serving_but_not_ready() -> None:
    endpoint = pod_endpoint(service(), pod("a", deleting=True))
    assert endpoint is not None
    assert endpoint["conditions"] == {"ready": False, "serving": True, "terminating": True}


def test_publish_not_ready_addresses_makes_every_endpoint_ready() -> None:
    endpoint = pod_endpoint(service(publishNotReadyAddresses=True), pod("a", ready=False))
    assert endpoint is not None
    assert endpoint["conditions"] == {"ready": True, "serving": False, "terminating": False}


def test_finished_pods_and_pods_without_an_ip_are_left_out_but_terminating_ones_stay() -> None:
    wanted = desired_endpoints(service(), [
        pod("done", "10.1.0.1", phase="Succeeded"), pod("new", None), pod("going", "10.1.0.3", deleting=True),
        pod("unready", "10.1.0.4", ready=False),
    ])
    [(ports, endpoints)] = wanted.values()
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"]["ready"]) for e in endpoints] == [
        (["10.1.0.3"], False), (["10.1.0.4"], False),
    ]


def test_a_named_target_port_resolved_differently_makes_a_port_set_of_its_own() -> None:
    s = service(ports=[{"port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}])
    wanted = desired_endpoints(s, [pod("a", "10.1.0.1", port=8080), pod("b", "10.1.0.2", port=9090)])
    assert sorted(ports[0]["port"] for ports, _ in wanted.values()) == [8080, 9090]
    for ports, _ in wanted.values():
        assert ports[0]["name"] == "" and ports[0]["appProtocol"] == "http"


# ---- slices -----------------------------------------------------------------------------


def test_a_new_service_gets_one_owned_labelled_slice() -> None:
    s = service(labels={"team": "blue"})
    plan = plan_slices(s, desired_endpoints(s, pods_n(2)), [])
    assert not plan.update and not plan.delete
    [created] = plan.create
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["labels"] == {
        "team": "blue", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME,
    }
    assert created["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert created["addressType"] == "IPv4"
    assert addresses([created]) == [["10.1.0.1", "10.1.0.2"]]


def test_nothing_changed_means_nothing_written() -> None:
    s = service()
    slices = converge(s, pods_n(150), [])
    assert not plan_slices(s, desired_endpoints(s, pods_n(150)), slices)


def test_slices_hold_at_most_100_endpoints() -> None:
    slices = converge(service(), pods_n(250), [])
    assert sorted(len(a) for a in addresses(slices)) == [50, 100, 100]


def test_a_removed_pod_rewrites_only_the_slice_that_held_it() -> None:
    s = service()
    slices = converge(s, pods_n(150), [])
    remaining = [p for p in pods_n(150) if p["metadata"]["name"] != "p120"]
    plan = plan_slices(s, desired_endpoints(s, remaining), slices)
    assert not plan.create and not plan.delete
    [updated] = plan.update
    assert len(updated["endpoints"]) == 49


def test_a_new_pod_joins_a_slice_with_room_instead_of_a_new_slice() -> None:
    s = service()
    slices = converge(s, pods_n(150), [])
    plan = plan_slices(s, desired_endpoints(s, pods_n(151)), slices)
    assert not plan.create and not plan.delete
    [updated] = plan.update
    assert len(updated["endpoints"]) == 51


def test_a_pod_turning_unready_updates_its_endpoint_in_place() -> None:
    s = service()
    slices = converge(s, pods_n(3), [])
    changed = pods_n(2) + [pod("p002", "10.1.0.3", ready=False)]
    after = converge(s, changed, slices)
    assert [sl["metadata"]["name"] for sl in after] == [sl["metadata"]["name"] for sl in slices]
    assert [e["conditions"]["ready"] for e in after[0]["endpoints"]] == [True, True, False]


def test_no_endpoints_leaves_one_empty_placeholder_slice() -> None:
    s = service()
    slices = converge(s, pods_n(3), [])
    after = converge(s, [], slices)
    [placeholder] = after
    assert placeholder["endpoints"] is None and "ports" not in placeholder
    assert placeholder["addressType"] == "IPv4"
    assert not plan_slices(s, desired_endpoints(s, []), after)  # and it stays


def test_slices_of_another_owner_or_address_type_are_replaced() -> None:
    s = service()
    [good] = converge(s, pods_n(2), [])
    foreign = copy.deepcopy(good)
    foreign["metadata"]["name"] = "web-old"
    foreign["metadata"]["ownerReferences"][0]["uid"] = "an-older-service"
    v6 = copy.deepcopy(good)
    v6["metadata"]["name"] = "web-v6"
    v6["addressType"] = "IPv6"
    plan = plan_slices(s, desired_endpoints(s, pods_n(2)), [good, foreign, v6])
    assert {e["metadata"]["name"] for e in plan.delete} == {"web-old", "web-v6"}
    assert not plan.create and not plan.update


def test_duplicated_endpoints_are_kept_once() -> None:
    s = service()
    [one] = converge(s, pods_n(2), [])
    two = copy.deepcopy(one)
    two["metadata"]["name"] = "web-dup"
    after = converge(s, pods_n(2), [one, two])
    assert sorted(sum(addresses(after), [])) == ["10.1.0.1", "10.1.0.2"]


def test_a_service_label_change_rewrites_the_slice_labels() -> None:
    s = service()
    slices = converge(s, pods_n(2), [])
    relabelled = service(labels={"app": "web", "tier": "front"})
    [updated] = plan_slices(relabelled, desired_endpoints(relabelled, pods_n(2)), slices).update
    assert updated["metadata"]["labels"]["tier"] == "front"


def test_the_trigger_time_is_set_on_a_write_and_cleared_without_one() -> None:
    eps = with_trigger_time({"metadata": {}}, "2026-01-01T00:00:05Z")
    assert eps["metadata"]["annotations"] == {"endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:05Z"}
    assert "annotations" not in with_trigger_time(eps, None)["metadata"]


# ---- the controller: a cache behind its own writes ---------------------------------------


class _Recorder:
    """The API as the controller sees it: creates answer with a name and a resourceVersion."""

    def __init__(self) -> None:
        self.created: list[Obj] = []

    async def create(self, res: str, obj: Obj, namespace: str | None = None) -> Obj:
        made = stored(obj)
        made["metadata"]["resourceVersion"] = str(10 + len(self.created))
        self.created.append(made)
        return made


async def test_a_sync_on_a_cache_without_its_own_create_does_not_create_again() -> None:
    api = ApiClient(_NoTransport())  # type: ignore[arg-type]
    controller = EndpointSliceController(ControllerContext(api, SharedInformers(api)))
    recorder = _Recorder()
    controller.client = recorder  # type: ignore[assignment]
    controller.services._upsert(service())
    for p in pods_n(2):
        controller.pods._upsert(p)

    assert await controller.reconcile("default/web") is None
    assert len(recorder.created) == 1
    # the pod event that follows arrives before the slice's own watch event
    assert await controller.reconcile("default/web") is not None
    assert len(recorder.created) == 1
    controller.slices._upsert(recorder.created[0])
    assert await controller.reconcile("default/web") is None
    assert len(recorder.created) == 1
