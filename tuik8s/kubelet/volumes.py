"""Pod volumes on the node: directories under the kubelet's root, bind-mounted into containers.

Every pod gets `ROOT/pods/<uid>/`; its volumes live in `volumes/<plugin>/<name>` as
upstream lays them out, and the whole directory goes with the pod. Supported sources:

- `emptyDir`: a directory (mode 0777, so any user in the pod can write), one per pod,
  shared by its containers, removed with the pod.
- `configMap`, `secret`, `downwardAPI` and `projected` (of those three): files written
  from the API objects, honouring `items` (key -> path, per-item mode), `defaultMode`
  and `optional`. They are written as upstream's atomic writer does: the files live in
  a timestamped directory, `..data` is a symlink to it, and each top-level entry is a
  symlink through `..data`, so an update (the kubelet rewrites them every
  `refresh_interval`) swaps the whole set at once and a reader never sees half of it.
- `hostPath`: the node's path as is, with the `type` checks (DirectoryOrCreate,
  FileOrCreate, Directory, File, Socket, CharDevice, BlockDevice).

The termination-message file of each container attempt also lives here
(`containers/<name>/<attempt>`), bind-mounted at `terminationMessagePath`.

A volume that cannot be set up (missing ConfigMap, a bad hostPath) raises `VolumeError`
with upstream's message; the pod waits in ContainerCreating and the kubelet retries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import os
import shutil
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from tuik8s.api.quantity import cpu_millis, parse_quantity, to_bytes
from tuik8s.kubelet.runtime import Mount

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjectGetter = Callable[[str, str, str], Awaitable[Obj | None]]
"""`(resource, namespace, name)` -> the object, or None if it does not exist."""

DEFAULT_MODE = 0o644
DATA_DIR = "..data"
REFRESH_INTERVAL = 60.0
_PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
_WRITTEN_SOURCES = ("configMap", "secret", "downwardAPI", "projected")
_SUPPORTED = (*_PLUGIN_DIRS, "hostPath")


class VolumeError(Exception):
    """A volume cannot be set up; the message is upstream's, for a FailedMount event."""


class FieldRefError(ValueError):
    """A fieldRef or resourceFieldRef the kubelet cannot resolve."""


# --- the downward API (shared with environment variables) -------------------------------------


def _subscript(path: str, field: str) -> str | None:
    """`metadata.labels['app']` -> `app` when `path` subscripts `field`."""
    prefix = field + "["
    if path.startswith(prefix) and path.endswith("]"):
        inner = path[len(prefix):-1]
        if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
            return inner[1:-1]
    return None


def _format_map(values: Mapping[str, Any]) -> str:
    # upstream FormatMap: sorted `key="value"` lines, values %q-quoted
    return "\n".join(f"{k}={_go_quote(str(v))}" for k, v in sorted(values.items()))


