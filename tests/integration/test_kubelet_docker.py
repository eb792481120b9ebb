"""The real kubelet on this host's Docker engine, as node `host-node` of a real `tuik8s server`.

Pods are scheduled onto it by the server's scheduler and run as Docker containers on the
host's bridge, so their IPs answer from here. Every container the kubelet starts carries
its node and cluster labels; the module's finalizer removes them all by label.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import RunningServer, free_port, wait_for
from tuik8s.kubelet.agent import cluster_id

NODE = "host-node"
IMAGE = "tuik8s/busybox:latest"
ROOT = Path(__file__).resolve().parents[2]
LOG_TOKEN = "log-token-for-tests"
# The token the control plane presents to kubelets (tuik8s.apiserver.kubelets): the kubelet
# here accepts it, so `kubectl logs` goes through the API server.
KUBELET_CLIENT_TOKEN = "kubelet-client-token"


def _docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _engine() -> str | None:
    """None if a Docker engine answers (started if need be), else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        return None
    started = subprocess.run([str(ROOT / "scripts" / "docker-engine")], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        return f"no Docker engine: {started.stderr.strip().splitlines()[-1:]}"
    return None


def _ensure_busybox() -> str | None:
    """The lab's busybox image, imported from Debian's busybox-static when missing."""
    if _docker("image", "inspect", IMAGE, check=False).returncode == 0:
        return None
    binary = Path("/bin/busybox")
    if not binary.exists():
        return "no /bin/busybox (apt-get install busybox-static) to build the busybox image from"
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        with tarfile.open(tarball, "w") as tar:
            for d in ("bin", "tmp", "etc", "www", "proc", "sys", "dev", "root"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)
            tar.add(binary, "bin/busybox")
            for applet in applets:
                if applet != "busybox":
                    link = tarfile.TarInfo(f"bin/{applet}")
                    link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                    tar.addfile(link)
        _docker("import", "-c", "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin", "-c", 'CMD ["sh"]', str(tarball), IMAGE)
    return None


@dataclass
class HostKubelet:
    server: RunningServer
    workdir: Path
    log_port: int
    node_ip: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def labels(self) -> list[str]:
        ca = self.server.ca_file.read_bytes()
        return [f"label=tuik8s.node={NODE}", f"label=tuik8s.cluster={cluster_id(self.server.url, ca)}"]

    def start(self) -> None:
        (self.workdir / "token").write_text(self.server.token + "\n")
        tokens = [LOG_TOKEN]
        with contextlib.suppress(OSError):
            tokens.append((self.server.data_dir / KUBELET_CLIENT_TOKEN).read_text().strip())
        (self.workdir / "log-tokens").write_text("\n".join(tokens) + "\n")
        log = open(self.workdir / "kubelet.log", "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "tuik8s.kubelet.cli",
                "--node-name", NODE, "--server", self.server.url,
                "--token-file", str(self.workdir / "token"), "--ca-file", str(self.server.ca_file),
                "--node-ip", self.node_ip, "--root-dir", str(self.workdir / "root"),
                "--log-port", str(self.log_port), "--log-address", self.node_ip,
                "--log-token-file", str(self.workdir / "log-tokens"),
                "--crash-loop-base", "1", "--image-pull-backoff-base", "1", "--sync-frequency", "5",
            ],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def containers(self, *filters: str, all: bool = True) -> list[str]:
        args = ["ps", "-q", "--no-trunc", *(["-a"] if all else [])]
        for f in [*self.labels, *filters]:
            args += ["--filter", f]
        return sorted(_docker(*args).stdout.split())

    def cleanup(self) -> None:
        ids = self.containers()
        if ids:
            _docker("rm", "-f", "-v", *ids, check=False)

    def log_tail(self) -> str:
        try:
            return "\n".join((self.workdir / "kubelet.log").read_text().splitlines()[-40:])
        except OSError:
            return ""

    def logs(self, namespace: str, pod: str, container: str, query: str = "", token: str | None = LOG_TOKEN) -> tuple[int, str]:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = f"https://{self.node_ip}:{self.log_port}/containerLogs/{namespace}/{pod}/{container}{query}"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def _bridge_gateway() -> str:
    """The host's address on the default Docker bridge (what pods see as their node)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True).stdout.split()
    if "inet" in out:
        return out[out.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


@pytest.fixture(scope="module")
def kubelet(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostKubelet]:
    if os.geteuid() != 0:
        pytest.skip("the kubelet needs root to run containers and write its root dir")
    why = _engine() or _ensure_busybox()
    if why:
        pytest.skip(why)
    k = HostKubelet(server, tmp_path_factory.mktemp("kubelet"), free_port(), _bridge_gateway())
    k.start()
    try:
        wait_for(lambda: node_ready(server), timeout=60, interval=0.3)
        yield k
    except BaseException:
        print(k.log_tail())
        raise
    finally:
        k.stop()
        k.cleanup()


def node_ready(server: RunningServer) -> bool:
    result = server.kubectl("get", "node", NODE, "-o", "json")
    if result.returncode != 0:
        return False
    conds = json.loads(result.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def apply(server: RunningServer, *docs: dict[str, Any]) -> None:
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=True)


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", IMAGE)
        c.setdefault("imagePullPolicy", "IfNotPresent")
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": name}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": containers, **spec},
    }


def get_pod(server: RunningServer, name: str) -> dict[str, Any]:
    return server.kubectl_json("get", "pod", name)


def status_of(pod: dict[str, Any], container: str) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s["name"] == container), {})


def wait_pod(server: RunningServer, name: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        result = server.kubectl("get", "pod", name, "-o", "json")
        if result.returncode != 0:
            return None
        pod = json.loads(result.stdout)
        return pod if check(pod) else None

    return wait_for(probe, timeout=timeout, interval=0.3)


def running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and bool(status.get("podIP"))


def http_get(url: str, timeout: float = 3) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


WEB = [
    {
        "name": "web",
        "command": ["sh", "-c", "mkdir -p /www && echo hello from $(POD_NAME) > /www/index.html && exec httpd -f -p 80 -h /www"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": 80}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    },
    {
        "name": "sidecar",
        "command": ["sh", "-c", "while true; do wget -qO- http://127.0.0.1:80/ || echo no answer; sleep 1; done"],
    },
]


def test_a_pod_runs_with_an_ip_that_answers_and_its_containers_share_localhost(
    server: RunningServer, kubelet: HostKubelet
) -> None:
    apply(server, pod_manifest("web", [dict(c) for c in WEB]))
    pod = wait_pod(server, "web", running_and_ready)
    ip = pod["status"]["podIP"]
    assert pod["spec"]["nodeName"] == NODE
    assert pod["status"]["hostIP"] == kubelet.node_ip
    assert wait_for(lambda: http_get(f"http://{ip}/")[1] == "hello from web\n", timeout=10)
    assert {s["name"]: s["ready"] for s in pod["status"]["containerStatuses"]} == {"web": True, "sidecar": True}
    # the sidecar reaches the web container on localhost: one network namespace
    assert wait_for(lambda: "hello from web" in kubelet.logs("default", "web", "sidecar")[1], timeout=10)
    events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=web", "-o", "json", check=True)
    reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons


def test_the_log_endpoint(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("talker", [{"name": "talk", "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; sleep 3600"]}]))
    wait_pod(server, "talker", running_and_ready)
    assert wait_for(lambda: kubelet.logs("default", "talker", "talk") == (200, "".join(f"line {i}\n" for i in range(1, 6))))
    assert kubelet.logs("default", "talker", "talk", "?tailLines=2") == (200, "line 4\nline 5\n")
    code, body = kubelet.logs("default", "talker", "talk", "?timestamps=true&tailLines=1")
    assert code == 200 and body.endswith(" line 5\n") and body[:4].isdigit()
    assert kubelet.logs("default", "talker", "talk", token=None)[0] == 401
    assert kubelet.logs("default", "talker", "talk", token="wrong")[0] == 401
    assert kubelet.logs("default", "talker", "talk", "?previous=true") == (
        400, 'previous terminated container "talk" in pod "talker" not found\n',
    )
    assert kubelet.logs("default", "nosuch", "talk")[0] == 404


def test_kubectl_logs_through_the_api_server(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("say", [{"name": "say", "command": ["sh", "-c", "echo said it; sleep 3600"]}]))
    wait_pod(server, "say", running_and_ready)
    result = server.kubectl("logs", "say")
    if "no node runs it yet" in result.stderr:
        pytest.skip(f"the API server does not proxy logs to kubelets: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "said it\n"
    tail = server.kubectl("logs", "say", "--tail=1", "--timestamps", check=True).stdout
    assert tail.endswith(" said it\n")
    missing = server.kubectl("logs", "say", "--previous")
    assert missing.returncode != 0
    assert 'previous terminated container "say" in pod "say" not found' in missing.stderr


def test_a_killed_container_is_restarted(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("victim", [{"name": "app", "command": ["sh", "-c", "echo run; sleep 3600"]}]))
    pod = wait_pod(server, "victim", running_and_ready)
    first = status_of(pod, "app")["containerID"].split("://")[1]
    _docker("kill", first)
    pod = wait_pod(server, "victim", lambda p: status_of(p, "app").get("restartCount") == 1 and running_and_ready(p))
    s = status_of(pod, "app")
    assert s["containerID"].split("://")[1] != first
    assert s["lastState"]["terminated"]["exitCode"] == 137
    assert s["lastState"]["terminated"]["containerID"] == f"docker://{first}"
    # the previous instance's log is still there
    assert kubelet.logs("default", "victim", "app", "?previous=true") == (200, "run\n")


def test_a_crashing_container_goes_into_crash_loop_back_off(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("crasher", [{"name": "app", "command": ["sh", "-c", "echo bye; exit 3"]}]))

    def backing_off(pod: dict[str, Any]) -> bool:
        waiting = (status_of(pod, "app").get("state") or {}).get("waiting") or {}
        return waiting.get("reason") == "CrashLoopBackOff"

    pod = wait_pod(server, "crasher", backing_off, timeout=60)
    s = status_of(pod, "app")
    assert s["state"]["waiting"]["message"].startswith("back-off ")
    assert "restarting failed container=app pod=crasher_default(" in s["state"]["waiting"]["message"]
    assert s["restartCount"] >= 1
    assert s["lastState"]["terminated"]["exitCode"] == 3
    assert s["lastState"]["terminated"]["reason"] == "Error"
    table = server.kubectl("get", "pod", "crasher", check=True).stdout
    assert "CrashLoopBackOff" in table or "Error" in table


def test_a_wrong_image_is_err_image_pull_then_image_pull_back_off(server: RunningServer, kubelet: HostKubelet) -> None:
    # a registry on loopback that is not there: the pull fails at once, and no traffic leaves
    image = f"127.0.0.1:{free_port()}/nope:1"
    apply(server, pod_manifest("badimage", [{"name": "app", "image": image}]))
    waiting: dict[str, str] = {}

    def seen_both(pod: dict[str, Any]) -> bool:
        state = (status_of(pod, "app").get("state") or {}).get("waiting") or {}
        if state.get("reason"):
            waiting[state["reason"]] = state.get("message", "")
        return {"ErrImagePull", "ImagePullBackOff"} <= set(waiting)

    wait_pod(server, "badimage", seen_both, timeout=60)
    assert waiting["ErrImagePull"].startswith(f'Failed to pull image "{image}": ')
    assert "connection refused" in waiting["ErrImagePull"]
    assert waiting["ImagePullBackOff"] == f'Back-off pulling image "{image}"'
    assert get_pod(server, "badimage")["status"]["phase"] == "Pending"
    events = json.loads(server.kubectl("get", "events", "--field-selector", "involvedObject.name=badimage", "-o", "json",
                                       check=True).stdout)["items"]
    messages = {(e["reason"], e["message"]) for e in events}
    assert ("Pulling", f'Pulling image "{image}"') in messages
    assert ("Failed", "Error: ErrImagePull") in messages
    assert ("BackOff", f'Back-off pulling image "{image}"') in messages


def test_init_containers_config_and_a_completed_pod(server: RunningServer, kubelet: HostKubelet) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"greeting": "hi there"}}
    pod = pod_manifest(
        "job-like",
        [{
            "name": "main",
            "command": ["sh", "-c", "cat /work/order; echo $GREETING; cat /config/greeting; echo"],
            "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "config", "mountPath": "/config"}],
        }],
        restartPolicy="Never",
        initContainers=[
            {"name": "one", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
             "command": ["sh", "-c", "echo one >> /work/order"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
            {"name": "two", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
             "command": ["sh", "-c", "echo two >> /work/order"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
        ],
        volumes=[{"name": "work", "emptyDir": {}}, {"name": "config", "configMap": {"name": "settings"}}],
    )
    apply(server, config, pod)
    done = wait_pod(server, "job-like", lambda p: (p.get("status") or {}).get("phase") == "Succeeded", timeout=60)
    assert status_of(done, "main")["state"]["terminated"]["reason"] == "Completed"
    assert kubelet.logs("default", "job-like", "main") == (200, "one\ntwo\nhi there\nhi there\n")


def test_a_failing_liveness_probe_restarts_the_container(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("sick", [{
        "name": "app",
        "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2},
    }]))
    wait_pod(server, "sick", lambda p: status_of(p, "app").get("restartCount", 0) >= 1, timeout=60)
    events = json.loads(server.kubectl("get", "events", "--field-selector", "involvedObject.name=sick", "-o", "json",
                                       check=True).stdout)["items"]
    messages = {(e["reason"], e["message"]) for e in events}
    assert ("Killing", "Container app failed liveness probe, will be restarted") in messages
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed: cat: can't open '/tmp/healthy'") for r, m in messages)


def test_deleting_a_pod_stops_and_removes_its_containers(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("doomed", [{"name": "app", "command": ["sleep", "3600"]}]))
    pod = wait_pod(server, "doomed", running_and_ready)
    uid = pod["metadata"]["uid"]
    assert kubelet.containers(f"label=io.kubernetes.pod.uid={uid}")
    started = time.monotonic()
    server.kubectl("delete", "pod", "doomed", "--wait=true", "--timeout=60s", check=True)
    assert time.monotonic() - started < 30
    assert wait_for(lambda: not kubelet.containers(f"label=io.kubernetes.pod.uid={uid}"), timeout=10)


def test_a_restarted_kubelet_adopts_its_containers_and_removes_orphans(server: RunningServer, kubelet: HostKubelet) -> None:
    apply(server, pod_manifest("steady", [{"name": "app", "command": ["sleep", "3600"]}]),
          pod_manifest("forgotten", [{"name": "app", "command": ["sleep", "3600"]}]))
    steady = wait_pod(server, "steady", running_and_ready)
    forgotten = wait_pod(server, "forgotten", running_and_ready)
    steady_uid, orphan_uid = steady["metadata"]["uid"], forgotten["metadata"]["uid"]
    before = kubelet.containers(f"label=io.kubernetes.pod.uid={steady_uid}")
    assert len(before) == 2  # the sandbox and the app
    kubelet.stop()
    # the pod is removed while its kubelet is away: its containers are orphans now
    server.kubectl("delete", "pod", "forgotten", "--force", "--grace-period=0", check=True)
    kubelet.start()
    wait_for(lambda: not kubelet.containers(f"label=io.kubernetes.pod.uid={orphan_uid}"), timeout=30)
    time.sleep(3)  # a few relists and syncs: nothing of the steady pod may change
    assert kubelet.containers(f"label=io.kubernetes.pod.uid={steady_uid}") == before
    steady = get_pod(server, "steady")
    assert status_of(steady, "app")["restartCount"] == 0
    assert status_of(steady, "app")["containerID"].split("://")[1] in before
    assert running_and_ready(steady)


def test_the_command_line_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuik8s.kubelet.cli", "--node-name", "n", "--server", "https://127.0.0.1:1",
         "--token-file", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"tuik8s: error: cannot read the token file {tmp_path / 'missing'}: No such file or directory"
    ]

