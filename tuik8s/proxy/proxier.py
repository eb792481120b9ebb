"""The kube-proxy runner: informers on Services and Endpoints, a rate-limited sync loop, and
one `iptables-restore --noflush` per sync.

Level-triggered, as upstream's proxier: an event only says "something changed"; the sync
reads both caches whole, renders every rule (tuik8s.proxy.rules) and applies the lot in one
transaction, so a missed or reordered event cannot leave a stale rule behind. Events arriving
while a sync runs fold into one next sync, and syncs start at most every `min_sync_period`
(upstream's --iptables-min-sync-period, 1 s there; 0.1 s here, so rules follow an endpoint
change well within a second); an unchanged text is not applied again. Every `sync_period`
a full sync re-checks the jumps from the built-in chains, re-reads the chains that exist and
rewrites everything, repairing what anyone else removed.

Nothing is written before both informers have listed: rules from half a picture would
REJECT services whose Endpoints have not arrived yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers, object_key
from tuik8s.proxy.hairpin import ensure_hairpin
from tuik8s.proxy.rules import (
    Jump,
    ProxyOptions,
    ProxyState,
    build_state,
    hashed_chains,
    missing_jumps,
    render,
    stale_udp_flows,
)

log = logging.getLogger(__name__)

MIN_SYNC_PERIOD = 0.1
SYNC_PERIOD = 30.0
RETRY_DELAY = 1.0


class ProxyError(Exception):
    """A failure to report in one line (no iptables, not root)."""


class Netfilter(Protocol):
    """What the proxier asks of the node's firewall (a fake in tests)."""

    async def restore(self, text: str) -> None: ...

    async def save(self) -> str: ...

    async def insert_jump(self, jump: Jump) -> None: ...

    async def conntrack_delete(self, args: Sequence[str]) -> None: ...


async def _exec(*argv: str, input: bytes | None = None, within: float = 30.0) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise ProxyError(f"{argv[0]} is not installed (apt-get install iptables conntrack)") from None
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate(input)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class IptablesCommands:
    """The real thing: iptables, iptables-save, iptables-restore and conntrack."""

    def __init__(self, iptables: str = "iptables", conntrack: str | None = "conntrack") -> None:
        self.iptables = iptables
        self.conntrack = conntrack

    async def restore(self, text: str) -> None:
        rc, out, err = await _exec(f"{self.iptables}-restore", "--noflush", "-w", "5", input=text.encode())
        if rc != 0:
            raise ProxyError(f"iptables-restore failed: {_last_line(err) or _last_line(out) or f'exit status {rc}'}")

    async def save(self) -> str:
        rc, out, err = await _exec(f"{self.iptables}-save")
        if rc != 0:
            raise ProxyError(f"iptables-save failed: {_last_line(err) or f'exit status {rc}'}")
        return out

    async def insert_jump(self, jump: Jump) -> None:
        """First in its chain, as upstream prepends its jumps."""
        rc, out, err = await _exec(self.iptables, "-w", "5", "-t", jump.table, "-I", jump.chain, "1", *jump.args)
        if rc != 0:
            raise ProxyError(f"iptables -I {jump.chain} failed: {_last_line(err) or _last_line(out)}")

    async def conntrack_delete(self, args: Sequence[str]) -> None:
        if self.conntrack is None:
            return
        # exit status 1 with "0 flow entries have been deleted" is the common, fine case
        rc, _, err = await _exec(self.conntrack, *args, within=10)
        if rc not in (0, 1):
            log.warning("conntrack %s: %s", " ".join(args), _last_line(err))


@dataclass
class ProxyConfig:
    node_name: str
    node_ip: str | None = None
    cluster_cidr: str | None = None
    masquerade_all: bool = False
    min_sync_period: float = MIN_SYNC_PERIOD
    sync_period: float = SYNC_PERIOD
    hairpin_bridge: str | None = None  # the pod bridge whose ports get hairpin mode (docker0)


class KubeProxy:
    """Services and Endpoints in, this node's iptables out."""

    def __init__(self, client: ApiClient, config: ProxyConfig, netfilter: Netfilter | None = None) -> None:
        self.config = config
        self.netfilter = netfilter if netfilter is not None else IptablesCommands()
        self.informers = SharedInformers(client)
        self.services = self.informers.informer("services")
        self.endpoints = self.informers.informer("endpoints")
        for inf in (self.services, self.endpoints):
            inf.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)
        self.options = ProxyOptions(config.node_name, config.cluster_cidr, config.masquerade_all)
        self._wake = asyncio.Event()
        self._applied = ProxyState()
        self._chains: set[str] = set()
        self._text = ""
        self.syncs = 0  # applied restores
        self.last_sync_seconds: float | None = None
        self.synced = asyncio.Event()  # set after the first successful sync

    def _changed(self, _obj: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        self.informers.start()
        try:
            await self.informers.wait_synced()
            await self._sync_loop()
        finally:
            await self.informers.stop()

    async def _sync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        full_due = 0.0  # the first sync is a full one
        last_start = -self.config.min_sync_period
        while True:
            now = loop.time()
            if now < full_due and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(full_due - now):
                        await self._wake.wait()
            pause = last_start + self.config.min_sync_period - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)  # the rate limit: events meanwhile fold into this sync
            self._wake.clear()
            full = loop.time() >= full_due
            last_start = loop.time()
            try:
                await self.sync(full=full)
            except ProxyError as e:
                if not self.synced.is_set():
                    raise  # a node that cannot program its firewall says so at once
                log.error("%s; retrying in %gs", e, RETRY_DELAY)
                full_due = loop.time() + RETRY_DELAY
                continue
            if full:
                full_due = loop.time() + self.config.sync_period

    def state(self) -> ProxyState:
        endpoints = {object_key(e): e for e in self.endpoints.list()}
        return build_state(self.services.list(), endpoints)

    async def sync(self, *, full: bool = False) -> bool:
        """Apply the rules of the caches now; False when nothing had changed."""
        started = time.monotonic()
        saved = await self.netfilter.save() if full else ""
        self._chains |= hashed_chains(saved)
        if self.config.hairpin_bridge:
            changed = await ensure_hairpin(self.config.hairpin_bridge)
            if changed:
                log.info("hairpin mode on for %s", ", ".join(changed))
        state = self.state()
        rendered = render(state, self.options, self._chains)
        if not full and not rendered.stale and rendered.steady == self._text:
            return False
        await self.netfilter.restore(rendered.text)
        self._text = rendered.steady
        self._chains = set(rendered.chains)
        for jump in missing_jumps(saved) if full else ():
            await self.netfilter.insert_jump(jump)
            log.info("inserted the jump %s %s -> %s", jump.table, jump.chain, jump.args[-1])
        flows = stale_udp_flows(self._applied, state)
        self._applied = state
        for args in flows:
            await self.netfilter.conntrack_delete(args)
        self.syncs += 1
        self.last_sync_seconds = time.monotonic() - started
        endpoints = sum(len(state.ready(sp)) for sp in state.ports)
        log.info("synced %d service ports, %d endpoints, %d rules in %.0f ms%s", len(state.ports), endpoints,
                 rendered.rules, self.last_sync_seconds * 1000, " (full)" if full else "")
        self.synced.set()
        return True
