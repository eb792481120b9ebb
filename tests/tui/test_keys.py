"""Every key of the UI, pressed in the real app against a real server, checked on the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import NS, SIZE, editor_script, rows_of, screen_text, status_text, until
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError
from tuik8s.tui.app import TuiApp
from tuik8s.tui.screens.logs import LogsScreen
from tuik8s.tui.screens.map import MapScreen
from tuik8s.tui.screens.text import TextScreen

pytestmark = pytest.mark.usefixtures("kubeconfig")


async def web_pods(api: ApiClient) -> list[dict]:
    return [p for p in (await api.list("pods", NS, label_selector="app=web")).items
            if not p["metadata"].get("deletionTimestamp")]


async def command(pilot, text: str) -> None:
    await pilot.press("colon", *text, "enter")


# ---- lists, filter, views, sorting ------------------------------------------------------------


async def test_pods_list_live_and_filter_narrows(api: ApiClient):
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count >= 2 and app.browser.feed.synced, "the web pods")
        pods = await web_pods(api)
        # the rows are in the model; the screen shows them at its next refresh
        def shown() -> str | None:
            text = screen_text(app)
            return text if all(p["metadata"]["name"] in text for p in pods) else None

        text = await until(pilot, shown, "the web pods on screen")
        assert "NAME" in text and "READY" in text and "STATUS" in text and "RESTARTS" in text
        assert "NAMESPACE" not in text  # one namespace: kubectl hides the column
        assert "Running" in text
        # a pod created now appears without any key
        await api.create("configmaps", {"metadata": {"name": "marker"}}, NS)
        lonely = {"metadata": {"name": "lonely"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        await api.create("pods", lonely, NS)
        await until(pilot, lambda: f"{NS}/lonely" in table.model.index, "the new pod row")
        total = table.row_count
        await pilot.press("slash", *"lonel")
        await until(pilot, lambda: table.row_count == 1, "the filter")
        await pilot.press("enter")
        assert "lonely" in screen_text(app) and f"[1/{total}]" in screen_text(app)
        await pilot.press("escape")
        assert table.row_count == total
        await api.delete("pods", "lonely", NS)


async def test_command_bar_switches_views_and_namespaces():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        browser = app.browser
        for typed, view, expect in (
            ("svc", "services", "web-svc"), ("dp", "deployments", "web"), ("deploy", "deployments", "UP-TO-DATE"),
            ("rs", "replicasets", "DESIRED"), ("no", "nodes", "tui-node-0"), ("ns", "namespaces", NS),
            ("ev", "events", "TuiTestEvent"), ("cm", "configmaps", "app-config"), ("ing", "ingresses", "CLASS"),
            ("ds", "daemonsets", "NODE SELECTOR"), ("jobs", "jobs", "COMPLETIONS"), ("secrets", "secrets", "TYPE"),
            ("pods", "pods", "RESTARTS"), ("po", "pods", "READY"), ("services", "services", "CLUSTER-IP"),
            ("ep", "endpoints", "web-svc"), ("endpointslices", "endpointslices", "web-svc-"),
        ):
            await command(pilot, typed)
            assert browser.spec.name == view, typed
            await until(pilot, lambda e=expect: e in screen_text(app), f"{expect} in :{typed}")
        # :ns picks the namespace by enter; 0 shows all namespaces
        await command(pilot, "ns")
        await rows_of(pilot, app, NS)
        await pilot.press("enter")
        assert browser.spec.name == "pods" and browser.namespace == NS
        await pilot.press("0")
        assert browser.namespace is None
        await until(pilot, lambda: "NAMESPACE" in screen_text(app), "the NAMESPACE column")
        await command(pilot, f"po {NS}")
        assert browser.namespace == NS
        await command(pilot, "nosuchthing")
        assert "unknown command" in status_text(app)
        # esc walks back through the views
        await command(pilot, "svc")
        await pilot.press("escape")
        assert browser.spec.name == "pods"


async def test_sorting_by_shift_letter_and_header_click(api: ApiClient):
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count >= 2 and app.browser.feed.synced, "pods")
        await pilot.press("N")
        model = table.model
        assert model.sort_col == 1 and not model.sort_reverse
        names = [model.rows[k][1] for k in model.order]
        assert names == sorted(names)
        await pilot.press("N")
        assert model.sort_reverse
        assert [model.rows[k][1] for k in model.order] == sorted(names, reverse=True)
        assert "NAME↓" in screen_text(app)
        await pilot.press("A")
        assert model.spec.columns[model.sort_col].name == "AGE"
        # clicking a header sorts by that column; clicking a row selects it
        await pilot.click("#table", offset=(2, 0))
        assert model.spec.columns[model.sort_col].name == "NAME"
        await pilot.click("#table", offset=(5, 2))
        assert table.cursor == 1


# ---- workloads ----------------------------------------------------------------------------------


async def test_scale_dialog_and_plus_minus(api: ApiClient):
    await api.create("deployments.apps", {
        "metadata": {"name": "scaler"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "scaler"}},
                 "template": {"metadata": {"labels": {"app": "scaler"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}, NS)

    async def replicas() -> int:
        return (await api.get("deployments.apps", "scaler", NS))["spec"]["replicas"]

    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "dp")
        await rows_of(pilot, app, f"{NS}/scaler")
        await pilot.press("s")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ScaleDialog", "the scale dialog")
        await pilot.press("3", "enter")
        await until(pilot, lambda: _eq(replicas(), 3), "replicas 3")
        await until(pilot, lambda: app.browser.feed.get(f"{NS}/scaler")["spec"]["replicas"] == 3, "the cache")
        await pilot.press("plus")
        await until(pilot, lambda: _eq(replicas(), 4), "replicas 4")
        await pilot.press("minus", "minus")
        await until(pilot, lambda: _eq(replicas(), 2), "replicas 2")
        assert "scaled to 2" in status_text(app)
        # scale makes no sense on a service: one line says so
        await command(pilot, "svc")
        await rows_of(pilot, app, f"{NS}/web-svc")
        await pilot.press("s")
        assert "does not apply to services" in status_text(app)
    await api.delete("deployments.apps", "scaler", NS)


async def _eq(value, want) -> bool:
    return (await value) == want


async def test_restart_deployment_sets_restarted_at(api: ApiClient):
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "dp")
        await rows_of(pilot, app, f"{NS}/web")
        await pilot.press("r")

        async def restarted() -> bool:
            obj = await api.get("deployments.apps", "web", NS)
            return "kubectl.kubernetes.io/restartedAt" in (obj["spec"]["template"]["metadata"].get("annotations") or {})

        await until(pilot, restarted, "the restartedAt annotation")
        assert "restarted" in status_text(app)


async def test_restart_pod_deletes_it_and_its_replacement_appears(api: ApiClient):
    before = {p["metadata"]["name"] for p in await web_pods(api)}
    victim = sorted(before)[0]
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await rows_of(pilot, app, f"{NS}/{victim}")
        await pilot.press("r")

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in await web_pods(api)}
            return victim not in names and len(names) >= 2

        await until(pilot, replaced, "a replacement pod", within=30)
        table = app.browser.table
        await until(pilot, lambda: f"{NS}/{victim}" not in table.model.rows, "the old row to go")


async def test_delete_asks_then_deletes(api: ApiClient):
    await api.create("services", {"metadata": {"name": "doomed"}, "spec": {"ports": [{"port": 81}]}}, NS)
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "svc")
        await rows_of(pilot, app, f"{NS}/doomed")
        await pilot.press("ctrl+d")
        await until(pilot, lambda: "Delete service/doomed in tui?" in screen_text(app), "the confirmation")
        await pilot.press("escape")  # cancel: nothing happens
        await pilot.pause(0.3)
        assert await api.get("services", "doomed", NS)
        await pilot.press("ctrl+d")
        await until(pilot, lambda: "Delete service/doomed" in screen_text(app), "the confirmation")
        await pilot.press("y")

        async def gone() -> bool:
            try:
                await api.get("services", "doomed", NS)
            except ApiError as e:
                return e.code == 404
            return False

        await until(pilot, gone, "the service to be deleted")
        await until(pilot, lambda: f"{NS}/doomed" not in app.browser.table.model.rows, "its row to go")


async def test_api_error_is_one_line_in_the_status_bar():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "ns")
        await rows_of(pilot, app, "default")
        await pilot.press("ctrl+d")
        await until(pilot, lambda: "Delete namespace/default?" in screen_text(app), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "Forbidden" in status_text(app), "the error line")
        line = status_text(app)
        assert "\n" not in line and line.startswith("Error from server (Forbidden)")
        assert app.screen is app.browser  # the app is still usable
        await pilot.press("down")


# ---- viewing ------------------------------------------------------------------------------------


async def test_describe_shows_fields_and_events():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "dp")
        await rows_of(pilot, app, f"{NS}/web")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, TextScreen) and app.screen.text, "the describe page")
        text = app.screen.text
        assert "Name:" in text and "web" in text and "Replicas:" in text and "desired" in text
        assert "Events:" in text and "TuiTestEvent" in text
        assert "TuiTestEvent" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is app.browser


async def test_yaml_shows_the_object():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "svc")
        await rows_of(pilot, app, f"{NS}/web-svc")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, TextScreen) and app.screen.text, "the YAML page")
        text = app.screen.text
        assert "kind: Service" in text and "name: web-svc" in text and "managedFields" not in text
        assert "kind: Service" in screen_text(app)


async def test_logs_screen_opens_and_shows_the_error_line(api: ApiClient):
    pod = sorted(p["metadata"]["name"] for p in await web_pods(api))[0]
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await rows_of(pilot, app, f"{NS}/{pod}")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs screen")
        screen = app.screen
        # hollow nodes run no containers: whatever the server answers, the screen says it
        await until(pilot, lambda: screen.error is not None or "streaming" in screen_text(app)
                    or "ended" in screen_text(app), "the log stream or its error")
        if screen.error is not None:
            assert "\n" not in screen.error
            assert screen.error in screen_text(app)
        await pilot.press("p")  # the previous run: a new stream
        assert screen.previous
        await pilot.press("escape")
        assert app.screen is app.browser


# ---- edit and apply -----------------------------------------------------------------------------


async def test_edit_in_editor_applies_the_change(api: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, """
text = open(path).read()
obj = yaml.safe_load("\\n".join(l for l in text.splitlines() if not l.startswith("#")))
obj["metadata"].setdefault("labels", {})["edited"] = "by-editor"
obj["data"]["mode"] = "edited"
open(path, "w").write(yaml.safe_dump(obj))
"""))
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "cm")
        await rows_of(pilot, app, f"{NS}/app-config")
        await pilot.press("e")

        async def edited() -> bool:
            obj = await api.get("configmaps", "app-config", NS)
            return obj["data"]["mode"] == "edited" and obj["metadata"]["labels"]["edited"] == "by-editor"

        await until(pilot, edited, "the edit to be applied")
        assert "edited" in status_text(app)


async def test_edit_conflict_keeps_the_edit_and_reopens_it(api: ApiClient, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, cluster):
    await api.create("configmaps", {"metadata": {"name": "contested"}, "data": {"a": "1"}}, NS)
    # the editor changes the object behind our back, then saves its own change
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, f"""
import subprocess
subprocess.run(["kubectl", "--kubeconfig", {str(cluster.kubeconfig)!r}, "-n", "{NS}", "label", "configmap",
                "contested", "other=change", "--overwrite"], check=True, capture_output=True)
