"""The garbage collector's decisions: what happens to a dependent, and when it is looked at."""

from __future__ import annotations

from typing import Any

import pytest

from tuik8s.api import registry
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError
from tuik8s.client.informer import SharedInformers
from tuik8s.controllers.garbagecollector import (
    DANGLING,
    FOREGROUND,
    ORPHAN,
    SOLID,
    UNKNOWN,
    WAITING,
    Decision,
    GarbageCollector,
    OwnerGraph,
    decide,
    monitored_resources,
    owner_info,
    remove_refs_patch,
    unblock_refs_patch,
)
from tuik8s.controllers.runner import ControllerContext

Obj = dict[str, Any]
DEPLOYMENTS = registry.by_key("deployments.apps")
REPLICASETS = registry.by_key("replicasets.apps")
PODS = registry.by_key("pods")
NODES = registry.by_key("nodes")


def ref(uid: str, kind: str = "ReplicaSet", name: str | None = None, block: bool = True, api: str = "apps/v1") -> Obj:
    return {"apiVersion": api, "kind": kind, "name": name or uid, "uid": uid, "controller": True, "blockOwnerDeletion": block}


def obj(
    kind: str, name: str, uid: str, refs: list[Obj] | None = None, finalizers: list[str] | None = None,
    deleting: bool = False, namespace: str | None = "default",
) -> Obj:
    meta: Obj = {"name": name, "uid": uid, "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    if refs:
        meta["ownerReferences"] = refs
    if finalizers:
        meta["finalizers"] = finalizers
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": kind, "metadata": meta}


# ---- decide -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "has_dependents", "fins", "expected"),
    [
        pytest.param({"a": SOLID}, False, [], Decision("keep"), id="owner-stands"),
        pytest.param({"a": UNKNOWN}, False, [], Decision("keep"), id="unverifiable-owner-is-kept"),
        pytest.param({"a": SOLID, "b": DANGLING}, False, [], Decision("remove-refs", uids=("b",)), id="drop-dangling-ref"),
        pytest.param({"a": SOLID, "b": WAITING}, True, [], Decision("remove-refs", uids=("b",)), id="release-waiting-owner"),
        pytest.param({"a": DANGLING}, False, [], Decision("delete", policy="Background"), id="orphaned-background"),
        pytest.param({"a": DANGLING, "b": DANGLING}, True, [], Decision("delete", policy="Background"), id="all-gone"),
        pytest.param({"a": DANGLING}, False, [ORPHAN], Decision("delete", policy="Orphan"), id="honours-orphan"),
        pytest.param({"a": DANGLING}, False, [FOREGROUND], Decision("delete", policy="Foreground"), id="honours-foreground"),
        pytest.param({"a": WAITING}, True, [], Decision("delete", policy="Foreground"), id="foreground-spans-tree"),
        pytest.param({"a": WAITING}, False, [], Decision("delete", policy="Background"), id="foreground-leaf"),
    ],
)
def test_decide(states: dict[str, str], has_dependents: bool, fins: list[str], expected: Decision) -> None:
    refs = [ref(uid) for uid in states]
    assert decide(refs, states, has_dependents=has_dependents, item_finalizers=fins) == expected


def test_decide_unblocks_when_a_dependent_also_waits() -> None:
    d = decide([ref("a")], {"a": WAITING}, has_dependents=True, dependent_deleting_dependents=True)
    assert d == Decision("delete", policy="Foreground", unblock=True)


def test_patches_name_references_by_uid() -> None:
    assert remove_refs_patch(["u1"]) == {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}]}}
    dep = obj("Pod", "p", "p1", refs=[ref("a", block=True), ref("b", block=False)])
    assert unblock_refs_patch(dep) == {"metadata": {"ownerReferences": [{"uid": "a", "blockOwnerDeletion": False}]}}
    assert unblock_refs_patch(obj("Pod", "p", "p1", refs=[ref("b", block=False)])) is None


