"""TaintToleration: a pod may land only on nodes whose NoSchedule/NoExecute taints it tolerates.

The taints the node lifecycle controller puts on a node that stopped reporting
(node.kubernetes.io/not-ready, node.kubernetes.io/unreachable) are ordinary taints here,
which is how upstream keeps new pods off such nodes. PreferNoSchedule taints only lower a
node's score, by how many of them the pod does not tolerate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuik8s.api.taints import tolerated
from tuik8s.scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    NodeInfo,
    PodInfo,
    Snapshot,
    Status,
    default_normalize_score,
    unresolvable,
)

NAME = "TaintToleration"
ERR_REASON_FORMAT = "node(s) had untolerated taint {{{key}: {value}}}"
_PREFER_KEY = "PreScore" + NAME


def untolerated_taint(taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first taint no toleration tolerates (FindMatchingUntoleratedTaint), or None."""
    for taint in taints:
        if not tolerated(taint, tolerations):
            return taint
    return None


def pod_tolerations(pod: PodInfo) -> list[Mapping[str, Any]]:
    return [t for t in pod.spec.get("tolerations") or () if isinstance(t, dict)]


def error_reason(taint: Mapping[str, Any]) -> str:
    return ERR_REASON_FORMAT.format(key=taint.get("key", ""), value=taint.get("value") or "")


class TaintToleration:
    """Filter on NoSchedule/NoExecute taints; score by untolerated PreferNoSchedule taints."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd, ClusterEvent.NodeTaintChange, ClusterEvent.UnscheduledPodUpdate})

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        return None if snapshot.tainted else SKIP  # no node has a NoSchedule/NoExecute taint

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.filter_taints:
            return None
        taint = untolerated_taint(node.filter_taints, pod_tolerations(pod))
        if taint is None:
            return None
        return unresolvable(error_reason(taint))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status | None:
        # with no PreferNoSchedule taint anywhere every node scores the same
        snapshot = state.snapshot
        if snapshot is not None and not snapshot.prefer_tainted:
            return SKIP
        if snapshot is None and not any(ni.prefer_taints for ni in nodes):
            return SKIP
        prefer = [
            t for t in pod_tolerations(pod) if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
        ]
        state.write(_PREFER_KEY, prefer)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        prefer = state.read(_PREFER_KEY, ())
        return sum(1 for taint in node.prefer_taints if not tolerated(taint, prefer))

    def normalize_scores(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]) -> None:
        default_normalize_score(scores, reverse=True)


def new(args: dict | None = None) -> TaintToleration:
    return TaintToleration()
