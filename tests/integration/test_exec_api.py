"""`kubectl exec`, `attach`, `port-forward` and `cp` against a real `tuik8s server`.

The first tests need no node: what the API server answers before any kubelet is involved
(who may exec, which pod and container, a pod with no node). The rest run the real
kubelet on this host's Docker engine (as tests/integration/test_kubelet_docker.py does),
so the whole path kubectl -> API server -> kubelet -> dockerd is exercised without a lab.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.conftest import RunningServer, free_port, wait_for
from tests.integration.test_kubelet_docker import (  # noqa: F401 - the fixture is used by name
    HostKubelet,
    apply,
    kubelet,
    pod_manifest,
    running_and_ready,
    wait_pod,
)
from tuik8s.apiserver.tokens import add_token


def upgrade(server: RunningServer, path: str, token: str | None, protocol: str = "v5.channel.k8s.io") -> tuple[int, str]:
    """A WebSocket upgrade request by hand: the status line's code and the body."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    req = urllib.request.Request(f"{server.url}{path}", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Protocol": protocol,
        **({"Authorization": f"Bearer {token}"} if token else {}),
    })
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---- the API server alone -------------------------------------------------------------------


@pytest.fixture(scope="module")
def unscheduled(server: RunningServer) -> str:
    """A pod no node runs (this server has no nodes until the kubelet fixture starts)."""
    apply(server, pod_manifest("lonely", [{"name": "main", "command": ["sleep", "3600"]}]))
    return "lonely"


def test_exec_needs_authentication(server: RunningServer, unscheduled: str) -> None:
    status, body = upgrade(server, f"/api/v1/namespaces/default/pods/{unscheduled}/exec?command=true&stdout=true", None)
    assert status == 401
    assert '"reason":"Unauthorized"' in body.replace(" ", "")


def test_read_only_user_cannot_exec(server: RunningServer, unscheduled: str) -> None:
    token = add_token(server.data_dir, "viewer", ["tuik8s:readers"])
    wait_for(lambda: server.kubectl("--token", token, "get", "pods").returncode == 0, timeout=30, interval=0.5)
    result = server.kubectl("--token", token, "exec", unscheduled, "--", "true")
    assert result.returncode == 1
    assert "Error from server (Forbidden)" in result.stderr
    assert "pods/exec" in result.stderr or "exec" in result.stderr