def _go_quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def field_ref_value(pod: Mapping[str, Any], path: str, *, pod_ip: str = "", host_ip: str = "") -> str:
    """The value of a `fieldRef.fieldPath` for `pod` (upstream ExtractFieldPathAsString
    plus the fields only the kubelet knows: podIP, hostIP)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or spec.get("serviceAccount"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "metadata.labels":
        return _format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return _format_map(meta.get("annotations") or {})
    for field in ("metadata.labels", "metadata.annotations"):
        key = _subscript(path, field)
        if key is not None:
            return str((meta.get(field.split(".")[1]) or {}).get(key) or "")
    raise FieldRefError(f"unsupported fieldPath: {path}")


def _container_resources(pod: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if c.get("name") == name:
            return c.get("resources") or {}
    return {}


def resource_field_value(
    pod: Mapping[str, Any],
    ref: Mapping[str, Any],
    container_name: str | None,
    allocatable: Mapping[str, str],
) -> str:
    """A `resourceFieldRef` (limits.cpu, requests.memory, ...): the container's value,
    divided by `divisor` and rounded up; an unset limit is the node's allocatable, as
    upstream."""
    name = ref.get("containerName") or container_name
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    if kind not in ("limits", "requests") or not what:
        raise FieldRefError(f"unsupported resource: {resource}")
    resources = _container_resources(pod, name)
    value = (resources.get(kind) or {}).get(what)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(what)
    if value is None:
        value = allocatable.get(what) if kind == "limits" else "0"
    if value is None:
        raise FieldRefError(f"unsupported resource: {resource}")
    divisor = ref.get("divisor") or "1"
    if what == "cpu":
        millis, div = cpu_millis(value), max(1, cpu_millis(divisor))
        return str(max(1, -(-millis // div)) if millis else 0)
    amount, div_q = to_bytes(value), parse_quantity(divisor)
    if div_q <= 0:
        raise FieldRefError(f"invalid divisor: {divisor}")
    return str(math.ceil(parse_quantity(amount) / div_q))


# --- files from API objects --------------------------------------------------------------------


def _mode(value: Any, default: int) -> int:
    return int(value) & 0o7777 if isinstance(value, int) and not isinstance(value, bool) else default


def key_files(
    data: Mapping[str, bytes],
    items: list[Mapping[str, Any]] | None,
    default_mode: int,
    *,
    what: str,
    optional: bool = False,
) -> dict[str, tuple[bytes, int]]:
    """{relative path: (content, mode)} for a configMap or secret's keys.

    Without `items` every key is a file named after it; with `items` only those keys,
    at their paths, with their modes. A missing key is an error unless the source is
    optional (upstream: `configmap references non-existent config key: K`).
    """
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"{what} references non-existent {'config' if what == 'configmap' else 'secret'} key: {key}")
        out[str(item.get("path") or key)] = (data[key], _mode(item.get("mode"), default_mode))
    return out


def configmap_data(cm: Mapping[str, Any]) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    return out


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    out = {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = str(v).encode()
    return out


def _safe_relpath(path: str) -> str:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts or (parts and parts[0].startswith("..")):
        raise VolumeError(f"invalid path {path!r}: must be relative and may not contain '..'")
    return path


def atomic_write(target: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    """Make `target` hold exactly `files`, swapped in at once; False if nothing changed.

    Layout: `target/..<stamp>/` holds the files, `target/..data` points at it, and each
    top-level name is a symlink `name -> ..data/name`.
    """
    for rel in files:
        _safe_relpath(rel)
    target.mkdir(parents=True, exist_ok=True)
    current = target / DATA_DIR
    if current.is_symlink() and _same_content(current, files):
        return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    stamp.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        path = stamp / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_bytes(content)
        os.chmod(path, mode)
    os.chmod(stamp, 0o755)
    old = os.readlink(current) if current.is_symlink() else None
    tmp = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(stamp.name)
    os.replace(tmp, current)
    wanted = {Path(rel).parts[0] for rel in files}
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"{DATA_DIR}/{name}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in wanted and entry.is_symlink():
            entry.unlink()
    if old and old != stamp.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _same_content(current: Path, files: Mapping[str, tuple[bytes, int]]) -> bool:
    try:
        present = {str(p.relative_to(current.resolve())) for p in current.resolve().rglob("*") if p.is_file()}
        if present != set(files):
            return False
        for rel, (content, mode) in files.items():
            path = current / rel
            if path.read_bytes() != content or stat.S_IMODE(path.stat().st_mode) != mode:
                return False
    except OSError:
        return False
    return True


# --- host paths --------------------------------------------------------------------------------


def check_host_path(path: str, kind: str) -> None:
    """Create or check a hostPath as its `type` says (upstream's messages)."""
    p = Path(path)
    if kind == "DirectoryOrCreate":
        if not p.exists():
            p.mkdir(parents=True, mode=0o755)
        elif not p.is_dir():
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "FileOrCreate":
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch(mode=0o644)
        elif not p.is_file():
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind == "Directory":
        if not p.is_dir():
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File":
        if not p.is_file():
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind in ("Socket", "CharDevice", "BlockDevice"):
        test = {"Socket": stat.S_ISSOCK, "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}[kind]
        try:
            ok = test(p.stat().st_mode)
        except OSError:
            ok = False
        if not ok:
            raise VolumeError(f"hostPath type check failed: {path} is not a {kind.lower()}")


# --- the manager -------------------------------------------------------------------------------


class VolumeManager:
    """Sets up and tears down the volumes of the pods of one kubelet under `root`."""

    def __init__(
        self,
        root: Path,
        get_object: ObjectGetter,
        *,
        allocatable: Mapping[str, str] | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.root = Path(root)
        self.get_object = get_object
        self.allocatable = dict(allocatable or {})
        self.refresh_interval = refresh_interval
        self._refreshed: dict[str, float] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def volume_dir(self, uid: str, volume: Mapping[str, Any]) -> Path:
        source = _source_of(volume)
        return self.pod_dir(uid) / "volumes" / _PLUGIN_DIRS.get(source, source) / str(volume.get("name"))

    def pods_on_disk(self) -> list[str]:
        try:
            return [p.name for p in (self.root / "pods").iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []

    async def setup(self, pod: Mapping[str, Any], *, pod_ip: str = "", host_ip: str = "", force: bool = False) -> dict[str, str]:
        """Every volume of `pod` ready on disk; {volume name: host path}.

        API-backed volumes are (re)written when they were not yet, when `force`, or when
        `refresh_interval` has passed since the last time.
        """
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        namespace = str(meta.get("namespace") or "default")
        now = time.monotonic()
        refresh = force or now - self._refreshed.get(uid, float("-inf")) >= self.refresh_interval
        paths: dict[str, str] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name") or "")
            source = _source_of(volume)
            if source == "hostPath":
                host = volume["hostPath"]
                path = str(host.get("path") or "")
                await asyncio.to_thread(check_host_path, path, str(host.get("type") or ""))
                paths[name] = path
                continue
            if source not in _PLUGIN_DIRS:
                raise VolumeError(f'volume "{name}": unsupported volume type {source or "(none)"} on this node')
            target = self.volume_dir(uid, volume)
            paths[name] = str(target)
            if source == "emptyDir":
                await asyncio.to_thread(_make_empty_dir, target)
                continue
            if not refresh and (target / DATA_DIR).is_symlink():
                continue
            try:
                files = await self._files(pod, namespace, volume, pod_ip=pod_ip, host_ip=host_ip)
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
            await asyncio.to_thread(atomic_write, target, files)
        if refresh:
            self._refreshed[uid] = now
        return paths

    async def _files(
        self, pod: Mapping[str, Any], namespace: str, volume: Mapping[str, Any], *, pod_ip: str, host_ip: str
    ) -> dict[str, tuple[bytes, int]]:
        source = _source_of(volume)
        spec = volume[source] or {}
        default_mode = _mode(spec.get("defaultMode"), DEFAULT_MODE)
        if source == "projected":
            files: dict[str, tuple[bytes, int]] = {}
            for src in spec.get("sources") or []:
                for kind in ("configMap", "secret", "downwardAPI"):
                    if src.get(kind) is not None:
                        files.update(await self._source_files(pod, namespace, kind, src[kind], default_mode, pod_ip, host_ip))
            return files
        return await self._source_files(pod, namespace, source, spec, default_mode, pod_ip, host_ip)

    async def _source_files(
        self,
        pod: Mapping[str, Any],
        namespace: str,
        kind: str,
        spec: Mapping[str, Any],
        default_mode: int,
        pod_ip: str,
        host_ip: str,
    ) -> dict[str, tuple[bytes, int]]:
        optional = bool(spec.get("optional"))
        if kind == "downwardAPI":
            files: dict[str, tuple[bytes, int]] = {}
            for item in spec.get("items") or []:
                try:
                    if item.get("fieldRef"):
                        value = field_ref_value(pod, str(item["fieldRef"].get("fieldPath")), pod_ip=pod_ip, host_ip=host_ip)
                    else:
                        value = resource_field_value(pod, item.get("resourceFieldRef") or {}, None, self.allocatable)
                except FieldRefError as e:
                    raise VolumeError(str(e)) from None
                files[str(item.get("path"))] = (value.encode(), _mode(item.get("mode"), default_mode))
            return files
        if kind == "configMap":
            name = str(spec.get("name") or "")
            obj = await self.get_object("configmaps", namespace, name)
            if obj is None:
                if optional:
                    return {}
                raise VolumeError(f'configmap "{name}" not found')
            return key_files(configmap_data(obj), spec.get("items"), default_mode, what="configmap", optional=optional)
        name = str(spec.get("secretName") or spec.get("name") or "")
        obj = await self.get_object("secrets", namespace, name)
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'secret "{name}" not found')
        return key_files(secret_data(obj), spec.get("items"), default_mode, what="secret", optional=optional)

    def mounts(self, pod: Mapping[str, Any], container: Mapping[str, Any], paths: Mapping[str, str]) -> list[Mount]:
        """The bind mounts of `container`'s volumeMounts, given `setup`'s paths."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        read_only_sources = {
            str(v.get("name")) for v in (pod.get("spec") or {}).get("volumes") or [] if _source_of(v) in _WRITTEN_SOURCES
        }
        out = []
        for vm in container.get("volumeMounts") or []:
            name = str(vm.get("name") or "")
            if name not in paths:
                raise VolumeError(f'volume "{name}" of container "{container.get("name")}" is not defined in the pod')
            host = paths[name]
            sub = vm.get("subPath") or ""
            if sub:
                host = str(Path(host) / _safe_relpath(str(sub)))
                if not Path(host).exists() and str(Path(host)).startswith(str(self.pod_dir(uid))):
                    Path(host).mkdir(parents=True, exist_ok=True, mode=0o777)
            read_only = bool(vm.get("readOnly")) or name in read_only_sources
            out.append(Mount(host, str(vm.get("mountPath") or ""), read_only))
        return out

    def termination_log(self, uid: str, container: str, attempt: int) -> Path:
        """A fresh, empty termination-message file for one container attempt."""
        path = self.pod_dir(uid) / "containers" / container / str(attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.chmod(path, 0o666)
        return path

    def read_termination_message(self, uid: str, container: str, attempt: int, limit: int = 4096) -> str:
        path = self.pod_dir(uid) / "containers" / container / str(attempt)
        try:
            with path.open("rb") as f:
                return f.read(limit).decode(errors="replace")
        except OSError:
            return ""

    def prune_termination_logs(self, uid: str, container: str, keep: set[int]) -> None:
        folder = self.pod_dir(uid) / "containers" / container
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if entry.name.isdigit() and int(entry.name) not in keep:
                    entry.unlink()

    async def teardown(self, uid: str) -> None:
        """Remove everything the pod had on the node."""
        self._refreshed.pop(uid, None)
        await asyncio.to_thread(shutil.rmtree, self.pod_dir(uid), True)


def _source_of(volume: Mapping[str, Any]) -> str:
    for key in _SUPPORTED:
        if volume.get(key) is not None:
            return key
    for key, value in volume.items():
        if key != "name" and isinstance(value, Mapping):
            return key
    return ""


def _make_empty_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)


__all__ = [
    "FieldRefError",
    "VolumeError",
    "VolumeManager",
    "atomic_write",
    "check_host_path",
    "configmap_data",
    "field_ref_value",
    "key_files",
    "resource_field_value",
    "secret_data",
]