text = open(path).read()
obj = yaml.safe_load("\\n".join(l for l in text.splitlines() if not l.startswith("#")))
obj["data"]["a"] = "mine"
open(path, "w").write(yaml.safe_dump(obj))
"""))
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "cm")
        await rows_of(pilot, app, f"{NS}/contested")
        await pilot.press("e")
        await until(pilot, lambda: "Conflict" in status_text(app), "the conflict line", within=20)
        line = status_text(app)
        assert "your edit is kept" in line and "\n" not in line
        assert (await api.get("configmaps", "contested", NS))["data"]["a"] == "1"
        # reopen: the kept edit, rebased on the fresh object, is saved as it is
        monkeypatch.setenv("EDITOR", editor_script(tmp_path, "pass\n"))
        await pilot.press("e")

        async def applied() -> bool:
            obj = await api.get("configmaps", "contested", NS)
            return obj["data"]["a"] == "mine" and obj["metadata"]["labels"].get("other") == "change"

        await until(pilot, applied, "the kept edit to be applied", within=20)


async def test_edit_invalid_is_one_line_and_kept(api: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, """
text = open(path).read()
open(path, "w").write(text.replace("replicas: 2", "replicas: -5", 1))
"""))
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "dp")
        await rows_of(pilot, app, f"{NS}/web")
        await pilot.press("e")
        await until(pilot, lambda: "Invalid" in status_text(app) or "invalid" in status_text(app), "the validation error")
        assert "your edit is kept" in status_text(app)
        assert (await api.get("deployments.apps", "web", NS))["spec"]["replicas"] == 2


async def test_apply_a_manifest_file(api: ApiClient, tmp_path: Path):
    manifest = tmp_path / "extra.yaml"
    manifest.write_text("""
