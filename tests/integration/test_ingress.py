"""`tuik8s ingress` in front of real backends, configured through a real `tuik8s server`.

The backends are aiohttp servers on this machine standing in for pods. Endpoints may not
hold loopback addresses (the API server refuses them, as kube-apiserver does), so the
module puts two addresses of the benchmarking range 198.18.0.0/15 on the loopback
interface for its lifetime: traffic still never leaves the machine. That needs root
(CI runs as root); elsewhere the module is skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import RunningServer, free_port, wait_for

BACKEND = textwrap.dedent(r'''
    import asyncio, json, sys
    from aiohttp import web, WSMsgType
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    async def echo(request):
        if request.path == "/stream":
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(b"first\n")
            await asyncio.sleep(3)
            await resp.write(b"second\n")
            return resp
        if request.method == "POST":
            body = await request.read()
            return web.json_response({"backend": name, "received": len(body)})
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(f"{name}: {msg.data}")
            return ws
        return web.json_response({"backend": name, "path": request.path_qs, "headers": dict(request.headers)})
    async def started(app):
        print("ready", flush=True)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.on_startup.append(started)
    app.router.add_route("*", "/{tail:.*}", echo)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
''')

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("curl") is None,
    reason="needs root and iproute2 to add test addresses to the loopback interface, and curl",
)


@dataclass
class Backend:
    name: str
    host: str
    port: int
    proc: subprocess.Popen


@dataclass
class Ingress:
    proc: subprocess.Popen
    http: int
    https: int

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.http}{path}"


@pytest.fixture(scope="module")
def addresses() -> Iterator[list[str]]:
    net = random.randrange(0, 256)
    addrs = [f"198.18.{net}.{i}" for i in (11, 12)]
    added = []
    try:
        for a in addrs:
            subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True, capture_output=True)
            added.append(a)
        yield addrs
    finally:
        for a in added:
            subprocess.run(["ip", "addr", "del", f"{a}/32", "dev", "lo"], capture_output=True)


def start_backend(tmp: Path, name: str, host: str) -> Backend:
    script = tmp / "backend.py"
    if not script.exists():
        script.write_text(BACKEND)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), name, host, str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", f"backend {name} did not start"
    return Backend(name, host, port, proc)


@pytest.fixture(scope="module")
def backends(addresses: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend]]:
    tmp = tmp_path_factory.mktemp("backends")
    started = {
        "one": start_backend(tmp, "one", addresses[0]),
        "two": start_backend(tmp, "two", addresses[1]),
        "shop": start_backend(tmp, "shop", addresses[0]),
    }
    yield started
    for b in started.values():
        b.proc.terminate()
    for b in started.values():
        b.proc.wait(10)


def apply(server: RunningServer, *docs: dict) -> None:
    server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=True)


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def endpoints(name: str, *addrs: tuple[str, int]) -> dict:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": h}], "ports": [{"name": "http", "port": p}]} for h, p in addrs]}


def path(p: str, svc: str, kind: str = "Prefix") -> dict:
    return {"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"name": "http"}}}}


def ingress(name: str, rules: list[dict], cls: str = "tuik8s", tls: list[dict] | None = None) -> dict:
    spec: dict = {"ingressClassName": cls, "rules": rules}
    if tls:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": spec}


def start_ingress(server: RunningServer, *extra: str) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuik8s.cli", "ingress", "--kubeconfig", str(server.kubeconfig), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    err = "" if "ready" in line else proc.stderr.read() if proc.stderr else ""
    return proc, line, err


@pytest.fixture(scope="module")
def ing(server: RunningServer, backends: dict[str, Backend]) -> Iterator[Ingress]:
    one, two, shop = backends["one"], backends["two"], backends["shop"]
    apply(
        server,
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "tuik8s"},
         "spec": {"controller": "tuik8s.io/ingress"}},
        service("blog"), endpoints("blog", (one.host, one.port), (two.host, two.port)),
        service("shop"), endpoints("shop", (shop.host, shop.port)),
        service("empty"),
        # one endpoint answers, the other is a port nobody listens on
        service("flaky"), endpoints("flaky", (two.host, free_port()), (one.host, one.port)),
        ingress("web", [
            {"host": "blog.local", "http": {"paths": [path("/", "blog")]}},
            {"host": "shop.local", "http": {"paths": [path("/", "shop"), path("/blog", "blog")]}},
            {"host": "*.apps.local", "http": {"paths": [path("/", "shop")]}},
            {"host": "empty.local", "http": {"paths": [path("/", "empty")]}},
            {"host": "flaky.local", "http": {"paths": [path("/", "flaky")]}},
        ]),
        ingress("other-class", [{"host": "other.local", "http": {"paths": [path("/", "blog")]}}], cls="nginx"),
    )
    http, https = free_port(), free_port()
    proc, line, err = start_ingress(
        server, "--listen", f"127.0.0.1:{http}", "--https-listen", f"127.0.0.1:{https}", "--workers", "2",
    )
    assert "ready" in line, f"the ingress did not start: {line} {err}"
    yield Ingress(proc, http, https)
    proc.terminate()
    assert proc.wait(15) == 0


def get(ing: Ingress, host: str, path: str = "/", **headers: str) -> tuple[int, str]:
    """One request on a new connection, as curl sends it."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", f"Host: {host}"]
    for k, v in headers.items():
        cmd += ["-H", f"{k.replace('_', '-')}: {v}"]
    out = subprocess.run([*cmd, ing.url(path)], capture_output=True, text=True, timeout=20).stdout
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def backend_of(ing: Ingress, host: str, path: str = "/") -> str | None:
    code, body = get(ing, host, path)
    return json.loads(body)["backend"] if code == 200 else None


