"""A stand-in kubelet: registers its Node and keeps its Lease, and runs no pods.

The node half of the kubelet (`tuik8s.kubelet.node.NodeAgent`, shared with the hollow
nodes) and nothing else: enough for a lab node to be Ready, so the lab's own path (the node
reaches the API server at the gateway, trusts its certificate, authenticates with its token)
can be tested and timed before `tuik8s kubelet` runs there. Its Node is tainted
`tuik8s.io/stand-in:NoSchedule`, so no pod is ever bound to a node that cannot run it.

Inside a node: TUIK8S_KUBELET_COMMAND="python /opt/tuik8s/lab/node-agent.py".
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from tuik8s.client.client import ApiClient
from tuik8s.client.kubeconfig import ClusterAccess
from tuik8s.client.transport import HttpTransport
from tuik8s.kubelet.node import LAB_LEASE_DURATION, NodeAgent, NodeConfig


async def main() -> None:
    creds = Path(os.environ.get("TUIK8S_CREDENTIALS", "/etc/tuik8s/node"))
    access = ClusterAccess(
        context="node", server=os.environ["TUIK8S_API_SERVER"], namespace="default",
        ca_data=(creds / "ca.crt").read_bytes(), insecure=False, token=(creds / "token").read_text().strip(),
        client_cert=None, client_key=None,
    )
    cfg = NodeConfig(
        name=os.environ["TUIK8S_NODE_NAME"], internal_ip=os.environ["TUIK8S_NODE_IP"],
        pod_cidr=os.environ.get("TUIK8S_POD_CIDR"), lease_duration=LAB_LEASE_DURATION,
        labels={"tuik8s.io/stand-in": "true"},
        register_taints=[{"key": "tuik8s.io/stand-in", "value": "true", "effect": "NoSchedule"}],
    )
    async with ApiClient(HttpTransport(access)) as client:
        await NodeAgent(client, cfg, first_renew_delay=0).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
