"""Cheaper hook dispatch for the worker's mitmproxy (mitmproxy 11 only).

mitmproxy fires about eight hooks per request, and each costs far more than the addon
code it runs (py-spy, stock mitmdump: ~41% of its time is dispatch):

1. `AddonManager.handle_lifecycle` walks every addon (and its children) looking the hook
   up by name, calls it inside a context manager, then fires a second `update` hook over
   all addons again. `install` replaces it, on this one master, with a lookup cached per
   hook name that skips `update` when no addon has one.
2. The connection handler turns each hook the protocol layers yield into an asyncio
   Task (Python 3.11 has no eager tasks), which runs on a later loop iteration and then
   feeds `HookCompleted` back through the whole layer stack under a lock. `InlineHooks`
   wraps a connection's top layer: a hook whose handlers are all plain functions runs
   right where the layers yield it, and its `HookCompleted` is handed to the layers as
   soon as they finish the current event, within the same call. Hooks with an async
   handler (our `server_connect`) still take mitmproxy's path.

Both use only the sans-io layer contract (`handle_event` yields commands; a blocking
`StartHook` is answered with `HookCompleted`) and the addon manager's `chain`, but that
is not promised across major versions: on any mitmproxy other than 11.x, or with
`TUIK8S_INGRESS_DISPATCH=stock`, mitmproxy's own dispatch stays in place.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from mitmproxy import exceptions, flow, hooks
from mitmproxy.addonmanager import traverse
from mitmproxy.master import Master
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layer import Layer
from mitmproxy.version import VERSION

log = logging.getLogger(__name__)

SUPPORTED_MAJOR = "11."


def enabled() -> bool:
    return VERSION.startswith(SUPPORTED_MAJOR) and os.environ.get("TUIK8S_INGRESS_DISPATCH", "fast") != "stock"


Handlers = tuple[Callable[..., Any], ...]


class HookTable:
    """The handlers of each hook over a master's addons, looked up once per hook name."""

    def __init__(self, master: Master) -> None:
        self.manager = master.addons
        self._handlers: dict[str, Handlers] = {}
        self._sync: dict[str, bool] = {}

    def handlers(self, name: str) -> Handlers:
        found = self._handlers.get(name)
        if found is None:
            found = tuple(
                func for addon in traverse(list(self.manager.chain))
                if callable(func := getattr(addon, name, None))
            )
            self._handlers[name] = found
        return found

    def all_sync(self, name: str) -> bool:
        sync = self._sync.get(name)
        if sync is None:
            sync = self._sync[name] = not any(inspect.iscoroutinefunction(f) for f in self.handlers(name))
        return sync

    def run_sync(self, hook: hooks.Hook) -> None:
        args = hook.args()
        for func in self.handlers(hook.name):
            try:
                func(*args)
            except exceptions.AddonHalt:
                return
            except Exception:  # noqa: BLE001 - as mitmproxy's safecall: log, go on
                log.exception("addon hook %s failed", hook.name)


class InlineHooks:
    """A connection's top layer, answering hooks with synchronous handlers in place."""

    def __init__(self, layer: Layer, table: HookTable) -> None:
        self.layer = layer
        self.table = table
        self.context = layer.context

    def handle_event(self, event: events.Event) -> Iterator[commands.Command]:
        pending: deque[events.Event] = deque((event,))
        table = self.table
        while pending:
            for command in self.layer.handle_event(pending.popleft()):
                if isinstance(command, commands.StartHook) and table.all_sync(command.name):
                    table.run_sync(command)
                    if command.blocking:
                        pending.append(events.HookCompleted(command))
                else:
                    yield command

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)


def inline_hooks(make_top_layer: Callable[[Any], Layer], table: HookTable | None) -> Callable[[Any], Any]:
    """Wrap a server instance's `make_top_layer` so each connection gets `InlineHooks`."""
    if table is None:
        return make_top_layer
    return lambda context: InlineHooks(make_top_layer(context), table)


def install(master: Master) -> HookTable | None:
    """Give `master` cached hook dispatch; None (and nothing changed) when not supported."""
    if not enabled():
        return None
    table = HookTable(master)
    manager = master.addons
    handlers = table.handlers
    has_update = bool(handlers(hooks.UpdateHook.name))

    async def handle_lifecycle(event: hooks.Hook) -> None:
        args = event.args()
        for func in handlers(event.name):
            try:
                result = func(*args)
                if result is not None and inspect.isawaitable(result):
                    await result
            except exceptions.AddonHalt:
                return
            except Exception:  # noqa: BLE001 - as mitmproxy's safecall: log, go on
                log.exception("addon hook %s failed", event.name)
        if has_update and isinstance(args[0], flow.Flow):
            await manager.trigger_event(hooks.UpdateHook([args[0]]))

    manager.handle_lifecycle = handle_lifecycle  # type: ignore[method-assign]
    return table
