"""Which pod updates make the ReplicaSet controller look at a ReplicaSet again."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers
from tuik8s.controllers.replicaset import ReplicaSetController
from tuik8s.controllers.runner import ControllerContext

RS = {
    "apiVersion": "apps/v1", "kind": "ReplicaSet",
    "metadata": {"name": "web-1", "namespace": "default", "uid": "rs-uid", "resourceVersion": "1"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
}
POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "name": "web-1-abc", "namespace": "default", "uid": "pod-uid", "resourceVersion": "10", "labels": {"app": "web"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-uid", "controller": True}],
    },
    "spec": {"containers": [{"name": "c", "image": "i"}]},
    "status": {"phase": "Pending"},
}


@pytest.fixture
def rsc() -> ReplicaSetController:
    client = ApiClient(object())  # type: ignore[arg-type]
    controller = ReplicaSetController(ControllerContext(client, SharedInformers(client)))
    controller.replicasets._upsert(copy.deepcopy(RS))
    return controller


def changed(pod: dict[str, Any], **status: Any) -> dict[str, Any]:
    new = copy.deepcopy(pod)
    new["metadata"]["resourceVersion"] = str(int(new["metadata"]["resourceVersion"]) + 1)
    new["status"].update(status)
    return new


async def queued(rsc: ReplicaSetController) -> list[str]:
    keys = []
    while len(rsc.queue):
        key = await rsc.queue.get()
        rsc.queue.done(key)
        keys.append(key)
    return keys


async def test_a_bind_does_not_wake_the_replica_set(rsc: ReplicaSetController) -> None:
    await queued(rsc)
    bound = changed(POD)
    bound["spec"]["nodeName"] = "node-1"
    rsc._pod_updated(POD, bound)
    assert await queued(rsc) == []


@pytest.mark.parametrize("status", [
    {"phase": "Running"},
    {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
    {"phase": "Failed"},
], ids=["phase", "ready", "finished"])
async def test_what_the_status_counts_wakes_it(rsc: ReplicaSetController, status: dict[str, Any]) -> None:
    await queued(rsc)
    rsc._pod_updated(POD, changed(POD, **status))
    assert await queued(rsc) == ["default/web-1"]


async def test_a_label_change_or_a_deletion_wakes_it(rsc: ReplicaSetController) -> None:
    await queued(rsc)
    relabeled = changed(POD)
    relabeled["metadata"]["labels"] = {"app": "other"}
    rsc._pod_updated(POD, relabeled)
    assert await queued(rsc) == ["default/web-1"]
    deleting = changed(POD)
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    rsc._pod_updated(POD, deleting)
    assert await queued(rsc) == ["default/web-1"]
