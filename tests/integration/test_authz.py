"""Who may do what, seen through the real kubectl with real tokens of a real server.

Node tokens are made as the lab makes them (`tuik8s token create --user system:node:N
--group system:nodes`); a node acts like upstream's Node authorizer + NodeRestriction
allow; a read-only token reads all but Secrets; a revoked token is refused within a
second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import RunningServer, wait_for

PODS_NS = "authz"


def tuik8s(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuik8s.cli", "token", *args, "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60,
    )


def new_token(server: RunningServer, *args: str) -> str:
    result = tuik8s(server, "create", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class As:
    """kubectl with another user's token, against the same server."""

    def __init__(self, server: RunningServer, token: str, tmp: Path) -> None:
        self.server = server
        cfg = yaml.safe_load(server.kubeconfig.read_text())
        cfg["users"][0]["user"]["token"] = token
        tmp.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(cfg))

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.kubeconfig.parent / "cache"), *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)

    def raw(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        """One request with `kubectl create --raw`-like precision: status code and body."""
        import ssl
        import urllib.error
        import urllib.request

        token = yaml.safe_load(self.kubeconfig.read_text())["users"][0]["user"]["token"]
        ctx = ssl.create_default_context(cafile=str(self.server.ca_file))
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/json",
        })
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": PODS_NS},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", **spec.pop("container", {})}], **spec},
    }


@pytest.fixture(scope="module")
def cluster(server: RunningServer) -> Iterator[RunningServer]:
    """Objects the tests below need: pods bound to node1 and node2, secrets, a configmap."""
    server.kubectl("create", "namespace", PODS_NS, check=True)
    objects = [
        pod("on-node1", "node1", container={"envFrom": [{"secretRef": {"name": "s-env"}}]},
            volumes=[{"name": "v", "configMap": {"name": "cm-vol"}}]),
        pod("on-node2", "node2", volumes=[{"name": "v", "secret": {"secretName": "s-node2"}}]),
        *({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": PODS_NS}, "stringData": {"k": "v"}}
          for n in ("s-env", "s-node2", "s-nobody")),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-vol", "namespace": PODS_NS}, "data": {"k": "v"}},
    ]
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)
    yield server


@pytest.fixture(scope="module")
def node1(cluster: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> As:
    token = new_token(cluster, "--user", "system:node:node1", "--group", "system:nodes", "--reuse")
    assert new_token(cluster, "--user", "system:node:node1", "--group", "system:nodes", "--reuse") == token
    return As(cluster, token, tmp_path_factory.mktemp("node1"))


def node_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}


def lease_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}


def test_a_node_does_what_its_kubelet_does(node1: As, cluster: RunningServer) -> None:
    # register, heartbeat, post status: every call tuik8s/kubelet/node.py makes
    assert node1.raw("POST", "/api/v1/nodes", node_body("node1"))[0] == 201
    assert node1.raw("PATCH", "/api/v1/nodes/node1", {"metadata": {"labels": {"kubernetes.io/os": "linux"}}},
                     "application/merge-patch+json")[0] == 200
    code, _ = node1.raw("PATCH", "/api/v1/nodes/node1/status",
                        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                        "application/strategic-merge-patch+json")
    assert code == 200
    code, lease = node1.raw("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease_body("node1"))
    assert code == 201
    assert node1.raw("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1", lease)[0] == 200
    assert node1.raw("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1")[0] == 200
    # the informers: its pods, all services, its Node; kube-proxy's endpoints and slices
    for path in ("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode1", "/api/v1/services",
                 "/api/v1/nodes?fieldSelector=metadata.name%3Dnode1", "/api/v1/endpoints",
                 f"/api/v1/namespaces/{PODS_NS}/pods/on-node1"):
        assert node1.raw("GET", path)[0] == 200, path
    # allowed; 404 until the server serves EndpointSlices
    assert node1.raw("GET", "/apis/discovery.k8s.io/v1/endpointslices")[0] in (200, 404)
    # what its pods refer to, and nothing else
    assert node1.raw("GET", f"/api/v1/namespaces/{PODS_NS}/secrets/s-env")[0] == 200
    assert node1.raw("GET", f"/api/v1/namespaces/{PODS_NS}/configmaps/cm-vol")[0] == 200
    # status of its pod, an event, then the kubelet's final delete with grace 0
    code, current = node1.raw("GET", f"/api/v1/namespaces/{PODS_NS}/pods/on-node1")
    current["status"] = {"phase": "Running"}
    assert node1.raw("PUT", f"/api/v1/namespaces/{PODS_NS}/pods/on-node1/status", current)[0] == 200
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "on-node1.1", "namespace": PODS_NS},
             "involvedObject": {"kind": "Pod", "name": "on-node1", "namespace": PODS_NS}, "reason": "Started",
             "message": "Started container c", "type": "Normal", "source": {"component": "kubelet", "host": "node1"}}
    assert node1.raw("POST", f"/api/v1/namespaces/{PODS_NS}/events", event)[0] == 201
    assert node1.raw("PATCH", f"/api/v1/namespaces/{PODS_NS}/events/on-node1.1", {"count": 2},
                     "application/merge-patch+json")[0] == 200


