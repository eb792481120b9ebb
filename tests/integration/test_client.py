"""The async client, informer and transports against a real `tuik8s server`.

Most tests go over HTTPS to the server the `server` fixture starts, exactly as the
kubelets will. The in-process transport is tested twice: against the API server's own
REST layer (on a store with a tiny watch window, so a real 410 comes back), and against
a scripted handler that changes the world while the informer is not watching, which is
the one way to check that a relist reports every difference.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from tests.integration.conftest import RunningServer, free_port, start_server, stop_server
from tuik8s.client.client import ApiClient, WatchEvent, resource_path
from tuik8s.client.errors import (
    ApiError,
    TransportError,
    is_already_exists,
    is_conflict,
    is_gone,
    is_not_found,
)
from tuik8s.client.informer import NAMESPACE_INDEX, Informer, SharedInformers, namespace_index
from tuik8s.client.kubeconfig import ClusterAccess
from tuik8s.client.transport import HttpTransport, InProcessTransport

# --- helpers -----------------------------------------------------------------------------


def access_to(server: RunningServer) -> ClusterAccess:
    return ClusterAccess(
        context="test",
        server=server.url,
        namespace="default",
        ca_data=server.ca_file.read_bytes(),
        insecure=False,
        token=server.token,
        client_cert=None,
        client_key=None,
    )


@pytest_asyncio.fixture
async def api(server: RunningServer) -> AsyncIterator[ApiClient]:
    client = ApiClient(HttpTransport(access_to(server)))
    yield client
    await client.close()


@pytest_asyncio.fixture
async def ns(api: ApiClient, request: pytest.FixtureRequest) -> str:
    """A fresh namespace named after the test."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    await api.create("namespaces", {"metadata": {"name": name}})
    return name


