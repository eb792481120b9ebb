"""A profile's plugins, built from the registry, and the extension points run over them.

`Framework` is upstream's frameworkImpl reduced to what the default profile uses: PreFilter,
Filter, PreScore, Score + NormalizeScore. The hot loops (one filter pass per node, one
score pass per plugin over the feasible nodes) are written for CPython: plugins a
PreFilter/PreScore skipped are dropped before the loop, and a plugin may offer
`filter_many` / `score_many` to answer for a list of nodes in one call (one list
comprehension instead of a Python call per node; the unit tests hold them equal to the
per-node `filter` / `score`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuik8s.scheduler.framework import (
    DEFAULT_SCHEDULER_NAME,
    MAX_NODE_SCORE,
    ClusterEvent,
    Code,
    CycleState,
    FilterPlugin,
    NodeInfo,
    NormalizeScorePlugin,
    PodInfo,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Snapshot,
    Status,
)
from tuik8s.scheduler.plugins import DEFAULT_FILTERS, DEFAULT_SCORES, REGISTRY, Factory


@dataclass
class Profile:
    """One scheduler profile (KubeSchedulerProfile): its name, plugins and weights."""

    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    filters: tuple[str, ...] = DEFAULT_FILTERS
    scores: tuple[tuple[str, int], ...] = DEFAULT_SCORES
    plugin_args: Mapping[str, dict] = field(default_factory=dict)
    # 0: adaptive, as upstream (50% at 100 nodes down to 5% from 5,625 nodes on)
    percentage_of_nodes_to_score: int = 0


FilterFn = Any  # a bound `filter` method


class Framework:
    """Runs a profile's plugins at each extension point."""

    def __init__(self, profile: Profile, registry: Mapping[str, Factory] = REGISTRY) -> None:
        self.profile = profile
        names = list(dict.fromkeys([*profile.filters, *(n for n, _ in profile.scores)]))
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise ValueError(f"unknown scheduler plugin(s): {', '.join(unknown)}")
        self.plugins: dict[str, Any] = {n: registry[n](profile.plugin_args.get(n)) for n in names}
        self.filter_plugins: list[FilterPlugin] = [self.plugins[n] for n in profile.filters]
        self.pre_filter_plugins: list[PreFilterPlugin] = [
            p for p in self.filter_plugins if isinstance(p, PreFilterPlugin)
        ]
        self.score_plugins: list[tuple[ScorePlugin, int]] = [(self.plugins[n], w) for n, w in profile.scores]
        self.pre_score_plugins: list[PreScorePlugin] = [
            p for p, _ in self.score_plugins if isinstance(p, PreScorePlugin)
        ]
        # (isinstance on a runtime-checkable Protocol is slow: decide once, not per cycle)
        self._scorers: dict[str, tuple[Any, Any]] = {
            p.name: (
                getattr(p, "score_many", None) or _one_by_one(p),
                p.normalize_scores if isinstance(p, NormalizeScorePlugin) else None,
            )
            for p, _ in self.score_plugins
        }

    # ---- events -----------------------------------------------------------------------

    def plugins_for_event(self, event: ClusterEvent) -> set[str]:
        """The plugins whose rejections `event` may undo (their EventsToRegister)."""
        return {name for name, p in self.plugins.items() if event in getattr(p, "events", ())}

    # ---- filtering --------------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot) -> Status | None:
        """Run every PreFilter; a rejection is returned (the pod fits no node)."""
        for p in self.pre_filter_plugins:
            st = p.pre_filter(state, pod, snapshot)
            if st is None:
                continue
            if st.code == Code.Skip:
                state.skip_filter.add(p.name)
                continue
            if not st.plugin:
                st.plugin = p.name
            return st
        return None

    def batch_filter(self, name: str) -> Any:
        """`(state, pod, nodes) -> [Status | None]` for filter `name`, in one call if it can."""
        plugin = self.plugins[name]
        return getattr(plugin, "filter_many", None) or _filter_one_by_one(plugin)

    def active_filters(self, state: CycleState) -> list[tuple[str, FilterFn]]:
        return [(p.name, p.filter) for p in self.filter_plugins if p.name not in state.skip_filter]

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """The first rejection of the pod on the node, in filter order, or None if it fits."""
        return run_filters(self.active_filters(state), state, pod, node)

    # ---- scoring ----------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        for p in self.pre_score_plugins:
            st = p.pre_score(state, pod, nodes)
            if st is not None and st.code == Code.Skip:
                state.skip_score.add(p.name)

    def run_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """Each node's total: the weighted sum of every plugin's normalized score."""
        parts = [
            (self.plugin_scores(p, state, pod, nodes), weight)
            for p, weight in self.score_plugins
            if p.name not in state.skip_score
        ]
        return weighted_sum(parts, len(nodes))

    def plugin_scores(self, p: ScorePlugin, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """One plugin's scores for the nodes, normalized and checked to lie in 0..100."""
        many, normalize = self._scorers[p.name]
        scores = many(state, pod, nodes)
        if normalize is not None:
            normalize(state, pod, nodes, scores)
        if scores and (min(scores) < 0 or max(scores) > MAX_NODE_SCORE):
            raise ValueError(f"plugin {p.name} returned a score outside 0..{MAX_NODE_SCORE}")
        return scores


def weighted_sum(parts: list[tuple[list[int], int]], n: int) -> list[int]:
    """Σ score × weight per node, in one pass for up to three plugins (the usual case)."""
    if not parts:
        return [0] * n
    if len(parts) == 1:
        (a, wa), = parts
        return [x * wa for x in a]
    if len(parts) == 2:
        (a, wa), (b, wb) = parts
        return [x * wa + y * wb for x, y in zip(a, b, strict=True)]
    if len(parts) == 3:
        (a, wa), (b, wb), (c, wc) = parts
        return [x * wa + y * wb + z * wc for x, y, z in zip(a, b, c, strict=True)]
    totals = [0] * n
    for scores, weight in parts:
        totals = [t + s * weight for t, s in zip(totals, scores, strict=True)]
    return totals


def _one_by_one(p: ScorePlugin) -> Any:
    score = p.score

    def many(state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        return [score(state, pod, ni) for ni in nodes]

    return many


def _filter_one_by_one(p: FilterPlugin) -> Any:
    fn = p.filter

    def many(state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[Status | None]:
        return [fn(state, pod, ni) for ni in nodes]

    return many


def run_filters(filters: list[tuple[str, FilterFn]], state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
    for name, fn in filters:
        st = fn(state, pod, node)
        if st is not None:
            if not st.plugin:
                st.plugin = name
            return st
    return None
