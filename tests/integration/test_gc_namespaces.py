"""Cascading deletion, namespace deletion and default ServiceAccounts, as a kubectl user sees them.

The chains Deployment -> ReplicaSet -> pods come from the Deployment and ReplicaSet
controllers when the server runs them; where a controller is not built yet, the test
creates its objects itself, with the ownerReferences that controller would set. No node
runs here, so pods stay Pending and go at once when deleted.
"""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from tests.integration.conftest import RunningServer, wait_for

pytestmark = pytest.mark.filterwarnings("ignore")

HAS_DEPLOYMENT_CONTROLLER = importlib.util.find_spec("tuik8s.controllers.deployment") is not None
HAS_REPLICASET_CONTROLLER = importlib.util.find_spec("tuik8s.controllers.replicaset") is not None


# ---- helpers ---------------------------------------------------------------------------


def apply(server: RunningServer, *objects: dict) -> None:
    # one YAML document per object: a `kind: List` makes kubectl 1.32 validate against
    # /openapi/v2, which this server does not serve (reported)
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)


def items(server: RunningServer, kind: str, ns: str, selector: str | None = None) -> list[dict]:
    args = ["get", kind, "-n", ns]
    if selector:
        args += ["-l", selector]
    return server.kubectl_json(*args)["items"]


def uid(server: RunningServer, kind: str, ns: str, name: str) -> str:
    return server.kubectl_json("get", kind, name, "-n", ns)["metadata"]["uid"]


def owner_ref(kind: str, name: str, owner_uid: str, api_version: str = "apps/v1") -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid, "controller": True, "blockOwnerDeletion": True}


def pod_template(app: str) -> dict:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def make_pods(server: RunningServer, ns: str, app: str, rs_name: str, rs_uid: str, n: int = 2) -> None:
    """What the ReplicaSet controller would create, when it is not there to do it."""
    apply(server, *[
        {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{rs_name}-{i}", "namespace": ns, "labels": {"app": app},
                "ownerReferences": [owner_ref("ReplicaSet", rs_name, rs_uid)],
            },
            "spec": pod_template(app)["spec"],
        }
        for i in range(n)
    ])


def owned_by(obj: dict, owner_uid: str) -> bool:
    return any(r.get("uid") == owner_uid for r in obj["metadata"].get("ownerReferences") or [])


def replicaset(server: RunningServer, ns: str, name: str, app: str, owners: list[dict] | None = None) -> str:
    """A ReplicaSet with two pods; returns its uid once its pods exist."""
    meta = {"name": name, "namespace": ns, "labels": {"app": app}}
    if owners:
        meta["ownerReferences"] = owners
    apply(server, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": pod_template(app)},
    })
    rs_uid = uid(server, "rs", ns, name)
    if not HAS_REPLICASET_CONTROLLER:
        make_pods(server, ns, app, name, rs_uid)
    wait_for(lambda: len([p for p in items(server, "pods", ns, f"app={app}") if owned_by(p, rs_uid)]) == 2, timeout=15)
    return rs_uid


def deployment(server: RunningServer, ns: str, app: str) -> str:
    """Deployment `app` -> a ReplicaSet -> two pods; returns the Deployment's uid."""
    apply(server, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": pod_template(app)},
    })
    d_uid = uid(server, "deploy", ns, app)
    if not HAS_DEPLOYMENT_CONTROLLER:
        replicaset(server, ns, f"{app}-rs", app, [owner_ref("Deployment", app, d_uid)])
        return d_uid
    rs = wait_for(lambda: [r for r in items(server, "rs", ns, f"app={app}") if owned_by(r, d_uid)], timeout=15)
    rs_name, rs_uid = rs[0]["metadata"]["name"], rs[0]["metadata"]["uid"]
    if not HAS_REPLICASET_CONTROLLER:
        make_pods(server, ns, app, rs_name, rs_uid)
    wait_for(lambda: len([p for p in items(server, "pods", ns, f"app={app}") if owned_by(p, rs_uid)]) == 2, timeout=15)
    return d_uid



def gone(server: RunningServer, *args: str) -> bool:
    result = server.kubectl("get", *args)
    return result.returncode != 0 and "NotFound" in result.stderr


# ---- garbage collection -------------------------------------------------------------------


def test_deleting_a_deployment_deletes_its_replicasets_and_pods(server: RunningServer, ns: str) -> None:
    deployment(server, ns, "web")
    server.kubectl("delete", "deployment", "web", "-n", ns, check=True)
    wait_for(lambda: not items(server, "rs", ns, "app=web") and not items(server, "pods", ns, "app=web"), timeout=15)


def test_foreground_deletion_removes_the_dependents_before_the_owner(server: RunningServer, ns: str) -> None:
    deployment(server, ns, "web")
    # kubectl waits until the Deployment is gone: by then, so are the ReplicaSet and its pods
    server.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=foreground", check=True, timeout=30)
    assert items(server, "rs", ns, "app=web") == []
    assert items(server, "pods", ns, "app=web") == []


