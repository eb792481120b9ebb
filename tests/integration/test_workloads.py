"""Deployments and ReplicaSets on a real `tuik8s server` with hollow nodes, driven by the real kubectl.

Three hollow nodes (`tuik8s hollow`, see hollow_fixtures) run the pods: Running and Ready
shortly after they are bound, finished when deleted. The server's scheduler binds them;
`FallbackBinder` binds any pod it leaves alone for a few seconds, so these tests judge the
workload controllers even on a day the scheduler is broken. A pod template with the
readiness gate `example.com/never` gives pods that run but never become Ready, as in a
real cluster.

Every test is what a user would check with kubectl: pods Running, `kubectl rollout
status` finishing, the READY count never dipping during a rollout, the image coming back
after `kubectl rollout undo`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from tests.integration.conftest import RunningServer, wait_for
from tests.integration.hollow_fixtures import HollowProcess, start_hollow

pytestmark = pytest.mark.filterwarnings("ignore")

NEVER_READY = "example.com/never"


class FallbackBinder:
    """Binds pods that stay unbound for `after` seconds to the hollow nodes, round-robin."""

    def __init__(self, server: RunningServer, nodes: list[str], after: float = 3.0) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig))
        self.v1 = kubernetes.client.CoreV1Api(self.api)
        self.nodes = itertools.cycle(nodes)
        self.after = after
        self.bound: list[str] = []
        self._first_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fallback-binder", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                for pod in self.v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=").items:
                    m = pod.metadata
                    first = self._first_seen.setdefault(m.uid, time.monotonic())
                    if m.deletion_timestamp or time.monotonic() - first < self.after:
                        continue
                    body = {
                        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": m.name, "uid": m.uid},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": next(self.nodes)},
                    }
                    with contextlib.suppress(kubernetes.client.ApiException):
                        self.v1.create_namespaced_pod_binding(m.name, m.namespace, body, _preload_content=False)
                        self.bound.append(f"{m.namespace}/{m.name}")

    def __enter__(self) -> FallbackBinder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.api.close()


@pytest.fixture(scope="module")
def nodes(server: RunningServer) -> Iterator[HollowProcess]:
    hollow = start_hollow(server, 3)
    try:
        with FallbackBinder(server, hollow.names):
            yield hollow
    finally:
        hollow.stop()


# ---- helpers --------------------------------------------------------------------------------


def namespace(server: RunningServer, name: str) -> str:
    server.kubectl("create", "namespace", name, check=True)
    return name


def deployment_yaml(
    ns: str, name: str = "web", replicas: int = 6, image: str = "nginx:1.27", strategy: str = "", extra_spec: str = "",
    never_ready: bool = False,
) -> str:
    gates = f"      readinessGates: [{{conditionType: {NEVER_READY}}}]\n" if never_ready else ""
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
{gates}"""


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
    """Follows the app's pods with a watch and, after every change, records what
    `kubectl get pods` would show: how many are Ready and not being deleted, and which
    images the pods not being deleted run. A watch sees every state, so a dip between two
    polls cannot slip through."""

    def __init__(self, server: RunningServer, ns: str, app: str) -> None:
        self.ns, self.app = ns, app
        self.api = kubernetes.config.new_client_from_config(config_file=str(server.kubeconfig))
        self.v1 = kubernetes.client.CoreV1Api(self.api)
        self.samples: list[int] = []
        self.image_sets: list[set[str]] = []
        self._pods: dict[str, dict[str, Any]] = {}
        self._started = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self) -> None:
        alive = [p for p in self._pods.values() if not p["metadata"].get("deletionTimestamp")]
        self.samples.append(sum(1 for p in alive if is_ready(p)))
        self.image_sets.append(images(alive))

    def _run(self) -> None:
        listed = self.api.sanitize_for_serialization(self.v1.list_namespaced_pod(self.ns, label_selector=f"app={self.app}"))
        self._pods = {p["metadata"]["name"]: p for p in listed["items"]}
        rv = listed["metadata"]["resourceVersion"]
        self._record()
        self._started.set()
        while not self._stop.is_set():
            w = kubernetes.watch.Watch()
            for event in w.stream(
                self.v1.list_namespaced_pod, self.ns, label_selector=f"app={self.app}",
                resource_version=rv, timeout_seconds=1,
            ):
                pod = self.api.sanitize_for_serialization(event["object"])
                rv = pod["metadata"]["resourceVersion"]
                if event["type"] == "DELETED":
                    self._pods.pop(pod["metadata"]["name"], None)
                else:
                    self._pods[pod["metadata"]["name"]] = pod
                self._record()

    def __enter__(self) -> Sampler:
        self._thread.start()
        assert self._started.wait(10), "the sampler did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.api.close()


