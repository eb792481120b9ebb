"""`tuik8s up` in a real terminal (tmux), as a new user runs it: the lab comes up, the demo
apps run, the UI shows them, the map shows the nodes, `q` leaves the cluster running, and
`tuik8s down` stops it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SESSION = "tuik8s-up-e2e"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def screen() -> str:
    return tmux("capture-pane", "-t", SESSION, "-p")


def wait_screen(text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen()
        if text in shown:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never showed; the screen:\n{screen()}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_up_opens_the_ui_on_a_running_lab_and_down_stops_it(tmp_path: Path, lab_images: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}
    cli = [sys.executable, "-m", "tuik8s.cli"]
    up = " ".join([*cli, "up", "--cluster", "tmuxup", "--nodes", "2", "--demo"])
    tmux("kill-session", "-t", SESSION)
    subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "45",
                    f"HOME={home} KUBECONFIG={env['KUBECONFIG']} {up}"], check=True, timeout=30, env=env)
    try:
        shown = wait_screen("Running", timeout=300)
        assert "tuik8s-tmuxup" in shown
        wait_screen("blog-", timeout=60)
        tmux("send-keys", "-t", SESSION, "m")
        shown = wait_screen("node2", timeout=30)
        assert "node1" in shown
        tmux("send-keys", "-t", SESSION, "q")
        time.sleep(2)
        # the cluster keeps running after the UI quits
        out = subprocess.run(["kubectl", "--context", "tuik8s-tmuxup", "get", "nodes", "--no-headers"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.stdout.count(" Ready") == 2, out.stdout + out.stderr
    finally:
        tmux("kill-session", "-t", SESSION)
        down = subprocess.run([*cli, "down", "--cluster", "tmuxup", "--purge"], capture_output=True, text=True,
                              env=env, timeout=180)
    assert down.returncode == 0, down.stderr
    assert "cluster tmuxup is down" in down.stdout
    assert subprocess.run(["docker", "ps", "-q", "--filter", "label=tuik8s.cluster=tmuxup"],
                          capture_output=True, text=True, timeout=30).stdout.strip() == ""
