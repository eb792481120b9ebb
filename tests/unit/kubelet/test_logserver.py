"""The kubelet's log endpoint: query parsing, bearer-token auth, streaming, errors."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tuik8s.kubelet.logserver import (
    BadQuery,
    LogLookupError,
    LogServer,
    TokenFile,
    ensure_self_signed,
    log_url,
    parse_log_query,
)


def test_parse_log_query() -> None:
    assert parse_log_query({}) == {
        "follow": False, "previous": False, "timestamps": False, "tail_lines": None, "since": None, "limit_bytes": None,
    }
    q = parse_log_query({"follow": "true", "tailLines": "10", "previous": "1", "timestamps": "true",
                         "sinceSeconds": "60", "limitBytes": "5"}, now=1000.0)
    assert q == {"follow": True, "previous": True, "timestamps": True, "tail_lines": 10, "since": 940.0, "limit_bytes": 5}
    assert parse_log_query({"sinceTime": "1970-01-01T00:01:40Z"})["since"] == 100.0
    for bad in ({"tailLines": "x"}, {"tailLines": "-1"}, {"sinceSeconds": "0"}, {"sinceTime": "yesterday"}):
        with pytest.raises(BadQuery):
            parse_log_query(bad)


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    assert not TokenFile(None).accepts("Bearer anything")
    tokens = TokenFile(path)
    assert not tokens.accepts("Bearer abc")  # no file yet
    path.write_text("# the API server\nabc\n\n")
    assert tokens.accepts("Bearer abc")
    assert tokens.accepts("bearer abc")
    assert not tokens.accepts("Bearer abcd")
    assert not tokens.accepts("Basic abc")
    assert not tokens.accepts(None)
    path.write_text("xyz-longer\n")
    assert tokens.accepts("Bearer xyz-longer") and not tokens.accepts("Bearer abc")


def test_self_signed_certificate_is_kept_until_it_no_longer_fits(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, "node-1", "10.0.0.5")
    first = cert.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert ensure_self_signed(tmp_path, "node-1", "10.0.0.5")[0].read_bytes() == first
    assert ensure_self_signed(tmp_path, "node-1", "10.0.0.6")[0].read_bytes() != first


def test_log_url() -> None:
    assert log_url("10.0.0.5", 10250, "default", "web", "app") == "https://10.0.0.5:10250/containerLogs/default/web/app"
    assert log_url("fd00::5", 10250, "ns", "p", "c", tls=False) == "http://[fd00::5]:10250/containerLogs/ns/p/c"


class FakeRuntime:
    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def logs(self, container_id: str, **opts: Any) -> AsyncIterator[bytes]:
        self.asked.append((container_id, opts))
        for line in (b"one\n", b"two\n", b"three\n"):
            yield line


async def find(namespace: str, pod: str, container: str, previous: bool) -> str:
    if pod != "web":
        raise LogLookupError(404, f'pod "{pod}" in namespace "{namespace}" is not on node n1')
    if previous:
        raise LogLookupError(400, f'previous terminated container "{container}" in pod "{pod}" not found')
    return f"id-{container}"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[LogServer, FakeRuntime]]:
    (tmp_path / "tokens").write_text("s3cret\n")
    runtime = FakeRuntime()
    srv = LogServer(find, runtime, host="127.0.0.1", port=0, token_file=tmp_path / "tokens",  # type: ignore[arg-type]
                    cert_dir=tmp_path / "pki", node_name="n1", node_ip="127.0.0.1")
    await srv.start()
    try:
        yield srv, runtime
    finally:
        await srv.stop()


async def get(srv: LogServer, path: str, token: str | None = "s3cret") -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(srv.cert_dir / "kubelet.crt"))  # type: ignore[operator]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{srv.bound_port}{path}", headers=headers, ssl=ctx) as resp:
            return resp.status, await resp.text()


async def test_logs_need_the_token(server: tuple[LogServer, FakeRuntime]) -> None:
    srv, _ = server
    assert (await get(srv, "/containerLogs/default/web/app", token=None))[0] == 401
    assert (await get(srv, "/containerLogs/default/web/app", token="wrong"))[0] == 401
    assert await get(srv, "/healthz", token=None) == (200, "ok")


async def test_logs_stream_with_options(server: tuple[LogServer, FakeRuntime]) -> None:
    srv, runtime = server
    assert await get(srv, "/containerLogs/default/web/app?tailLines=3&timestamps=true&follow=true") == (
        200, "one\ntwo\nthree\n",
    )
    assert runtime.asked[-1] == ("id-app", {"follow": True, "tail_lines": 3, "timestamps": True, "since": None})
    assert await get(srv, "/containerLogs/default/web/app?limitBytes=6") == (200, "one\ntw")


async def test_log_lookup_errors(server: tuple[LogServer, FakeRuntime]) -> None:
    srv, _ = server
    assert await get(srv, "/containerLogs/default/nope/app") == (
        404, 'pod "nope" in namespace "default" is not on node n1\n',
    )
    assert await get(srv, "/containerLogs/default/web/app?previous=true") == (
        400, 'previous terminated container "app" in pod "web" not found\n',
    )
    assert (await get(srv, "/containerLogs/default/web/app?tailLines=x"))[0] == 400
