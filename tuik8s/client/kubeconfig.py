"""Kubeconfig files, read the way kubectl reads them and written the way kind writes them.

Reading: `$KUBECONFIG` is a list of files (missing ones are skipped); they are merged with
the first file to define a cluster, user or context name winning, and `current-context`
taken from the first file that sets one. File references inside an entry (certificate
paths, `tokenFile`) are relative to the file that holds the entry, as in client-go.

Writing: `merge_into_user_kubeconfig` puts one cluster's entries into the first kubeconfig
file and leaves everything else in it alone. Two servers starting at once would otherwise
both read the old file and the second rename would drop the first one's entries, so the
read-change-write runs under an `fcntl` lock on the file's directory (a lock on the file
itself would be lost across the rename, and a stray `config.lock` file would make kubectl
refuse to write its own config). A symlinked kubeconfig stays a symlink: its target is
rewritten.
"""

from __future__ import annotations

import base64
import binascii
import copy
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMED_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
# Keys inside an entry that name a file, resolved against the directory of its kubeconfig.
PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


class KubeconfigError(Exception):
    """A kubeconfig problem, stated in one line a user can act on."""


@dataclass
class ClusterAccess:
    """Everything a client needs to reach the API server of one context."""

    context: str
    server: str
    namespace: str
    ca_data: bytes | None
    insecure: bool
    token: str | None
    client_cert: bytes | None
    client_key: bytes | None


# --- reading ---------------------------------------------------------------------------------