def test_a_node_cannot_touch_another_node(node1: As, cluster: RunningServer) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(node_body("node2")), check=True)
    result = node1.kubectl("patch", "node", "node2", "--subresource", "status", "--type", "merge",
                           "-p", '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}')
    assert result.returncode != 0
    assert 'Error from server (Forbidden): nodes "node2" is forbidden: node "node1" is not allowed to modify node "node2"' in result.stderr
    code, status = node1.raw("PATCH", "/api/v1/nodes/node2", {"spec": {"unschedulable": True}}, "application/merge-patch+json")
    assert (code, status["kind"], status["reason"], status["details"]) == (
        403, "Status", "Forbidden", {"name": "node2", "kind": "nodes"})
    assert node1.raw("POST", "/api/v1/nodes", node_body("node3"))[1]["message"] == (
        'nodes "node3" is forbidden: node "node1" is not allowed to modify node "node3"')
    assert node1.raw("DELETE", "/api/v1/nodes/node2")[0] == 403
    # its Lease only, and only in kube-node-lease
    code, status = node1.raw("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease_body("node2"))
    assert (code, status["message"]) == (403, 'leases.coordination.k8s.io "node2" is forbidden: can only access node lease with the same name as the requesting node')
    code, status = node1.raw("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/node1")
    assert code == 403 and 'can only access leases in the "kube-node-lease" namespace' in status["message"]
    assert cluster.kubectl_json("get", "node", "node2").get("spec", {}).get("unschedulable") is None


def test_a_node_cannot_steer_workloads_to_itself(node1: As, cluster: RunningServer) -> None:
    """NodeRestriction: no taint changes, no labels outside the kubelet's own set."""
    code, status = node1.raw("PATCH", "/api/v1/nodes/node1", {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}},
                             "application/merge-patch+json")
    assert (code, status["message"]) == (403, 'nodes "node1" is forbidden: node "node1" is not allowed to modify taints')
    result = node1.kubectl("label", "node", "node1", "node-role.kubernetes.io/control-plane=")
    assert ('nodes "node1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane'
            in result.stderr), result.stderr
    result = node1.kubectl("label", "node", "node1", "node-restriction.kubernetes.io/pci=yes")
    assert "is not allowed to modify labels: node-restriction.kubernetes.io/pci" in result.stderr
    # the kubelet's own labels, and labels outside kubernetes.io, are its to set
    assert node1.kubectl("label", "node", "node1", "topology.kubernetes.io/zone=z1", "example.com/disk=ssd").returncode == 0
    assert node1.kubectl("label", "node", "node1", "node.kubernetes.io/exclude-from-external-load-balancers=").returncode == 0
    code, status = node1.raw("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "node1", "labels": {"node-restriction.kubernetes.io/x": "y"}}})
    assert code == 403 and 'node "node1" is not allowed to set the following labels: node-restriction.kubernetes.io/x' in status["message"]
    labels = cluster.kubectl_json("get", "node", "node1")["metadata"]["labels"]
    assert "node-role.kubernetes.io/control-plane" not in labels and labels["example.com/disk"] == "ssd"
    assert not cluster.kubectl_json("get", "node", "node1").get("spec", {}).get("taints")


def test_a_node_cannot_touch_pods_or_secrets_of_another_node(node1: As, cluster: RunningServer) -> None:
    code, other = node1.raw("GET", f"/api/v1/namespaces/{PODS_NS}/pods/on-node2")
    assert code == 200  # reading any pod is allowed, as upstream
    other["status"] = {"phase": "Failed"}
    code, status = node1.raw("PUT", f"/api/v1/namespaces/{PODS_NS}/pods/on-node2/status", other)
    assert (code, status["message"]) == (
        403, 'pods "on-node2" is forbidden: node "node1" can only update pod status for pods with spec.nodeName set to itself')
    result = node1.kubectl("delete", "pod", "on-node2", "-n", PODS_NS, "--grace-period=0", "--force")
    assert 'node "node1" can only delete pods with spec.nodeName set to itself' in result.stderr
    result = node1.kubectl("get", "secret", "s-node2", "-n", PODS_NS)
    assert ('Error from server (Forbidden): secrets "s-node2" is forbidden: User "system:node:node1" cannot get resource '
            f'"secrets" in API group "" in the namespace "{PODS_NS}": no relationship found between node \'node1\' and this object'
            ) in result.stderr
    assert node1.raw("GET", f"/api/v1/namespaces/{PODS_NS}/secrets/s-nobody")[0] == 403
    result = node1.kubectl("get", "secrets", "-n", PODS_NS)
    assert "Forbidden" in result.stderr and 'cannot list resource "secrets"' in result.stderr
    for method, path, body in [
        ("POST", f"/api/v1/namespaces/{PODS_NS}/pods", pod("sneaky", "node1")),
        ("POST", f"/api/v1/namespaces/{PODS_NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        ("DELETE", f"/api/v1/namespaces/{PODS_NS}/services/kubernetes", None),
        ("GET", "/api/v1/namespaces", None),
        ("PATCH", f"/api/v1/namespaces/{PODS_NS}/pods/on-node1", {"metadata": {"labels": {"a": "b"}}}),
    ]:
        code, status = node1.raw(method, path, body, "application/merge-patch+json" if method == "PATCH" else "application/json")
        assert (code, status.get("reason")) == (403, "Forbidden"), (method, path, status)
    assert cluster.kubectl_json("get", "pod", "on-node2", "-n", PODS_NS)["status"].get("phase") != "Failed"


def test_a_node_deletes_only_its_own_pods(node1: As, cluster: RunningServer) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod("done-on-node1", "node1")), check=True)
    result = node1.kubectl("delete", "pod", "done-on-node1", "-n", PODS_NS, "--grace-period=0", "--force")
    assert result.returncode == 0, result.stderr
    assert cluster.kubectl("get", "pod", "done-on-node1", "-n", PODS_NS).returncode != 0