apiVersion: v1
kind: ConfigMap
metadata: {name: applied-one}
data: {x: "1"}
---
apiVersion: v1
kind: Service
metadata: {name: applied-svc}
spec: {ports: [{port: 90}]}
""")
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ApplyDialog", "the apply dialog")
        await pilot.press(*str(manifest), "enter")

        async def applied() -> bool:
            try:
                await api.get("configmaps", "applied-one", NS)
                await api.get("services", "applied-svc", NS)
            except ApiError:
                return False
            return True

        await until(pilot, applied, "the applied objects")
        assert "applied configmap/applied-one, service/applied-svc" in status_text(app)
        # applying again updates in place
        manifest.write_text(manifest.read_text().replace('x: "1"', 'x: "2"'))
        await pilot.press("a")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ApplyDialog", "the apply dialog")
        await pilot.press(*str(manifest), "enter")
        await until(pilot, lambda: _eq(_data(api, "applied-one"), {"x": "2"}), "the update")


async def _data(api: ApiClient, name: str) -> dict:
    return (await api.get("configmaps", name, NS))["data"]


# ---- nodes --------------------------------------------------------------------------------------


async def test_cordon_uncordon_and_drain(api: ApiClient, cluster):
    from tests.integration.hollow_fixtures import start_hollow

    extra = start_hollow(cluster, 1, "drain-node-")
    try:
        node = "drain-node-0"
        await api.create("deployments.apps", {
            "metadata": {"name": "draining"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "draining"}},
                     "template": {"metadata": {"labels": {"app": "draining"}},
                                  "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                                           "containers": [{"name": "c", "image": "nginx"}]}}}}, NS)
        await api.create("pods", {"metadata": {"name": "bare-on-drain"},
                                  "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}, NS)

        async def on_node() -> list[str]:
            pods = await api.list("pods", NS, field_selector=f"spec.nodeName={node}")
            return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]

        app = TuiApp(namespace=NS)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: _len(on_node(), 3), "three pods on the node", within=30)
            await command(pilot, "no")
            await rows_of(pilot, app, node)

            async def unschedulable() -> bool:
                return bool((await api.get("nodes", node)).get("spec", {}).get("unschedulable"))

            await pilot.press("c")
            await until(pilot, unschedulable, "cordon")
            await until(pilot, lambda: "SchedulingDisabled" in screen_text(app), "the row to say so")
            await pilot.press("u")
            await until(pilot, lambda: _not(unschedulable()), "uncordon")
            await pilot.press("n")
            await until(pilot, lambda: "Drain node/" in screen_text(app), "the drain confirmation")
            await pilot.press("y")
            await until(pilot, unschedulable, "drain cordons")
            await until(pilot, lambda: _len(on_node(), 0), "the pods evicted", within=30)
            await until(pilot, lambda: "drained" in status_text(app), "the drained line")
            assert "3 pods evicted; 1 had no controller" in status_text(app)
            # the lab keys without a lab: one line
            await pilot.press("k")
            await until(pilot, lambda: "not a lab node" in status_text(app), "the lab line")
            await pilot.press("b")
            await until(pilot, lambda: "nothing to bring back" in status_text(app), "the lab line")
        await api.delete("deployments.apps", "draining", NS)
    finally:
        extra.stop()


async def _len(value, n: int) -> bool:
    return len(await value) == n


async def _not(value) -> bool:
    return not await value


async def test_lab_node_actions_are_called():
    calls = []

    class Lab:
        async def stop_node(self, name, node=None):
            calls.append(("stop", name))
            return f"node/{name} stopped"

        async def start_node(self, name, node=None):
            calls.append(("start", name))
            return f"node/{name} started"

    app = TuiApp(namespace=NS, node_actions=Lab())
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "no")
        await rows_of(pilot, app, "tui-node-1")
        await pilot.press("k")
        await until(pilot, lambda: "stopped" in status_text(app), "stop")
        await pilot.press("b")
        await until(pilot, lambda: "started" in status_text(app), "start")
    assert calls == [("stop", "tui-node-1"), ("start", "tui-node-1")]


async def test_cluster_map_shows_nodes_pods_and_works_on_the_selected_node(api: ApiClient):
    pods = [p["metadata"]["name"] for p in await web_pods(api)]
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MapScreen), "the map")
        await until(pilot, lambda: all(p in screen_text(app) for p in pods), "the web pods in the boxes")
        text = screen_text(app)
        assert "tui-node-0" in text and "tui-node-1" in text and "cpu" in text and "mem" in text
        assert "Nodes" in text and "Ready" in text
        # select tui-node-1 and cordon it from the map
        cluster_map = app.screen.map
        cluster_map.action_move(cluster_map.order.index("tui-node-1") - cluster_map.cursor, 0)
        await pilot.press("c")

        async def cordoned() -> bool:
            return bool((await api.get("nodes", "tui-node-1")).get("spec", {}).get("unschedulable"))

        await until(pilot, cordoned, "cordon from the map")
        await until(pilot, lambda: "cordoned" in screen_text(app), "the box to say so")
        await pilot.press("u")
        await until(pilot, lambda: _not(cordoned()), "uncordon from the map")
        await pilot.press("enter")  # its pods
        assert app.screen is app.browser and app.browser.feed.model.filter == "tui-node-1"


# ---- contexts, help, quit -----------------------------------------------------------------------


async def test_context_switch(cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import yaml

    config = yaml.safe_load(cluster.kubeconfig.read_text())
    second = dict(config["contexts"][0])
    second = {"name": "second", "context": dict(second["context"], namespace="default")}
    config["contexts"].append(second)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        first = app.session.context
        await command(pilot, "ctx")
        await until(pilot, lambda: "Context" in screen_text(app) and "second" in screen_text(app), "the context list")
        await pilot.press("escape")
        await command(pilot, "ctx second")
        await until(pilot, lambda: app.session.context == "second", "the switch")
        assert first != "second"
        await until(pilot, lambda: app.browser.feed.synced, "the new session's list")
        await command(pilot, "ctx nowhere")
        assert 'context "nowhere" not found' in status_text(app)
        assert app.session.context == "second"


async def test_help_lists_every_key_and_q_quits():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        text = screen_text(app)
        for key in ("ctrl+d", "describe", "YAML", "edit", "scale", "restart", "logs", "apply", "cordon",
                    "uncordon", "drain", "stop a lab node", "bring a lab node back", ":ctx", "filter",
                    "shift+N NAME"):
            assert key in text, key
        await pilot.press("escape")
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0
