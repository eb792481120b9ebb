"""`ClusterMap`: every node as a box with its pods inside, live.

Each box shows the node's name and state (NotReady and cordoned nodes are marked and
coloured), bars of the CPU and memory its pods request against its allocatable, and its
pods as coloured dots with their names (errors first, then pending, then the rest). Pods
not yet on a node sit in an "unscheduled" box at the end. When a node dies, its pods turn
Terminating, vanish, and their replacements appear in other boxes as the watches report
them.

Like the list, the map is virtual: a `ScrollView` rendering only the visible lines, from
box lines cached per node and rebuilt only for nodes whose pods or status changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuik8s.api.quantity import cpu_millis, to_bytes
from tuik8s.client.informer import object_key
from tuik8s.tui.views import node_ready, pod_status, pod_style

Obj = dict[str, Any]
BOX_WIDTH = 34
POD_LINES = 6
BOX_HEIGHT = POD_LINES + 5  # border, title, cpu, mem, pods..., border
UNSCHEDULED = "(unscheduled)"
FLUSH_DELAY = 0.1
_RANK = {"error": 0, "term": 1, "warn": 2, "": 3, "done": 4}


@dataclass
class PodDot:
    name: str  # namespace/name
    kind: str  # style class: "", warn, error, done, term
    cpu: int
    mem: int


@dataclass
class NodeBox:
    name: str
    ready: str = "Unknown"
    cordoned: bool = False
    cpu: int = 0  # allocatable millicores (0: unknown)
    mem: int = 0
    pods: dict[str, PodDot] = field(default_factory=dict)
    lines: list[list[Segment]] | None = None  # cache
    selected: bool = False


_quantities: dict[tuple[str, str], int] = {}


def _quantity(kind: str, value: Any) -> int:
    key = (kind, str(value))
    cached = _quantities.get(key)
    if cached is None:
        try:
            cached = cpu_millis(value) if kind == "cpu" else to_bytes(value)
        except (ValueError, TypeError):
            cached = 0
        if len(_quantities) > 10_000:
            _quantities.clear()
        _quantities[key] = cached
    return cached


def pod_requests(pod: Obj) -> tuple[int, int]:
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or ():
        requests = (c.get("resources") or {}).get("requests") or {}
        if "cpu" in requests:
            cpu += _quantity("cpu", requests["cpu"])
        if "memory" in requests:
            mem += _quantity("memory", requests["memory"])
    return cpu, mem


class ClusterMap(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    ClusterMap { background: $surface; color: $foreground; }
    ClusterMap > .map--ready { color: $success; }
    ClusterMap > .map--notready { color: $error; text-style: bold; }
    ClusterMap > .map--cordoned { color: $warning; }
    ClusterMap > .map--title { text-style: bold; }
    ClusterMap > .map--bar { color: $accent; }
    ClusterMap > .map--bar-high { color: $warning; }
    ClusterMap > .map--muted { color: $text-muted; }
    ClusterMap > .map--pod- { color: $success; }
    ClusterMap > .map--pod-warn { color: $warning; }
    ClusterMap > .map--pod-error { color: $error; }
    ClusterMap > .map--pod-done { color: $text-muted; }
    ClusterMap > .map--pod-term { color: $secondary; }
    """
    COMPONENT_CLASSES = {
        "map--ready", "map--notready", "map--cordoned", "map--title", "map--bar", "map--bar-high",
        "map--muted", "map--pod-", "map--pod-warn", "map--pod-error", "map--pod-done", "map--pod-term",
    }
    BINDINGS = [
        Binding("left", "move(-1, 0)", show=False),
        Binding("right", "move(1, 0)", show=False),
        Binding("up", "move(0, -1)", show=False),
        Binding("down", "move(0, 1)", show=False),
        Binding("pageup", "move(0, -4)", show=False),
        Binding("pagedown", "move(0, 4)", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
        Binding("enter", "open", show=False),
    ]

    class Changed(Message):
        """Boxes were redrawn (the summary may have changed)."""

    class Opened(Message):
        def __init__(self, node: str) -> None:
            super().__init__()
            self.node = node

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nodes: dict[str, NodeBox] = {}
        self.order: list[str] = []
        self.pod_node: dict[str, str] = {}  # pod key -> the box it is in
        self._pos: dict[str, int] = {}  # node -> its place in `order`
        self.cursor = 0
        self._dirty: set[str] = set()
        self._layout_dirty = True
        self._flush_pending = False

    # ---- data (called from informer events) ---------------------------------------------

    def _box(self, name: str) -> NodeBox:
        box = self.nodes.get(name)
        if box is None:
            box = self.nodes[name] = NodeBox(name)
            self._layout_dirty = True
        return box

    def upsert_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name") or ""
        box = self._box(name)
        status = node.get("status") or {}
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        box.ready = node_ready(node)
        box.cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        box.cpu = _quantity("cpu", allocatable["cpu"]) if "cpu" in allocatable else 0
        box.mem = _quantity("memory", allocatable["memory"]) if "memory" in allocatable else 0
        self._touch(name)

    def delete_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name") or ""
        box = self.nodes.get(name)
        if box is None:
            return
        if box.pods:
            box.ready = "Deleted"  # keep its pods visible until they move
            self._touch(name)
        else:
            del self.nodes[name]
            self._layout_dirty = True
            self._schedule()

    def upsert_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        node = (pod.get("spec") or {}).get("nodeName") or UNSCHEDULED
        ready, total, reason, _ = pod_status(pod)
        kind = pod_style(("", "", f"{ready}/{total}", reason))
        cpu, mem = pod_requests(pod)
        old = self.pod_node.get(key)
        if old is not None and old != node:
            self._drop_pod(key, old)
        self.pod_node[key] = node
        self._box(node).pods[key] = PodDot(key.rpartition("/")[2], kind, cpu, mem)
        self._touch(node)

    def delete_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        node = self.pod_node.pop(key, None)
        if node is not None:
            self._drop_pod(key, node)

    def _drop_pod(self, key: str, node: str) -> None:
        box = self.nodes.get(node)
        if box is None:
            return
        box.pods.pop(key, None)
        if not box.pods and (node == UNSCHEDULED or box.ready == "Deleted"):
            del self.nodes[node]
            self._layout_dirty = True
            self._schedule()
        else:
            self._touch(node)

    def _touch(self, name: str) -> None:
        box = self.nodes.get(name)
        if box is not None:
            box.lines = None
        self._dirty.add(name)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_pending and self.is_mounted:
            self._flush_pending = True
            self.set_timer(FLUSH_DELAY, self._flush)

    def on_mount(self) -> None:
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        if self._layout_dirty:
            selected = self.selected_node
            self.order = sorted(n for n in self.nodes if n != UNSCHEDULED)
            if UNSCHEDULED in self.nodes:
                self.order.append(UNSCHEDULED)
            self._pos = {n: i for i, n in enumerate(self.order)}
            self._layout_dirty = False
            self._dirty.clear()
            if selected is not None and selected in self._pos:
                self.cursor = self._pos[selected]
            self.cursor = max(0, min(self.cursor, len(self.order) - 1))
            self._update_virtual_size()
            self.refresh()
            self.post_message(self.Changed())
            return
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            region = self._box_region(name)
            if region is not None:
                self.refresh(region)
        if dirty:
            self.post_message(self.Changed())

    # ---- geometry ------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return max(1, self.scrollable_content_region.width // (BOX_WIDTH + 1))

    def _update_virtual_size(self) -> None:
        rows = -(-len(self.order) // self.columns) if self.order else 0
        size = Size(self.columns * (BOX_WIDTH + 1), rows * BOX_HEIGHT)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()

    def _box_region(self, name: str) -> Region | None:
        index = self._pos.get(name)
        if index is None:
            return None
        row, col = divmod(index, self.columns)
        y = row * BOX_HEIGHT - round(self.scroll_y)
        return Region(col * (BOX_WIDTH + 1), y, BOX_WIDTH, BOX_HEIGHT)

    @property
    def selected_node(self) -> str | None:
        if 0 <= self.cursor < len(self.order):
            name = self.order[self.cursor]
            return None if name == UNSCHEDULED else name
        return None

    def action_move(self, dx: int, dy: int) -> None:
        if not self.order:
            return
        old = self.cursor
        new = max(0, min(len(self.order) - 1, old + dx + dy * self.columns))
        if new == old:
            return
        self.cursor = new
        for index in (old, new):
            name = self.order[index]
            if name in self.nodes:
                self.nodes[name].lines = None
                region = self._box_region(name)
                if region is not None:
                    self.refresh(region)
        row = new // self.columns
        top, bottom = row * BOX_HEIGHT, (row + 1) * BOX_HEIGHT
        height = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False)
        elif bottom > self.scroll_y + height:
            self.scroll_to(y=bottom - height, animate=False)

    def action_first(self) -> None:
        self.action_move(-self.cursor, 0)

    def action_last(self) -> None:
        self.action_move(len(self.order) - 1 - self.cursor, 0)

    def action_open(self) -> None:
        node = self.selected_node
        if node is not None:
            self.post_message(self.Opened(node))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        col = (offset.x + round(self.scroll_x)) // (BOX_WIDTH + 1)
        row = (offset.y + round(self.scroll_y)) // BOX_HEIGHT
        index = row * self.columns + col
        if col < self.columns and index < len(self.order):
            self.action_move(index - self.cursor, 0)
            if event.chain >= 2:
                self.action_open()

    # ---- summary -------------------------------------------------------------------------

    def summary(self) -> str:
        nodes = [b for n, b in self.nodes.items() if n != UNSCHEDULED]
        ready = sum(1 for b in nodes if b.ready == "Ready")
        cordoned = sum(1 for b in nodes if b.cordoned)
        pods = len(self.pod_node)
        pending = len(self.nodes[UNSCHEDULED].pods) if UNSCHEDULED in self.nodes else 0
        trouble = sum(1 for b in self.nodes.values() for p in b.pods.values() if p.kind == "error")
        return (f"Nodes {len(nodes)} (Ready {ready}, not ready {len(nodes) - ready}, cordoned {cordoned})"
                f"  │  Pods {pods} (unscheduled {pending}, failing {trouble})")

    # ---- rendering -----------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name)

    def _bar(self, label: str, used: int, total: int, width: int) -> list[Segment]:
        base = self.rich_style
        if total <= 0:
            text = f"{label} {'n/a':>{width - len(label) - 1}}"
            return [Segment(text, base + self._style("map--muted"))]
        share = used / total
        pct = f"{round(share * 100):>3}%"
        cells = width - len(label) - len(pct) - 3
        full = min(cells, round(share * cells))
        style = base + self._style("map--bar-high" if share > 0.9 else "map--bar")
        return [
            Segment(f"{label} ", base),
            Segment("█" * full, style),
            Segment("░" * (cells - full), base + self._style("map--muted")),
            Segment(f" {pct}", base),
        ]

    def _render_box(self, box: NodeBox, selected: bool) -> list[list[Segment]]:
        base = self.rich_style
        inner = BOX_WIDTH - 2
        if box.name == UNSCHEDULED:
            border = base + self._style("map--muted")
            tag = ""
        elif box.ready != "Ready":
            border = base + self._style("map--notready")
            tag = box.ready
        elif box.cordoned:
            border = base + self._style("map--cordoned")
            tag = "cordoned"
        else:
            border = base + self._style("map--ready")
            tag = ""
        if box.cordoned and box.ready != "Ready":
            tag += ",cordoned"
        if selected:
            border = border + Style(bold=True, reverse=False)
            tl, tr, bl, br, h, v = "┏", "┓", "┗", "┛", "━", "┃"
        else:
            tl, tr, bl, br, h, v = "╭", "╮", "╰", "╯", "─", "│"

        def line(content: list[Segment]) -> list[Segment]:
            length = sum(cell_len(s.text) for s in content)
            pad = [Segment(" " * (inner - length), base)] if length < inner else []
            return [Segment(v, border), *content, *pad, Segment(v, border)]

        title = box.name
        if tag:
            title = set_cell_size(title, max(1, inner - len(tag) - 2)).rstrip() + "  "
        title_seg = [Segment(set_cell_size(title, inner - len(tag)), base + self._style("map--title") + (Style(reverse=True) if selected else Style())),
                     Segment(tag, border)]
        used_cpu = sum(p.cpu for p in box.pods.values())
        used_mem = sum(p.mem for p in box.pods.values())
        lines = [[Segment(tl + h * inner + tr, border)], line(title_seg),
                 line(self._bar("cpu", used_cpu, box.cpu, inner)), line(self._bar("mem", used_mem, box.mem, inner))]
        pods = sorted(box.pods.values(), key=lambda p: (_RANK.get(p.kind, 3), p.name))
        shown = pods if len(pods) <= POD_LINES else pods[: POD_LINES - 1]
        for pod in shown:
            dot = base + self._style(f"map--pod-{pod.kind}")
            lines.append(line([Segment("● ", dot), Segment(set_cell_size(pod.name, inner - 2), base)]))
        if len(pods) > POD_LINES:
            lines.append(line([Segment(f"  + {len(pods) - len(shown)} more pods", base + self._style("map--muted"))]))
        if not pods:
            lines.append(line([Segment("  no pods", base + self._style("map--muted"))]))
        while len(lines) < BOX_HEIGHT - 1:
            lines.append(line([]))
        lines.append([Segment(bl + h * inner + br, border)])
        return lines

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if not self.order:
            if y == 0:
                return Strip([Segment(" waiting for nodes…", base + self._style("map--muted"))]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        row, inner = divmod(round(self.scroll_y) + y, BOX_HEIGHT)
        columns = self.columns
        segments: list[Segment] = []
        for col in range(columns):
            index = row * columns + col
            if index >= len(self.order):
                break
            box = self.nodes.get(self.order[index])
            if box is None:
                segments.append(Segment(" " * (BOX_WIDTH + 1), base))
                continue
            selected = index == self.cursor
            if box.lines is None or box.selected != selected:
                box.lines = self._render_box(box, selected)
                box.selected = selected
            segments.extend(box.lines[inner])
            segments.append(Segment(" ", base))
        strip = Strip(segments)
        return strip.crop_extend(round(self.scroll_x), round(self.scroll_x) + width, base)


class MapFeed:
    """Forwards the pod and node informers' events to a `ClusterMap`."""

    def __init__(self, target: ClusterMap, kind: str) -> None:
        self.target = target
        self.kind = kind
        self.events = 0
        self.last = time.monotonic()

    def on_upsert(self, obj: Obj) -> None:
        if self.kind == "pods":
            self.target.upsert_pod(obj)
        else:
            self.target.upsert_node(obj)

    def on_delete(self, obj: Obj) -> None:
        if self.kind == "pods":
            self.target.delete_pod(obj)
        else:
            self.target.delete_node(obj)
