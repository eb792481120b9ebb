"""The bodies the real kubectl 1.32 sends as Kubernetes protobuf, decoded to the JSON it
would have sent.

A throwaway probe server on loopback (plain http) answers discovery from our own
discovery documents, records every write and answers it with the decoded object. Each
`kubectl create ...` is then compared with `kubectl create ... --dry-run=client -o json`,
which prints the same object as JSON, modulo `creationTimestamp: null` and empty structs
(`status: {}`) that Go's JSON shows and the decoder omits.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tuik8s.api.errors import StatusError
from tuik8s.api.protobuf import CONTENT_TYPE, decode_k8s_protobuf
from tuik8s.apiserver import discovery

pytestmark = [
    pytest.mark.filterwarnings("ignore"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs the real kubectl"),
]


@dataclass
class Write:
    method: str
    path: str
    content_type: str
    body: bytes
    decoded: Any = None


@dataclass
class Probe:
    """A loopback stand-in for an API server that keeps what kubectl wrote."""

    url: str = ""
    writes: list[Write] = field(default_factory=list)
    evicted: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "GET":
            return self.get(request, path)
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        write = Write(request.method, path, ctype, body)
        self.writes.append(write)
        try:
            write.decoded = decode_k8s_protobuf(body) if "protobuf" in ctype else json.loads(body or b"{}")
        except StatusError as e:
            return web.json_response(e.to_status(), status=e.code)
        if path.endswith("/eviction"):
            self.evicted.add(path.rsplit("/", 1)[0])
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success"}, status=201)
        obj = copy.deepcopy(write.decoded)
        if obj.get("kind") == "TokenRequest":
            obj["status"] = {"token": "probe-token", "expirationTimestamp": "2030-01-01T00:00:00Z"}
        return web.json_response(obj, status=201)

    def get(self, request: web.Request, path: str) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return web.json_response(discovery.version_info())
        if path in ("/api", "/apis"):
            if discovery.wants_aggregated(accept):
                doc = discovery.aggregated_core() if path == "/api" else discovery.aggregated_groups()
                return web.Response(body=json.dumps(doc), headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
            return web.json_response(discovery.api_versions() if path == "/api" else discovery.api_group_list())
        if path == "/api/v1" or path.count("/") == 3 and path.startswith("/apis/"):
            group, version = ("", "v1") if path == "/api/v1" else path.split("/")[2:4]
            doc = discovery.api_resource_list(group, version)
            if doc is not None:
                return web.json_response(doc)
        if path == "/api/v1/nodes/n1":
            return web.json_response({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "uid": "n-1"},
                                      "spec": {"unschedulable": True}})
        if path == "/api/v1/pods":
            pods = [] if "/api/v1/namespaces/default/pods/p1" in self.evicted else [POD]
            return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                      "items": pods})
        if path == "/api/v1/namespaces/default/pods/p1" and path not in self.evicted:
            return web.json_response(POD)
        if path == "/apis/apps/v1/namespaces/default/deployments/web":
            return web.json_response(DEPLOYMENT)
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                  "code": 404, "message": f"{path} not found"}, status=404)


POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "p1", "namespace": "default", "uid": "p-1",
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                      "uid": "rs-1", "controller": True}]},
    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
    "status": {"phase": "Running"},
}
DEPLOYMENT = {
    "kind": "Deployment", "apiVersion": "apps/v1",
    "metadata": {"name": "web", "namespace": "default", "uid": "d-1", "labels": {"app": "web"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx",
                                                   "ports": [{"containerPort": 80}]}]}}},
}


@pytest.fixture(scope="module")
def probe() -> Iterator[Probe]:
    probe = Probe()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(probe.app(), access_log=None)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        probe.url = f"http://127.0.0.1:{port}"
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield probe
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def kubectl(probe: Probe, tmp_path: Path):
    """Run the real kubectl against the probe, with a fresh HOME and discovery cache."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "probe",
        "clusters": [{"name": "probe", "cluster": {"server": probe.url}}],
        "users": [{"name": "probe", "user": {"token": "t"}}],
        "contexts": [{"name": "probe", "context": {"cluster": "probe", "user": "probe", "namespace": "default"}}],
    }))
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    return run