# ---- tests ----------------------------------------------------------------------------------


def test_deployment_runs_and_scales_with_kubectl(server: RunningServer, nodes: HollowProcess) -> None:
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


def test_rollout_restart_with_max_unavailable_0_never_drops_below_6_ready(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "restart")
    strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 2}\n"
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, strategy=strategy), check=True)
    rollout_status(server, ns, "web")
    wait_for(lambda: len(running_ready(server, ns, "web")) == 6, timeout=20)
    before = {p["metadata"]["name"] for p in pods_of(server, ns, "web")}

    with Sampler(server, ns, "web") as sampler:
        server.kubectl("rollout", "restart", "deploy/web", "-n", ns, check=True)
        out = rollout_status(server, ns, "web")
        wait_for(lambda: len(live(pods_of(server, ns, "web"))) == 6, timeout=20)
    assert 'deployment "web" successfully rolled out' in out
    assert len(sampler.samples) > 20  # every pod change of the rollout
    assert min(sampler.samples) >= 6, sampler.samples
    after = live(pods_of(server, ns, "web"))
    assert len(after) == 6 and not before & {p["metadata"]["name"] for p in after}
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"]["annotations"] for p in after)
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert d["status"]["updatedReplicas"] == 6 and d["status"]["availableReplicas"] == 6


def test_set_image_rolls_and_undo_brings_the_previous_image_back(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "undo")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=4, image="nginx:1.27"), check=True)
    rollout_status(server, ns, "web")
    server.kubectl("annotate", "deploy/web", "-n", ns, "kubernetes.io/change-cause=upgrade to 1.29", check=True)
    server.kubectl("set", "image", "deploy/web", "-n", ns, "web=nginx:1.29", check=True)
    rollout_status(server, ns, "web")
    wait_for(lambda: images(live(pods_of(server, ns, "web"))) == {"nginx:1.29"} and len(live(pods_of(server, ns, "web"))) == 4, timeout=20)

    history = server.kubectl("rollout", "history", "deploy/web", "-n", ns, check=True).stdout
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert [r[0] for r in rows] == ["1", "2"]
    assert rows[1][1].strip() == "upgrade to 1.29"

    undo = server.kubectl("rollout", "undo", "deploy/web", "-n", ns, check=True).stdout
    assert "rolled back" in undo
    rollout_status(server, ns, "web")
    wait_for(lambda: images(live(pods_of(server, ns, "web"))) == {"nginx:1.27"} and len(live(pods_of(server, ns, "web"))) == 4, timeout=20)
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rs_list = server.kubectl_json("get", "rs", "-n", ns)["items"]
    assert len(rs_list) == 2  # the first template came back: its ReplicaSet is reused
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs for rs in rs_list}
    assert set(by_revision) == {"2", "3"}
    assert by_revision["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert by_revision["3"]["spec"]["replicas"] == 4 and by_revision["2"]["spec"]["replicas"] == 0
    history = server.kubectl("rollout", "history", "deploy/web", "-n", ns, check=True).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]