def test_owner_kinds_resolve_to_served_resources() -> None:
    assert owner_info(ref("x", kind="Deployment")) == DEPLOYMENTS
    assert owner_info(ref("x", kind="Deployment", api="apps/v1beta2")) == DEPLOYMENTS
    assert owner_info(ref("x", kind="Node", api="v1")) == NODES
    assert owner_info(ref("x", kind="Widget", api="example.com/v1")) is None
    keys = {r.key for r in monitored_resources()}
    assert {"pods", "replicasets.apps", "nodes", "leases.coordination.k8s.io"} <= keys
    assert "events" not in keys and "bindings" not in keys


# ---- the graph ----------------------------------------------------------------------------


def test_graph_indexes_dependents_by_owner_uid_even_before_the_owner_is_seen() -> None:
    g = OwnerGraph()
    g.upsert(PODS, obj("Pod", "p1", "p1", refs=[ref("rs1")]))
    g.upsert(PODS, obj("Pod", "p2", "p2", refs=[ref("rs1"), ref("rs2")]))
    assert [n.name for n in g.dependents("rs1")] == ["p1", "p2"]
    g.upsert(PODS, obj("Pod", "p2", "p2", refs=[ref("rs2")]))
    assert [n.name for n in g.dependents("rs1")] == ["p1"]
    g.remove(obj("Pod", "p1", "p1"))
    assert g.dependents("rs1") == [] and [n.name for n in g.dependents("rs2")] == ["p2"]


# ---- a controller over a fake API ------------------------------------------------------------


