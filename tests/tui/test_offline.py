"""Views over a fixed cluster (tests/tui/fake.py): what kubectl would print, a missing
resource, the map's marks, a preview that turns into the full list."""

from __future__ import annotations

from tests.tui.conftest import screen_text, status_text, until
from tests.tui.fake import NOW, fake_session, pod, small_cluster
from tuik8s.tui.app import TuiApp
from tuik8s.tui.screens.map import MapScreen

SIZE = (160, 45)


async def test_pod_columns_and_statuses_as_kubectl_prints_them():
    app = TuiApp(namespace="", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        table.clock = lambda: NOW
        await until(pilot, lambda: table.row_count == 7, "seven pods")
        rows = {k: table.model.rows[k] for k in table.model.order}
        assert rows["shop/db-0"][2:5] == ("0/1", "CrashLoopBackOff", "7")
        assert rows["shop/cache-1"][3] == "Terminating"
        assert rows["blog/pending-one"][3] == "Pending" and rows["blog/pending-one"][7] == "<none>"
        assert rows["blog/blog-5f7c9-xyz12"][3] == "ContainerCreating"
        table.refresh()
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "NAMESPACE" in text and "3d1h" in text
        # typing in the filter is typing, not keys: q does not quit, d does not describe
        await pilot.press("slash", "q", "d")
        assert app.is_running and table.model.filter == "qd" and table.row_count == 0
        await pilot.press("escape")
        assert table.row_count == 7


async def test_a_resource_the_server_lacks_is_one_line_and_the_app_goes_on():
    app = TuiApp(namespace="", session=fake_session(missing=("/ingresses",)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", *"ing", "enter")
        await until(pilot, lambda: "could not find the requested resource" in status_text(app), "the error line")
        assert status_text(app).startswith("cannot list ingresses.networking.k8s.io:")
        assert "unavailable" in screen_text(app)
        await pilot.press("colon", *"po", "enter")
        await until(pilot, lambda: app.browser.table.row_count == 7, "the pods again")


async def test_map_marks_not_ready_and_cordoned_nodes_and_unscheduled_pods():
    app = TuiApp(namespace="", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MapScreen) and "pending-one" in screen_text(app), "the map")
        await until(pilot, lambda: "Nodes 3 (Ready 2, not ready 1, cordoned 1)" in screen_text(app), "the summary")
        text = screen_text(app)
        assert "NotReady" in text and "cordoned" in text and "(unscheduled)" in text
        # a pod moves: it leaves one box and shows up in another
        cluster_map = app.screen.map
        moved = pod("shop", "db-0", "node-b", waiting="CrashLoopBackOff", ready=False)
        cluster_map.upsert_pod(moved)
        await pilot.pause(0.3)
        assert "shop/db-0" in cluster_map.nodes["node-b"].pods
        assert "shop/db-0" not in cluster_map.nodes["node-a"].pods
        # arrows move between boxes; describe works on the selected node
        await pilot.press("right")
        assert cluster_map.selected_node == "node-b"
        await pilot.press("d")
        await until(pilot, lambda: "Unschedulable:      True" in screen_text(app), "the node's describe")


async def test_preview_rows_are_replaced_by_the_informer_list():
    objects = small_cluster()
    app = TuiApp(namespace="", session=fake_session(objects))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.browser.feed.synced and app.browser.table.row_count == 7, "the list")
        requests = app.session.client.transport.requests
        assert requests[0][1] == "/api/v1/pods"  # the preview page went first
