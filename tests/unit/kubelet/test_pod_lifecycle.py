"""A pod worker against an in-memory runtime: what a sync does to containers and status."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tuik8s.client.errors import ApiError
from tuik8s.kubelet.pod_worker import Backoff, PodWorker, WorkerConfig, WorkerContext
from tuik8s.kubelet.runtime import (
    APP,
    EXITED,
    RUNNING,
    SANDBOX,
    ContainerConfig,
    ContainerInfo,
    ExecResult,
    ImagePullError,
    SandboxConfig,
)
from tuik8s.kubelet.volumes import VolumeManager

Obj = dict[str, Any]
UID = "u-1"


class FakeRuntime:
    """Containers in a dict; tests make them exit with `exit()`."""

    infra_image = "pause"

    def __init__(self) -> None:
        self.containers: dict[str, ContainerInfo] = {}
        self.images = {"pause", "busybox"}
        self.ids = itertools.count(1)
        self.configs: dict[str, ContainerConfig] = {}
        self.stopped: list[tuple[str, float]] = []

    async def version(self) -> str:
        return "fake://1"

    async def list_containers(self, pod_uid: str | None = None) -> list[ContainerInfo]:
        return [c for c in self.containers.values() if pod_uid is None or c.pod_uid == pod_uid]

    async def image_present(self, image: str) -> bool:
        return image in self.images

    async def pull_image(self, image: str) -> None:
        raise ImagePullError(f'Error response from daemon: pull access denied for {image}')

    async def run_sandbox(self, config: SandboxConfig) -> ContainerInfo:
        cid = f"sb{next(self.ids)}"
        info = ContainerInfo(cid, config.pod_uid, config.namespace, config.name, "POD", SANDBOX, config.attempt,
                             RUNNING, created_at=time.time(), started_at=time.time(), ip="10.244.0.9")
        self.containers[cid] = info
        return info

    async def create_container(self, sandbox: ContainerInfo, config: ContainerConfig) -> str:
        cid = f"c{next(self.ids)}"
        self.containers[cid] = ContainerInfo(
            cid, sandbox.pod_uid, sandbox.pod_namespace, sandbox.pod_name, config.name, config.kind, config.attempt,
            "created", sandbox_id=sandbox.id, spec_hash=config.spec_hash, created_at=time.time(), image_id="sha256:1",
        )
        self.configs[cid] = config
        return cid

    async def start_container(self, container_id: str) -> None:
        self.containers[container_id] = replace(self.containers[container_id], state=RUNNING, started_at=time.time())

    def exit(self, container_id: str, code: int) -> None:
        self.containers[container_id] = replace(
            self.containers[container_id], state=EXITED, exit_code=code, finished_at=time.time()
        )

    async def stop_container(self, container_id: str, grace: float) -> None:
        self.stopped.append((container_id, grace))
        if self.containers[container_id].state == RUNNING:
            self.exit(container_id, 137)

    async def kill_container(self, container_id: str, signal: str = "SIGKILL") -> None:
        if self.containers[container_id].state == RUNNING:
            self.exit(container_id, 137)

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def exec(self, container_id: str, argv: Sequence[str], time_limit: float | None = None) -> ExecResult:
        return ExecResult(0, "")

    async def logs(self, container_id: str, **kw: Any) -> AsyncIterator[bytes]:
        yield b""

    async def close(self) -> None:
        pass

    def app(self, name: str) -> list[ContainerInfo]:
        return sorted((c for c in self.containers.values() if c.container_name == name), key=lambda c: c.attempt)


class FakeClient:
    """Just what a pod worker writes: pod status, the final delete."""

    def __init__(self, pod: Obj) -> None:
        self.pod = pod
        self.deleted: list[tuple[str, Any]] = []
        self.rv = itertools.count(10)

    async def update_status(self, res: str, obj: Obj) -> Obj:
        self.pod = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(next(self.rv))}}
        return self.pod

    async def get(self, res: str, name: str, namespace: str | None = None) -> Obj:
        if res != "pods":
            raise ApiError(404, "NotFound", f'{res} "{name}" not found')
        return self.pod

    async def delete(self, res: str, name: str, namespace: str | None = None, **kw: Any) -> Obj:
        self.deleted.append((name, kw))
        return {}


def make_pod(**spec: Any) -> Obj:
    containers = spec.pop("containers", None) or [{"name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent"}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": UID, "resourceVersion": "1"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": containers, **spec},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


class Harness:
    def __init__(self, tmp_path: Path, pod: Obj, session: aiohttp.ClientSession) -> None:
        self.runtime = FakeRuntime()
        self.client = FakeClient(pod)
        self.events: list[tuple[str, str]] = []
        self.tmp_path = tmp_path
        self.session = session
        self.worker = self.new_worker()

    def new_worker(self) -> PodWorker:
        async def no_object(resource: str, namespace: str, name: str) -> Obj | None:
            return None

        ctx = WorkerContext(
            client=self.client,  # type: ignore[arg-type]
            runtime=self.runtime,
            volumes=VolumeManager(self.tmp_path, no_object),
            config=WorkerConfig(node_name="n1", node_ip="172.18.0.2"),
            session=self.session,
            crash_backoff=Backoff(10, 300),
            pull_backoff=Backoff(10, 300),
            event=lambda pod, c, type, reason, message: self.events.append((reason, message)),
            current_pod=lambda key, uid: self.client.pod,
            pod_written=lambda key, pod: None,
            get_object=no_object,
        )
        return PodWorker(ctx, "default/web", UID)

    @property
    def status(self) -> Obj:
        return self.client.pod["status"]

    def container_status(self, name: str = "app") -> Obj:
        return next(s for s in self.status["containerStatuses"] if s["name"] == name)

    def reasons(self) -> list[str]:
        return [r for r, _ in self.events]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_a_new_pod_gets_a_sandbox_and_its_containers_and_runs(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    kinds = sorted(c.kind for c in h.runtime.containers.values())
    assert kinds == [APP, SANDBOX]
    assert h.status["phase"] == "Running"
    assert h.status["podIP"] == "10.244.0.9" and h.status["hostIP"] == "172.18.0.2"
    assert h.container_status()["state"]["running"]
    assert h.container_status()["ready"] is True
    assert h.reasons() == ["Pulled", "Created", "Started"]
    app = h.runtime.app("app")[0]
    assert app.sandbox_id.startswith("sb")
    # a second sync changes nothing (adoption is the same thing)
    before = dict(h.runtime.containers)
    await h.worker.sync()
    await h.new_worker().sync()
    assert h.runtime.containers == before


async def test_crash_restarts_then_crash_loop_back_off(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    h.runtime.exit(h.runtime.app("app")[0].id, 1)
    await h.worker.sync()  # first crash: restarted at once
    attempts = h.runtime.app("app")
    assert [c.attempt for c in attempts] == [0, 1] and attempts[1].state == RUNNING
    s = h.container_status()
    assert s["restartCount"] == 1
    assert s["lastState"]["terminated"]["exitCode"] == 1 and s["lastState"]["terminated"]["reason"] == "Error"
    h.runtime.exit(attempts[1].id, 2)
    delay = await h.worker.sync()  # second crash: back-off 10 s
    assert len(h.runtime.app("app")) == 2
    s = h.container_status()
    assert s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert s["state"]["waiting"]["message"] == "back-off 10s restarting failed container=app pod=web_default(u-1)"
    assert s["lastState"]["terminated"]["exitCode"] == 2 and s["restartCount"] == 1
    assert delay is not None and 9 < delay <= 10
    assert "BackOff" in h.reasons()
    assert h.status["phase"] == "Running"


async def test_never_and_on_failure_pods_finish(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(restartPolicy="Never"), session)
    await h.worker.sync()
    h.runtime.exit(h.runtime.app("app")[0].id, 0)
    await h.worker.sync()
    assert h.status["phase"] == "Succeeded"
    assert h.container_status()["state"]["terminated"]["reason"] == "Completed"
    sandbox = next(c for c in h.runtime.containers.values() if c.kind == SANDBOX)
    assert sandbox.state == EXITED  # a finished pod's sandbox is stopped
    assert len(h.runtime.app("app")) == 1

    h2 = Harness(tmp_path / "2", make_pod(restartPolicy="OnFailure"), session)
    await h2.worker.sync()
    h2.runtime.exit(h2.runtime.app("app")[0].id, 3)
    await h2.worker.sync()
    assert h2.runtime.app("app")[-1].attempt == 1  # a failure is restarted
    h2.runtime.exit(h2.runtime.app("app")[-1].id, 0)
    await h2.worker.sync()
    assert h2.status["phase"] == "Succeeded"


async def test_init_containers_run_in_order_before_the_app(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    inits = [{"name": n, "image": "busybox", "imagePullPolicy": "IfNotPresent"} for n in ("first", "second")]
    h = Harness(tmp_path, make_pod(initContainers=inits), session)
    await h.worker.sync()
    assert [c.container_name for c in h.runtime.containers.values() if c.kind != SANDBOX] == ["first"]
    assert h.container_status()["state"]["waiting"]["reason"] == "PodInitializing"
    h.runtime.exit(h.runtime.app("first")[0].id, 0)
    await h.worker.sync()
    assert h.runtime.app("second") and not h.runtime.app("app")
    h.runtime.exit(h.runtime.app("second")[0].id, 1)  # fails: retried
    await h.worker.sync()
    assert [c.attempt for c in h.runtime.app("second")] == [0, 1]
    h.runtime.exit(h.runtime.app("second")[1].id, 0)
    await h.worker.sync()
    assert h.runtime.app("app")[0].state == RUNNING
    assert h.status["phase"] == "Running"
    assert {s["name"]: s["ready"] for s in h.status["initContainerStatuses"]} == {"first": True, "second": True}


async def test_a_failed_init_container_fails_a_never_pod(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    inits = [{"name": "setup", "image": "busybox", "imagePullPolicy": "IfNotPresent"}]
    h = Harness(tmp_path, make_pod(initContainers=inits, restartPolicy="Never"), session)
    await h.worker.sync()
    h.runtime.exit(h.runtime.app("setup")[0].id, 1)
    await h.worker.sync()
    assert h.status["phase"] == "Failed"
    assert not h.runtime.app("app")


async def test_missing_image_err_image_pull_then_back_off(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    pod = make_pod(containers=[{"name": "app", "image": "nope:1", "imagePullPolicy": "IfNotPresent"}])
    h = Harness(tmp_path, pod, session)
    await h.worker.sync()
    waiting = h.container_status()["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert waiting["message"] == 'Failed to pull image "nope:1": Error response from daemon: pull access denied for nope:1'
    assert h.status["phase"] == "Pending"
    await h.worker.sync()
    waiting = h.container_status()["state"]["waiting"]
    assert waiting == {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}
    assert h.reasons().count("Pulling") == 1
    assert ("Failed", "Error: ErrImagePull") in h.events and ("Failed", "Error: ImagePullBackOff") in h.events
    never = make_pod(containers=[{"name": "app", "image": "nope:1", "imagePullPolicy": "Never"}])
    h2 = Harness(tmp_path / "2", never, session)
    await h2.worker.sync()
    assert h2.container_status()["state"]["waiting"]["reason"] == "ErrImageNeverPull"


async def test_missing_config_is_create_container_config_error(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]
    pod = make_pod(containers=[{"name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent", "env": env}])
    h = Harness(tmp_path, pod, session)
    await h.worker.sync()
    assert h.container_status()["state"]["waiting"] == {
        "reason": "CreateContainerConfigError", "message": 'configmap "cfg" not found',
    }
    assert ("Failed", 'Error: configmap "cfg" not found') in h.events


async def test_a_changed_spec_restarts_the_container(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    h.runtime.images.add("busybox:2")
    h.client.pod["spec"]["containers"][0]["image"] = "busybox:2"
    await h.worker.sync()
    attempts = h.runtime.app("app")
    assert [c.state for c in attempts] == [EXITED, RUNNING]
    assert h.runtime.configs[attempts[1].id].image == "busybox:2"
    assert ("Killing", "Container app definition changed, will be restarted") in h.events


async def test_a_dead_sandbox_is_recreated_and_containers_restarted(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    sandbox = next(c for c in h.runtime.containers.values() if c.kind == SANDBOX)
    h.runtime.exit(sandbox.id, 137)
    await h.worker.sync()
    sandboxes = [c for c in h.runtime.containers.values() if c.kind == SANDBOX]
    assert len(sandboxes) == 1 and sandboxes[0].attempt == 1 and sandboxes[0].state == RUNNING
    app = h.runtime.app("app")[-1]
    assert app.state == RUNNING and app.sandbox_id == sandboxes[0].id and app.attempt == 1
    assert "SandboxChanged" in h.reasons()


async def test_dead_instances_beyond_the_last_two_are_removed(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    for _ in range(3):
        h.runtime.exit(h.runtime.app("app")[-1].id, 1)
        h.worker.ctx.crash_backoff.forget("")  # no waiting in this test
        await h.worker.sync()
    assert [c.attempt for c in h.runtime.app("app")] == [2, 3]


async def test_deletion_stops_removes_and_deletes_with_a_uid_precondition(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    pod = make_pod(terminationGracePeriodSeconds=7)
    h = Harness(tmp_path, pod, session)
    await h.worker.sync()
    app_id = h.runtime.app("app")[0].id
    h.client.pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    h.client.pod["metadata"]["deletionGracePeriodSeconds"] = 5
    await h.worker.sync()
    assert h.worker.finished
    assert (app_id, 5.0) in h.runtime.stopped
    assert h.runtime.containers == {}
    assert h.client.deleted == [("web", {"grace_period_seconds": 0, "preconditions": {"uid": UID}})]
    assert h.status["phase"] == "Failed"  # stopped by a signal: exit 137
    assert ("Killing", "Stopping container app") in h.events
    assert not (tmp_path / "pods" / UID).exists()


async def test_containers_of_a_pod_gone_from_the_api_are_removed(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    h = Harness(tmp_path, make_pod(), session)
    await h.worker.sync()
    orphan = h.new_worker()
    orphan.ctx.current_pod = lambda key, uid: None
    await orphan.sync()
    assert orphan.finished and h.runtime.containers == {}
    assert h.client.deleted == []
