"""`F` (port-forward), `:pf` (the list of forwards) and `s` (shell) on a fixed cluster.

The UI runs the real `kubectl` for these; here a stand-in `kubectl` on PATH prints what
kubectl prints (`Forwarding from ...`, or an error and exit 1) and waits for Ctrl-C, so the
registry's process handling is the real one.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from tests.tui.conftest import screen_text, status_text, until
from tests.tui.fake import fake_session
from tuik8s.tui.app import TuiApp
from tuik8s.tui.portforward import ACTIVE, PortForwardError, default_ports, parse_ports
from tuik8s.tui.screens.forwards import ForwardsScreen, PortDialog

SIZE = (160, 45)

FAKE_KUBECTL = """#!{python}
import signal, sys, time
args = sys.argv[1:]
if "port-forward" in args:
    local, remote = args[-1].split(":")
    if remote == "9999":
        print('error: unable to forward port because pod is not running. Current status=Pending', flush=True)
        sys.exit(1)
    print(f"Forwarding from 127.0.0.1:{{local}} -> {{remote}}", flush=True)
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    while True:
        time.sleep(1)
sys.exit(3)
"""


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubectl"
    path.write_text(FAKE_KUBECTL.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return path


def test_ports_parse_and_default():
    assert parse_ports("8080:80") == (8080, 80)
    assert parse_ports(" 9000 ") == (9000, 9000)
    with pytest.raises(PortForwardError, match="LOCAL:REMOTE"):
        parse_ports("web")
    with pytest.raises(PortForwardError, match="1 to 65535"):
        parse_ports("0:80")
    assert default_ports({"spec": {"containers": [{"ports": [{"containerPort": 8080}]}]}}) == "8080:8080"
    assert default_ports({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}) == "80:80"


async def test_port_forward_key_starts_one_and_pf_lists_and_stops_it(fake_kubectl: Path):
    app = TuiApp(namespace="shop", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count >= 2, "the shop pods")
        assert table.select_key("shop/web-7d9f8c6b5-abcde")
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, PortDialog), "the port dialog")
        assert "Port-forward pod/web-7d9f8c6b5-abcde" in screen_text(app)
        await pilot.press(*"18080:80", "enter")
        await until(pilot, lambda: "forwarding http://127.0.0.1:18080" in status_text(app), "the forward's status line")
        (forward,) = app.port_forwards.forwards.values()
        assert (forward.state, forward.target, forward.remote) == (ACTIVE, "pod/web-7d9f8c6b5-abcde", 80)
        proc = forward.proc
        assert proc is not None and proc.returncode is None

        await pilot.press("colon", *"pf", "enter")
        await until(pilot, lambda: isinstance(app.screen, ForwardsScreen), "the forwards list")
        await until(pilot, lambda: "127.0.0.1:18080" in screen_text(app), "the forward's row")
        text = screen_text(app)
        assert "pod/web-7d9f8c6b5-abcde" in text and "Active" in text
        await pilot.press("ctrl+d")
        await until(pilot, lambda: not app.port_forwards.forwards, "the forward stopped")
        assert proc.returncode == 0  # stopped with Ctrl-C, as a user stops kubectl
        await until(pilot, lambda: "127.0.0.1:18080" not in screen_text(app), "the row gone")
        await pilot.press("escape")
        assert app.screen is app.browser


async def test_port_forward_failure_is_one_line(fake_kubectl: Path):
    app = TuiApp(namespace="shop", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count >= 2, "the shop pods")
        assert table.select_key("shop/web-7d9f8c6b5-abcde")
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, PortDialog), "the port dialog")
        await pilot.press(*"18081:9999", "enter")
        await until(pilot, lambda: "unable to forward port" in status_text(app), "kubectl's error")
        assert not app.port_forwards.forwards


async def test_forwards_stop_when_the_ui_exits(fake_kubectl: Path):
    app = TuiApp(namespace="shop", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.browser.table.row_count >= 2, "the shop pods")
        forward = await app.port_forwards.start(None, "shop", "pod/db-0", 18082, 5432)
        assert forward.state == ACTIVE
    assert forward.proc is not None and forward.proc.returncode is not None


async def test_port_forward_and_shell_keys_elsewhere():
    app = TuiApp(namespace="shop", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count >= 2, "the shop pods")
        assert table.select_key("shop/web-7d9f8c6b5-abcde")
        await pilot.press("s")  # a pod: a shell, which needs a real terminal
        await until(pilot, lambda: "shell" in status_text(app) or "kubectl" in status_text(app), "the shell's answer")
        assert "no terminal to hand over" in status_text(app) or "kubectl is not on PATH" in status_text(app)
        await pilot.press("colon", *"no", "enter")
        await until(pilot, lambda: app.browser.table.row_count == 3, "the nodes")
        await pilot.press("F")
        await until(pilot, lambda: "port-forward does not apply to nodes" in status_text(app), "the refusal")
