"""Snapshots of the main views over a fixed cluster (tests/tui/fake.py), ages drawn at a
fixed time, so they look the same on every run. `pytest --snapshot-update` rewrites them."""

from __future__ import annotations

import pytest

from tests.tui.fake import NOW, fake_session
from tuik8s.tui.app import TuiApp

SIZE = (160, 45)


def make_app() -> TuiApp:
    return TuiApp(namespace="", session=fake_session())


async def settle(pilot) -> None:
    app = pilot.app
    app.browser.table.clock = lambda: NOW
    app.browser.table.refresh()
    for _ in range(100):
        feed = app.browser.feed
        if feed is not None and feed.synced and app.browser.table.row_count:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    for prompt in app.query("Input"):
        prompt.cursor_blink = False


@pytest.mark.parametrize("keys", [
    pytest.param((), id="pods-all-namespaces"),
    pytest.param(("colon", *"no", "enter"), id="nodes"),
    pytest.param(("colon", *"ns", "enter"), id="namespaces"),
    pytest.param(("slash", *"web"), id="pods-filter-prompt"),
    pytest.param(("question_mark",), id="help"),
])
def test_view(snap_compare, keys):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_cluster_map(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("m")
        await pilot.pause(0.4)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_describe_pod(snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        app = pilot.app
        app.browser.table.select_key("shop/db-0")
        await pilot.press("d")
        await pilot.pause(0.4)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
