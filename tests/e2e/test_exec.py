"""Into a pod on the real lab: `kubectl exec` (with and without a tty), `port-forward` to a pod
and a service, `cp` both ways, a kubelet that refuses strangers, and the UI's shell key.

One lab (cluster "exec", two nodes) serves the module; a web pod runs busybox httpd on port
8080 behind a Service. Everything goes through the real kubectl and the real API server,
which relays to the pod's kubelet, which runs the command through its node's dockerd.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    KUBELET_RUNNABLE,
    LabServer,
    free_port,
    start_lab_server,
    stop_lab_server,
    wait_for,
)

pytestmark = [pytest.mark.lab, pytest.mark.skipif(not KUBELET_RUNNABLE, reason="needs the real kubelet on the nodes")]

WEB = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: tuik8s/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("exec-lab"), "exec")
    try:
        server.lab("up", "--nodes", "2")
        server.kubectl("apply", "-f", "-", input=WEB)
        server.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=120s")
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def kubectl(lab: LabServer, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    cmd = ["kubectl", "--kubeconfig", str(lab.kubeconfig), "--cache-dir", str(lab.home / "kcache"), *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=lab.env())


def test_exec_exit_code_and_streams(lab: LabServer) -> None:
    result = kubectl(lab, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\ncommand terminated with exit code 3\n"
    assert kubectl(lab, "exec", "web", "--", "true").returncode == 0


def test_exec_stdin_piped_through(lab: LabServer) -> None:
    result = kubectl(lab, "exec", "-i", "web", "--", "md5sum", input=b"x" * 300_000)
    assert result.returncode == 0
    assert result.stdout.split()[0].decode() == hashlib.md5(b"x" * 300_000).hexdigest()


def test_exec_megabyte_intact(lab: LabServer) -> None:
    result = kubectl(lab, "exec", "web", "--", "sh", "-c",
                     "head -c 1048576 /dev/urandom > /tmp/mb; md5sum /tmp/mb >&2; cat /tmp/mb")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 1048576
    assert result.stderr.split()[0].decode() == hashlib.md5(result.stdout).hexdigest()


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pty")
def test_exec_with_tty_and_its_size(lab: LabServer) -> None:
    inner = (f"stty cols 101 rows 33; KUBECONFIG={lab.kubeconfig} kubectl --cache-dir {lab.home / 'kcache'} "
             "exec -it web -- sh -c 'sleep 1; stty size; tty; exit 7'")
    result = subprocess.run(["script", "-qec", inner, "/dev/null"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60, env=lab.env())
    assert result.returncode == 7, result.stdout + result.stderr
    # the size reaches the tty once the command runs (dockerd cannot size it any earlier)
    assert "33 101" in result.stdout
    assert "/dev/pts/" in result.stdout


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return resp.read().decode()


@pytest.mark.parametrize("target", ["pod/web", "svc/web"])
def test_port_forward_carries_http(lab: LabServer, target: str) -> None:
    port = free_port()
    remote = "8080" if target.startswith("pod/") else "80"
    proc = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(lab.kubeconfig), "--cache-dir", str(lab.home / "kcache"),
         "port-forward", target, f"{port}:{remote}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env())
    try:
        assert proc.stdout is not None
        assert "Forwarding from 127.0.0.1" in proc.stdout.readline()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _get(port), range(24)))
        assert answers == ["hello from web\n"] * 24
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    assert code == 0  # a clean Ctrl-C
    with pytest.raises(OSError):
        _get(port)


def test_cp_both_ways(lab: LabServer, tmp_path: Path) -> None:
    data = os.urandom(500_000)
    (tmp_path / "up.bin").write_bytes(data)
    assert kubectl(lab, "cp", str(tmp_path / "up.bin"), "web:/tmp/up.bin").returncode == 0
    inside = kubectl(lab, "exec", "web", "--", "md5sum", "/tmp/up.bin").stdout.split()[0].decode()
    assert inside == hashlib.md5(data).hexdigest()
    assert kubectl(lab, "cp", "web:/tmp/up.bin", str(tmp_path / "down.bin")).returncode == 0
    assert (tmp_path / "down.bin").read_bytes() == data


def test_kubelet_refuses_exec_without_the_api_servers_token(lab: LabServer) -> None:
    node = lab.kubectl("get", "pod", "web", "-o", "jsonpath={.spec.nodeName}").stdout.strip()
    ip = lab.kubectl("get", "node", node, "-o", "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}").stdout.strip()
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    for path in ("exec/default/web/web?command=id&stdout=true", "portForward/default/web?port=8080",
                 "attach/default/web/web?stdout=true"):
        req = urllib.request.Request(f"https://{ip}:10250/{path}", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        assert caught.value.code == 401, path


# ---- the UI's shell key, in a real terminal ----------------------------------------------------

SESSION = "tuik8s-exec-e2e"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def wait_screen(text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = tmux("capture-pane", "-t", SESSION, "-p")
        if text in shown:
            return shown
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never showed; the screen:\n{tmux('capture-pane', '-t', SESSION, '-p')}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_shell_key_opens_a_shell_and_returns_to_the_ui(lab: LabServer) -> None:
    tmux("kill-session", "-t", SESSION)
    ui = f"KUBECONFIG={lab.kubeconfig} HOME={lab.home} {sys.executable} -m tuik8s.tui"
    subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "45", ui], check=True, timeout=30)
    try:
        wait_screen("Running")
        tmux("send-keys", "-t", SESSION, "/", "web", "Enter")
        wait_screen("/web")
        tmux("send-keys", "-t", SESSION, "s")
        wait_screen("tuik8s: shell in pod/web (container web)")
        wait_screen("/ #")
        tmux("send-keys", "-t", SESSION, "echo inside-$((6*7)) $(hostname)", "Enter")
        wait_screen("inside-42 web")
        tmux("send-keys", "-t", SESSION, "exit 4", "Enter")
        shown = wait_screen("shell in pod/web (web) ended with exit code 4")
        assert "NAME" in shown and "Running" in shown  # the list is back
        tmux("send-keys", "-t", SESSION, "q")
        # the UI still answers its keys after the shell: q quits it, which ends the session
        wait_for(lambda: subprocess.run(["tmux", "has-session", "-t", SESSION], capture_output=True).returncode != 0)
    finally:
        tmux("kill-session", "-t", SESSION)