def test_recreate_never_runs_old_and_new_pods_together(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "recreate")
    strategy = "  strategy: {type: Recreate}\n"
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=4, strategy=strategy), check=True)
    rollout_status(server, ns, "web")
    with Sampler(server, ns, "web") as sampler:
        server.kubectl("set", "image", "deploy/web", "-n", ns, "web=nginx:1.29", check=True)
        rollout_status(server, ns, "web")
        wait_for(lambda: len(running_ready(server, ns, "web")) == 4, timeout=20)
    assert all(len(s) <= 1 for s in sampler.image_sets), [s for s in sampler.image_sets if len(s) > 1]
    assert set() in sampler.image_sets  # every old pod was gone before the first new one
    assert images(running_ready(server, ns, "web")) == {"nginx:1.29"}
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["status"]["updatedReplicas"] == 4 and "maxSurge" not in json.dumps(d["spec"]["strategy"])


def test_paused_deployment_scales_but_does_not_roll_until_resumed(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "pause")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=3), check=True)
    rollout_status(server, ns, "web")
    server.kubectl("rollout", "pause", "deploy/web", "-n", ns, check=True)
    server.kubectl("set", "image", "deploy/web", "-n", ns, "web=nginx:1.29", check=True)

    def observed() -> dict[str, Any] | None:
        d = server.kubectl_json("get", "deploy", "web", "-n", ns)
        return d if d["status"].get("observedGeneration") == d["metadata"]["generation"] else None

    d = wait_for(observed, timeout=10)
    progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    server.kubectl("scale", "deploy/web", "-n", ns, "--replicas=5", check=True)
    wait_for(lambda: len(running_ready(server, ns, "web")) == 5, timeout=20)
    assert len(server.kubectl_json("get", "rs", "-n", ns)["items"]) == 1
    assert images(live(pods_of(server, ns, "web"))) == {"nginx:1.27"}

    server.kubectl("rollout", "resume", "deploy/web", "-n", ns, check=True)
    rollout_status(server, ns, "web")
    wait_for(lambda: images(live(pods_of(server, ns, "web"))) == {"nginx:1.29"} and len(live(pods_of(server, ns, "web"))) == 5, timeout=20)


def test_min_ready_seconds_delays_availability(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "minready")
    started = time.monotonic()
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=2, extra_spec="  minReadySeconds: 2\n"), check=True)
    wait_for(lambda: len(running_ready(server, ns, "web")) == 2, timeout=20)
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["status"].get("readyReplicas") == 2 and not d["status"].get("availableReplicas")
    rollout_status(server, ns, "web")
    # Ready since a whole second (timestamps have no fraction): available 1-2 s after ready
    assert time.monotonic() - started >= 1
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["status"]["availableReplicas"] == 2
    rs = server.kubectl_json("get", "rs", "-n", ns)["items"][0]
    assert rs["spec"]["minReadySeconds"] == 2 and rs["status"]["availableReplicas"] == 2


def test_progress_deadline_exceeded(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "deadline")
    manifest = deployment_yaml(ns, replicas=2, never_ready=True, extra_spec="  progressDeadlineSeconds: 2\n")
    server.kubectl("apply", "-f", "-", input=manifest, check=True)

    def timed_out() -> dict[str, Any] | None:
        d = server.kubectl_json("get", "deploy", "web", "-n", ns)
        cond = next((c for c in d["status"].get("conditions") or [] if c["type"] == "Progressing"), None)
        return cond if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

    cond = wait_for(timed_out, timeout=15)
    assert cond["status"] == "False"
    assert cond["message"].startswith('ReplicaSet "web-') and cond["message"].endswith('" has timed out progressing.')
    out = server.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=10s")
    assert out.returncode != 0 and 'deployment "web" exceeded its progress deadline' in out.stderr
    available = next(c for c in server.kubectl_json("get", "deploy", "web", "-n", ns)["status"]["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")


def test_scaling_mid_rollout_is_proportional(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "proportional")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=10), check=True)
    rollout_status(server, ns, "web")
    # a new template whose pods never become ready: the rollout stops at the surge limits
    never_ready = {"spec": {"template": {"spec": {
        "readinessGates": [{"conditionType": NEVER_READY}], "containers": [{"name": "web", "image": "nginx:1.29"}],
    }}}}
    server.kubectl("patch", "deploy/web", "-n", ns, "-p", json.dumps(never_ready), check=True)

    def sizes() -> dict[str, int]:
        return {
            rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["spec"]["replicas"]
            for rs in server.kubectl_json("get", "rs", "-n", ns)["items"]
        }

    # 10 replicas, maxSurge 3, maxUnavailable 2: 13 pods at most, 8 available at least
    wait_for(lambda: sizes() == {"nginx:1.27": 8, "nginx:1.29": 5}, timeout=20)
    server.kubectl("scale", "deploy/web", "-n", ns, "--replicas=20", check=True)
    # 20 replicas, maxSurge 5: the 12 more are shared as 8:5 of 13 (upstream's getProportion)
    wait_for(lambda: sizes() == {"nginx:1.27": 15, "nginx:1.29": 10}, timeout=20)
    for rs in server.kubectl_json("get", "rs", "-n", ns)["items"]:
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "25"


