"""The Docker runtime's engine API path, against a fake engine on a unix socket.

The fake answers the way Docker 20.10 answers (paths, status codes, `{"message": ...}`
errors) and records every call, so the tests can see what the kubelet asks for and how
often: a relist must not re-inspect containers whose state did not change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tuik8s.kubelet.runtime import (
    LABEL_POD_UID,
    RUNNING,
    ContainerConfig,
    ContainerInfo,
    ContainerRuntimeError,
    Mount,
    SandboxConfig,
)
from tuik8s.kubelet.runtime.docker import DockerRuntime, container_create_body, sandbox_create_body
from tuik8s.kubelet.runtime.engine import (
    EngineClient,
    EngineError,
    demultiplex,
    engine_host,
    split_frames,
)

SCOPE = {"tuik8s.node": "n1", "tuik8s.cluster": "c1"}


class FakeEngine:
    """Containers by id; names unique; `calls` lists (method, path) of every request."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.images = {"tuik8s/busybox:latest", "web:1"}
        self.calls: list[tuple[str, str]] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self.next_id = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/version", self.version)
        app.router.add_get("/containers/json", self.list)
        app.router.add_get("/containers/{id}/json", self.inspect)
        app.router.add_post("/containers/create", self.create)
        app.router.add_post("/containers/{id}/start", self.start)
        app.router.add_post("/containers/{id}/kill", self.kill)
        app.router.add_post("/containers/{id}/stop", self.stop)
        app.router.add_delete("/containers/{id}", self.remove)
        app.router.add_get("/images/{name:.*}/json", self.image)
        app.router.add_post("/containers/{id}/exec", self.exec_create)
        app.router.add_post("/exec/{id}/start", self.exec_start)
        app.router.add_get("/exec/{id}/json", self.exec_inspect)
        return app

    async def exec_create(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None or c["State"]["Status"] != "running":
            return self.error(409, f"Container {request.match_info['id']} is not running")
        self.exec_cmd = (await request.json())["Cmd"]
        return web.json_response({"Id": "e1"}, status=201)

    async def exec_start(self, request: web.Request) -> web.Response:
        def frame(stream: int, data: bytes) -> bytes:
            return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

        return web.Response(body=frame(1, b"out\n") + frame(2, b"oops\n"),
                            content_type="application/vnd.docker.multiplexed-stream")

    async def exec_inspect(self, request: web.Request) -> web.Response:
        return web.json_response({"Running": False, "ExitCode": 3})

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls.append((request.method, request.path))
        return await handler(request)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"Version": "20.10.24", "ApiVersion": "1.41"})

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        return web.json_response({"message": message}, status=status)

    def find(self, ref: str) -> dict[str, Any] | None:
        for c in self.containers.values():
            if c["Id"] == ref or c["Name"] == "/" + ref:
                return c
        return None

    async def list(self, request: web.Request) -> web.Response:
        wanted = json.loads(request.query["filters"])["label"]
        out = []
        for c in self.containers.values():
            labels = c["Config"]["Labels"]
            if all((w.split("=", 1)[0] in labels) if "=" not in w else labels.get(w.split("=", 1)[0]) == w.split("=", 1)[1]
                   for w in wanted):
                out.append({"Id": c["Id"], "State": c["State"]["Status"], "Labels": labels})
        return web.json_response(out)

    async def inspect(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None:
            return self.error(404, f"No such container: {request.match_info['id']}")
        return web.json_response(c)

    async def create(self, request: web.Request) -> web.Response:
        name = request.query["name"]
        body = await request.json()
        if body["Image"] not in self.images:
            return self.error(404, f"No such image: {body['Image']}")
        if self.find(name) is not None:
            return self.error(409, f'Conflict. The container name "/{name}" is already in use by container "x".')
        self.next_id += 1
        cid = f"{self.next_id:064x}"
        self.bodies[name] = body
        self.containers[cid] = {
            "Id": cid, "Name": "/" + name, "Created": "2026-01-01T00:00:00Z", "Image": "sha256:img",
            "Config": {"Image": body["Image"], "Labels": body.get("Labels") or {}},
            "State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                      "ExitCode": 0, "OOMKilled": False, "Error": ""},
            "NetworkSettings": {"IPAddress": "", "Networks": {}},
        }
        return web.json_response({"Id": cid, "Warnings": []}, status=201)

    async def start(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None:
            return self.error(404, f"No such container: {request.match_info['id']}")
        if c["State"]["Status"] == "running":
            return web.Response(status=304)
        c["State"].update(Status="running", StartedAt="2026-01-01T00:00:01Z")
        c["NetworkSettings"]["Networks"] = {"bridge": {"IPAddress": "10.244.1.9"}}
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None:
            return self.error(404, f"No such container: {request.match_info['id']}")
        if c["State"]["Status"] != "running":
            cid = c["Id"]
            return self.error(409, f"Cannot kill container: {cid}: Container {cid} is not running")
        c["State"].update(Status="exited", ExitCode=137, FinishedAt="2026-01-01T00:00:09Z")
        return web.Response(status=204)

    async def stop(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None:
            return self.error(404, f"No such container: {request.match_info['id']}")
        if c["State"]["Status"] != "running":
            return web.Response(status=304)
        c["State"].update(Status="exited", ExitCode=0, FinishedAt="2026-01-01T00:00:09Z")
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        c = self.find(request.match_info["id"])
        if c is None:
            return self.error(404, f"No such container: {request.match_info['id']}")
        assert request.query.get("force") == "1"
        del self.containers[c["Id"]]
        return web.Response(status=204)

    async def image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.images:
            return self.error(404, f"No such image: {name}")
        return web.json_response({"Id": "sha256:img"})


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[FakeEngine, str]]:
    fake = FakeEngine()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    sock = tmp_path / "docker.sock"
    site = web.UnixSite(runner, str(sock))
    await site.start()
    try:
        yield fake, f"unix://{sock}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def runtime(engine: tuple[FakeEngine, str]) -> AsyncIterator[DockerRuntime]:
    rt = DockerRuntime(host=engine[1], scope=SCOPE)
    try:
        yield rt
    finally:
        await rt.close()


def sandbox_config(uid: str = "u-1") -> SandboxConfig:
    return SandboxConfig(pod_uid=uid, namespace="shop", name="web", attempt=0, hostname="web",
                         dns_servers=["10.96.0.10"], dns_searches=["shop.svc.cluster.local"], dns_options=["ndots:5"])


async def test_a_pod_is_a_sandbox_and_containers_in_its_namespaces(engine: tuple[FakeEngine, str], runtime: DockerRuntime) -> None:
    fake, _ = engine
    assert await runtime.version() == "docker://20.10.24"
    sandbox = await runtime.run_sandbox(sandbox_config())
    assert sandbox.running and sandbox.ip == "10.244.1.9" and sandbox.container_name == "POD"
    sb_body = fake.bodies["k8s_POD_web_shop_u-1_0"]
    assert sb_body["Hostname"] == "web" and sb_body["HostConfig"]["NetworkMode"] == "bridge"
    assert sb_body["HostConfig"]["Dns"] == ["10.96.0.10"] and sb_body["HostConfig"]["IpcMode"] == "shareable"
    assert sb_body["Labels"]["tuik8s.node"] == "n1" and sb_body["Labels"][LABEL_POD_UID] == "u-1"

    cid = await runtime.create_container(sandbox, ContainerConfig(
        name="app", kind="app", attempt=0, image="web:1", command=["/bin/web"], args=["--port", "80"],
        env=[("A", "1"), ("B", "2"), ("A", "3")], mounts=[Mount("/var/x", "/x", read_only=True)],
        memory_limit=64 << 20, cpu_limit=0.5, cpu_shares=512, working_dir="/srv", spec_hash="h1",
    ))
    body = fake.bodies["k8s_app_web_shop_u-1_0"]
    host = body["HostConfig"]
    assert host["NetworkMode"] == host["IpcMode"] == f"container:{sandbox.id}"
    assert (body["Entrypoint"], body["Cmd"], body["WorkingDir"]) == (["/bin/web"], ["--port", "80"], "/srv")
    assert body["Env"] == ["B=2", "A=3"]  # the last value of a name wins, in its last place
    assert host["Mounts"] == [{"Type": "bind", "Source": "/var/x", "Target": "/x", "ReadOnly": True}]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["CpuShares"]) == (64 << 20, 64 << 20, 500_000_000, 512)
    assert body["Labels"]["io.kubernetes.sandbox.id"] == sandbox.id and body["Labels"]["io.kubernetes.container.hash"] == "h1"
    await runtime.start_container(cid)

    infos = await runtime.list_containers("u-1")
    assert sorted((i.container_name, i.state) for i in infos) == [("POD", RUNNING), ("app", RUNNING)]


async def test_listing_inspects_only_containers_whose_state_changed(
    engine: tuple[FakeEngine, str], runtime: DockerRuntime
) -> None:
    fake, _ = engine
    sandbox = await runtime.run_sandbox(sandbox_config())
    cid = await runtime.create_container(sandbox, ContainerConfig(name="app", kind="app", attempt=0, image="web:1"))
    await runtime.start_container(cid)

    def inspects() -> int:
        return sum(1 for method, path in fake.calls if method == "GET" and path.endswith("/json") and "/containers/" in path
                   and path != "/containers/json")

    await runtime.list_containers()
    before = inspects()
    await runtime.list_containers()
    await runtime.list_containers("u-1")
    assert inspects() == before  # nothing changed: the list alone

    await runtime.kill_container(cid)
    infos = {i.id: i for i in await runtime.list_containers()}
    assert inspects() == before + 1  # only the one that died
    app: ContainerInfo = infos[cid]
    assert (app.state, app.exit_code) == ("exited", 137)

    await runtime.remove_container(cid)
    assert cid not in {i.id for i in await runtime.list_containers()}


async def test_other_kubelets_containers_are_not_listed(engine: tuple[FakeEngine, str], runtime: DockerRuntime) -> None:
    _, host = engine
    other = DockerRuntime(host=host, scope={**SCOPE, "tuik8s.node": "n2"})
    try:
        await other.run_sandbox(sandbox_config("u-2"))
        assert await runtime.list_containers() == []
        assert [i.pod_uid for i in await other.list_containers()] == ["u-2"]
    finally:
        await other.close()


async def test_a_leftover_of_the_same_name_is_replaced(engine: tuple[FakeEngine, str], runtime: DockerRuntime) -> None:
    fake, _ = engine
    first = await runtime.run_sandbox(sandbox_config())
    again = await runtime.run_sandbox(sandbox_config())  # the same attempt, as after a crash mid-start
    assert again.id != first.id and first.id not in fake.containers and len(fake.containers) == 1


async def test_errors_are_the_engines_words_and_gone_is_not_an_error(
    engine: tuple[FakeEngine, str], runtime: DockerRuntime
) -> None:
    sandbox = await runtime.run_sandbox(sandbox_config())
    with pytest.raises(ContainerRuntimeError, match="^Error response from daemon: No such image: nope:1$"):
        await runtime.create_container(sandbox, ContainerConfig(name="app", kind="app", attempt=0, image="nope:1"))
    assert not await runtime.image_present("nope:1") and await runtime.image_present("web:1")
    gone = "f" * 64
    await runtime.kill_container(gone)
    await runtime.stop_container(gone, 1)
    await runtime.remove_container(gone)
    await runtime.kill_container(sandbox.id)
    await runtime.kill_container(sandbox.id)  # not running any more: fine
    await runtime.stop_container(sandbox.id, 1)  # already stopped: fine


async def test_no_engine_is_one_clear_error(tmp_path: Path) -> None:
    rt = DockerRuntime(host=f"unix://{tmp_path / 'nothing.sock'}", scope=SCOPE)
    try:
        with pytest.raises(ContainerRuntimeError, match="^the Docker engine does not answer: "):
            await rt.version()
        with pytest.raises(ContainerRuntimeError, match="^listing containers failed: "):
            await rt.list_containers()
    finally:
        await rt.close()
    ssh = EngineClient("ssh://me@box")
    with pytest.raises(EngineError, match="give unix:// or tcp://"):
        await ssh.version()


def test_the_engine_address_is_the_clis() -> None:
    assert engine_host(None, {}) == "unix:///var/run/docker.sock"
    assert engine_host(None, {"DOCKER_HOST": "tcp://10.0.0.1:2375"}) == "tcp://10.0.0.1:2375"
    assert engine_host("unix:///run/x.sock", {"DOCKER_HOST": "tcp://10.0.0.1:2375"}) == "unix:///run/x.sock"


def test_a_host_network_sandbox_has_no_hostname_or_dns_of_its_own() -> None:
    config = SandboxConfig(pod_uid="u", namespace="ns", name="p", attempt=0, hostname="p", host_network=True,
                           dns_servers=["10.96.0.10"])
    body = sandbox_create_body("pause:1", ["sleep", "infinity"], {"a": "b"}, config, "bridge")
    assert body["HostConfig"]["NetworkMode"] == "host" and "Hostname" not in body and "Dns" not in body["HostConfig"]
    assert body["HostConfig"]["LogConfig"] == {"Type": "", "Config": {"max-size": "10m", "max-file": "3"}}


def test_image_defaults_stay_when_command_and_args_are_unset() -> None:
    body = container_create_body("sb", {}, ContainerConfig(name="c", kind="app", attempt=0, image="web:1"))
    assert "Cmd" not in body and "Entrypoint" not in body and body["HostConfig"]["Mounts"] == []
    body = container_create_body("sb", {}, ContainerConfig(name="c", kind="app", attempt=0, image="web:1", args=["-v"]))
    assert body["Cmd"] == ["-v"] and "Entrypoint" not in body


async def test_exec_runs_through_the_engine_with_its_exit_code_and_output(
    engine: tuple[FakeEngine, str], runtime: DockerRuntime
) -> None:
    fake, _ = engine
    sandbox = await runtime.run_sandbox(sandbox_config())
    result = await runtime.exec(sandbox.id, ["sh", "-c", "exit 3"], 5)
    assert (result.exit_code, result.output, fake.exec_cmd) == (3, "out\noops\n", ["sh", "-c", "exit 3"])
    await runtime.kill_container(sandbox.id)
    with pytest.raises(ContainerRuntimeError, match="is not running"):
        await runtime.exec(sandbox.id, ["true"])


def test_demultiplex_keeps_arrival_order_and_passes_raw_output_through() -> None:
    framed = bytes([1, 0, 0, 0, 0, 0, 0, 2]) + b"a\n" + bytes([2, 0, 0, 0, 0, 0, 0, 1]) + b"b"
    assert demultiplex(framed) == b"a\nb"
    assert demultiplex(b"plain tty output") == b"plain tty output"
    assert demultiplex(b"") == b""


async def test_a_restarted_engine_is_reached_again_on_the_next_read(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(FakeEngine().app())
        await runner.setup()
        await web.UnixSite(runner, str(sock)).start()
        return runner

    runner = await serve()
    client = EngineClient(f"unix://{sock}")
    try:
        assert (await client.version())["Version"] == "20.10.24"  # leaves a kept-alive connection
        await runner.cleanup()
        runner = await serve()
        assert (await client.version())["Version"] == "20.10.24"
    finally:
        await client.close()
        await runner.cleanup()


async def _fake_hijacking_engine(sock: Path, seen: list[bytes]) -> asyncio.AbstractServer:
    """A unix socket that answers an `Upgrade: tcp` request as dockerd does (101, then the
    process's multiplexed output), and a 404 with a JSON message for a missing exec."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length")), b"0"))
        seen.append(head + await reader.readexactly(length))
        if b"/exec/gone/" in head:
            body = b'{"message":"No such exec instance: gone"}'
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        else:
            writer.write(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
            stdin = await reader.readline()
            writer.write(bytes([1, 0, 0, 0, 0, 0, 0, len(stdin)]) + stdin + bytes([2, 0, 0, 0, 0, 0, 0, 1]) + b"!")
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(serve, str(sock))


async def test_exec_and_attach_streams_are_hijacked_connections_to_the_same_engine(tmp_path: Path) -> None:
    sock, seen = tmp_path / "docker.sock", []
    server = await _fake_hijacking_engine(sock, seen)
    client = EngineClient(f"unix://{sock}")
    try:
        reader, writer = await client.exec_stream("e1", tty=False)
        writer.write(b"hello\n")
        buffer = bytearray(await reader.read())
        writer.close()
        assert split_frames(buffer) == [(1, b"hello\n"), (2, b"!")] and buffer == bytearray()
        assert seen[0].startswith(b"POST /exec/e1/start HTTP/1.1\r\n") and b"Upgrade: tcp" in seen[0]
        assert seen[0].endswith(b'{"Detach": false, "Tty": false}')
        _, writer = await client.attach_stream("c1", stdin=True, stdout=True, stderr=False)
        writer.write(b"\n")
        writer.close()
        assert seen[1].startswith(b"POST /containers/c1/attach?stream=1&stdin=1&stdout=1&stderr=0 HTTP/1.1")
        with pytest.raises(EngineError, match="^No such exec instance: gone$") as missing:
            await client.exec_stream("gone", tty=True)
        assert missing.value.missing
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    with pytest.raises(EngineError, match="does not answer") as unreachable:
        await client.exec_stream("e1", tty=False)
    assert unreachable.value.status == 0
