"""The Store protocol the API server is written against, and the values it hands out.

The API server is the only caller. A store keeps objects as the JSON bytes the API
returns, keyed by (resource, namespace, name), and one global revision that every
write advances and that becomes `metadata.resourceVersion`. Writes are
read-modify-write functions run atomically against the latest committed state, so
optimistic-concurrency checks (the 409 on a stale resourceVersion) live in the caller's
function and can never race another writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple, Protocol

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
# not a watch event: the write changed nothing, so nothing was committed
UNCHANGED = "UNCHANGED"


class Stored(NamedTuple):
    """One committed version of an object.

    `data` is the object serialized with its final resourceVersion; `labels` and
    `fields` are extracted once at write time so selectors never re-parse the JSON.
    A tuple of atomic values, so the cyclic GC stops tracking it: a store of 10,000
    objects must not make every full collection walk them all.
    """

    resource: str
    namespace: str
    name: str
    rv: int
    data: bytes
    labels: dict[str, str]
    fields: dict[str, str]


class Event(NamedTuple):
    """A committed change. `prev` is the version it replaced, when known, so a
    filtered watch can turn "stopped matching" into DELETED as Kubernetes does."""

    type: str
    obj: Stored
    prev: Stored | None
    # wall-clock time of the commit, for measuring watch delivery
    committed_at: float = 0.0


class Delete:
    """Returned by a write function to delete the object it was given."""


DELETE = Delete()


class Unchanged:
    """Returned by a write function when the object would not change: no new revision."""


UNCHANGED_OBJECT = Unchanged()

# A write function gets the current object (None if absent) and returns the new
# object, DELETE, UNCHANGED_OBJECT, or raises a StatusError to abort this write only.
Mutation = Callable[[dict[str, Any] | None], "dict[str, Any] | Delete | Unchanged"]


class Watch(Protocol):
    """A live stream of events for one resource, in revision order."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def close(self) -> None: ...


class Store(Protocol):
    @property
    def revision(self) -> int:
        """The revision of the last committed write."""
        ...

    def get(self, resource: str, namespace: str, name: str) -> Stored | None: ...

    def list(self, resource: str, namespace: str | None = None) -> list[Stored]:
        """Committed objects sorted by (namespace, name); `None` means all namespaces."""
        ...

    async def write(self, resource: str, namespace: str, name: str, mutate: Mutation) -> Event:
        """Atomically apply `mutate` to the current object and commit the result."""
        ...

    def watch(self, resource: str, since: int) -> Watch:
        """Events for `resource` with revision > `since`; raises Expired if compacted."""
        ...

    async def close(self) -> None: ...


class Expired(Exception):
    """The requested revision is older than the watch window (HTTP 410 Gone)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(
            f"too old resource version: {requested} ({oldest})"
        )
        self.requested = requested
        self.oldest = oldest


class StorageError(Exception):
    """The backend failed to commit (disk full, read-only data dir, ...)."""