def test_revision_history_limit_deletes_the_oldest_replica_sets(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "history")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=1, extra_spec="  revisionHistoryLimit: 1\n"), check=True)
    rollout_status(server, ns, "web")
    for tag in ("1.28", "1.29", "1.30"):
        server.kubectl("set", "image", "deploy/web", "-n", ns, f"web=nginx:{tag}", check=True)
        rollout_status(server, ns, "web")

    def revisions() -> list[str]:
        return sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in server.kubectl_json("get", "rs", "-n", ns)["items"])

    wait_for(lambda: revisions() == ["3", "4"], timeout=10)


def test_a_hash_collision_bumps_the_collision_count(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "collision")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=2), check=True)
    rollout_status(server, ns, "web")
    (taken,) = [rs["metadata"]["name"] for rs in server.kubectl_json("get", "rs", "-n", ns)["items"]]
    # leave the ReplicaSet behind with another template under the name the template hashes to
    server.kubectl("delete", "deploy/web", "-n", ns, "--cascade=orphan", check=True)
    wait_for(lambda: not server.kubectl_json("get", "rs", taken, "-n", ns)["metadata"].get("ownerReferences"), timeout=10)
    server.kubectl("set", "image", f"rs/{taken}", "-n", ns, "web=nginx:9", check=True)
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=2), check=True)
    rollout_status(server, ns, "web")
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    assert d["status"]["collisionCount"] == 1
    rs_list = {rs["metadata"]["name"]: rs for rs in server.kubectl_json("get", "rs", "-n", ns)["items"]}
    assert taken in rs_list and len(rs_list) == 2
    assert rs_list[taken]["spec"]["replicas"] == 0  # adopted as an old ReplicaSet and scaled down
    assert all(rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"] for rs in rs_list.values())
    wait_for(lambda: images(running_ready(server, ns, "web")) == {"nginx:1.27"} and len(live(pods_of(server, ns, "web"))) == 2, timeout=20)


def test_deleting_a_deployment_removes_its_replica_sets_and_pods(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "delete")
    server.kubectl("apply", "-f", "-", input=deployment_yaml(ns, replicas=3), check=True)
    rollout_status(server, ns, "web")
    d = server.kubectl_json("get", "deploy", "web", "-n", ns)
    rs = server.kubectl_json("get", "rs", "-n", ns)["items"][0]
    assert rs["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    ]
    if importlib.util.find_spec("tuik8s.controllers.garbagecollector") is None:
        pytest.skip("no garbage collector yet: the ownerReferences above are what it will follow")
    server.kubectl("delete", "deploy/web", "-n", ns, check=True)
    wait_for(lambda: not server.kubectl_json("get", "rs", "-n", ns)["items"], timeout=20)
    wait_for(lambda: not pods_of(server, ns, "web"), timeout=20)


# ---- ReplicaSets on their own ---------------------------------------------------------------


def replicaset_yaml(ns: str, name: str, replicas: int) -> str:
    return f"""\
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, tier: web}}}}
    spec:
      containers: [{{name: c, image: nginx:1.27}}]
"""


def bare_pod(ns: str, name: str, labels: dict[str, str], owner: dict[str, Any] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if owner:
        meta["ownerReferences"] = [owner]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})


def test_replicaset_adopts_orphans_releases_strays_and_replaces_failed_pods(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "rs")
    server.kubectl("create", "-f", "-", input=bare_pod(ns, "orphan", {"app": "rs"}), check=True)
    foreign = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other", "uid": "0b7e6a53-2f0c-4c3e-9a0e-3e6f6f1f0d11", "controller": True}
    server.kubectl("create", "-f", "-", input=bare_pod(ns, "foreign", {"app": "rs"}, foreign), check=True)
    server.kubectl("apply", "-f", "-", input=replicaset_yaml(ns, "rs", 3), check=True)
    rs = server.kubectl_json("get", "rs", "rs", "-n", ns)

    def owned() -> list[dict[str, Any]]:
        return [
            p for p in live(pods_of(server, ns, "rs"))
            if any(r.get("uid") == rs["metadata"]["uid"] and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])
        ]

    wait_for(lambda: len(owned()) == 3, timeout=20)
    names = {p["metadata"]["name"] for p in owned()}
    assert "orphan" in names and "foreign" not in names  # adopted; another controller's pod is left alone
    status = wait_for(lambda: (s := server.kubectl_json("get", "rs", "rs", "-n", ns)["status"]).get("availableReplicas") == 3 and s, timeout=20)
    assert status["replicas"] == 3 and status["readyReplicas"] == 3 and status["observedGeneration"] == 1
    assert status["fullyLabeledReplicas"] == 2  # the orphan lacks the template's tier label

    # a pod whose labels stop matching is released and replaced
    stray = next(n for n in names if n != "orphan")
    server.kubectl("label", "pod", stray, "-n", ns, "app=elsewhere", "--overwrite", check=True)
    wait_for(lambda: not server.kubectl_json("get", "pod", stray, "-n", ns)["metadata"].get("ownerReferences"), timeout=10)
    wait_for(lambda: len(owned()) == 3 and stray not in {p["metadata"]["name"] for p in owned()}, timeout=20)

    # a pod that failed is replaced, and stays for the user to inspect
    victim = next(p["metadata"]["name"] for p in owned() if p["metadata"]["name"] != "orphan")
    server.kubectl("patch", "pod", victim, "-n", ns, "--subresource=status", "--type=merge", "-p", '{"status":{"phase":"Failed"}}', check=True)
    wait_for(lambda: len([p for p in owned() if p["status"].get("phase") != "Failed"]) == 3, timeout=20)
    assert server.kubectl_json("get", "pod", victim, "-n", ns)["status"]["phase"] == "Failed"


def test_replicaset_scale_down_deletes_the_cheapest_pods_first(server: RunningServer, nodes: HollowProcess) -> None:
    ns = namespace(server, "rank")
    server.kubectl("apply", "-f", "-", input=replicaset_yaml(ns, "rank", 4), check=True)
    wait_for(lambda: len(running_ready(server, ns, "rank")) == 4, timeout=20)
    pods = sorted(p["metadata"]["name"] for p in running_ready(server, ns, "rank"))
    cheap, precious = pods[0], pods[1]
    server.kubectl("annotate", "pod", cheap, "-n", ns, "controller.kubernetes.io/pod-deletion-cost=-100", check=True)
    server.kubectl("annotate", "pod", precious, "-n", ns, "controller.kubernetes.io/pod-deletion-cost=100", check=True)
    server.kubectl("scale", "rs/rank", "-n", ns, "--replicas=1", check=True)
    wait_for(lambda: [p["metadata"]["name"] for p in live(pods_of(server, ns, "rank"))] == [precious], timeout=20)
    events = server.kubectl_json("get", "events", "-n", ns, "--field-selector", "involvedObject.name=rank")["items"]
    assert f"Deleted pod: {cheap}" in {e["message"] for e in events if e["reason"] == "SuccessfulDelete"}
