"""The sync loop over a fake firewall: what is applied when, and what is cleaned up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tuik8s.client.client import ApiClient
from tuik8s.proxy.proxier import KubeProxy, ProxyConfig, ProxyError
from tuik8s.proxy.rules import Jump

Obj = dict[str, Any]


class FakeNetfilter:
    def __init__(self) -> None:
        self.restores: list[str] = []
        self.times: list[float] = []
        self.applied = asyncio.Event()
        self.inserted: list[Jump] = []
        self.conntrack: list[list[str]] = []
        self.fail = False

    async def restore(self, text: str) -> None:
        if self.fail:
            raise ProxyError("iptables-restore failed: Permission denied (you must be root)")
        self.restores.append(text)
        self.times.append(asyncio.get_running_loop().time())
        self.applied.set()

    async def until(self, needle: str) -> None:
        while not any(needle in text for text in self.restores):
            self.applied.clear()
            await self.applied.wait()

    async def save(self) -> str:
        return "*nat\n:KUBE-SVC-LEFTOVERLEFTOVER - [0:0]\nCOMMIT\n"

    async def insert_jump(self, jump: Jump) -> None:
        self.inserted.append(jump)

    async def conntrack_delete(self, args: Any) -> None:
        self.conntrack.append(list(args))


def svc(protocol: str = "TCP") -> Obj:
    return {"metadata": {"name": "dns", "namespace": "default", "resourceVersion": "1"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": protocol}]}}


def eps(*ips: str, rv: str = "1", protocol: str = "TCP") -> Obj:
    return {"metadata": {"name": "dns", "namespace": "default", "resourceVersion": rv},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"name": "dns", "port": 53, "protocol": protocol}]}]}


@pytest.fixture
def proxy() -> tuple[KubeProxy, FakeNetfilter]:
    nf = FakeNetfilter()
    p = KubeProxy(ApiClient(None), ProxyConfig("node1", cluster_cidr="10.244.0.0/16", min_sync_period=0.2), nf)  # type: ignore[arg-type]
    return p, nf


async def test_a_full_sync_writes_everything_inserts_the_jumps_and_drops_leftover_chains(proxy) -> None:
    p, nf = proxy
    p.services._upsert(svc())
    p.endpoints._upsert(eps("10.244.1.3"))
    assert await p.sync(full=True)
    assert len(nf.restores) == 1 and "--to-destination 10.244.1.3:53" in nf.restores[0]
    assert "-X KUBE-SVC-LEFTOVERLEFTOVER" in nf.restores[0]
    assert len(nf.inserted) == 8
    assert not await p.sync()  # nothing changed: nothing applied
    assert len(nf.restores) == 1


async def test_udp_flows_of_a_removed_endpoint_are_deleted(proxy) -> None:
    p, nf = proxy
    p.services._upsert(svc("UDP"))
    p.endpoints._upsert(eps("10.244.1.3", "10.244.1.4", protocol="UDP"))
    await p.sync(full=True)
    p.endpoints._upsert(eps("10.244.1.4", rv="2", protocol="UDP"))
    await p.sync()
    assert ["-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.3"] in nf.conntrack


async def test_changes_in_a_burst_fold_into_few_syncs(proxy) -> None:
    p, nf = proxy
    p.services._upsert(svc())
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(p._sync_loop())
    try:
        await asyncio.wait_for(p.synced.wait(), 5)
        started = loop.time()
        for i in range(20):
            p.endpoints._upsert(eps(f"10.244.1.{i + 2}", rv=str(i + 2)))
            p._changed(None)
            await asyncio.sleep(0)
        await asyncio.wait_for(nf.until("10.244.1.21:53"), 2)
        assert loop.time() - started < 1.0
        assert len(nf.restores) == 2  # the first sync, then one for all 20 changes
        assert nf.times[1] - nf.times[0] >= 0.19  # no sooner than min_sync_period after the last
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_first_sync_failing_is_an_error_later_ones_are_retried(proxy) -> None:
    p, nf = proxy
    nf.fail = True
    with pytest.raises(ProxyError, match="you must be root"):
        await asyncio.wait_for(p._sync_loop(), 5)
    nf.fail = False
    task = asyncio.create_task(p._sync_loop())
    try:
        await asyncio.wait_for(p.synced.wait(), 5)
        nf.fail = True
        p.services._upsert(svc())
        p._changed(None)
        await asyncio.sleep(0.4)
        nf.fail = False
        await asyncio.wait_for(nf.until("10.96.0.10"), 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
