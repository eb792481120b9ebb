"""Hairpin mode on the pod bridge's ports, so a pod reaches itself through its Service.

A pod's packet to its own Service is DNATed back to the pod while it crosses the bridge
(br_netfilter), and a bridge never sends a frame out of the port it came in on unless that
port is in hairpin mode: without it the SYN vanishes and the client retries until another
endpoint is drawn. Upstream the kubelet (`--hairpin-mode=hairpin-veth`) or the CNI plugin
turns it on; dockerd would too, but only with `--userland-proxy=false`, which in turn needs
a writable /proc/sys that a lab node does not have. So the proxy does it: a pod becomes an
endpoint only through an Endpoints change, which triggers a sync, and every sync first puts
the bridge's new ports in hairpin mode (netlink, through `bridge -batch`: sysfs is read-only
in the node).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SYS_NET = Path("/sys/class/net")


def ports_without_hairpin(bridge: str, sys_net: Path = SYS_NET) -> list[str]:
    """The bridge's ports whose hairpin mode is off (none when the bridge is missing)."""
    out = []
    brif = sys_net / bridge / "brif"
    try:
        ports = sorted(p.name for p in brif.iterdir())
    except OSError:
        return []
    for port in ports:
        try:
            if (brif / port / "hairpin_mode").read_text().strip() == "0":
                out.append(port)
        except OSError:
            continue  # the port left while we looked
    return out


async def ensure_hairpin(bridge: str, sys_net: Path = SYS_NET) -> list[str]:
    """Turn hairpin mode on for the bridge's ports that lack it; the ports it changed."""
    ports = ports_without_hairpin(bridge, sys_net)
    if not ports:
        return []
    batch = "".join(f"link set dev {port} hairpin on\n" for port in ports)
    try:
        proc = await asyncio.create_subprocess_exec(
            "bridge", "-force", "-batch", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        log.warning("no `bridge` command (iproute2): pods cannot reach themselves through their Services")
        return []
    _, err = await proc.communicate(batch.encode())
    if proc.returncode != 0:
        # -force went on past a port that left meanwhile; the others are set
        log.debug("bridge -batch: %s", err.decode(errors="replace").strip())
    return ports