def test_hosts_and_paths_pick_the_service(ing: Ingress) -> None:
    assert backend_of(ing, "blog.local") in ("one", "two")
    assert backend_of(ing, "shop.local", "/cart?x=1") == "shop"
    assert backend_of(ing, "shop.local", "/blog/post") in ("one", "two")
    assert backend_of(ing, "shop.local", "/blogs") == "shop"  # prefixes match whole path elements
    assert backend_of(ing, "store.apps.local") == "shop"
    code, body = get(ing, "shop.local", "/cart?x=1")
    assert json.loads(body)["path"] == "/cart?x=1"


def test_round_robin_over_endpoints_on_one_connection(ing: Ingress) -> None:
    async def eight() -> list[str]:
        async with aiohttp.ClientSession() as s:
            seen = []
            for _ in range(8):
                async with s.get(ing.url(), headers={"Host": "blog.local"}) as r:
                    seen.append((await r.json())["backend"])
            return seen

    seen = asyncio.run(eight())
    assert set(seen) == {"one", "two"}
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False)), seen


def test_a_refused_endpoint_is_retried_on_another(ing: Ingress) -> None:
    assert [backend_of(ing, "flaky.local", f"/{i}") for i in range(6)] == ["one"] * 6


def test_404_says_no_rule_matched(ing: Ingress) -> None:
    code, body = get(ing, "nowhere.local", "/some/path")
    assert code == 404
    assert 'no Ingress rule matches host "nowhere.local" and path "/some/path"' in body
    code, _ = get(ing, "other.local")  # an Ingress of another class is not ours
    assert code == 404


def test_503_names_the_service_without_endpoints(ing: Ingress) -> None:
    code, body = get(ing, "empty.local")
    assert code == 503
    assert "service default/empty has no ready endpoints" in body


def test_forwarded_headers(ing: Ingress) -> None:
    code, body = get(ing, "blog.local", "/h", X_Forwarded_For="6.6.6.6")
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers["host"] == "blog.local"
    assert headers["x-forwarded-for"] == "127.0.0.1"  # a client's own value is not trusted
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "blog.local"
    assert headers["x-forwarded-port"] == str(ing.http)


def test_websocket_passes_through(ing: Ingress) -> None:
    async def talk() -> list[str]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ing.url("/ws"), headers={"Host": "shop.local"}) as ws:
                got = []
                for word in ("hello", "again"):
                    await ws.send_str(word)
                    got.append((await ws.receive(timeout=10)).data)
                return got

    assert asyncio.run(talk()) == ["shop: hello", "shop: again"]


def test_bodies_stream_both_ways(ing: Ingress) -> None:
    async def talk() -> tuple[float, bytes, dict]:
        async with aiohttp.ClientSession() as s:
            start = time.monotonic()
            async with s.get(ing.url("/stream"), headers={"Host": "shop.local"}) as r:
                first = await asyncio.wait_for(r.content.readline(), 10)
                took = time.monotonic() - start
            big = b"x" * (3 * 1024 * 1024)
            async with s.post(ing.url("/upload"), data=big, headers={"Host": "shop.local"}) as r:
                return took, first, await r.json()

    took, first, upload = asyncio.run(talk())
    assert first == b"first\n" and took < 2.5  # not held until the body ends, 3 s later
    assert upload == {"backend": "shop", "received": 3 * 1024 * 1024}