def kubeconfig_paths(kubeconfig: str | Path | None = None) -> list[Path]:
    """The kubeconfig files in precedence order: `kubeconfig` alone when given (kubectl's
    --kubeconfig), else `$KUBECONFIG`, else `~/.kube/config`."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    paths: list[Path] = []
    for part in env.split(os.pathsep):
        if part.strip():
            path = Path(part.strip()).expanduser()
            if path not in paths:
                paths.append(path)
    return paths or [Path.home() / ".kube" / "config"]


def load_merged(kubeconfig: str | Path | None = None) -> dict[str, Any]:
    """The merged kubeconfig of all `kubeconfig_paths(kubeconfig)`, as kubectl sees it."""
    merged: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
    }
    seen: dict[str, set[str]] = {section: set() for section, _ in NAMED_SECTIONS}
    for path in kubeconfig_paths(kubeconfig):
        config = _read_file(path, missing_ok=True)
        if config is None:
            continue
        if not merged["current-context"] and config.get("current-context"):
            merged["current-context"] = str(config["current-context"])
        for section, item_key in NAMED_SECTIONS:
            for entry in _entries(config, section, path):
                if entry["name"] in seen[section]:
                    continue
                seen[section].add(entry["name"])
                merged[section].append(_resolve_paths(entry, item_key, path.parent))
    return merged


def contexts() -> list[str]:
    """Context names of the merged kubeconfig, in file order."""
    return [entry["name"] for entry in load_merged()["contexts"]]


def current_context() -> str | None:
    """The merged `current-context`, or None when no file sets one."""
    return load_merged()["current-context"] or None


def access_for(context: str | None = None, kubeconfig: str | Path | None = None) -> ClusterAccess:
    """How to reach `context` (default: the current one) of `kubeconfig` (default: as
    `kubeconfig_paths` finds them), with every file read into bytes."""
    config = load_merged(kubeconfig)
    where = _where(kubeconfig)
    name = context or config["current-context"]
    if not name:
        raise KubeconfigError(f"no current context is set in {where}")
    ctx = _find(config, "contexts", "context", name)
    if ctx is None:
        raise KubeconfigError(f'context "{name}" not found in {where}')
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name:
        raise KubeconfigError(f'context "{name}" names no cluster in {where}')
    cluster = _find(config, "clusters", "cluster", cluster_name)
    if cluster is None:
        raise KubeconfigError(f'cluster "{cluster_name}" of context "{name}" not found in {where}')
    user: dict[str, Any] = {}
    if user_name:
        found = _find(config, "users", "user", user_name)
        if found is None:
            raise KubeconfigError(f'user "{user_name}" of context "{name}" not found in {where}')
        user = found

    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f'cluster "{cluster_name}" has no server in {where}')
    insecure = str(cluster.get("insecure-skip-tls-verify", False)).lower() == "true"
    ca_data = _bytes_of(cluster, "certificate-authority", f'cluster "{cluster_name}"')
    if insecure and ca_data is not None:
        raise KubeconfigError(
            f'cluster "{cluster_name}" sets both a certificate authority and '
            "insecure-skip-tls-verify; keep one"
        )

    what = f'user "{user_name}"'
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise KubeconfigError(
                f"{what} uses an {plugin} credential plugin, which tuik8s does not support; "
                "use a token or a client certificate"
            )
    if user.get("username") or user.get("password"):
        raise KubeconfigError(
            f"{what} uses basic auth, which Kubernetes no longer supports; use a token"
        )
    token = user.get("token") or None
    if token is None and user.get("tokenFile"):
        token = _read_bytes(Path(user["tokenFile"]), f"{what} tokenFile").decode().strip() or None
    client_cert = _bytes_of(user, "client-certificate", what)
    client_key = _bytes_of(user, "client-key", what)
    if (client_cert is None) != (client_key is None):
        raise KubeconfigError(f"{what} has a client certificate or key without the other")

    return ClusterAccess(
        context=name,
        server=str(server),
        namespace=str(ctx.get("namespace") or "default"),
        ca_data=ca_data,
        insecure=insecure,
        token=str(token) if token is not None else None,
        client_cert=client_cert,
        client_key=client_key,
    )


# --- writing ---------------------------------------------------------------------------------


def build_kubeconfig(
    name: str, server: str, ca_pem: bytes, token: str, namespace: str = "default"
) -> dict[str, Any]:
    """A standalone kubeconfig whose cluster, user and context are all called `name`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": name, "user": name, "namespace": namespace},
            }
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write `config` to `path` (mode 0600) so a reader sees the old file or the new one."""
    path = _real_target(Path(path).expanduser())
    data = yaml.safe_dump(config, default_flow_style=False, sort_keys=False).encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise KubeconfigError(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise KubeconfigError(f"cannot write {path}: {e.strerror}") from e


def merge_into_user_kubeconfig(config: dict[str, Any], *, set_current: bool = True) -> Path:
    """Put `config`'s clusters, users and contexts into the first kubeconfig file.

    Entries with the same names are replaced in place; all others are kept as they are.
    With `set_current`, `current-context` becomes `config`'s current (or only) context.
    Returns the file written.
    """
    path = kubeconfig_paths()[0]
    with _locked_dir(path):
        target = _read_file(path, missing_ok=True) or _empty_config()
        for section, _ in NAMED_SECTIONS:
            entries = list(target.get(section) or [])
            for entry in _entries(config, section, Path("<new config>")):
                index = _index_of(entries, entry["name"])
                if index is None:
                    entries.append(copy.deepcopy(entry))
                else:
                    entries[index] = copy.deepcopy(entry)
            target[section] = entries
        if set_current:
            current = config.get("current-context") or next(
                (e["name"] for e in config.get("contexts") or []), None
            )
            if current:
                target["current-context"] = current
        write_kubeconfig(path, target)
    return path


def remove_from_user_kubeconfig(name: str) -> None:
    """Drop the cluster, user and context called `name` from the first kubeconfig file."""
    path = kubeconfig_paths()[0]
    with _locked_dir(path):
        target = _read_file(path, missing_ok=True)
        if target is None:
            return
        changed = False
        for section, _ in NAMED_SECTIONS:
            entries = target.get(section) or []
            kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
            if len(kept) != len(entries):
                target[section] = kept
                changed = True
        if target.get("current-context") == name:
            target["current-context"] = ""
            changed = True
        if changed:
            write_kubeconfig(path, target)


# --- helpers ---------------------------------------------------------------------------------


def _where(kubeconfig: str | Path | None = None) -> str:
    return ", ".join(str(p) for p in kubeconfig_paths(kubeconfig))


def _empty_config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
    }


def _read_file(path: Path, *, missing_ok: bool) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise KubeconfigError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise KubeconfigError(f"cannot read {path}: it is a directory") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise KubeconfigError(f"cannot read {path}: {reason}") from e
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise KubeconfigError(f"{path} is not valid YAML{at}: {problem}") from e
    if config is None:
        return _empty_config()
    if not isinstance(config, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig: expected a mapping at the top")
    return config


def _entries(config: dict[str, Any], section: str, path: Path) -> list[dict[str, Any]]:
    entries = config.get(section) or []
    if not isinstance(entries, list):
        raise KubeconfigError(f"{path}: {section} must be a list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(f"{path}: every entry of {section} needs a name")
    return entries


def _resolve_paths(entry: dict[str, Any], item_key: str, base: Path) -> dict[str, Any]:
    entry = copy.deepcopy(entry)
    item = entry.get(item_key)
    if not isinstance(item, dict):
        entry[item_key] = {}
        return entry
    for key in PATH_KEYS.get(item_key, ()):
        value = item.get(key)
        if isinstance(value, str) and value:
            item[key] = str(base / Path(value).expanduser())
    return entry


def _find(config: dict[str, Any], section: str, item_key: str, name: str) -> dict[str, Any] | None:
    for entry in config[section]:
        if entry["name"] == name:
            item: dict[str, Any] = entry[item_key]
            return item
    return None


def _index_of(entries: list[Any], name: str) -> int | None:
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("name") == name:
            return i
    return None


def _bytes_of(item: dict[str, Any], key: str, what: str) -> bytes | None:
    """`key-data` (base64) if set, else the contents of the file `key` names, else None."""
    data = item.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise KubeconfigError(f"{what}: {key}-data is not valid base64") from None
    if item.get(key):
        return _read_bytes(Path(item[key]), f"{what} {key}")
    return None


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise KubeconfigError(f"cannot read {what} {path}: {e.strerror}") from e


def _real_target(path: Path) -> Path:
    """Where writing `path` should land: through a symlink, never over it."""
    try:
        return path.resolve(strict=False) if path.is_symlink() else path
    except OSError:
        return path


@contextmanager
def _locked_dir(path: Path) -> Iterator[None]:
    directory = _real_target(path).parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        raise KubeconfigError(f"cannot use {directory}: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
