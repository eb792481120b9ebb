"""The real kubectl 1.32 against a real `tuik8s server`, as a new user would use it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.filterwarnings("ignore")

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: {image}
          ports: [{{containerPort: 80}}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 80}}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: {ns}
data:
  greeting: hello
"""


def ns_of(server: RunningServer, name: str) -> str:
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    server.kubectl("create", "-f", "-", input=manifest, check=True)
    return name


def test_typed_create_commands(server: RunningServer) -> None:
    """`kubectl create <kind>` sends protobuf bodies (client-go typed clients)."""
    ns = "typed"
    assert server.kubectl("create", "namespace", ns, check=True).stdout.strip() == f"namespace/{ns} created"
    server.kubectl("create", "configmap", "c", "-n", ns, "--from-literal", "k=v", check=True)
    server.kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal", "pw=hunter2", check=True)
    server.kubectl("create", "deployment", "d", "-n", ns, "--image", "nginx:1.27", "--replicas", "2", check=True)
    server.kubectl("create", "service", "clusterip", "d", "-n", ns, "--tcp", "80:8080", check=True)
    server.kubectl("create", "serviceaccount", "robot", "-n", ns, check=True)
    server.kubectl("create", "job", "j", "-n", ns, "--image", "busybox", check=True)
    assert server.kubectl_json("get", "cm", "c", "-n", ns)["data"] == {"k": "v"}
    assert server.kubectl_json("get", "secret", "s", "-n", ns)["data"] == {"pw": "aHVudGVyMg=="}
    d = server.kubectl_json("get", "deploy", "d", "-n", ns)
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    svc = server.kubectl_json("get", "svc", "d", "-n", ns)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080


def test_version_and_api_resources(server: RunningServer) -> None:
    out = server.kubectl("version", "-o", "json", check=True).stdout
    assert json.loads(out)["serverVersion"]["minor"] == "32"
    res = server.kubectl("api-resources", check=True).stdout
    lines = {line.split()[0]: line for line in res.splitlines()[1:]}
    for name in ("pods", "deployments", "services", "nodes", "leases", "ingresses", "horizontalpodautoscalers", "jobs"):
        assert name in lines
    assert "deploy" in lines["deployments"] and "apps/v1" in lines["deployments"]


def test_apply_multi_document_file_reports_created_then_unchanged_then_configured(server: RunningServer, tmp_path: Path) -> None:
    ns = ns_of(server, "apply")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOY.format(ns=ns, image="nginx:1.27"))
    first = server.kubectl("apply", "-f", str(manifest), check=True).stdout
    assert "deployment.apps/web created" in first
    assert "service/web created" in first
    assert "configmap/web-config created" in first
    again = server.kubectl("apply", "-f", str(manifest), check=True).stdout
    assert "deployment.apps/web unchanged" in again
    assert "service/web unchanged" in again
    manifest.write_text(DEPLOY.format(ns=ns, image="nginx:1.29"))
    changed = server.kubectl("apply", "-f", str(manifest), check=True).stdout
    assert "deployment.apps/web configured" in changed
    assert "service/web unchanged" in changed
    deploy = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.29"
    assert deploy["metadata"]["generation"] == 2
    svc = server.kubectl_json("get", "svc", "web", "-n", ns)
    assert svc["spec"]["clusterIP"].startswith("10.")