def test_exec_into_missing_pod(server: RunningServer) -> None:
    result = server.kubectl("exec", "ghost", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "ghost" not found'


def test_exec_into_pod_without_node(server: RunningServer, unscheduled: str) -> None:
    result = server.kubectl("exec", unscheduled, "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error from server (BadRequest): pod {unscheduled} does not have a host assigned"


def test_exec_into_unknown_container(server: RunningServer, unscheduled: str) -> None:
    result = server.kubectl("exec", unscheduled, "-c", "nope", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error from server (BadRequest): container nope is not valid for pod {unscheduled}"


def test_port_forward_to_pending_pod(server: RunningServer, unscheduled: str) -> None:
    result = server.kubectl("port-forward", f"pod/{unscheduled}", f"{free_port()}:80", timeout=20)
    assert result.returncode == 1
    assert "unable to forward port because pod is not running. Current status=Pending" in result.stderr


def test_exec_without_an_upgrade_is_refused_clearly(server: RunningServer, unscheduled: str) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    apply(server, pod_manifest("placed", [{"name": "main"}], nodeName="nowhere"))
    req = urllib.request.Request(
        f"{server.url}/api/v1/namespaces/default/pods/placed/exec?command=true&stdout=true", method="POST",
        headers={"Authorization": f"Bearer {server.token}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert caught.value.code == 400
    assert "streams over an upgraded connection" in caught.value.read().decode()
    server.kubectl("delete", "pod", "placed", "--grace-period=0", "--force", check=True)


# ---- through a real kubelet on this host's Docker engine -------------------------------------


@pytest.fixture(scope="module")
def box(server: RunningServer, kubelet: HostKubelet) -> str:  # noqa: F811 - the imported fixture
    apply(server, pod_manifest("box", [{
        "name": "main",
        "command": ["sh", "-c", "mkdir -p /www && echo hello from box > /www/index.html && exec httpd -f -p 8080 -h /www"],
        "ports": [{"containerPort": 8080}],
    }]))
    wait_pod(server, "box", running_and_ready)
    return "box"


def test_exec_exit_code_and_streams(server: RunningServer, box: str) -> None:
    result = server.kubectl("exec", box, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\ncommand terminated with exit code 3\n"


def test_exec_pipes_stdin(server: RunningServer, box: str) -> None:
    result = server.kubectl("exec", "-i", box, "--", "sh", "-c", "tr a-z A-Z", input="piped through\n")
    assert (result.returncode, result.stdout) == (0, "PIPED THROUGH\n")


def test_exec_missing_command(server: RunningServer, box: str) -> None:
    result = server.kubectl("exec", box, "--", "no-such-command")
    assert result.returncode == 1
    assert result.stderr.startswith("error: Internal error occurred: error executing command in container")
    assert 'exec: "no-such-command": executable file not found in $PATH' in result.stderr


def test_exec_megabyte_intact(server: RunningServer, box: str) -> None:
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"),
           "exec", box, "--", "sh", "-c", "head -c 1048576 /dev/urandom > /tmp/mb; md5sum /tmp/mb >&2; cat /tmp/mb"]
    result = subprocess.run(cmd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 1048576
    assert result.stderr.decode().split()[0] == hashlib.md5(result.stdout).hexdigest()


def test_exec_in_waiting_container(server: RunningServer, kubelet: HostKubelet) -> None:  # noqa: F811
    apply(server, pod_manifest("crashy", [{"name": "main", "command": ["sh", "-c", "exit 1"]}]))
    wait_pod(server, "crashy", lambda p: any(
        "waiting" in (s.get("state") or {}) for s in (p.get("status") or {}).get("containerStatuses") or []))
    result = server.kubectl("exec", "crashy", "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == 'error: unable to upgrade connection: container not found ("main")'


def test_attach_with_kubectl_run(server: RunningServer, kubelet: HostKubelet) -> None:  # noqa: F811
    result = server.kubectl(
        "run", "talker", "--image=tuik8s/busybox:latest", "--image-pull-policy=IfNotPresent", "--restart=Never",
        "-i", "--rm", "--", "sh", "-c", "read line; echo got $line", input="hello\n", timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "got hello" in result.stdout


def test_port_forward_carries_http(server: RunningServer, box: str) -> None:
    port = free_port()
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"),
           "port-forward", f"pod/{box}", f"{port}:8080"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "Forwarding from 127.0.0.1" in proc.stdout.readline()
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                assert resp.read().decode() == "hello from box\n"
        # the pod closing its side ends the forwarded connection at once (a client reading
        # to EOF is not left waiting)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert answer.endswith(b"hello from box\n")
        assert time.monotonic() - started < 5
    finally:
        proc.send_signal(2)
        proc.wait(timeout=10)


def test_port_forward_to_closed_port(server: RunningServer, box: str) -> None:
    port = free_port()
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"),
           "port-forward", f"pod/{box}", f"{port}:9999"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "Forwarding from" in proc.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            assert s.recv(10) == b""  # kubectl closes the connection
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"error forwarding port 9999 to pod {box}_default" in err
    assert "connect: connection refused" in err


def test_cp_both_ways(server: RunningServer, box: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("cp")
    data = os.urandom(200_000)
    (tmp / "up.bin").write_bytes(data)
    server.kubectl("cp", str(tmp / "up.bin"), f"{box}:/tmp/up.bin", check=True)
    inside = server.kubectl("exec", box, "--", "md5sum", "/tmp/up.bin", check=True).stdout.split()[0]
    assert inside == hashlib.md5(data).hexdigest()
    server.kubectl("cp", f"{box}:/tmp/up.bin", str(tmp / "down.bin"), check=True)
    assert (tmp / "down.bin").read_bytes() == data


def test_kubelet_refuses_exec_without_its_token(kubelet: HostKubelet, box: str) -> None:  # noqa: F811
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def call(token: str | None) -> int:
        req = urllib.request.Request(
            f"https://{kubelet.node_ip}:{kubelet.log_port}/exec/default/{box}/main?command=true&stdout=true",
            headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                     "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    assert call(None) == 401
    assert call("guessed") == 401
    for path in ("portForward/default/box?port=8080", "attach/default/box/main?stdout=true"):
        req = urllib.request.Request(f"https://{kubelet.node_ip}:{kubelet.log_port}/{path}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        assert caught.value.code == 401


def test_official_python_client_exec_and_port_forward(server: RunningServer, box: str) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    api = client.CoreV1Api(config.new_client_from_config(str(server.kubeconfig)))
    resp = stream(api.connect_get_namespaced_pod_exec, box, "default", command=["sh", "-c", "echo hi; exit 2"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    assert (resp.read_stdout(), resp.returncode) == ("hi\n", 2)
    forward = portforward(api.connect_get_namespaced_pod_portforward, box, "default", ports="8080")
    sock = forward.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"hello from box\n")
    sock.close()


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_exec_and_port_forward_over_either_transport(server: RunningServer, box: str, transport: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # kubectl falls back to SPDY when a WebSocket is refused; these make it use SPDY at once
    flag = "true" if transport == "websocket" else "false"
    monkeypatch.setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", flag)
    monkeypatch.setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", flag)
    result = server.kubectl("exec", "-i", box, "--", "sh", "-c", "tr a-z A-Z; echo err >&2; exit 4", input="abc\n")
    assert (result.returncode, result.stdout, result.stderr) == (4, "ABC\n", "err\ncommand terminated with exit code 4\n")
    port = free_port()
    cmd = ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(server.home / "kcache"),
           "port-forward", f"pod/{box}", f"{port}:8080"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        assert "Forwarding from 127.0.0.1" in proc.stdout.readline()
        for _ in range(2):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                assert resp.read().decode() == "hello from box\n"
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
