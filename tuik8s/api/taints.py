"""Taints and tolerations: which toleration tolerates which taint.

One definition (v1.Toleration.ToleratesTaint) for everything that asks: the scheduler's
TaintToleration and NodeUnschedulable plugins, the DaemonSet controller (which places its
own pods) and the node lifecycle controller (which evicts by NoExecute taints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Effect and key match when the toleration sets them; `Exists` matches any value,
    `Equal` (the default operator) the same value; any other operator matches nothing."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any of `tolerations` tolerates `taint`."""
    return any(tolerates(t, taint) for t in tolerations)