def normalized(value: Any) -> Any:
    """Drop what Go's JSON shows for zero structs and times but protobuf decoding omits."""
    if isinstance(value, dict):
        out = {k: normalized(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def has_none(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(has_none(v) for v in value)
    return False


CREATES = {
    "namespace": ["namespace", "team-a"],
    "configmap": ["configmap", "cm", "--from-literal=greeting=hello", "--from-file=bin=blob.bin"],
    "secret-generic": ["secret", "generic", "s1", "--from-literal=user=admin", "--from-literal=pass=s3cr3t"],
    "secret-docker": ["secret", "docker-registry", "reg", "--docker-server=r.example", "--docker-username=u",
                      "--docker-password=p"],
    "serviceaccount": ["serviceaccount", "robot"],
    "deployment": ["deployment", "web", "--image=nginx:1.27", "--image=busybox", "--port=80", "--replicas=0"],
    "service-clusterip": ["service", "clusterip", "svc", "--tcp=80:8080", "--tcp=443:https"],
    "service-nodeport": ["service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    "service-headless": ["service", "clusterip", "hl", "--clusterip=None"],
    "service-externalname": ["service", "externalname", "ext", "--external-name=db.example.com"],
    "job": ["job", "once", "--image=busybox", "--", "sh", "-c", "echo hi"],
    "ingress": ["ingress", "ing", "--class=nginx", "--rule=foo.com/bar*=svc:8080,tls=cert",
                "--rule=baz.com/=other:http", "--default-backend=fallback:80", "--annotation=a=b"],
}


@pytest.mark.parametrize("args", list(CREATES.values()), ids=list(CREATES))
def test_kubectl_create_sends_protobuf_that_decodes_to_its_json(probe: Probe, kubectl, tmp_path: Path,
                                                                args: list[str]) -> None:
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    cut = args.index("--") if "--" in args else len(args)
    dry_run = [*args[:cut], "--dry-run=client", "-o", "json", *args[cut:]]
    expected = json.loads(kubectl("create", *dry_run).stdout)
    before = len(probe.writes)
    kubectl("create", *args)
    [write] = probe.writes[before:]
    assert write.method == "POST"
    assert write.content_type == CONTENT_TYPE
    assert write.body.startswith(b"k8s\x00")
    assert not has_none(write.decoded)
    assert normalized(write.decoded) == normalized(expected)


def test_kubectl_create_token_sends_a_protobuf_token_request(probe: Probe, kubectl) -> None:
    before = len(probe.writes)
    out = kubectl("create", "token", "robot", "--audience=api", "--duration=1h").stdout
    assert out.strip() == "probe-token"
    [write] = probe.writes[before:]
    assert write.path == "/api/v1/namespaces/default/serviceaccounts/robot/token"
    assert write.content_type == CONTENT_TYPE
    assert write.decoded == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["api"], "expirationSeconds": 3600},
        "status": {"token": ""},  # Go's TokenRequestStatus.token has no omitempty
    }


def test_kubectl_autoscale_sends_a_protobuf_autoscaling_v1_hpa(probe: Probe, kubectl) -> None:
    args = ["autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60"]
    expected = json.loads(kubectl(*args, "--dry-run=client", "-o", "json").stdout)
    before = len(probe.writes)
    kubectl(*args)
    [write] = probe.writes[before:]
    # kubectl 1.32 writes the v1 HorizontalPodAutoscaler, not v2
    assert (write.method, write.path) == ("POST", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers")
    assert write.content_type == CONTENT_TYPE
    assert write.decoded["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60,
    }
    assert normalized(write.decoded) == normalized(expected)


def test_kubectl_debug_node_sends_a_protobuf_pod(probe: Probe, kubectl) -> None:
    before = len(probe.writes)
    kubectl("debug", "node/n1", "--image=busybox", "--attach=false")
    [write] = probe.writes[before:]
    assert (write.path, write.content_type) == ("/api/v1/namespaces/default/pods", CONTENT_TYPE)
    spec = write.decoded["spec"]
    assert spec["nodeName"] == "n1"
    assert spec["hostNetwork"] is True
    assert spec["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]
    [container] = spec["containers"]
    assert container["image"] == "busybox"
    assert container["volumeMounts"] == [{"name": "host-root", "mountPath": "/host"}]


@pytest.mark.parametrize("args", [
    ["drain", "n1", "--ignore-daemonsets", "--timeout=20s"],
    ["run", "p2", "--image=nginx", "--port=80"],
    ["expose", "deployment", "web", "--port=80", "--target-port=8080"],
], ids=["drain-eviction", "run", "expose"])
def test_kubectl_commands_that_still_send_json(probe: Probe, kubectl, args: list[str]) -> None:
    probe.evicted.clear()
    before = len(probe.writes)
    kubectl(*args)
    writes = probe.writes[before:]
    assert writes and all(w.content_type == "application/json" for w in writes), writes
    if args[0] == "drain":
        [write] = writes
        assert write.path == "/api/v1/namespaces/default/pods/p1/eviction"
        assert write.decoded["kind"] == "Eviction"


def test_a_kind_without_a_protobuf_table_is_refused_with_a_readable_line(probe: Probe, kubectl) -> None:
    result = kubectl("create", "quota", "q", "--hard=pods=2", check=False)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "protobuf bodies of kind ResourceQuota (v1) are not supported" in line
    assert "kubectl apply -f -" in line
