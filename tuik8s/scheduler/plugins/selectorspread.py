"""SelectorSpread: spread the replicas of one owner over nodes (and zones).

Upstream spreads pods by the selectors of the Services and controllers that select them
(SelectorSpread, since replaced by PodTopologySpread's system defaults). Here "the same
group" is the pod's controlling owner (its ReplicaSet, StatefulSet, Job...): a node with
fewer pods of that owner scores higher. The count per owner is kept by each NodeInfo, so
scoring a node is a dictionary lookup, not a walk over its pods.

Normalization is SelectorSpread's: `100 * (max - count) / max` over the scored nodes, and
when nodes carry topology.kubernetes.io/zone, the zone's figure weighs two thirds.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuik8s.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    NodeInfo,
    PodInfo,
    Status,
)

NAME = "SelectorSpread"
ZONE_WEIGHTING = 2.0 / 3.0


class SelectorSpread:
    """Score: fewer pods of the pod's owner on a node (and in its zone) is better."""

    name = NAME
    events: frozenset = frozenset()

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status | None:
        return None if pod.owner else SKIP

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return node.owner_counts.get(pod.owner, 0)

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        owner = pod.owner
        return [ni.owner_counts.get(owner, 0) for ni in nodes]

    def normalize_scores(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]) -> None:
        max_by_node = max(scores, default=0)
        by_zone: dict[str, int] = {}
        for ni, s in zip(nodes, scores, strict=True):
            if ni.zone:
                by_zone[ni.zone] = by_zone.get(ni.zone, 0) + s
        if not by_zone:
            # the common case, without zones; float arithmetic in upstream's order, so the
            # truncation matches it to the last point
            if max_by_node > 0:
                m = float(max_by_node)
                scores[:] = [int(100.0 * ((max_by_node - s) / m)) for s in scores]
            else:
                scores[:] = [MAX_NODE_SCORE] * len(scores)
            return
        max_by_zone = max(by_zone.values(), default=0)
        for i, (ni, s) in enumerate(zip(nodes, scores, strict=True)):
            f = float(MAX_NODE_SCORE)
            if max_by_node > 0:
                f = MAX_NODE_SCORE * ((max_by_node - s) / max_by_node)
            if ni.zone:
                zone_score = float(MAX_NODE_SCORE)
                if max_by_zone > 0:
                    zone_score = MAX_NODE_SCORE * ((max_by_zone - by_zone[ni.zone]) / max_by_zone)
                f = f * (1.0 - ZONE_WEIGHTING) + ZONE_WEIGHTING * zone_score
            scores[i] = int(f)

def new(args: dict | None = None) -> SelectorSpread:
    return SelectorSpread()
