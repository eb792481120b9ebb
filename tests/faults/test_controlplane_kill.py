"""`kill -9` of the control plane under write load: nothing acknowledged is lost, and a
watch started before the kill resumes (or relists on 410) without missing an event.

Eight writer threads create and update ConfigMaps over their own keep-alive HTTPS
connections and record every write answered 2xx. A watcher thread streams the same
namespace from before the first write. The server is SIGKILLed mid-load and restarted on
the same data dir and port; writers keep going through the outage (failed writes are not
acknowledged, so they may or may not exist). Afterwards every acknowledged write must be
in the store at its acknowledged version or later, and the watcher must have seen every
acknowledged version of every object, in resourceVersion order.
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server, wait_for

NS = "faults"
PATH = f"/api/v1/namespaces/{NS}/configmaps"
WRITERS = 8


class Conn:
    """A keep-alive HTTPS connection that reconnects after the server went away."""

    def __init__(self, server: RunningServer, timeout: float = 10) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))
        self.timeout = timeout
        self.conn: http.client.HTTPSConnection | None = None

    def open(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx, timeout=self.timeout)
        return self.conn

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.server.token}", "Content-Type": "application/json"}
        try:
            conn = self.open()
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError):
            self.close()
            return 0, {}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Record:
    acked: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (rv, value) last acknowledged
    acked_versions: set[tuple[str, int]] = field(default_factory=set)
    failed: int = 0


def writer(server: RunningServer, n: int, stop: threading.Event, rec: Record, lock: threading.Lock) -> None:
    conn = Conn(server)
    k = 0
    while not stop.is_set():
        k += 1
        name = f"w{n}-{k}"
        code, obj = conn.call("POST", PATH, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "0"}})
        if code != 201:
            with lock:
                rec.failed += 1
            time.sleep(0.05)
            continue
        with lock:
            rec.acked[name] = (int(obj["metadata"]["resourceVersion"]), "0")
            rec.acked_versions.add((name, int(obj["metadata"]["resourceVersion"])))
        obj["data"]["v"] = "1"
        code, updated = conn.call("PUT", f"{PATH}/{name}", obj)
        with lock:
            if code == 200:
                rec.acked[name] = (int(updated["metadata"]["resourceVersion"]), "1")
                rec.acked_versions.add((name, int(updated["metadata"]["resourceVersion"])))
            else:
                rec.failed += 1
    conn.close()


@dataclass
class WatchLog:
    seen: set[tuple[str, int]] = field(default_factory=set)
    order_ok: bool = True
    resumes: int = 0
    relists: int = 0
    last_rv: int = 0


def watcher(server: RunningServer, start_rv: int, stop: threading.Event, log: WatchLog) -> None:
    """A client-go style reflector: watch from the last seen resourceVersion, resume after a
    broken stream, relist on 410 Expired."""
    rv = start_rv
    first = True
    while not stop.is_set():
        conn = Conn(server, timeout=5)
        try:
            c = conn.open()
            c.request("GET", f"{PATH}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=60",
                      headers={"Authorization": f"Bearer {server.token}"})
            resp = c.getresponse()
            if resp.status != 200:
                raise OSError(f"watch answered {resp.status}")
            if not first:
                log.resumes += 1
            first = False
            while not stop.is_set():
                line = resp.readline()
                if not line:
                    break
                event = json.loads(line)
                if event["type"] == "ERROR":
                    if event["object"].get("code") == 410:
                        rv = relist(conn, server, log)
                        log.relists += 1
                        break
                    raise OSError(event["object"].get("message"))
                new_rv = int(event["object"]["metadata"]["resourceVersion"])
                if new_rv <= rv and event["type"] != "BOOKMARK":
                    log.order_ok = False
                rv = max(rv, new_rv)
                if event["type"] in ("ADDED", "MODIFIED"):
                    log.seen.add((event["object"]["metadata"]["name"], new_rv))
                log.last_rv = rv
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.1)  # the server is down: try again, from the same resourceVersion
        finally:
            conn.close()


def relist(conn: Conn, server: RunningServer, log: WatchLog) -> int:
    code, doc = Conn(server).call("GET", PATH)
    assert code == 200
    for item in doc["items"]:
        log.seen.add((item["metadata"]["name"], int(item["metadata"]["resourceVersion"])))
    return int(doc["metadata"]["resourceVersion"])


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(tmp_path / "data", home)
    holder = {"server": srv}
    yield holder
    stop_server(holder["server"])


def test_kill_9_under_write_load_loses_nothing_and_watches_resume(fresh: dict[str, RunningServer]) -> None:
    srv = fresh["server"]
    assert srv.kubectl("create", "namespace", NS).returncode == 0
    code, doc = Conn(srv).call("GET", PATH)
    assert code == 200
    stop, lock, rec, wlog = threading.Event(), threading.Lock(), Record(), WatchLog()
    stop_watch = threading.Event()
    watch_thread = threading.Thread(target=watcher, args=(srv, int(doc["metadata"]["resourceVersion"]), stop_watch, wlog),
                                    daemon=True)
    watch_thread.start()
    threads = [threading.Thread(target=writer, args=(srv, n, stop, rec, lock), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    wait_for(lambda: len(rec.acked) >= 150, timeout=60)
    acked_before_kill = len(rec.acked)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    time.sleep(0.5)  # writers fail against a dead server meanwhile
    restarted = start_server(srv.data_dir, srv.home, port=srv.port)
    fresh["server"] = restarted  # the writers keep the old one: the same port, token and CA
    wait_for(lambda: len(rec.acked) >= acked_before_kill + 150, timeout=60)
    stop.set()
    for t in threads:
        t.join(30)

    # every acknowledged write is there, at its acknowledged version or later
    code, doc = Conn(restarted).call("GET", PATH)
    assert code == 200
    stored = {o["metadata"]["name"]: o for o in doc["items"]}
    lost = [name for name, (rv, value) in rec.acked.items()
            if name not in stored or int(stored[name]["metadata"]["resourceVersion"]) < rv
            or stored[name]["data"]["v"] < value]
    assert not lost, f"{len(lost)} of {len(rec.acked)} acknowledged objects lost: {lost[:10]}"
    assert rec.failed > 0, "the kill should have failed some writes in flight"

    # the watch saw every acknowledged version, in order, across the kill
    final_rv = int(doc["metadata"]["resourceVersion"])
    try:
        wait_for(lambda: wlog.last_rv >= max(rv for rv, _ in rec.acked.values()), timeout=30)
    finally:
        stop_watch.set()
    missed = rec.acked_versions - wlog.seen
    if wlog.relists:
        # after a relist only the latest version of each object is visible, as in client-go
        missed = {(n, rv) for n, rv in missed if rec.acked[n][0] == rv}
    assert not missed, f"the watch missed {len(missed)} acknowledged versions: {sorted(missed)[:10]}"
    assert wlog.order_ok
    print(f"acknowledged {len(rec.acked)} objects ({len(rec.acked_versions)} writes), {rec.failed} failed in the outage, "
          f"0 lost; watch resumed {wlog.resumes}x, relisted {wlog.relists}x, saw {len(wlog.seen)} versions")
    assert wlog.resumes + wlog.relists >= 1
    assert final_rv >= wlog.last_rv
