"""A full disk under the data dir: writes fail with a clear error, reads keep working, and
nothing is corrupted once space is freed and the server restarted.

The data dir is a small tmpfs (root only), filled up with a file after the server has
started. A write the store cannot commit is a 500 `InternalError` whose message names the
cause ("database or disk is full"): the request was valid, the server could not keep it,
which is what kube-apiserver answers when etcd is out of space ("etcdserver: mvcc: database
space exceeded" is a 500 too). The write is not acknowledged and not visible.

A data dir that is read-only from the start is refused in one line. Remounting it read-only
under a running server is not possible on Linux (the mount is busy while SQLite holds its
files open for writing), so that case is the full disk's twin, not a test of its own.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.test_controlplane_kill import Conn
from tests.integration.conftest import RunningServer, start_server, stop_server

NS = "disk"
PATH = f"/api/v1/namespaces/{NS}/configmaps"


def _can_mount() -> str | None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root and mount(8) to make a small tmpfs"
    return None


pytestmark = pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))


@pytest.fixture
def small_dir(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "data"
    mnt.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mnt)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def configmap(name: str, size: int = 200) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "x" * size}}


def fill(directory: Path) -> Path:
    """Write zeros until the filesystem has no room left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def test_disk_full_fails_writes_clearly_and_keeps_reads_and_data(small_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    srv: RunningServer = start_server(small_dir, home, extra=("--no-scheduler", "--no-controllers"))
    try:
        api = Conn(srv)
        assert api.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})[0] == 201
        acked = set()
        for i in range(30):
            code, _ = api.call("POST", PATH, configmap(f"before-{i}"))
            assert code == 201
            acked.add(f"before-{i}")
        filler = fill(small_dir)

        # writes fail with a readable 5xx; some may still fit in pages SQLite already has
        failure = None
        for i in range(400):
            code, doc = api.call("POST", PATH, configmap(f"full-{i}", 4000))
            if code == 201:
                acked.add(f"full-{i}")
                continue
            failure = (code, doc)
            break
        assert failure is not None, "no write failed on a full disk"
        code, doc = failure
        assert (code, doc["kind"], doc["reason"]) == (500, "Status", "InternalError"), doc
        assert "disk is full" in doc["message"] and "\n" not in doc["message"], doc
        failed_name = f"full-{i}"
        print(f"disk full after {len(acked)} acknowledged objects: {code} {doc['reason']}: {doc['message']}")

        # reads keep working, and show exactly what was acknowledged
        code, listed = api.call("GET", PATH)
        assert code == 200
        assert {o["metadata"]["name"] for o in listed["items"]} == acked
        result = srv.kubectl("get", "configmaps", "-n", NS, "-o", "name")
        assert result.returncode == 0 and f"configmap/{failed_name}" not in result.stdout
        code, _ = api.call("GET", f"{PATH}/before-0")
        assert code == 200
        # kubectl shows the reason in one line
        result = srv.kubectl("create", "configmap", "from-kubectl", "-n", NS, "--from-literal", "a=" + "b" * 4000)
        assert result.returncode != 0
        assert result.stderr.strip().startswith("error: failed to create configmap: ") or \
            result.stderr.strip().startswith("Error from server (InternalError)"), result.stderr
        assert "disk is full" in result.stderr

        # room again: writes work again without a restart
        filler.unlink()
        code, _ = api.call("POST", PATH, configmap("after-free"))
        assert code == 201
        acked.add("after-free")
    finally:
        stop_server(srv)

    # nothing corrupted: the database checks clean and a restart serves every acknowledged object
    with sqlite3.connect(small_dir / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    srv = start_server(small_dir, home, extra=("--no-scheduler", "--no-controllers"))
    try:
        code, listed = Conn(srv).call("GET", PATH)
        assert code == 200
        assert {o["metadata"]["name"] for o in listed["items"]} == acked
    finally:
        stop_server(srv)


def test_a_read_only_data_dir_is_refused_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    data.mkdir()
    if subprocess.run(["mount", "--bind", str(data), str(data)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        assert subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], capture_output=True).returncode == 0
        result = subprocess.run([sys.executable, "-m", "tuik8s.cli", "server", "--data-dir", str(data), "--port", "0",
                                 "--no-user-kubeconfig"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "HOME": str(tmp_path)})
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tuik8s: error: ") and "Read-only file system" in lines[0], result.stderr
    finally:
        subprocess.run(["umount", "-l", str(data)], capture_output=True)

