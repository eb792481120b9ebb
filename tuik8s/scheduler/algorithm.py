"""One scheduling decision: filter the nodes, score the feasible ones, pick the best.

As upstream's schedulePod:
- Filtering stops once enough feasible nodes are found (`num_feasible_nodes_to_find`:
  all nodes up to 100, then a share that falls from 50% at 100 nodes to 5% at 5,625
  nodes and beyond, never fewer than 100). Each decision starts where the previous one
  stopped (`next_start_node_index`), so over many pods every node gets looked at.
- A single feasible node is taken without scoring.
- Among the nodes with the highest total score one is picked uniformly at random, so
  equal nodes share the load instead of the first one taking everything.
No I/O and no awaiting: the caller owns the snapshot for the length of the call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tuik8s.scheduler.framework import (
    Code,
    CycleState,
    Diagnosis,
    FitError,
    NodeInfo,
    PodInfo,
    Snapshot,
    unresolvable,
)
from tuik8s.scheduler.runtime import Framework

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods"
MIN_FILTER_BATCH = 16


class NoNodesAvailable(Exception):
    """The cluster has no nodes at all (upstream's ErrNoNodesAvailable)."""

    def __init__(self) -> None:
        super().__init__(ERR_NO_NODES_AVAILABLE)


class SchedulingError(Exception):
    """A plugin failed (Code.Error): not the pod's fault; it is retried with backoff."""


@dataclass(frozen=True)
class ScheduleResult:
    node: str
    evaluated_nodes: int
    feasible_nodes: int


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough to stop filtering (upstream's numFeasibleNodesToFind)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all_nodes
    if percentage <= 0:
        percentage = BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125
        percentage = max(percentage, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class Algorithm:
    """Decides where pods go, one at a time; remembers where the last search stopped."""

    def __init__(self, framework: Framework, rng: random.Random | None = None) -> None:
        self.framework = framework
        self.rng = rng or random.Random()
        self.next_start_node_index = 0

    def schedule(self, pod: PodInfo, snapshot: Snapshot, state: CycleState | None = None) -> ScheduleResult:
        """The node for `pod`; raises FitError, NoNodesAvailable or SchedulingError."""
        state = state or CycleState(snapshot)
        state.snapshot = snapshot
        if not snapshot.nodes:
            raise NoNodesAvailable()
        feasible, diagnosis, evaluated = self.find_nodes_that_fit(state, pod, snapshot)
        if not feasible:
            raise FitError(pod, len(snapshot.nodes), diagnosis)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        fwk = self.framework
        fwk.run_pre_score(state, pod, feasible)
        totals = fwk.run_score(state, pod, feasible)
        return ScheduleResult(self.select_host(feasible, totals), evaluated, len(feasible))

    def find_nodes_that_fit(
        self, state: CycleState, pod: PodInfo, snapshot: Snapshot
    ) -> tuple[list[NodeInfo], Diagnosis, int]:
        fwk = self.framework
        nodes = snapshot.nodes
        n = len(nodes)
        diagnosis = Diagnosis()
        st = fwk.run_pre_filter(state, pod, snapshot)
        if st is not None:
            if st.code == Code.Error:
                raise SchedulingError(f"running PreFilter plugin {st.plugin}: {st.message}")
            diagnosis.pre_filter_msg = st.message
            diagnosis.absent_status = st
            diagnosis.unschedulable_plugins.add(st.plugin)
            return [], diagnosis, 0
        all_nodes = n
        if state.node_names is not None:
            # a PreFilter named the only candidates; the other nodes count as rejected by it
            by_name = snapshot.by_name
            nodes = [by_name[name] for name in sorted(state.node_names) if name in by_name]
            plugins = " ".join(sorted(set(state.restricted_by)))
            diagnosis.absent_status = unresolvable(f"node(s) didn't satisfy plugin(s) [{plugins}]")
            diagnosis.unschedulable_plugins.update(state.restricted_by)
            n = len(nodes)
            if not n:
                return [], diagnosis, 0
        to_find = num_feasible_nodes_to_find(n, fwk.profile.percentage_of_nodes_to_score)
        start = self.next_start_node_index % n
        order = nodes[start:] + nodes[:start] if start else nodes
        filters = fwk.active_filters(state)
        feasible: list[NodeInfo] = []
        if not filters:
            feasible = order[:to_find]
            self.next_start_node_index = (self.next_start_node_index + len(feasible)) % all_nodes
            return feasible, diagnosis, len(feasible)
        statuses = diagnosis.node_to_status
        rejected_by = diagnosis.unschedulable_plugins
        processed = 0
        append = feasible.append
        if len(filters) == 1:
            # the usual case once PreFilters skipped what cannot fail (NodeResourcesFit
            # alone): check nodes a batch at a time, a batch being what is still missing
            name = filters[0][0]
            many = fwk.batch_filter(name)
            i = 0
            while i < n and len(feasible) < to_find:
                batch = order[i : i + max(to_find - len(feasible), MIN_FILTER_BATCH)]
                i += len(batch)
                results = many(state, pod, batch)
                if not any(results):
                    take = min(len(batch), to_find - len(feasible))
                    feasible.extend(batch[:take])
                    processed += take
                    continue
                for ni, st in zip(batch, results, strict=True):
                    processed += 1
                    if st is None:
                        append(ni)
                        if len(feasible) >= to_find:
                            break
                        continue
                    if st.code == Code.Error:
                        raise SchedulingError(f"running Filter plugin {name} on node {ni.name}: {st.message}")
                    if not st.plugin:
                        st.plugin = name
                    statuses[ni.name] = st
                    rejected_by.add(name)
            self.next_start_node_index = (self.next_start_node_index + processed) % all_nodes
            return feasible, diagnosis, processed
        for ni in order:
            processed += 1
            for name, fn in filters:
                st = fn(state, pod, ni)
                if st is not None:
                    if st.code == Code.Error:
                        raise SchedulingError(f"running Filter plugin {name} on node {ni.name}: {st.message}")
                    if not st.plugin:
                        st.plugin = name
                    statuses[ni.name] = st
                    rejected_by.add(name)
                    break
            else:
                append(ni)
                if len(feasible) >= to_find:
                    break
        self.next_start_node_index = (self.next_start_node_index + processed) % all_nodes
        return feasible, diagnosis, processed

    def select_host(self, nodes: list[NodeInfo], totals: list[int]) -> str:
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        pick = ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]
        return nodes[pick].name