def test_get_prints_the_columns_a_real_cluster_prints(server: RunningServer, tmp_path: Path) -> None:
    ns = ns_of(server, "tables")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOY.format(ns=ns, image="nginx:1.27"))
    server.kubectl("apply", "-f", str(manifest), check=True)
    deploy = server.kubectl("get", "deployments", "-n", ns, check=True).stdout.splitlines()
    assert deploy[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deploy[1].split()[:2] == ["web", "0/2"]  # no nodes: nothing becomes ready
    svc = server.kubectl("get", "svc", "-n", ns, check=True).stdout.splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[1] == "ClusterIP" and svc[1].split()[4] == "80/TCP"
    wide = server.kubectl("get", "deploy", "-n", ns, "-o", "wide", check=True).stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    labelled = server.kubectl("get", "cm", "-n", ns, "-l", "missing=label", check=True)
    assert "No resources found" in labelled.stderr
    as_yaml = yaml.safe_load(server.kubectl("get", "deploy", "web", "-n", ns, "-o", "yaml", check=True).stdout)
    assert as_yaml["kind"] == "Deployment" and as_yaml["metadata"]["namespace"] == ns
    all_ns = server.kubectl("get", "svc", "-A", check=True).stdout.splitlines()
    assert all_ns[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == ["default", "kubernetes"] for line in all_ns)


def test_pods_table_and_label_selectors(server: RunningServer) -> None:
    ns = ns_of(server, "pods")
    for name, tier in [("a", "fe"), ("b", "be")]:
        server.kubectl("run", name, "-n", ns, "--image", "busybox", "--labels", f"tier={tier}", check=True)
    out = server.kubectl("get", "pods", "-n", ns, check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[:3] for line in out[1:]] == [["a", "0/1", "Pending"], ["b", "0/1", "Pending"]]
    wide = server.kubectl("get", "pods", "-n", ns, "-o", "wide", check=True).stdout.splitlines()
    assert "NODE" in wide[0].split()
    fe = server.kubectl("get", "pods", "-n", ns, "-l", "tier in (fe)", "-o", "name", check=True).stdout.split()
    assert fe == ["pod/a"]
    not_fe = server.kubectl("get", "pods", "-n", ns, "-l", "tier!=fe", "-o", "name", check=True).stdout.split()
    assert not_fe == ["pod/b"]
    by_field = server.kubectl("get", "pods", "-n", ns, "--field-selector", "metadata.name=b", "-o", "name", check=True).stdout.split()
    assert by_field == ["pod/b"]


def test_label_annotate_patch_scale(server: RunningServer, tmp_path: Path) -> None:
    ns = ns_of(server, "edits")
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOY.format(ns=ns, image="nginx:1.27"))
    server.kubectl("apply", "-f", str(manifest), check=True)
    assert "labeled" in server.kubectl("label", "deploy", "web", "-n", ns, "tier=fe", check=True).stdout
    assert "annotated" in server.kubectl("annotate", "deploy", "web", "-n", ns, "note=hi", check=True).stdout
    server.kubectl("patch", "deploy", "web", "-n", ns, "-p", '{"spec":{"minReadySeconds":5}}', check=True)
    server.kubectl("patch", "deploy", "web", "-n", ns, "--type", "merge", "-p", '{"spec":{"revisionHistoryLimit":3}}', check=True)
    server.kubectl("patch", "deploy", "web", "-n", ns, "--type", "json", "-p", '[{"op":"add","path":"/spec/paused","value":true}]', check=True)
    assert "scaled" in server.kubectl("scale", "deploy", "web", "-n", ns, "--replicas", "5", check=True).stdout
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["metadata"]["labels"]["tier"] == "fe"
    assert d["metadata"]["annotations"]["note"] == "hi"
    assert (d["spec"]["minReadySeconds"], d["spec"]["revisionHistoryLimit"], d["spec"]["paused"]) == (5, 3, True)
    assert d["spec"]["replicas"] == 5
    # a stale --resource-version is a conflict, and changes nothing
    stale = server.kubectl("scale", "deploy", "web", "-n", ns, "--replicas", "7", "--resource-version", "1")
    assert stale.returncode != 0 and "resource version" in stale.stderr
    assert server.kubectl_json("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 5


def test_edit_with_an_editor(server: RunningServer, tmp_path: Path) -> None:
    ns = ns_of(server, "edit")
    server.kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal", "a=1", check=True)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/a: \"1\"/a: \"2\"/' \"$1\"\n")
    editor.chmod(0o755)
    env_run = subprocess.run(
        ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"), "edit", "cm", "cfg", "-n", ns],
        capture_output=True, text=True, env={"KUBE_EDITOR": str(editor), "HOME": str(server.home), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        timeout=60,
    )
    assert env_run.returncode == 0, env_run.stderr
    assert "edited" in env_run.stdout
    assert server.kubectl_json("get", "cm", "cfg", "-n", ns)["data"]["a"] == "2"


def test_describe_and_events(server: RunningServer) -> None:
    ns = ns_of(server, "describe")
    server.kubectl("run", "p", "-n", ns, "--image", "busybox", check=True)
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "p.1", "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns,
                           "uid": server.kubectl_json("get", "pod", "p", "-n", ns)["metadata"]["uid"]},
        "reason": "Scheduled", "message": "Successfully assigned to node1", "type": "Normal",
        "source": {"component": "default-scheduler"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    server.kubectl("create", "-f", "-", input=json.dumps(event), check=True)
    described = server.kubectl("describe", "pod", "p", "-n", ns, check=True).stdout
    assert "Name:" in described and "busybox" in described
    assert "Successfully assigned to node1" in described
    events = server.kubectl("get", "events", "-n", ns, check=True).stdout.splitlines()
    assert events[0].split()[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert "Scheduled" in events[1]


def test_watch_prints_changes(server: RunningServer) -> None:
    ns = ns_of(server, "watch")
    server.kubectl("create", "configmap", "w", "-n", ns, check=True)
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"),
           "get", "cm", "-n", ns, "-w", "--request-timeout", "20s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"HOME": str(server.home), "PATH": "/usr/bin:/bin"})
    try:
        header = proc.stdout.readline()
        assert header.split()[:3] == ["NAME", "DATA", "AGE"]
        assert proc.stdout.readline().split()[0] == "w"
        server.kubectl("create", "configmap", "w2", "-n", ns, "--from-literal", "k=v", check=True)
        line = proc.stdout.readline().split()
        assert line[:2] == ["w2", "1"]
    finally:
        proc.kill()
        proc.wait()


def test_delete_and_errors_are_one_line(server: RunningServer, tmp_path: Path) -> None:
    ns = ns_of(server, "delete")
    server.kubectl("create", "configmap", "gone", "-n", ns, check=True)
    out = server.kubectl("delete", "cm", "gone", "-n", ns, check=True).stdout
    assert 'configmap "gone" deleted' in out
    missing = server.kubectl("get", "cm", "gone", "-n", ns)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): configmaps "gone" not found'
    dup = server.kubectl("create", "namespace", ns)
    assert dup.stderr.strip() == f'Error from server (AlreadyExists): namespaces "{ns}" already exists'
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: -1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n")
    invalid = server.kubectl("apply", "-n", ns, "-f", str(bad))
    assert invalid.returncode == 1
    assert invalid.stderr.strip().endswith(
        'The Deployment "bad" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )
    assert len(invalid.stderr.strip().splitlines()) == 1
    typo = tmp_path / "typo.yaml"
    typo.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndatta: {a: b}\n")
    strict = server.kubectl("apply", "-n", ns, "-f", str(typo))
    assert strict.returncode == 1 and 'unknown field "datta"' in strict.stderr
    assert server.kubectl("get", "cm", "t", "-n", ns).returncode == 1


def test_unauthenticated_requests_are_refused(server: RunningServer) -> None:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.url}/api/v1/namespaces", context=ctx, timeout=10)
    assert e.value.code == 401
    body = json.loads(e.value.read())
    assert body["reason"] == "Unauthorized"
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert e.value.code == 401


def test_namespaces_exist_from_the_start(server: RunningServer) -> None:
    names = server.kubectl("get", "ns", "-o", "name", check=True).stdout.split()
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{ns}" in names
    missing = server.kubectl("create", "configmap", "x", "-n", "nowhere")
    assert 'namespaces "nowhere" not found' in missing.stderr
