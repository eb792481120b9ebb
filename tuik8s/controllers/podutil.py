"""What the workload controllers share: pod readiness, controller references, template hashes.

Upstream spreads these over `podutil`, `controller_utils.go` and the ControllerRefManager;
the rules are the same here:

- A pod is *available* once it has been Ready for `minReadySeconds` (its Ready condition's
  lastTransitionTime is the clock). The controllers never sleep on it: they compute how long
  is left and ask their queue to look again then.
- Ownership is the `controller: true` ownerReference and its uid, never the name alone: a
  Deployment deleted and created again under the same name must not inherit the old one's
  ReplicaSets.
- Claiming (`claim`) adopts matching orphans and releases owned children that stopped
  matching, with patches that name the child's uid, so a child replaced under the same name
  meanwhile is not touched. Adoption first checks, with a read from the server rather than
  the cache, that the owner still exists and is not being deleted: an owner on its way out
  must not grab orphans the garbage collector just released.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from tuik8s.api.selectors import LabelSelector, SelectorError, selector_from_spec
from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, Informer

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
# Informer indexes: the uid of an object's controller (the owner with controller: true),
# and the namespace of objects that have no controller (the ones up for adoption).
CONTROLLER_UID_INDEX = "controller-uid"
ORPHAN_INDEX = "orphans-by-namespace"

_TERMINAL = ("Succeeded", "Failed")
# rand.SafeEncodeString's alphabet: no vowels, no 0/1/3, so hashes never spell words.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---- time ---------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None for absent or malformed values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(when: datetime) -> str:
    """metav1.Time on the wire: RFC 3339 in UTC, whole seconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- pods ---------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any]) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def pod_phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return pod_phase(pod) not in _TERMINAL and not is_deleting(pod)


def pod_ready_condition(pod: Mapping[str, Any]) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When a Ready pod became ready (its Ready condition's lastTransitionTime)."""
    cond = pod_ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime) -> float | None:
    """Seconds until a Ready pod counts as available (0: it does); None if it is not Ready.

    As upstream's IsPodAvailable: available once Ready for strictly more than
    `min_ready_seconds`; a Ready pod without a transition time waits for nothing.
    """
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return 0.0
    left = (since - at).total_seconds() + min_ready_seconds
    return 0.0 if left < 0 else max(left, 0.001)


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime) -> bool:
    return available_in(pod, min_ready_seconds, at) == 0.0


def pod_key(pod: Mapping[str, Any]) -> str:
    m = meta(pod)
    return f"{m.get('namespace')}/{m.get('name')}"


# ---- controller references ----------------------------------------------------------------


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with `controller: true`, if any (metav1.GetControllerOf)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid_index(obj: Obj) -> list[str]:
    """Index function for CONTROLLER_UID_INDEX."""
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def orphan_index(obj: Obj) -> list[str]:
    """Index function for ORPHAN_INDEX."""
    ns = meta(obj).get("namespace")
    return [str(ns)] if ns and controller_ref(obj) is None else []


def claim_candidates(informer: Informer, owner: Mapping[str, Any]) -> list[Obj]:
    """What `owner` may claim from a cache with both indexes: its children and the orphans
    of its namespace, without looking at every object of the namespace."""
    m = meta(owner)
    owned = informer.by_index(CONTROLLER_UID_INDEX, str(m.get("uid")))
    return [*owned, *informer.by_index(ORPHAN_INDEX, str(m.get("namespace")))]


def new_controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    """metav1.NewControllerRef: the owner as a controlling, deletion-blocking reference."""
    m = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def refers_to(ref: Mapping[str, Any] | None, api_group: str, kind: str) -> bool:
    """Whether an ownerReference names a `kind` of `api_group` (any version)."""
    if not ref or ref.get("kind") != kind:
        return False
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group == api_group


@functools.lru_cache(maxsize=1024)
def _parse_selector(encoded: bytes) -> LabelSelector:
    return selector_from_spec(orjson.loads(encoded))


