"""The in-tree plugins, by name, and the default profile's order and weights.

Every plugin module has a `NAME`, its reason strings, and a `new(args)` factory; the
registry maps names to factories as upstream's does, so a profile is just names.
Filters run in upstream's default order, which decides the one reason a node reports when
several plugins would reject it. Score weights are upstream's defaults; SelectorSpread
takes the place (and the weight) of PodTopologySpread's system-default spreading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuik8s.scheduler.plugins import (
    balancedallocation,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    selectorspread,
    tainttoleration,
)

Factory = Callable[[dict | None], Any]

REGISTRY: dict[str, Factory] = {
    nodeunschedulable.NAME: nodeunschedulable.new,
    nodename.NAME: nodename.new,
    tainttoleration.NAME: tainttoleration.new,
    nodeaffinity.NAME: nodeaffinity.new,
    nodeports.NAME: nodeports.new,
    noderesources.NAME: noderesources.new,
    balancedallocation.NAME: balancedallocation.new,
    selectorspread.NAME: selectorspread.new,
}

DEFAULT_FILTERS: tuple[str, ...] = (
    nodeunschedulable.NAME,
    nodename.NAME,
    tainttoleration.NAME,
    nodeaffinity.NAME,
    nodeports.NAME,
    noderesources.NAME,
)

DEFAULT_SCORES: tuple[tuple[str, int], ...] = (
    (tainttoleration.NAME, 3),
    (nodeaffinity.NAME, 2),
    (noderesources.NAME, 1),
    (selectorspread.NAME, 2),
    (balancedallocation.NAME, 1),
)

__all__ = ["DEFAULT_FILTERS", "DEFAULT_SCORES", "REGISTRY", "Factory"]