def test_read_only_token_reads_all_but_secrets(cluster: RunningServer, tmp_path: Path) -> None:
    reader = As(cluster, new_token(cluster, "--user", "bob", "--read-only"), tmp_path)
    assert reader.kubectl("get", "pods", "-A").returncode == 0
    assert reader.kubectl("get", "configmap", "cm-vol", "-n", PODS_NS).returncode == 0
    assert reader.kubectl("api-resources").returncode == 0
    result = reader.kubectl("get", "secret", "s-env", "-n", PODS_NS)
    assert ('Error from server (Forbidden): secrets "s-env" is forbidden: User "bob" cannot get resource "secrets" '
            f'in API group "" in the namespace "{PODS_NS}"') in result.stderr
    result = reader.kubectl("create", "configmap", "nope", "-n", PODS_NS)
    assert ('configmaps is forbidden: User "bob" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{PODS_NS}"') in result.stderr
    result = reader.kubectl("delete", "node", "node2")
    assert 'User "bob" cannot delete resource "nodes" in API group "" at the cluster scope' in result.stderr
    code, status = reader.raw("PATCH", f"/apis/apps/v1/namespaces/{PODS_NS}/deployments/x/scale",
                              {"spec": {"replicas": 2}}, "application/merge-patch+json")
    assert (code, status["message"]) == (403, 'deployments.apps "x" is forbidden: User "bob" cannot patch resource '
                                               f'"deployments/scale" in API group "apps" in the namespace "{PODS_NS}"')


def test_a_user_without_a_role_sees_only_discovery(cluster: RunningServer, tmp_path: Path) -> None:
    nobody = As(cluster, new_token(cluster, "--user", "carol", "--group", "interns"), tmp_path)
    assert nobody.raw("GET", "/version")[0] == 200
    assert nobody.raw("GET", "/api")[0] == 200
    code, status = nobody.raw("GET", "/api/v1/namespaces/default/pods")
    assert (code, status["message"]) == (
        403, 'pods is forbidden: User "carol" cannot list resource "pods" in API group "" in the namespace "default"')


def test_revoked_token_is_refused_within_a_second(cluster: RunningServer, tmp_path: Path) -> None:
    token = new_token(cluster, "--user", "dave")
    dave = As(cluster, token, tmp_path)
    assert dave.kubectl("get", "namespaces").returncode == 0
    listed = tuik8s(cluster, "list")
    assert listed.returncode == 0 and "dave" in listed.stdout and token[:8] in listed.stdout and token not in listed.stdout
    result = tuik8s(cluster, "revoke", token[:8])
    assert result.returncode == 0 and "revoked 1 token" in result.stdout
    revoked_at = time.monotonic()
    wait_for(lambda: dave.raw("GET", "/api/v1/namespaces")[0] == 401, timeout=5, interval=0.05)
    assert time.monotonic() - revoked_at <= 1.5
    result = dave.kubectl("get", "namespaces")
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr
    # the admin token is untouched, and a name no one has is one clear line
    assert cluster.kubectl("get", "namespaces").returncode == 0
    result = tuik8s(cluster, "revoke", "nobody-at-all")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"tuik8s: error: no user or token 'nobody-at-all' in {cluster.data_dir / 'tokens.json'}: see `tuik8s token list`")


def test_revoke_by_user_name_takes_all_its_tokens(cluster: RunningServer, tmp_path: Path) -> None:
    first = As(cluster, new_token(cluster, "--user", "erin", "--read-only"), tmp_path / "1")
    second = As(cluster, new_token(cluster, "--user", "erin", "--read-only"), tmp_path / "2")
    result = tuik8s(cluster, "revoke", "erin")
    assert "revoked 2 tokens" in result.stdout
    wait_for(lambda: first.raw("GET", "/api/v1/pods")[0] == 401 and second.raw("GET", "/api/v1/pods")[0] == 401, timeout=5)