def configmap(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27"},
                        {"name": "sidecar", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {check}")
        await asyncio.sleep(0.05)


def versions(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in objs}


class Recorder:
    """Informer handlers that write down what they were told."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.log.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.log.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: dict[str, Any]) -> None:
        self.log.append(("delete", obj["metadata"]["name"]))

    def attach(self, informer: Informer) -> None:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)


def count_calls(api: ApiClient, method: str) -> list[int]:
    """Count calls of `api.<method>` (a one-item list, so the test can read it)."""
    calls = [0]
    original = getattr(api, method)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(api, method, counting)
    return calls


# --- reaching the server -----------------------------------------------------------------


async def test_from_kubeconfig_uses_the_context_the_server_wrote(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig))
    async with ApiClient.from_kubeconfig() as client:
        assert client.default_namespace == "default"
        ns = await client.get("namespaces", "default")
        assert ns["metadata"]["name"] == "default"
        version = await client.request("GET", "/version")
        assert version["major"] == "1"


async def test_an_unreachable_server_is_one_readable_line() -> None:
    port = free_port()
    access = ClusterAccess("x", f"https://127.0.0.1:{port}", "default", None, True, "t", None, None)
    async with ApiClient(HttpTransport(access)) as client:
        with pytest.raises(TransportError) as exc:
            await client.get("pods", "p")
        with pytest.raises(TransportError):
            async with aclosing(client.watch("pods")) as events:
                async for _ in events:
                    pass
    assert str(exc.value) == f"cannot reach the API server at https://127.0.0.1:{port}: connection refused"


async def test_a_wrong_token_is_unauthorized(server: RunningServer) -> None:
    access = access_to(server)
    access.token = "not-a-token"
    async with ApiClient(HttpTransport(access)) as client:
        with pytest.raises(ApiError) as exc:
            await client.list("pods")
    assert (exc.value.code, exc.value.reason) == (401, "Unauthorized")


# --- CRUD and concurrency ----------------------------------------------------------------


async def test_configmap_create_get_update_delete(api: ApiClient, ns: str) -> None:
    created = await api.create("configmaps", configmap("settings", {"color": "blue"}), ns)
    assert created["metadata"]["namespace"] == ns
    assert created["metadata"]["uid"]
    assert created["metadata"]["resourceVersion"]

    got = await api.get("configmaps", "settings", ns)
    assert got["data"] == {"color": "blue"}

    got["data"]["color"] = "green"
    updated = await api.update("configmaps", got)
    assert updated["data"] == {"color": "green"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    with pytest.raises(ApiError) as exc:
        await api.create("configmaps", configmap("settings"), ns)
    assert is_already_exists(exc.value) and not is_conflict(exc.value)
    assert exc.value.message == 'configmaps "settings" already exists'

    status = await api.delete("configmaps", "settings", ns)
    assert status["kind"] == "Status" and status["status"] == "Success"
    with pytest.raises(ApiError) as exc:
        await api.get("configmaps", "settings", ns)
    assert is_not_found(exc.value)
    assert (exc.value.code, exc.value.reason) == (404, "NotFound")
    assert str(exc.value) == 'configmaps "settings" not found'


async def test_cluster_scoped_paths_have_no_namespace(api: ApiClient) -> None:
    assert resource_path(api_res("namespaces"), "ignored", "x") == "/api/v1/namespaces/x"
    assert resource_path(api_res("deployments.apps"), "web", "d", "scale") == "/apis/apps/v1/namespaces/web/deployments/d/scale"
    names = [n["metadata"]["name"] for n in (await api.list("namespaces")).items]
    assert {"default", "kube-system"} <= set(names)


def api_res(key: str) -> Any:
    from tuik8s.client.client import resolve

    return resolve(key)


async def test_a_stale_update_is_a_409_conflict_and_changes_nothing(api: ApiClient, ns: str) -> None:
    await api.create("configmaps", configmap("shared", {"n": "0"}), ns)
    first = await api.get("configmaps", "shared", ns)
    second = await api.get("configmaps", "shared", ns)

    first["data"]["n"] = "1"
    await api.update("configmaps", first)
    second["data"]["n"] = "2"
    with pytest.raises(ApiError) as exc:
        await api.update("configmaps", second)
    assert is_conflict(exc.value)
    assert exc.value.code == 409 and exc.value.reason == "Conflict"
    assert "the object has been modified" in exc.value.message
    assert (await api.get("configmaps", "shared", ns))["data"] == {"n": "1"}

    # the same guard on a delete, through preconditions
    with pytest.raises(ApiError) as exc:
        await api.delete("configmaps", "shared", ns, preconditions={"resourceVersion": second["metadata"]["resourceVersion"]})
    assert is_conflict(exc.value)


async def test_list_with_label_selector(api: ApiClient, ns: str) -> None:
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        await api.create("configmaps", configmap(name, labels={"app": app, "tier": "x"}), ns)
    web = await api.list("configmaps", ns, label_selector="app=web")
    assert sorted(o["metadata"]["name"] for o in web.items) == ["a", "b"]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in web.items)
    db = await api.list("configmaps", ns, label_selector={"app": "db", "tier": "x"})
    assert [o["metadata"]["name"] for o in db] == ["c"]
    none = await api.list("configmaps", ns, label_selector="app in (cache)")
    assert none.items == [] and none.resource_version
    by_name = await api.list("configmaps", ns, field_selector="metadata.name=b")
    assert [o["metadata"]["name"] for o in by_name] == ["b"]


async def test_list_pages_with_limit_and_continue(api: ApiClient, ns: str) -> None:
    for i in range(25):
        await api.create("configmaps", configmap(f"cm-{i:02d}"), ns)

    pages = []
    token = None
    while True:
        page = await api.list_page("configmaps", ns, limit=10, continue_token=token)
        pages.append(page)
        token = page.continue_token
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert len({p.resource_version for p in pages}) == 1, "every page is from one snapshot"

    # a write between pages does not show up: the pages read one snapshot
    await api.create("configmaps", configmap("cm-99"), ns)
    everything = await api.list("configmaps", ns, limit=10)
    names = [o["metadata"]["name"] for o in everything.items]
    assert names == sorted(names) and len(set(names)) == len(names) == 26
    assert everything.resource_version


# --- watch -------------------------------------------------------------------------------


async def collect(events: AsyncIterator[WatchEvent], n: int, within: float = 10.0) -> list[WatchEvent]:
    got: list[WatchEvent] = []
    async with asyncio.timeout(within), aclosing(events):  # type: ignore[type-var]
        async for event in events:
            if event.type != "BOOKMARK":
                got.append(event)
            if len(got) == n:
                break
    return got


async def test_watch_from_a_list_sees_added_modified_deleted(api: ApiClient, ns: str) -> None:
    since = (await api.list("configmaps", ns)).resource_version
    await api.create("configmaps", configmap("w", {"v": "1"}), ns)
    await api.patch("configmaps", "w", {"data": {"v": "2"}}, namespace=ns)
    await api.delete("configmaps", "w", ns)

    events = await collect(api.watch("configmaps", ns, resource_version=since, timeout_seconds=10), 3)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert events[1].object["data"] == {"v": "2"}
    rvs = [int(e.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(since)


async def test_live_watch_and_its_end_at_timeout(api: ApiClient, ns: str) -> None:
    await api.create("configmaps", configmap("before"), ns)
    events = api.watch("configmaps", ns, timeout_seconds=1)
    first = await collect(events, 1)
    assert (first[0].type, first[0].object["metadata"]["name"]) == ("ADDED", "before"), "the current state comes first"

    live: list[WatchEvent] = []

    async def watch_until_server_ends_it() -> None:
        async with aclosing(api.watch("configmaps", ns, resource_version=first[0].resource_version, timeout_seconds=1)) as events:
            async for event in events:
                live.append(event)

    task = asyncio.create_task(watch_until_server_ends_it())
    await asyncio.sleep(0.2)
    await api.create("configmaps", configmap("during"), ns)
    async with asyncio.timeout(10):
        await task  # the server ends the watch after timeoutSeconds and the iterator just stops
    assert [(e.type, e.object["metadata"]["name"]) for e in live if e.type != "BOOKMARK"] == [("ADDED", "during")]


async def test_watch_of_one_object_by_name(api: ApiClient, ns: str) -> None:
    since = (await api.list("configmaps", ns)).resource_version
    await api.create("configmaps", configmap("other"), ns)
    await api.create("configmaps", configmap("mine"), ns)
    events = await collect(api.watch("configmaps", ns, name="mine", resource_version=since, timeout_seconds=5), 1)
    assert events[0].object["metadata"]["name"] == "mine"


# --- patch, subresources, events ---------------------------------------------------------


async def test_patch_types(api: ApiClient, ns: str) -> None:
    await api.create("configmaps", configmap("p", {"a": "1"}), ns)

    merged = await api.patch("configmaps", "p", {"data": {"b": "2"}, "metadata": {"labels": {"x": "y"}}}, namespace=ns)
    assert merged["data"] == {"a": "1", "b": "2"} and merged["metadata"]["labels"] == {"x": "y"}

    removed = await api.patch("configmaps", "p", {"data": {"a": None}}, namespace=ns, patch_type="merge")
    assert removed["data"] == {"b": "2"}

    jsonp = await api.patch("configmaps", "p", [{"op": "replace", "path": "/data/b", "value": "3"}], namespace=ns, patch_type="json")
    assert jsonp["data"] == {"b": "3"}
    with pytest.raises(ApiError) as exc:
        await api.patch("configmaps", "p", [{"op": "test", "path": "/data/b", "value": "nope"}], namespace=ns, patch_type="json")
    assert exc.value.code == 422

    stale = {"metadata": {"resourceVersion": merged["metadata"]["resourceVersion"]}, "data": {"c": "4"}}
    with pytest.raises(ApiError) as exc:
        await api.patch("configmaps", "p", stale, namespace=ns)
    assert is_conflict(exc.value)

    await api.create("deployments.apps", deployment("web"), ns)
    strategic = await api.patch(
        "deployments.apps", "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}},
        namespace=ns, patch_type="strategic",
    )
    containers = {c["name"]: c["image"] for c in strategic["spec"]["template"]["spec"]["containers"]}
    assert containers == {"web": "nginx:1.28", "sidecar": "busybox:1.36"}, "containers merge by name"


async def test_server_side_apply_creates_then_updates(api: ApiClient, ns: str) -> None:
    applied = await api.patch("configmaps", "applied", configmap("applied", {"k": "v1"}), namespace=ns, patch_type="apply")
    assert applied["data"] == {"k": "v1"}
    again = await api.patch("configmaps", "applied", configmap("applied", {"k": "v2"}), namespace=ns, patch_type="apply", field_manager="me", force=True)
    assert again["data"] == {"k": "v2"}
    assert again["metadata"]["uid"] == applied["metadata"]["uid"]


async def test_scale_and_update_status(api: ApiClient, ns: str) -> None:
    await api.create("deployments.apps", deployment("web", replicas=1), ns)
    scale = await api.scale("deployments", "web", ns, 3)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert (await api.get("deployments.apps", "web", ns))["spec"]["replicas"] == 3
    got_scale = await api.get_scale("deploy", "web", ns)
    assert got_scale["spec"]["replicas"] == 3 and got_scale["status"]["selector"] == "app=web"
    with pytest.raises(ApiError) as exc:
        await api.scale("deployments.apps", "missing", ns, 2)
    assert is_not_found(exc.value)

    # a Service: no controller writes its status, so this read-modify-write can't race one
    svc = await api.create("services", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}, ns)
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    svc["spec"]["ports"][0]["port"] = 81  # ignored: only status changes through /status
    updated = await api.update_status("services", svc)
    assert updated["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10"}]
    assert updated["spec"]["ports"][0]["port"] == 80


async def test_bind_and_evict_a_pod(api: ApiClient, ns: str) -> None:
    created = await api.create("pods", pod("p1"), ns)
    await api.bind(ns, "p1", "node-a", pod_uid=created["metadata"]["uid"])
    bound = await api.get("pods", "p1", ns)
    assert bound["spec"]["nodeName"] == "node-a"
    scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled and scheduled[0]["status"] == "True"
    with pytest.raises(ApiError) as exc:
        await api.bind(ns, "p1", "node-b")
    assert exc.value.code == 409

    await api.evict(ns, "p1")
    evicted = await api.get("pods", "p1", ns)  # bound: deleted gracefully, the kubelet finishes
    assert evicted["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as exc:
        await api.evict(ns, "nobody")
    assert is_not_found(exc.value)


async def test_logs_of_a_pod_no_node_runs_is_a_bad_request(api: ApiClient, ns: str) -> None:
    await api.create("pods", pod("quiet"), ns)
    with pytest.raises(ApiError) as exc:
        async for _ in api.logs(ns, "quiet"):
            pass
    assert exc.value.code == 400


async def test_record_event_like_upstreams_recorder_and_aggregates_repeats(api: ApiClient, ns: str) -> None:
    cm = await api.create("configmaps", configmap("noted"), ns)
    first = await api.record_event(cm, "Noticed", "saw it", component="test-controller", host="node-a")
    assert first is not None
    assert first["metadata"]["name"].startswith("noted.")
    assert first["metadata"]["namespace"] == ns
    ref = first["involvedObject"]
    assert ref == {
        "kind": "ConfigMap", "namespace": ns, "name": "noted", "uid": cm["metadata"]["uid"],
        "apiVersion": "v1", "resourceVersion": cm["metadata"]["resourceVersion"],
    }
    assert first["source"] == {"component": "test-controller", "host": "node-a"}
    assert first["count"] == 1 and first["type"] == "Normal"
    assert first["reportingComponent"] == "test-controller"
    assert first["firstTimestamp"] == first["lastTimestamp"]

    again = await api.record_event(cm, "Noticed", "saw it", component="test-controller", host="node-a")
    assert again is not None and again["metadata"]["name"] == first["metadata"]["name"]
    assert again["count"] == 2
    other = await api.record_event(cm, "Noticed", "saw something else", "Warning", component="test-controller")
    assert other is not None and other["metadata"]["name"] != first["metadata"]["name"]

    events = await api.list("events", ns, field_selector="involvedObject.name=noted")
    assert sorted(e["count"] for e in events.items) == [1, 2]


async def test_record_event_never_raises(api: ApiClient) -> None:
    ghost = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "no-such-namespace"}}
    assert await api.record_event(ghost, "Noticed", "nowhere to go") is None


# --- informers ---------------------------------------------------------------------------


async def test_informer_cache_converges_across_changes_and_rewatches(api: ApiClient, ns: str) -> None:
    watches = count_calls(api, "watch")
    informer = Informer(api, "configmaps", namespace=ns, watch_timeout=1)
    informer.add_index("app", lambda o: [(o["metadata"].get("labels") or {}).get("app", "")])
    seen = Recorder()
    seen.attach(informer)
    await api.create("configmaps", configmap("pre", labels={"app": "a"}), ns)
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        assert informer.keys() == [f"{ns}/pre"]
        assert seen.log == [("add", "pre")]

        async def converged() -> bool:
            return versions(informer.list()) == versions((await api.list("configmaps", ns)).items)

        await api.create("configmaps", configmap("one", labels={"app": "a"}), ns)
        await api.create("configmaps", configmap("two", labels={"app": "b"}), ns)
        await api.patch("configmaps", "one", {"data": {"x": "1"}}, namespace=ns)
        await api.delete("configmaps", "pre", ns)
        await eventually(converged)
        assert [o["metadata"]["name"] for o in informer.by_index("app", "a")] == ["one"]
        assert informer.get(f"{ns}/one")["data"] == {"x": "1"}  # type: ignore[index]

        # the server closes every watch after a second; changes after that still arrive
        await asyncio.sleep(2.5)
        await api.patch("configmaps", "two", {"metadata": {"labels": {"app": "a"}}}, namespace=ns)
        await api.create("configmaps", configmap("three"), ns)
        await api.delete("configmaps", "one", ns)
        await eventually(converged)
        assert watches[0] >= 2, "the informer watched again after the server ended its watch"
        assert [o["metadata"]["name"] for o in informer.by_index("app", "a")] == ["two"]
        assert informer.by_index("app", "b") == []
        assert seen.log == [
            ("add", "pre"), ("add", "one"), ("add", "two"), ("update", "one"), ("delete", "pre"),
            ("update", "two"), ("add", "three"), ("delete", "one"),
        ]
        assert informer.last_error is None
    finally:
        await informer.stop()


async def test_informer_with_selector_and_late_handler(api: ApiClient, ns: str) -> None:
    await api.create("configmaps", configmap("in", labels={"keep": "yes"}), ns)
    await api.create("configmaps", configmap("out"), ns)
    informer = Informer(api, "configmaps", namespace=ns, label_selector={"keep": "yes"})
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 10)
        late = Recorder()
        late.attach(informer)
        assert late.log == [("add", "in")], "a handler added after sync hears of the cache first"
        # an object that stops matching leaves the cache as a delete
        await api.patch("configmaps", "in", {"metadata": {"labels": {"keep": "no"}}}, namespace=ns)
        await eventually(lambda: informer.keys() == [])
        assert late.log[-1] == ("delete", "in")
    finally:
        await informer.stop()


async def test_shared_informers_hand_out_one_informer_per_watch(api: ApiClient, ns: str) -> None:
    factory = SharedInformers(api)
    pods = factory.informer("pods", namespace=ns)
    assert factory.informer("po", namespace=ns) is pods
    assert factory.informer("pods", namespace=ns, label_selector="a=b") is not pods
    nodes = factory.informer("nodes", namespace="ignored-for-cluster-scope")
    assert factory.informer("nodes") is nodes
    pods.add_index(NAMESPACE_INDEX, namespace_index)
    factory.start()
    try:
        await asyncio.wait_for(factory.wait_synced(), 10)
        late = factory.informer("configmaps", namespace=ns)
        await asyncio.wait_for(late.wait_synced(), 10)  # started because the factory runs
        await api.create("pods", pod("shared"), ns)
        await eventually(lambda: pods.get(f"{ns}/shared") is not None)
        assert [p["metadata"]["name"] for p in pods.by_index(NAMESPACE_INDEX, ns)] == ["shared"]
    finally:
        await factory.stop()


async def test_informer_survives_the_server_going_away(tmp_path: Path) -> None:
    """Connection errors are retried forever; the watch resumes when the server is back."""
    from tuik8s.apiserver.tokens import ensure_admin_token

    port = free_port()
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    token = ensure_admin_token(data)  # the token the server will find and keep
    access = ClusterAccess("x", f"https://127.0.0.1:{port}", "default", None, True, token, None, None)
    home = tmp_path / "home"
    home.mkdir()
    async with ApiClient(HttpTransport(access)) as client:
        informer = Informer(client, "namespaces", backoff_base=0.05, backoff_cap=0.2)
        informer.start()
        try:
            await eventually(lambda: informer.last_error is not None)
            assert "connection refused" in (informer.last_error or "")
            assert not informer.has_synced

            srv = await asyncio.to_thread(start_server, data, home, port)
            try:
                assert srv.token == token
                await asyncio.wait_for(informer.wait_synced(), 20)
                assert "default" in informer.keys()
            finally:
                await asyncio.to_thread(stop_server, srv)
            await eventually(lambda: informer.last_error is not None)

            srv = await asyncio.to_thread(start_server, data, home, port)
            try:
                await client.create("namespaces", {"metadata": {"name": "after-restart"}})
                await eventually(lambda: informer.get("after-restart") is not None, within=20)
            finally:
                await asyncio.to_thread(stop_server, srv)
        finally:
            await informer.stop()


# --- the in-process transport ------------------------------------------------------------


async def test_in_process_transport_runs_the_real_rest_layer_and_its_410(tmp_path: Path) -> None:
    from tuik8s.apiserver.request import ApiRequest, User
    from tuik8s.apiserver.rest import Resources
    from tuik8s.apiserver.strategy import Strategy
    from tuik8s.store.sqlite import SqliteStore

    store = await SqliteStore.open(tmp_path / "state.db", window=5)
    resources = Resources(store, Strategy())
    admin = User("test", ("system:masters",))

    async def handler(method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
        resp = await resources.handle(ApiRequest(method, path, query, headers, body, admin))
        return resp.status, resp.content_type, resp.body, resp.stream

    api = ApiClient(InProcessTransport(handler))
    try:
        await api.create("namespaces", {"metadata": {"name": "default"}})
        await api.create("namespaces", {"metadata": {"name": "other"}})
        cm = await api.create("configmaps", configmap("local", {"a": "1"}))
        assert (await api.get("configmaps", "local"))["data"] == {"a": "1"}
        with pytest.raises(ApiError) as exc:
            await api.get("configmaps", "absent")
        assert is_not_found(exc.value)

        since = cm["metadata"]["resourceVersion"]
        await api.patch("configmaps", "local", {"data": {"a": "2"}})
        events = await collect(api.watch("configmaps", "default", resource_version=since, timeout_seconds=5), 1)
        assert events[0].type == "MODIFIED"

        # writes elsewhere push `since` out of the five-revision window: a real 410
        for i in range(8):
            await api.create("configmaps", configmap(f"noise-{i}"), "other")
        with pytest.raises(ApiError) as exc:
            await collect(api.watch("configmaps", "default", resource_version=since), 1)
        assert is_gone(exc.value) and exc.value.reason == "Expired"

        lists = count_calls(api, "list")
        informer = Informer(api, "configmaps", namespace="default", watch_timeout=1, backoff_base=0.01)
        seen = Recorder()
        seen.attach(informer)
        informer.start()
        try:
            await asyncio.wait_for(informer.wait_synced(), 10)
            # the informer's resourceVersion only moves with events in "default" (or
            # bookmarks); noise elsewhere compacts it away before the next re-watch (the
            # store compacts in steps, so it takes more than twice the window to be sure)
            for i in range(8, 23):
                await api.create("configmaps", configmap(f"noise-{i}"), "other")
            await eventually(lambda: lists[0] >= 2, within=10)
            await api.create("configmaps", configmap("after-relist"))
            await eventually(lambda: informer.get("default/after-relist") is not None)
            assert seen.log == [("add", "local"), ("add", "after-relist")], "a relist with no change emits nothing"
        finally:
            await informer.stop()
    finally:
        await api.close()
        await store.close()


class ScriptedConfigMaps:
    """A handler serving configmaps of one namespace, with watches that follow a script.

    Each watch takes the next plan: "expire" answers with a 410 ERROR event, "end" ends at
    once, anything else (the default) stays open until the test closes it.
    """

    def __init__(self) -> None:
        self.rv = 0
        self.objects: dict[str, dict[str, Any]] = {}
        self.plans: deque[str] = deque()
        self.watch_queries: list[dict[str, str]] = []
        self.open_watches: list[asyncio.Queue[bytes | None]] = []

    def put(self, name: str, data: dict[str, str]) -> None:
        self.rv += 1
        uid = (self.objects.get(name) or {}).get("metadata", {}).get("uid", f"uid-{name}")
        self.objects[name] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": str(self.rv)},
            "data": data,
        }

    def drop(self, name: str) -> None:
        self.rv += 1
        del self.objects[name]

    async def handler(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
        assert path == "/api/v1/namespaces/ns/configmaps", path
        if query.get("watch") != "true":
            doc = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.rv)},
                   "items": list(self.objects.values())}
            # halves of a body, like a socket might cut it, reassembled by the transport
            return 200, "application/json", b"", _chunked(orjson.dumps(doc), 7)
        self.watch_queries.append(query)
        plan = self.plans.popleft() if self.plans else "open"
        if plan == "expire":
            error = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                 "reason": "Expired", "code": 410, "message": "too old resource version"}}
            return 200, "application/json", b"", _chunked(orjson.dumps(error) + b"\n", 5)
        if plan == "end":
            return 200, "application/json", b"", _chunked(b"", 1)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.open_watches.append(queue)
        return 200, "application/json", b"", _from_queue(queue)

    def send(self, etype: str, obj: dict[str, Any]) -> None:
        line = orjson.dumps({"type": etype, "object": obj}) + b"\n"
        for queue in self.open_watches:
            # split mid-line: the transport must put lines back together
            queue.put_nowait(line[:10])
            queue.put_nowait(line[10:])

    def close_watches(self) -> None:
        for queue in self.open_watches:
            queue.put_nowait(None)
        self.open_watches.clear()


async def _chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def _from_queue(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    while (chunk := await queue.get()) is not None:
        yield chunk


async def test_informer_relist_after_410_reports_every_difference() -> None:
    api_side = ScriptedConfigMaps()
    api_side.put("kept", {"v": "1"})
    api_side.put("changed", {"v": "1"})
    api_side.put("removed", {"v": "1"})
    api = ApiClient(InProcessTransport(api_side.handler))
    informer = Informer(api, "configmaps", namespace="ns", backoff_base=0.01, backoff_cap=0.02)
    seen = Recorder()
    seen.attach(informer)
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        assert sorted(seen.log) == [("add", "changed"), ("add", "kept"), ("add", "removed")]
        await eventually(lambda: len(api_side.open_watches) == 1)
        assert api_side.watch_queries[0]["resourceVersion"] == "3"

        api_side.put("live", {"v": "1"})
        api_side.send("ADDED", api_side.objects["live"])
        api_side.rv = 6  # writes elsewhere, which only a bookmark tells of
        api_side.send("BOOKMARK", {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": "6"}})
        await eventually(lambda: informer.resource_version == "6")
        assert seen.log[-1] == ("add", "live")

        # the world changes while no watch is open, and the next watch is too late
        api_side.plans.extend(["end", "expire"])
        api_side.close_watches()
        api_side.put("changed", {"v": "2"})
        api_side.drop("removed")
        api_side.put("new", {"v": "1"})
        await eventually(lambda: len(api_side.open_watches) == 1)

        assert api_side.watch_queries[1]["resourceVersion"] == "6", "re-watch from the bookmark"
        assert api_side.watch_queries[2]["resourceVersion"] == "6"
        assert api_side.watch_queries[3]["resourceVersion"] == "9", "from the relist"
        assert sorted(seen.log[4:]) == [("add", "new"), ("delete", "removed"), ("update", "changed")]
        assert sorted(informer.keys()) == ["ns/changed", "ns/kept", "ns/live", "ns/new"]
        assert informer.get("ns/changed")["data"] == {"v": "2"}  # type: ignore[index]
    finally:
        await informer.stop()


async def test_in_process_errors_and_line_splitting() -> None:
    from tuik8s.api import errors as api_errors

    async def handler(method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Any:
        if path.endswith("/raises"):
            raise api_errors.not_found("configmaps", "raises")
        if path.endswith("/broken"):
            raise RuntimeError("bug")
        if path.endswith("/log"):
            return 200, "text/plain", b"", _chunked(b"one\ntw" + b"o\n\nthree", 3)
        return 503, "text/html", b"<html>\nbusy</html>", None

    api = ApiClient(InProcessTransport(handler))
    with pytest.raises(ApiError) as exc:
        await api.get("configmaps", "raises", "ns")
    assert is_not_found(exc.value) and exc.value.message == 'configmaps "raises" not found'
    with pytest.raises(ApiError) as exc:
        await api.get("configmaps", "broken", "ns")
    assert exc.value.code == 500 and exc.value.reason == "InternalError"
    with pytest.raises(ApiError) as exc:
        await api.get("configmaps", "other", "ns")
    assert (exc.value.code, exc.value.reason) == (503, "ServiceUnavailable")
    assert exc.value.message == "the server answered 503 service unavailable: <html> busy</html>"
    assert [line async for line in api.logs("ns", "p")] == [b"one", b"two", b"", b"three"]
