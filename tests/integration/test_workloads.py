"""Deployments and ReplicaSets on a real `tuik8s server` with nodes, driven by the real kubectl.

The nodes are played by `FakeKubelets` below: Node objects that renew their Leases and
heartbeat their Ready condition, plus one watch on pods that does a kubelet's part through
the API (`pods/NAME/status`: Running, Ready, a pod IP after a short start delay; a pod
deleted gracefully is finished with a grace-0 DELETE) and, where no scheduler binds a pod
within a moment, the scheduler's part too (`pods/NAME/binding`). A pod whose image names
`never-ready` runs but never becomes Ready.

Every test is what a user would check with kubectl: pods Running, `kubectl rollout
status` finishing, the READY count never dipping during a rollout, the image coming back
after `kubectl rollout undo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.conftest import RunningServer, wait_for
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError
from tuik8s.client.informer import Informer
from tuik8s.client.kubeconfig import ClusterAccess
from tuik8s.client.transport import HttpTransport

pytestmark = pytest.mark.filterwarnings("ignore")

NODES = ("node-a", "node-b", "node-c")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeKubelets:
    """Three Ready nodes and the kubelet's part for their pods, in a thread of their own.

    The tests block on kubectl subprocesses, so the kubelets get their own event loop.
    """

    def __init__(self, server: RunningServer, *, start_delay: float = 0.25, bind_after: float | None = None) -> None:
        self.server = server
        self.start_delay = start_delay
        # with a scheduler in the server, bind only pods it leaves alone for a while
        scheduler = importlib.util.find_spec("tuik8s.scheduler.scheduler") is not None
        self.bind_after = bind_after if bind_after is not None else (3.0 if scheduler else 0.0)
        self._ips = itertools.count(2)
        self._next_node = itertools.cycle(NODES)
        self._busy: set[str] = set()
        self._seen_unbound: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kubelets", daemon=True)
        self.errors: list[str] = []

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError(f"fake kubelets did not start: {self.errors}")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        access = ClusterAccess(
            context="test", server=self.server.url, namespace="default",
            ca_data=self.server.ca_file.read_bytes(), insecure=False, token=self.server.token,
            client_cert=None, client_key=None,
        )
        self.client = ApiClient(HttpTransport(access))
        try:
            await self._register()
            self.pods = Informer(self.client, "pods", field_selector=None)
            self.pods.add_handler(self._changed, lambda old, new: self._changed(new), None)
            self.pods.start()
            await self.pods.wait_synced()
            tasks = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._sweep())]
            self._ready.set()
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await self.pods.stop()
        except Exception as e:  # noqa: BLE001 - reported through start()
            self.errors.append(repr(e))
            raise
        finally:
            await self.client.close()

    # ---- nodes --------------------------------------------------------------------------

    async def _register(self) -> None:
        for name in NODES:
            node = {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
                "spec": {},
                "status": {
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "conditions": [self._ready_condition()],
                    "addresses": [{"type": "InternalIP", "address": f"192.168.0.{NODES.index(name) + 10}"}],
                },
            }
            with contextlib.suppress(ApiError):
                await self.client.create("nodes", node)
        await self._heartbeat_once()

    @staticmethod
    def _ready_condition() -> dict[str, Any]:
        now = _now()
        return {
            "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }

    async def _heartbeat_once(self) -> None:
        for name in NODES:
            lease = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": _micro_now()},
            }
            try:
                await self.client.patch("leases", name, {"spec": {"renewTime": _micro_now()}}, namespace="kube-node-lease")
            except ApiError:
                with contextlib.suppress(ApiError):
                    await self.client.create("leases", lease, "kube-node-lease")
            cond = self._ready_condition()
            with contextlib.suppress(ApiError):
                node = await self.client.get("nodes", name)
                old = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
                if old and old.get("status") == "True":
                    cond["lastTransitionTime"] = old.get("lastTransitionTime")
                await self.client.patch("nodes", name, {"status": {"conditions": [cond]}}, subresource="status")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(3)
            with contextlib.suppress(ClientError):
                await self._heartbeat_once()

    # ---- pods ---------------------------------------------------------------------------

    def _changed(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid not in self._busy:
            self._busy.add(uid)
            asyncio.get_running_loop().create_task(self._handle(pod))

    async def _sweep(self) -> None:
        """Look at every pod again now and then: binds and starts that waited, missed work."""
        while True:
            await asyncio.sleep(0.5)
            for pod in self.pods.list():
                self._changed(pod)

    async def _handle(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        try:
            await self._step(pod)
        except ClientError:
            pass  # the next event or sweep looks again
        except Exception as e:  # noqa: BLE001 - a fake kubelet must not die silently
            self.errors.append(repr(e))
        finally:
            self._busy.discard(uid)

    async def _step(self, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        node = spec.get("nodeName")
        if meta.get("deletionTimestamp"):
            if node in NODES:
                await asyncio.sleep(0.1)  # containers stopping
                await self.client.delete("pods", name, ns, grace_period_seconds=0, preconditions={"uid": uid})
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if not node:
            first = self._seen_unbound.setdefault(uid, time.monotonic())
            if time.monotonic() - first >= self.bind_after:
                with contextlib.suppress(ApiError):
                    await self.client.bind(ns, name, next(self._next_node), uid)
            return
        if node not in NODES or status.get("phase") == "Running":
            return
        await asyncio.sleep(self.start_delay)
        images = [c.get("image", "") for c in spec.get("containers") or []]
        ready = not any("never-ready" in image for image in images)
        now = _now()
        flag = "True" if ready else "False"
        new_status = {
            "phase": "Running",
            "hostIP": f"192.168.0.{NODES.index(node) + 10}",
            "podIP": f"10.244.{next(self._ips) // 250}.{next(self._ips) % 250 + 2}",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
                    "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}},
                }
                for c in spec.get("containers") or []
            ],
        }
        new_status["podIPs"] = [{"ip": new_status["podIP"]}]
        await self.client.patch("pods", name, {"status": new_status}, namespace=ns, subresource="status")


@pytest.fixture(scope="module")
def kubelets(server: RunningServer) -> Iterator[FakeKubelets]:
    fake = FakeKubelets(server)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    assert not fake.errors, fake.errors


# ---- helpers --------------------------------------------------------------------------------


def namespace(server: RunningServer, name: str) -> str:
    server.kubectl("create", "namespace", name, check=True)
    return name


def deployment_yaml(ns: str, name: str = "web", replicas: int = 6, image: str = "nginx:1.27", strategy: str = "", extra_spec: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{strategy}{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: {name}
          image: {image}
"""


