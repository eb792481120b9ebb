"""NodeAffinity: spec.nodeSelector and required node affinity filter; preferred terms score.

Filter: every nodeSelector label must be on the node, and if the pod has required node
affinity, one of its nodeSelectorTerms must match (terms are ORed, the expressions and
fields inside one term ANDed; matchFields knows metadata.name). Score: the sum of the
weights of the preferred terms the node matches, scaled so the best node gets 100.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuik8s.api.selectors import node_selector_term_matches
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

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_CONFLICT = "pod affinity terms conflict"
_FILTER_KEY = "PreFilter" + NAME
_SCORE_KEY = "PreScore" + NAME


def _node_affinity(pod: PodInfo) -> Mapping[str, Any]:
    affinity = pod.spec.get("affinity") or {}
    return affinity.get("nodeAffinity") or {} if isinstance(affinity, dict) else {}


def required_terms(pod: PodInfo) -> list[Mapping[str, Any]] | None:
    """The required nodeSelectorTerms, or None when the pod has no required node affinity."""
    required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return [t for t in (required.get("nodeSelectorTerms") or ()) if isinstance(t, dict)]


def named_nodes(terms: list[Mapping[str, Any]] | None) -> set[str] | None:
    """The node names the required terms allow, when every term names its nodes
    (matchFields metadata.name In [...], as the DaemonSet controller writes); else None."""
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        in_term: set[str] | None = None
        for req in term.get("matchFields") or ():
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                values = set(req.get("values") or ())
                in_term = values if in_term is None else in_term & values
        if in_term is None:
            return None  # this term may match any node, and terms are ORed
        names |= in_term
    return names


def _fields(node: NodeInfo) -> dict[str, str]:
    return {"metadata.name": node.name}


def matches_required(
    node_selector: Mapping[str, str], terms: list[Mapping[str, Any]] | None, node: NodeInfo
) -> bool:
    """Whether the node satisfies nodeSelector and the required terms (upstream's
    GetRequiredNodeAffinity(pod).Match(node))."""
    labels = node.labels
    for key, value in node_selector.items():
        if labels.get(key) != value:
            return False
    if terms is None:
        return True
    fields = _fields(node)
    return any(node_selector_term_matches(term, labels, fields) for term in terms)


class NodeAffinity:
    """Filter on nodeSelector + required node affinity; score preferred node affinity."""

    name = NAME
    events = frozenset({ClusterEvent.NodeAdd, ClusterEvent.NodeLabelChange, ClusterEvent.UnscheduledPodUpdate})

    def pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        selector = pod.spec.get("nodeSelector") or {}
        terms = required_terms(pod)
        if not selector and terms is None:
            return SKIP
        state.write(_FILTER_KEY, (dict(selector), terms))
        names = named_nodes(terms)
        if names is not None:
            if not names:
                return unresolvable(ERR_REASON_CONFLICT)
            state.restrict_to(NAME, names)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        selector, terms = state.read(_FILTER_KEY) or ((pod.spec.get("nodeSelector") or {}), required_terms(pod))
        if matches_required(selector, terms, node):
            return None
        return unresolvable(ERR_REASON_POD)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status | None:
        preferred = [
            t for t in _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or ()
            if isinstance(t, dict) and int(t.get("weight") or 0) != 0
        ]
        if not preferred:
            return SKIP
        state.write(_SCORE_KEY, preferred)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        preferred = state.read(_SCORE_KEY)
        if preferred is None:
            return 0
        fields = _fields(node)
        return sum(
            int(t.get("weight") or 0)
            for t in preferred
            if node_selector_term_matches(t.get("preference") or {}, node.labels, fields)
        )

    def normalize_scores(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]) -> None:
        default_normalize_score(scores)


def new(args: dict | None = None) -> NodeAffinity:
    return NodeAffinity()
