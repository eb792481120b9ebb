"""`tuik8s server` as a process: restart resumes, kill -9 loses nothing acknowledged,
and a busy port or an unusable data dir is one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, start_server, stop_server


def test_restart_resumes_with_nothing_lost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(tmp_path / "data", home)
    try:
        srv.kubectl("create", "configmap", "keep", "--from-literal", "k=v", check=True)
        rv_before = srv.kubectl_json("get", "cm", "keep")["metadata"]["resourceVersion"]
    finally:
        stop_server(srv, signal.SIGKILL)
    srv = start_server(tmp_path / "data", home, port=srv.port)
    try:
        cm = srv.kubectl_json("get", "cm", "keep")
        assert cm["data"] == {"k": "v"}
        assert cm["metadata"]["resourceVersion"] == rv_before
        # the same CA and token: the kubeconfig written at first start still works
        srv.kubectl("create", "configmap", "after", check=True)
        assert int(srv.kubectl_json("get", "cm", "after")["metadata"]["resourceVersion"]) > int(rv_before)
    finally:
        stop_server(srv)


def test_the_user_kubeconfig_gets_a_context(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(tmp_path / "data", home)
    try:
        config = (home / ".kube" / "config").read_text()
        assert "tuik8s-default" in config
        out = subprocess.run(
            ["kubectl", "--context", "tuik8s-default", "--cache-dir", str(home / "kc"), "get", "ns", "default", "-o", "name"],
            capture_output=True, text=True, env={**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")},
            timeout=60,
        )
        assert out.stdout.strip() == "namespace/default", out.stderr
    finally:
        stop_server(srv)


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuik8s.cli", *args],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "HOME": str(home), "KUBECONFIG": str(home / "kubeconfig")},
    )


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(tmp_path / "data", home)
    try:
        other = run_cli("server", "--data-dir", str(tmp_path / "other"), "--port", str(srv.port), home=home)
        assert other.returncode != 0
        lines = other.stderr.strip().splitlines()
        assert len(lines) == 1 and f"port {srv.port}" in lines[0] and "already in use" in lines[0]
        same_dir = run_cli("server", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()), home=home)
        assert same_dir.returncode != 0
        assert same_dir.stderr.strip().splitlines() == [
            f"tuik8s: error: another tuik8s server is using {tmp_path / 'data'}; stop it first or choose another --data-dir"
        ]
    finally:
        stop_server(srv)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; a file in the way stands in below")
def test_an_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = run_cli("server", "--data-dir", str(locked / "data"), "--port", str(free_port()), home=tmp_path)
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1


def test_a_data_dir_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a directory")
    out = run_cli("server", "--data-dir", str(in_the_way), "--port", str(free_port()), home=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tuik8s: error: cannot use data dir {in_the_way}")