class FakeApi:
    """Just enough of `ApiClient` for the GC: objects by (resource, namespace, name)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Obj] = {}
        self.calls: list[tuple[Any, ...]] = []

    def put(self, info: registry.ResourceInfo, o: Obj) -> Obj:
        self.objects[(info.key, o["metadata"].get("namespace"), o["metadata"]["name"])] = o
        return o

    async def get(self, res: Any, name: str, namespace: str | None = None) -> Obj:
        self.calls.append(("get", res.key, namespace, name))
        try:
            return self.objects[(res.key, namespace, name)]
        except KeyError:
            raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found', {"details": {"name": name}}) from None

    async def delete(self, res: Any, name: str, namespace: str | None = None, **options: Any) -> Obj:
        self.calls.append(("delete", res.key, namespace, name, options.get("propagation_policy"), options.get("preconditions")))
        self.objects.pop((res.key, namespace, name), None)
        return {}

    async def patch(self, res: Any, name: str, patch: Any, **options: Any) -> Obj:
        self.calls.append(("patch", res.key, options.get("namespace"), name, patch))
        return {}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def gc(api: FakeApi) -> GarbageCollector:
    client = ApiClient(object())  # type: ignore[arg-type]
    collector = GarbageCollector(ControllerContext(client, SharedInformers(client)))
    collector.client = api  # type: ignore[assignment]
    return collector


async def queued(gc: GarbageCollector) -> list[str]:
    keys = []
    while len(gc.queue):
        key = await gc.queue.get()
        gc.queue.done(key)
        keys.append(key)
    return sorted(keys)


def writes(api: FakeApi) -> list[tuple[Any, ...]]:
    return [c for c in api.calls if c[0] != "get"]


async def test_a_dependent_whose_owner_is_in_the_graph_is_not_even_looked_at(gc: GarbageCollector, api: FakeApi) -> None:
    gc._on_add(REPLICASETS, obj("ReplicaSet", "rs1", "rs1"))
    gc._on_add(PODS, obj("Pod", "p1", "p1", refs=[ref("rs1")]))
    assert await queued(gc) == []


async def test_an_owner_missing_from_the_graph_is_confirmed_gone_before_deleting(gc: GarbageCollector, api: FakeApi) -> None:
    pod = api.put(PODS, obj("Pod", "p1", "p1", refs=[ref("rs1")]))
    gc._on_add(PODS, pod)
    assert await queued(gc) == ["p1"]
    # the owner exists: only the informer was behind
    api.put(REPLICASETS, obj("ReplicaSet", "rs1", "rs1"))
    await gc.reconcile("p1")
    assert writes(api) == []
    # a new ReplicaSet of that name is not the owner
    api.put(REPLICASETS, obj("ReplicaSet", "rs1", "another-uid"))
    await gc.reconcile("p1")
    assert writes(api) == [("delete", "pods", "default", "p1", "Background", {"uid": "p1"})]


async def test_a_confirmed_absence_is_remembered(gc: GarbageCollector, api: FakeApi) -> None:
    for i in range(3):
        gc._on_add(PODS, api.put(PODS, obj("Pod", f"p{i}", f"p{i}", refs=[ref("rs1")])))
    for key in await queued(gc):
        await gc.reconcile(key)
    owner_gets = [c for c in api.calls if c[:2] == ("get", "replicasets.apps")]
    assert len(owner_gets) == 1
    assert [c[3] for c in writes(api)] == ["p0", "p1", "p2"]


async def test_deleting_an_owner_queues_its_dependents(gc: GarbageCollector, api: FakeApi) -> None:
    rs = obj("ReplicaSet", "rs1", "rs1")
    gc._on_add(REPLICASETS, rs)
    gc._on_add(PODS, api.put(PODS, obj("Pod", "p1", "p1", refs=[ref("rs1")])))
    gc._on_add(PODS, api.put(PODS, obj("Pod", "other", "other", refs=[ref("rs2")])))
    await queued(gc)
    gc._on_delete(REPLICASETS, rs)
    assert await queued(gc) == ["p1"]


async def test_a_cluster_scoped_owner_is_looked_up_without_namespace(gc: GarbageCollector, api: FakeApi) -> None:
    lease = api.put(registry.by_key("leases.coordination.k8s.io"), obj(
        "Lease", "node-1", "l1", refs=[ref("n1", kind="Node", name="node-1", api="v1")], namespace="kube-node-lease",
    ))
    gc._on_add(registry.by_key("leases.coordination.k8s.io"), lease)
    api.put(NODES, obj("Node", "node-1", "n1", namespace=None))
    await gc.reconcile("l1")
    assert ("get", "nodes", None, "node-1") in api.calls and writes(api) == []


async def test_orphaning_frees_dependents_then_the_owner(gc: GarbageCollector, api: FakeApi) -> None:
    owner = api.put(DEPLOYMENTS, obj("Deployment", "web", "d1", finalizers=[ORPHAN], deleting=True))
    gc._on_add(REPLICASETS, obj("ReplicaSet", "rs1", "rs1", refs=[ref("d1", kind="Deployment")]))
    gc._on_add(DEPLOYMENTS, owner)
    assert "d1" in await queued(gc)
    await gc.reconcile("d1")
    assert writes(api)[0] == ("patch", "replicasets.apps", "default", "rs1", remove_refs_patch(["d1"]))
    assert writes(api)[1][3] == "web" and writes(api)[1][4]["metadata"]["finalizers"] is None


async def test_foreground_waits_for_blocking_dependents_only(gc: GarbageCollector, api: FakeApi) -> None:
    owner = api.put(REPLICASETS, obj("ReplicaSet", "rs1", "rs1", finalizers=[FOREGROUND], deleting=True))
    gc._on_add(REPLICASETS, owner)
    blocking = obj("Pod", "p1", "p1", refs=[ref("rs1", block=True)])
    gc._on_add(PODS, api.put(PODS, blocking))
    gc._on_add(PODS, api.put(PODS, obj("Pod", "p2", "p2", refs=[ref("rs1", block=False)])))
    assert await queued(gc) == ["p1", "p2", "rs1"]  # a dependent of a waiting owner is looked at
    await gc.reconcile("rs1")
    assert writes(api) == [] and await queued(gc) == ["p1", "p2"]
    await gc.reconcile("p1")
    assert writes(api) == [("delete", "pods", "default", "p1", "Background", {"uid": "p1"})]
    gc._on_delete(PODS, blocking)
    assert await queued(gc) == ["rs1"]  # the waiting owner wakes up
    await gc.reconcile("rs1")
    assert writes(api)[-1][0] == "patch" and writes(api)[-1][4]["metadata"]["finalizers"] is None
