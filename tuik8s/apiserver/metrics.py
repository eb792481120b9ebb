"""A few Prometheus metrics at /metrics, as kube-apiserver exposes its own.

Only what a user (or a benchmark) needs to see how the server is doing: request
latency by verb and watch delivery latency from commit to the client's socket.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = labels
        self._series: dict[tuple[str, ...], list[float]] = {}  # counts per bucket + [sum, count]

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(BUCKETS) + 2)
        index = bisect.bisect_left(BUCKETS, value)
        if index < len(BUCKETS):
            series[index] += 1
        series[-2] += value
        series[-1] += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, series in sorted(self._series.items()):
            base = ",".join(f'{k}="{v}"' for k, v in zip(self.label_names, labels, strict=True))
            cumulative = 0.0
            for bound, count in zip(BUCKETS, series, strict=False):
                cumulative += count
                sep = "," if base else ""
                yield f'{self.name}_bucket{{{base}{sep}le="{bound}"}} {cumulative:g}'
            sep = "," if base else ""
            yield f'{self.name}_bucket{{{base}{sep}le="+Inf"}} {series[-1]:g}'
            wrapped = f"{{{base}}}" if base else ""
            yield f"{self.name}_sum{wrapped} {series[-2]:g}"
            yield f"{self.name}_count{wrapped} {series[-1]:g}"


WATCH_DELIVERY = Histogram(
    "tuik8s_watch_delivery_seconds",
    "Time from an event's commit in the store to its frame handed to the client's connection.",
    ("resource",),
)
REQUEST_DURATION = Histogram(
    "tuik8s_request_duration_seconds",
    "Time to answer an API request, by verb (watches excluded).",
    ("verb",),
)


def render() -> str:
    lines: list[str] = []
    for h in (REQUEST_DURATION, WATCH_DELIVERY):
        lines.extend(h.render())
    return "\n".join(lines) + "\n"
