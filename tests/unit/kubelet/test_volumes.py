"""Pod volumes on disk: configMap/secret files (items, modes, atomic swaps), emptyDir, hostPath,
downward API, mounts."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tuik8s.kubelet.volumes import (
    FieldRefError,
    VolumeError,
    VolumeManager,
    atomic_write,
    check_host_path,
    field_ref_value,
    key_files,
)

Obj = dict[str, Any]


def test_key_files_all_keys_or_items_with_modes() -> None:
    data = {"a": b"1", "b": b"2"}
    assert key_files(data, None, 0o644, what="configmap") == {"a": (b"1", 0o644), "b": (b"2", 0o644)}
    items = [{"key": "a", "path": "conf/a.txt", "mode": 0o600}, {"key": "b", "path": "b"}]
    assert key_files(data, items, 0o444, what="configmap") == {"conf/a.txt": (b"1", 0o600), "b": (b"2", 0o444)}


def test_key_files_missing_key_is_an_error_unless_optional() -> None:
    with pytest.raises(VolumeError, match="configmap references non-existent config key: c"):
        key_files({"a": b"1"}, [{"key": "c", "path": "c"}], 0o644, what="configmap")
    with pytest.raises(VolumeError, match="secret references non-existent secret key: c"):
        key_files({"a": b"1"}, [{"key": "c", "path": "c"}], 0o644, what="secret")
    assert key_files({"a": b"1"}, [{"key": "c", "path": "c"}], 0o644, what="secret", optional=True) == {}


def test_atomic_write_layout_and_update(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert atomic_write(target, {"a": (b"one", 0o644), "dir/b": (b"two", 0o600)})
    assert (target / "..data").is_symlink()
    assert os.readlink(target / "a") == "..data/a"
    assert (target / "a").read_bytes() == b"one"
    assert (target / "dir" / "b").read_bytes() == b"two"
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o600
    first = os.readlink(target / "..data")
    assert not atomic_write(target, {"a": (b"one", 0o644), "dir/b": (b"two", 0o600)})  # unchanged
    assert atomic_write(target, {"a": (b"uno", 0o644)})
    assert (target / "a").read_bytes() == b"uno"
    assert not (target / "dir").exists()
    assert not (target / first).exists()  # the old generation is gone


def test_atomic_write_refuses_escaping_paths(tmp_path: Path) -> None:
    for bad in ("../x", "/etc/passwd", "..data/x"):
        with pytest.raises(VolumeError):
            atomic_write(tmp_path / "v", {bad: (b"", 0o644)})


def test_host_path_types(tmp_path: Path) -> None:
    check_host_path(str(tmp_path / "new" / "dir"), "DirectoryOrCreate")
    assert (tmp_path / "new" / "dir").is_dir()
    check_host_path(str(tmp_path / "f.txt"), "FileOrCreate")
    assert (tmp_path / "f.txt").is_file()
    check_host_path(str(tmp_path / "whatever"), "")  # no check
    with pytest.raises(VolumeError, match="is not a directory"):
        check_host_path(str(tmp_path / "f.txt"), "Directory")
    with pytest.raises(VolumeError, match="is not a file"):
        check_host_path(str(tmp_path / "new"), "File")
    with pytest.raises(VolumeError, match="is not a socket"):
        check_host_path(str(tmp_path / "f.txt"), "Socket")


def test_field_ref_values() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"b": "2", "a": "x\"y"}},
           "spec": {"nodeName": "n1"}}
    assert field_ref_value(pod, "metadata.labels") == 'a="x\\"y"\nb="2"'
    assert field_ref_value(pod, "metadata.labels['b']") == "2"
    assert field_ref_value(pod, "status.podIP", pod_ip="10.244.0.9") == "10.244.0.9"
    with pytest.raises(FieldRefError):
        field_ref_value(pod, "spec.containers")


def pod_with(volumes: list[Obj], mounts: list[Obj]) -> Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "web"}},
        "spec": {"volumes": volumes, "containers": [{"name": "c", "volumeMounts": mounts}]},
    }


def check_layout(paths: dict[str, str], tmp_path: Path, host: Path) -> None:
    root = tmp_path / "root" / "pods" / "uid-1" / "volumes"
    assert paths["scratch"] == str(root / "kubernetes.io~empty-dir" / "scratch")
    assert stat.S_IMODE(Path(paths["scratch"]).stat().st_mode) == 0o777
    assert (Path(paths["cfg"]) / "app.conf").read_text() == "x=1"
    assert not (Path(paths["cfg"]) / "other").exists()
    assert (Path(paths["db"]) / "password").read_bytes() == b"pw"
    assert stat.S_IMODE((Path(paths["db"]) / "password").stat().st_mode) == 0o400
    assert (Path(paths["info"]) / "labels").read_text() == 'app="web"'
    assert sorted(p.name for p in Path(paths["all"]).iterdir() if not p.name.startswith("..")) == [
        "app.conf", "other", "password",
    ]
    assert paths["host"] == str(host) and host.is_dir()


async def test_manager_sets_up_every_kind_and_mounts(tmp_path: Path) -> None:
    objects: dict[tuple[str, str, str], Obj] = {
        ("configmaps", "ns", "cfg"): {"data": {"app.conf": "x=1", "other": "y"}},
        ("secrets", "ns", "db"): {"data": {"password": base64.b64encode(b"pw").decode()}},
    }
    fetched: list[tuple[str, str, str]] = []

    async def get(resource: str, namespace: str, name: str) -> Obj | None:
        fetched.append((resource, namespace, name))
        return objects.get((resource, namespace, name))

    host = tmp_path / "host-data"
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "app.conf"}]}},
        {"name": "db", "secret": {"secretName": "db", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "all", "projected": {"sources": [{"configMap": {"name": "cfg"}}, {"secret": {"name": "db"}}]}},
        {"name": "host", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
    ]
    mounts = [
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "scratch", "mountPath": "/sub", "subPath": "deep/er"},
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "db", "mountPath": "/secrets"},
        {"name": "host", "mountPath": "/data", "readOnly": True},
    ]
    pod = pod_with(volumes, mounts)
    manager = VolumeManager(tmp_path / "root", get)
    paths = await manager.setup(pod)
    check_layout(paths, tmp_path, host)
    got = [(m.container_path, m.read_only) for m in manager.mounts(pod, pod["spec"]["containers"][0], paths)]
    assert got == [("/scratch", False), ("/sub", False), ("/etc/app", True), ("/secrets", True), ("/data", True)]
    assert (Path(paths["scratch"]) / "deep" / "er").is_dir()

    calls = len(fetched)
    await manager.setup(pod)  # within the refresh interval: nothing is fetched again
    assert len(fetched) == calls
    objects[("configmaps", "ns", "cfg")]["data"]["app.conf"] = "x=2"
    await manager.setup(pod, force=True)
    assert (Path(paths["cfg"]) / "app.conf").read_text() == "x=2"

    await manager.teardown("uid-1")
    assert not (tmp_path / "root" / "pods" / "uid-1").exists()
    assert host.is_dir()  # a hostPath is the node's, never removed


async def test_manager_reports_missing_sources_like_upstream(tmp_path: Path) -> None:
    async def nothing(resource: str, namespace: str, name: str) -> Obj | None:
        return None

    manager = VolumeManager(tmp_path, nothing)
    pod = pod_with([{"name": "cfg", "configMap": {"name": "gone"}}], [])
    with pytest.raises(VolumeError, match='MountVolume.SetUp failed for volume "cfg" : configmap "gone" not found'):
        await manager.setup(pod)
    optional = pod_with([{"name": "cfg", "configMap": {"name": "gone", "optional": True}}], [])
    assert "cfg" in await manager.setup(optional)
    unsupported = pod_with([{"name": "data", "persistentVolumeClaim": {"claimName": "x"}}], [])
    with pytest.raises(VolumeError, match="unsupported volume type persistentVolumeClaim"):
        await manager.setup(unsupported)


def test_termination_log_files(tmp_path: Path) -> None:
    manager = VolumeManager(tmp_path, None)  # type: ignore[arg-type]
    path = manager.termination_log("u", "app", 3)
    path.write_text("bye")
    assert manager.read_termination_message("u", "app", 3) == "bye"
    manager.termination_log("u", "app", 4)
    manager.prune_termination_logs("u", "app", {4})
    assert manager.read_termination_message("u", "app", 3) == ""
    assert (tmp_path / "pods" / "u" / "containers" / "app" / "4").exists()