def selector_of(obj: Mapping[str, Any]) -> LabelSelector:
    """`spec.selector` parsed (and memoised); raises SelectorError when it does not parse."""
    spec = (obj.get("spec") or {}).get("selector")
    return _parse_selector(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def owners_selecting(
    informer: Informer,
    obj: Mapping[str, Any],
    selector: Callable[[Mapping[str, Any]], LabelSelector] = selector_of,
) -> list[Obj]:
    """The controllers in `obj`'s namespace (from `informer`, indexed by namespace) whose
    selector picks `obj`: the candidates to adopt an orphan. An empty or unparsable
    selector picks nothing, as upstream's controllers refuse to select everything."""
    labels = labels_of(obj)
    found = []
    for owner in informer.by_index(NAMESPACE_INDEX, str(meta(obj).get("namespace") or "")):
        try:
            sel = selector(owner)
        except SelectorError:
            continue
        if not sel.empty() and sel.matches(labels):
            found.append(owner)
    return found


async def claim(
    client: ApiClient,
    resource: str,
    owner: Mapping[str, Any],
    owner_ref: Obj,
    selector: LabelSelector,
    candidates: Iterable[Obj],
    can_adopt: Callable[[], Awaitable[None]],
) -> list[Obj]:
    """The candidates `owner` controls after adopting orphans and releasing strays.

    `candidates` are the objects of the owner's namespace (from a cache); `can_adopt`
    raises when the owner may not adopt (it is called once, before the first adoption).
    Children that vanish meanwhile are skipped; any other failure is raised.
    """
    uid = meta(owner).get("uid")
    owner_deleting = is_deleting(owner)
    claimed: list[Obj] = []
    adoption_checked = False
    for child in candidates:
        ref = controller_ref(child)
        matches = selector.matches(labels_of(child))
        if ref is not None:
            if ref.get("uid") != uid:
                continue  # another controller's
            if matches:
                claimed.append(child)
            elif not owner_deleting:
                await _patch_owner(client, resource, child, {"$patch": "delete", "uid": uid})
            continue
        if owner_deleting or not matches or is_deleting(child):
            continue
        if not adoption_checked:
            await can_adopt()
            adoption_checked = True
        adopted = await _patch_owner(client, resource, child, owner_ref)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _patch_owner(client: ApiClient, resource: str, child: Obj, entry: Obj) -> Obj | None:
    """Add or remove one ownerReference by strategic merge, as upstream's ref manager does."""
    m = meta(child)
    body = {"metadata": {"ownerReferences": [entry], "uid": m.get("uid")}}
    try:
        return await client.patch(resource, str(m.get("name")), body, namespace=m.get("namespace"), patch_type="strategic")
    except ApiError as e:
        if is_not_found(e):
            return None
        raise


# ---- pod templates ------------------------------------------------------------------------


def _fnv1a_32(data: bytes, h: int = 0x811C9DC5) -> int:
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped into an alphabet that spells no words."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The `pod-template-hash` of a pod template, as upstream's controller.ComputeHash.

    FNV-1a over a canonical encoding of the template (keys sorted), then the collision
    count's four little-endian bytes when there is one, printed in decimal and safe-encoded.
    The same template always gives the same hash; a bumped collision count gives another.
    """
    h = _fnv1a_32(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        h = _fnv1a_32(int(collision_count & 0xFFFFFFFF).to_bytes(4, "little"), h)
    return safe_encode(str(h))


def _semantic(value: Any) -> Any:
    """Drop nulls and empty maps/lists, which Go's semantic equality treats as unset."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def equal_ignore_hash(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Two pod templates are the same but for their `pod-template-hash` label."""

    def strip(t: Mapping[str, Any] | None) -> Any:
        t = copy.deepcopy(dict(t or {}))
        labels = (t.get("metadata") or {}).get("labels")
        if isinstance(labels, dict):
            labels.pop(HASH_LABEL, None)
        return _semantic(t)

    return bool(strip(a) == strip(b))