def test_status_load_balancer_is_set(server: RunningServer, ing: Ingress) -> None:
    def lb() -> list:
        obj = server.kubectl_json("get", "ingress", "web")
        return (obj.get("status") or {}).get("loadBalancer", {}).get("ingress") or []

    assert wait_for(lb, timeout=10) == [{"ip": "127.0.0.1"}]
    other = server.kubectl_json("get", "ingress", "other-class")
    assert not (other.get("status") or {}).get("loadBalancer", {}).get("ingress")


def _self_signed(tmp: Path, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp / f"{host}.crt", tmp / f"{host}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_tls_terminated_with_the_ingress_secret(server: RunningServer, ing: Ingress, tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path, "secure.local")
    server.kubectl("create", "secret", "tls", "secure-tls", f"--cert={crt}", f"--key={key}", check=True)
    apply(server, ingress("secure", [{"host": "secure.local", "http": {"paths": [path("/", "shop")]}}],
                          tls=[{"hosts": ["secure.local"], "secretName": "secure-tls"}]))
    curl = ["curl", "-s", "--cacert", str(crt), "--resolve", f"secure.local:{ing.https}:127.0.0.1",
            f"https://secure.local:{ing.https}/tls"]

    def served() -> dict | None:
        out = subprocess.run(curl, capture_output=True, text=True, timeout=20)
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout.startswith("{") else None

    answer = wait_for(served, timeout=10, interval=0.2)  # verified against the secret's certificate
    assert answer["backend"] == "shop"
    assert {k.lower(): v for k, v in answer["headers"].items()}["x-forwarded-proto"] == "https"
    # a name no Ingress covers gets the default certificate, which the secret's CA does not sign
    other = subprocess.run(
        ["curl", "-s", "--cacert", str(crt), "--resolve", f"blog.local:{ing.https}:127.0.0.1",
         f"https://blog.local:{ing.https}/"], capture_output=True, timeout=20,
    )
    assert other.returncode == 60  # peer certificate cannot be authenticated


def test_route_change_applies_within_a_second(server: RunningServer, ing: Ingress, backends: dict[str, Backend]) -> None:
    assert get(ing, "new.local")[0] == 404
    apply(server, ingress("late", [{"host": "new.local", "http": {"paths": [path("/", "shop")]}}]))
    start = time.monotonic()
    wait_for(lambda: backend_of(ing, "new.local") == "shop", timeout=5, interval=0.02)
    assert time.monotonic() - start < 1.0
    # an Endpoints change moves traffic as quickly
    two = backends["two"]
    apply(server, endpoints("shop", (two.host, two.port)))
    start = time.monotonic()
    wait_for(lambda: backend_of(ing, "new.local") == "two", timeout=5, interval=0.02)
    assert time.monotonic() - start < 1.0
    apply(server, endpoints("shop", (backends["shop"].host, backends["shop"].port)))
    wait_for(lambda: backend_of(ing, "new.local") == "shop", timeout=5, interval=0.02)


def test_busy_port_is_one_line(server: RunningServer, ing: Ingress) -> None:
    proc, line, err = start_ingress(server, "--listen", f"127.0.0.1:{ing.http}", "--https-listen", "off")
    assert proc.wait(20) == 1
    assert err.strip().splitlines() == [
        f"tuik8s: error: port {ing.http} on 127.0.0.1 is in use: stop what listens there, "
        "or choose another with --listen HOST:PORT"
    ]


def test_no_cluster_is_one_line(tmp_path: Path, server: RunningServer) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    dead = free_port()
    kubeconfig.write_text(server.kubeconfig.read_text().replace(f":{server.port}", f":{dead}"))
    proc = subprocess.run(
        [sys.executable, "-m", "tuik8s.cli", "ingress", "--kubeconfig", str(kubeconfig),
         "--listen", f"127.0.0.1:{free_port()}", "--https-listen", "off"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tuik8s: error: cannot reach the cluster at https://127.0.0.1:{dead}")
