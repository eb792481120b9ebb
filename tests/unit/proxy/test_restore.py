"""The rendered text against the real kernel: applied with `iptables-restore --noflush` in a
network namespace of the test's own (`unshare -n`), then replaced by the next sync's text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables-restore"),
    reason="needs root, unshare and iptables to make a network namespace of its own",
)

SCRIPT = textwrap.dedent("""
    import asyncio, json, subprocess
    from tuik8s.proxy.proxier import IptablesCommands
    from tuik8s.proxy.rules import ProxyOptions, build_state, hashed_chains, missing_jumps, render

    def svc(name, **spec):
        spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}])
        return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}

    def eps(name, *ips):
        return {"metadata": {"name": name, "namespace": "default"}, "subsets": [{
            "addresses": [{"ip": ip, "nodeName": "node1"} for ip in ips],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}

    async def main():
        nf = IptablesCommands(conntrack=None)
        opts = ProxyOptions("node1", "10.244.0.0/16")
        services = [
            svc("web", clusterIP="10.96.0.20", type="NodePort"),
            svc("sticky", clusterIP="10.96.0.21", sessionAffinity="ClientIP", externalIPs=["172.30.9.9"]),
            svc("local", clusterIP="10.96.0.22", type="NodePort", externalTrafficPolicy="Local",
                ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30081}]),
            svc("empty", clusterIP="10.96.0.23"),
        ]
        first = render(build_state(services, {"default/web": eps("web", "10.244.1.3", "10.244.2.4"),
                                                "default/sticky": eps("sticky", "10.244.1.5"),
                                                "default/local": eps("local", "10.244.1.6")}), opts)
        await nf.restore(first.text)
        inserted = missing_jumps(await nf.save())
        for jump in inserted:
            await nf.insert_jump(jump)
        again = missing_jumps(await nf.save())
        existing = hashed_chains(await nf.save())
        second = render(build_state(services[:1], {"default/web": eps("web", "10.244.2.4")}), opts, existing)
        await nf.restore(second.text)
        save = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
        print(json.dumps({"first": sorted(first.chains), "second": sorted(second.chains), "inserted": len(inserted),
                          "again": len(again), "existing": sorted(existing), "save": save}))

    asyncio.run(main())
""")


def test_rules_apply_and_a_later_sync_removes_what_went() -> None:
    import json

    out = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["inserted"] == 8 and got["again"] == 0  # every jump is seen in iptables-save once inserted
    assert set(got["first"]) == set(got["existing"])
    save = got["save"]
    for chain in got["second"]:
        assert f":{chain} " in save
    for chain in set(got["first"]) - set(got["second"]):
        assert chain not in save  # the chains of the services that went are deleted
    assert "10.244.1.3" not in save and "--to-destination 10.244.2.4:8080" in save
    assert "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" in save
    assert "-A KUBE-SERVICES -d 10.96.0.21/32" not in save
