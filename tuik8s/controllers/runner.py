"""The one reconcile loop every controller runs, and the manager that supervises them.

A controller declares the informers it watches and turns their events into keys on a
work queue (sample-controller's shape). Workers take a key, call `reconcile(key)`, which
re-reads the cache and converges with the fewest writes, and:
- success: the key's backoff is forgotten; `reconcile` may ask to look again later by
  returning a delay (a Deployment waiting for minReadySeconds, a Job's deadline);
- an exception: the key is requeued with exponential backoff. A 409 Conflict is the
  ordinary case: the cache was behind, and the next try reads the newer object.

The manager restarts a controller whose task dies (a bug, not a failed reconcile), says
so in the log and in an Event, and backs off between restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuik8s.client.client import ApiClient
from tuik8s.client.errors import ApiError, ClientError, is_conflict, is_not_found
from tuik8s.client.informer import Informer, SharedInformers, object_key
from tuik8s.client.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass
class Timings:
    """Durations the lab shortens; the defaults are the lab's, flags give upstream's."""

    node_monitor_grace: float = 20.0  # upstream 40 s
    default_toleration_seconds: int = 10  # upstream 300 s
    node_monitor_period: float = 2.0  # upstream 5 s
    crash_loop_base: float = 0.005
    job_pod_failure_backoff: float = 10.0  # upstream's; doubles per failure up to 6 min
    requeue_cap: float = 60.0
    hpa_sync_period: float = 5.0  # upstream --horizontal-pod-autoscaler-sync-period 15 s
    hpa_downscale_stabilization: float = 30.0  # upstream 300 s
    hpa_cpu_initialization: float = 300.0  # upstream's
    hpa_initial_readiness_delay: float = 30.0  # upstream's
    hpa_tolerance: float = 0.1  # upstream's
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def upstream(cls) -> Timings:
        return cls(node_monitor_grace=40.0, default_toleration_seconds=300, node_monitor_period=5.0, requeue_cap=1000.0,
                   hpa_sync_period=15.0, hpa_downscale_stabilization=300.0)


@dataclass
class ControllerContext:
    client: ApiClient
    informers: SharedInformers
    timings: Timings = field(default_factory=Timings)

    async def event(self, obj: Obj, reason: str, message: str, type: str = "Normal", component: str = "") -> None:
        await self.client.record_event(obj, reason, message, type, component or "controller-manager")


class Controller:
    """Base class: subclasses set `name`, wire informers in `setup`, and implement `reconcile`."""

    name = "controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue: WorkQueue[str] = WorkQueue(name=self.name, max_delay=ctx.timings.requeue_cap)
        self.setup()

    # ---- for subclasses -----------------------------------------------------------

    def setup(self) -> None:
        """Ask `self.ctx.informers` for informers and add handlers that enqueue keys."""

    async def reconcile(self, key: str) -> float | None:
        """Converge `key`; return seconds to look again, or None."""
        raise NotImplementedError

    def informer(self, res: str, **kwargs: Any) -> Informer:
        return self.ctx.informers.informer(res, **kwargs)

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def enqueue_handlers(self, informer: Informer, key_of: Callable[[Obj], str | None] | None = None) -> None:
        """Enqueue the object's own key (or `key_of(obj)`) on every add, update and delete."""
        fn = key_of or object_key

        def add(obj: Obj) -> None:
            k = fn(obj)
            if k:
                self.queue.add(k)

        informer.add_handler(add, lambda old, new: add(new), add)

    async def event(self, obj: Obj, reason: str, message: str, type: str = "Normal") -> None:
        await self.ctx.event(obj, reason, message, type, f"{self.name}-controller")

    # ---- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        await self.ctx.informers.wait_synced()
        workers = [asyncio.create_task(self._worker(i), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError, ShutDown):
                    await w

    async def _worker(self, n: int) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                again = await self.reconcile(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except ClientError as e:
                level = logging.DEBUG if isinstance(e, ApiError) and (is_conflict(e) or is_not_found(e)) else logging.INFO
                log.log(level, "%s: %s: %s (retrying)", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception:  # noqa: BLE001 - a bad key must not stop the controller
                log.exception("%s: reconciling %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)


class ControllerManager:
    """Runs controllers (and other long-running components) and restarts the ones that die."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self._components: dict[str, Callable[[], Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}

    def add(self, name: str, run: Callable[[], Any]) -> None:
        """`run` is called (again after a crash) and must return a coroutine that runs forever."""
        self._components[name] = run

    def add_controller(self, controller: Controller) -> None:
        self.add(controller.name, controller.run)

    def start(self) -> None:
        self.ctx.informers.start()
        for name in self._components:
            self._tasks[name] = asyncio.create_task(self._supervise(name), name=f"supervise-{name}")

    async def _supervise(self, name: str) -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                await self._components[name]()
                log.warning("%s stopped; starting it again", name)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the supervisor's whole job
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.exception("%s crashed; restarting it in %.0f s", name, delay)
                await self._report_crash(name, e)
            if time.monotonic() - started > 60:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _report_crash(self, name: str, error: Exception) -> None:
        with contextlib.suppress(Exception):
            ns = await self.ctx.client.get("namespaces", "kube-system")
            await self.ctx.client.record_event(
                ns, "ComponentRestarted",
                f"{name} crashed ({type(error).__name__}: {error}) and was restarted",
                "Warning", "controller-manager",
            )

    async def stop(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        for t in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.ctx.informers.stop()
