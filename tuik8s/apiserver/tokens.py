"""Bearer tokens: a small JSON file mapping each token to the user it stands for.

`DIR/tokens.json` (mode 0600) is `{"<token>": {"user": "...", "groups": [...]}}`. It is
the static token file of upstream Kubernetes, with one difference: the API server re-reads
it when it changes, so a `revoke` takes effect without a restart. Every authentication
stats the file (a few microseconds: bench/tokens.py) and re-reads it only when the stat
differs, so a token revoked (or created) before a request arrives is refused (or
accepted) by that request: a credential that ends with its lab is not usable a moment more.

Writers (`ensure_admin_token`, `add_token`, `revoke`) read, change and replace the file
under an exclusive lock, so two processes adding credentials at once (two nodes joining)
cannot lose each other's token. The replace is atomic, so the reader never sees half a file.

The lookup is by a SHA-256 of the presented token and the final check is
`hmac.compare_digest`, so how long a failed attempt takes says nothing about which
characters of a real token it matched.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.json"
LOCK_FILE = ".tokens.lock"
ADMIN_USER = "admin"
MASTERS_GROUP = "system:masters"
# Upstream adds this group to every user any authenticator accepts; RBAC rules rely on it.
AUTHENTICATED_GROUP = "system:authenticated"


class TokenFileError(Exception):
    """The token file cannot be read or written; the message is one line for the user."""


@dataclass(frozen=True)
class User:
    """Who a request is from, as Kubernetes' `user.Info`: a name and its groups."""

    name: str
    groups: tuple[str, ...] = ()


class TokenAuthenticator:
    """Maps a presented bearer token to a `User`, following changes to the token file."""

    def __init__(self, directory: Path) -> None:
        self._path = Path(directory) / TOKENS_FILE
        self._path_str = str(self._path)  # os.stat on a str: half the cost of Path.stat
        self._lock = threading.Lock()
        self._loaded = False
        self._stamp: tuple[int, int, int, int] | None = None
        self._by_digest: dict[bytes, tuple[str, User]] = {}

    def authenticate(self, token: str) -> User | None:
        """The user `token` belongs to, or None if it is not (or no longer) valid."""
        if not token:
            return None
        self._reload_if_changed()
        presented = token.encode()
        entry = self._by_digest.get(hashlib.sha256(presented).digest())
        if entry is None:
            return None
        stored, user = entry
        if not hmac.compare_digest(stored.encode(), presented):
            return None
        return user

    def _reload_if_changed(self) -> None:
        """Re-read the file when its stat differs from the one last read. Writers replace
        the file (a new inode), so a finished `revoke` is always seen by the next call."""
        stamp = self._file_stamp()
        if self._loaded and stamp == self._stamp:
            return
        with self._lock:
            stamp = self._file_stamp()
            if self._loaded and stamp == self._stamp:
                return
            self._loaded = True
            if stamp is None:
                self._stamp, self._by_digest = None, {}
                return
            try:
                entries = _read(self._path)
            except TokenFileError as e:
                # Keep the last good set: a hand edit gone wrong should not lock everyone out.
                log.warning("%s; keeping the tokens loaded before", e)
                self._stamp = stamp
                return
            self._by_digest = {
                hashlib.sha256(tok.encode()).digest(): (tok, _user(info))
                for tok, info in entries.items()
            }
            self._stamp = stamp

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self._path_str)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def ensure_admin_token(directory: Path) -> str:
    """The `admin` (group `system:masters`) token, made on first call and the same after."""
    with _editing(directory) as entries:
        for tok, info in entries.items():
            if info.get("user") == ADMIN_USER and MASTERS_GROUP in info.get("groups", ()):
                return tok
        return _add(entries, ADMIN_USER, [MASTERS_GROUP])


def add_token(directory: Path, user: str, groups: Iterable[str] = ()) -> str:
    """Make a new token for `user` in `groups` and return it."""
    if not user:
        raise TokenFileError("a token needs a user name")
    with _editing(directory) as entries:
        return _add(entries, user, list(groups))


def ensure_token(directory: Path, user: str, groups: Iterable[str] = ()) -> str:
    """The token of `user` with exactly `groups`, made on first call (a node's identity
    is written again at every start of the node: it must not pile up tokens)."""
    if not user:
        raise TokenFileError("a token needs a user name")
    wanted = sorted(groups)
    with _editing(directory) as entries:
        for tok, info in entries.items():
            if info.get("user") == user and sorted(info.get("groups", ())) == wanted:
                return tok
        return _add(entries, user, wanted)


def list_tokens(directory: Path) -> list[tuple[str, User]]:
    """Every (token, user) in the file, in file order."""
    return [(tok, User(info["user"], tuple(info.get("groups", ()))))
            for tok, info in _read(Path(directory) / TOKENS_FILE).items()]


def revoke(directory: Path, token_or_user: str) -> int:
    """Remove one token, or every token of a user; returns how many were removed."""
    return revoke_all(directory, [token_or_user])


def revoke_all(directory: Path, tokens_or_users: Iterable[str]) -> int:
    """Remove each token named, and every token of each user named, in one change of the
    file; returns how many were removed (0, and the file untouched, when none matched)."""
    wanted = set(tokens_or_users)
    if not (Path(directory) / TOKENS_FILE).exists():
        return 0
    with _editing(directory) as entries:
        doomed = [t for t, info in entries.items() if t in wanted or info.get("user") in wanted]
        for tok in doomed:
            del entries[tok]
        return len(doomed)


# --- file ----------------------------------------------------------------------------------


def _add(entries: dict[str, Any], user: str, groups: list[str]) -> str:
    tok = secrets.token_urlsafe(32)
    entries[tok] = {"user": user, "groups": groups}
    return tok


def _user(info: dict[str, Any]) -> User:
    groups = tuple(info.get("groups", ()))
    if AUTHENTICATED_GROUP not in groups:
        groups += (AUTHENTICATED_GROUP,)
    return User(name=info["user"], groups=groups)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise TokenFileError(f"cannot read {path}: {e.strerror}") from e
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise TokenFileError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise TokenFileError(f"{path} must hold a JSON object of token -> {{user, groups}}")
    for tok, info in data.items():
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("user"), str)
            or not isinstance(info.get("groups", []), list)
        ):
            raise TokenFileError(
                f"{path}: the entry for token {tok[:6]}... needs a string user and a list of groups"
            )
    return data


@contextmanager
def _editing(directory: Path) -> Iterator[dict[str, Any]]:
    """Read, let the caller change, and atomically replace the token file, under a lock."""
    directory = Path(directory)
    path = directory / TOKENS_FILE
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise TokenFileError(f"cannot use {directory}: {e.strerror}") from e
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        entries = _read(path)
        before = json.dumps(entries, sort_keys=True)
        yield entries
        if json.dumps(entries, sort_keys=True) != before or not path.exists():
            _write(path, entries)
    finally:
        os.close(lock_fd)


def _write(path: Path, entries: dict[str, Any]) -> None:
    data = json.dumps(entries, indent=2, sort_keys=True).encode() + b"\n"
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise TokenFileError(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise TokenFileError(f"cannot write {path}: {e.strerror}") from e


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