def pods_of(server: RunningServer, ns: str, app: str) -> list[dict[str, Any]]:
    return server.kubectl_json("get", "pods", "-n", ns, "-l", f"app={app}")["items"]


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def running_ready(server: RunningServer, ns: str, app: str) -> list[dict[str, Any]]:
    return [p for p in live(pods_of(server, ns, app)) if p["status"].get("phase") == "Running" and is_ready(p)]


def rollout_status(server: RunningServer, ns: str, name: str, timeout: str = "40s") -> str:
    out = server.kubectl("rollout", "status", f"deploy/{name}", "-n", ns, f"--timeout={timeout}", timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def images(pods: list[dict[str, Any]]) -> set[str]:
    return {c["image"] for p in pods for c in p["spec"]["containers"]}


class Sampler:
    """Counts, in a thread, the Ready pods not being deleted, as `kubectl get pods` shows them."""

    def __init__(self, server: RunningServer, ns: str, app: str) -> None:
        self.server, self.ns, self.app = server, ns, app
        self.samples: list[int] = []
        self.image_sets: list[set[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                pods = live(pods_of(self.server, self.ns, self.app))
                self.samples.append(sum(1 for p in pods if is_ready(p)))
                self.image_sets.append(images(pods))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ---- tests ----------------------------------------------------------------------------------


def test_deployment_runs_and_scales_with_kubectl(server: RunningServer, kubelets: FakeKubelets) -> None:
    ns = namespace(server, "scale")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns), check=True)
    wait_for(lambda: len(running_ready(server, ns, "web")) == 6, timeout=20)
    out = rollout_status(server, ns, "web")
    assert 'deployment "web" successfully rolled out' in out

    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    status = d["status"]
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (6, 6, 6, 6)
    assert status["observedGeneration"] == d["metadata"]["generation"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"

    rs_list = server.kubectl_json("get", "rs", "-n", ns)["items"]
    assert len(rs_list) == 1
    rs = rs_list[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    owner = rs["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Deployment", "web", d["metadata"]["uid"], True)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "6"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "8"
    for pod in pods_of(server, ns, "web"):
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        assert pod["metadata"]["labels"]["pod-template-hash"] == pod_hash
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == ("ReplicaSet", rs["metadata"]["uid"], True, True)

    table = server.kubectl("get", "deploy", "web", "-n", ns, check=True).stdout.splitlines()
    assert table[1].split()[:4] == ["web", "6/6", "6", "6"]

    server.kubectl("scale", "deploy/web", "-n", ns, "--replicas=10", check=True)
    wait_for(lambda: len(running_ready(server, ns, "web")) == 10, timeout=20)
    rollout_status(server, ns, "web")
    server.kubectl("scale", "deploy/web", "-n", ns, "--replicas=2", check=True)
    wait_for(lambda: len(live(pods_of(server, ns, "web"))) == 2, timeout=20)
    wait_for(lambda: server.kubectl_json("get", "deploy", "web", "-n", ns)["status"].get("availableReplicas") == 2, timeout=10)
    assert len(server.kubectl_json("get", "rs", "-n", ns)["items"]) == 1  # scaling is no rollout

    events = server.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Deployment")["items"]
    messages = {e["message"] for e in events if e["reason"] == "ScalingReplicaSet"}
    name = rs["metadata"]["name"]
    assert {f"Scaled up replica set {name} from 0 to 6", f"Scaled up replica set {name} from 6 to 10", f"Scaled down replica set {name} from 10 to 2"} <= messages
    rs_events = server.kubectl_json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]
    assert any(e["reason"] == "SuccessfulCreate" and e["message"].startswith(f"Created pod: {name}-") for e in rs_events)
    assert any(e["reason"] == "SuccessfulDelete" and e["message"].startswith(f"Deleted pod: {name}-") for e in rs_events)