def test_orphan_deletion_leaves_the_pods_without_owner(server: RunningServer, ns: str) -> None:
    replicaset(server, ns, "web", "web")
    server.kubectl("delete", "rs", "web", "-n", ns, "--cascade=orphan", check=True, timeout=30)
    assert gone(server, "rs", "web", "-n", ns)
    pods = items(server, "pods", ns, "app=web")
    assert len(pods) == 2
    assert all(not p["metadata"].get("ownerReferences") for p in pods)
    assert all(not p["metadata"].get("deletionTimestamp") for p in pods)


def test_orphaning_a_deployment_keeps_its_replicaset(server: RunningServer, ns: str) -> None:
    deployment(server, ns, "web")
    server.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=orphan", check=True, timeout=30)
    [rs] = items(server, "rs", ns, "app=web")
    assert not rs["metadata"].get("ownerReferences")
    assert len(items(server, "pods", ns, "app=web")) == 2


def test_a_dependent_of_a_cluster_scoped_owner_goes_with_it(server: RunningServer, ns: str) -> None:
    # unschedulable, so the scheduler never binds a pod to this node without a kubelet
    apply(server, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gc-node"}, "spec": {"unschedulable": True}})
    node_uid = uid(server, "node", "", "gc-node")
    apply(server, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "node-notes", "namespace": ns, "ownerReferences": [owner_ref("Node", "gc-node", node_uid, "v1")]},
    })
    server.kubectl("delete", "node", "gc-node", check=True)
    wait_for(lambda: gone(server, "configmap", "node-notes", "-n", ns), timeout=15)


def test_a_reference_to_an_owner_that_never_existed_is_collected(server: RunningServer, ns: str) -> None:
    apply(server, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "stray", "namespace": ns,
            "ownerReferences": [owner_ref("Deployment", "ghost", "00000000-0000-0000-0000-000000000000")],
        },
    })
    apply(server, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": ns}})
    wait_for(lambda: gone(server, "configmap", "stray", "-n", ns), timeout=15)
    assert not gone(server, "configmap", "kept", "-n", ns)


# ---- namespaces ---------------------------------------------------------------------------


def test_deleting_a_namespace_empties_it_and_kubectl_returns(server: RunningServer) -> None:
    server.kubectl("create", "namespace", "doomed", check=True)
    deployment(server, "doomed", "web")
    apply(server,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "doomed"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "doomed"}, "data": {"a": "b"}},
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "doomed"}, "stringData": {"a": "b"}})
    result = server.kubectl("delete", "namespace", "doomed", timeout=45)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'namespace "doomed" deleted'
    assert gone(server, "namespace", "doomed")
    # nothing of it is left behind in the store
    for kind in ("pods", "rs", "deploy", "svc", "endpoints", "cm", "secrets", "sa"):
        assert items(server, kind, "doomed") == [], kind


def test_a_namespace_waits_for_finalizers_and_says_so(server: RunningServer) -> None:
    server.kubectl("create", "namespace", "held", check=True)
    apply(server, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "precious", "namespace": "held", "finalizers": ["example.com/hold"]}})
    server.kubectl("delete", "namespace", "held", "--wait=false", check=True)

    def conditions() -> dict[str, dict]:
        ns = server.kubectl_json("get", "namespace", "held")
        return {c["type"]: c for c in ns["status"].get("conditions") or []}

    conds = wait_for(lambda: (c := conditions()).get("NamespaceFinalizersRemaining", {}).get("status") == "True" and c, timeout=15)
    assert conds["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert conds["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    )
    assert conds["NamespaceContentRemaining"]["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    assert conds["NamespaceDeletionContentFailure"]["status"] == "False"
    assert server.kubectl_json("get", "namespace", "held")["status"]["phase"] == "Terminating"
    described = server.kubectl("describe", "namespace", "held", check=True).stdout
    assert "SomeFinalizersRemain" in described
    # nothing new may go in meanwhile
    refused = server.kubectl("create", "configmap", "late", "-n", "held")
    assert "because it is being terminated" in refused.stderr

    server.kubectl("patch", "configmap", "precious", "-n", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=True)
    wait_for(lambda: gone(server, "namespace", "held"), timeout=20)


def test_system_namespaces_cannot_be_deleted(server: RunningServer) -> None:
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        result = server.kubectl("delete", "namespace", name)
        assert result.returncode != 0
        assert f'namespaces "{name}" is forbidden: this namespace may not be deleted' in result.stderr


def test_every_namespace_gets_a_default_service_account(server: RunningServer, ns: str) -> None:
    wait_for(lambda: not gone(server, "serviceaccount", "default", "-n", ns), timeout=10)
    for system in ("default", "kube-system"):
        assert not gone(server, "serviceaccount", "default", "-n", system)
    first = uid(server, "sa", ns, "default")
    server.kubectl("delete", "serviceaccount", "default", "-n", ns, check=True)
    wait_for(lambda: not gone(server, "serviceaccount", "default", "-n", ns) and uid(server, "sa", ns, "default") != first, timeout=10)
