"""The cluster DNS on the real lab: pods find Services by name, as in Kubernetes.

The control plane runs as `tuik8s up` runs it: `--cluster-dns-listen GATEWAY:53`, started
before the lab's network exists, so the DNS must bind once `lab up` brings the address.
Pods then ask it from inside node containers:

- a pod whose resolv.conf is ClusterFirst's (search path, ndots:5) but names the gateway
  itself resolves `<svc>`, `<svc>.<ns>` and the FQDN, and fetches a page by name from a
  headless Service's pod: DNS and pod networking only, whatever kube-proxy does;
- a ClusterFirst pod gets the kube-dns ClusterIP from the kubelet, and resolves through
  it where kube-proxy forwards that address to the kube-dns Endpoints (the gateway);
- a Default-policy pod and the node itself use the gateway as their resolver;
- a name outside the cluster is refused at once: nothing is forwarded out of the lab.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.conftest import LabServer, free_port, stop_lab_server, wait_for
from tuik8s.dns import DNS_SERVICE_IP

pytestmark = pytest.mark.lab

NS = "dnstest"
ZONE = "cluster.local"


def start_server_with_dns(base, cluster: str) -> LabServer:  # type: ignore[no-untyped-def]
    """`tuik8s server` as `tuik8s up` starts it for a lab: on 0.0.0.0, the gateway in its
    certificate, and the cluster DNS on the gateway, which does not exist yet."""
    from tuik8s.nodes.docker import DockerNodeProvider

    data_dir, home = base / "data", base / "home"
    home.mkdir(parents=True, exist_ok=True)
    net = asyncio.run(DockerNodeProvider(cluster, data_dir).network(allocate=True))
    assert net is not None
    port = free_port()
    cmd = [sys.executable, "-m", "tuik8s.cli", "server", "--cluster", cluster, "--data-dir", str(data_dir),
           "--port", str(port), "--host", "0.0.0.0", "--no-user-kubeconfig", "--advertise", net.gateway,
           "--cluster-dns-listen", f"{net.gateway}:53"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOME": str(home)})
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
    return LabServer(cluster, data_dir, home, port, net, proc)


def pod(name: str, image: str, *, labels: dict | None = None, command: list[str] | None = None, **spec: object) -> dict:
    container: dict = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    body: dict = {"containers": [container], "terminationGracePeriodSeconds": 1, **spec}
    if image == "tuik8s/blog:latest":
        container["ports"] = [{"name": "http", "containerPort": 8080}]
        container["volumeMounts"] = [{"name": "logs", "mountPath": "/var/log/app"}]
        body["volumes"] = [{"name": "logs", "emptyDir": {}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": body}


def sleeper(name: str, **spec: object) -> dict:
    return pod(name, "tuik8s/busybox:latest", command=["sleep", "3600"], **spec)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_server_with_dns(tmp_path_factory.mktemp("dns"), "dnse2e")
    try:
        server.lab("up", "--nodes", "1")
        gateway = server.net.gateway
        manifests = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
             "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "site", "namespace": NS},
             "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
            pod("web", "tuik8s/blog:latest", labels={"app": "web"}),
            # ClusterFirst's resolv.conf, but naming the DNS at the gateway rather than its ClusterIP
            sleeper("probe", dnsPolicy="None", dnsConfig={
                "nameservers": [gateway], "searches": [f"{NS}.svc.{ZONE}", f"svc.{ZONE}", ZONE],
                "options": [{"name": "ndots", "value": "5"}]}),
            sleeper("first"),
            sleeper("plain", dnsPolicy="Default"),
        ]
        server.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        wait_for(lambda: all(ready(p) for p in pods(server)) and len(pods(server)) == 4, timeout=180)
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def pods(lab: LabServer) -> list[dict]:
    return json.loads(lab.kubectl("get", "pods", "-n", NS, "-o", "json").stdout)["items"]


def ready(p: dict) -> bool:
    conditions = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
    return p.get("status", {}).get("phase") == "Running" and conditions.get("Ready") == "True"


def get_pod(lab: LabServer, name: str) -> dict:
    return json.loads(lab.kubectl("get", "pod", name, "-n", NS, "-o", "json").stdout)


def in_pod(lab: LabServer, name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = get_pod(lab, name)
    container = p["status"]["containerStatuses"][0]["containerID"].removeprefix("docker://")
    # (busybox 1.35's `wget -T` crashes: bound every command with `timeout` instead)
    return lab.in_node(p["spec"]["nodeName"], "docker", "exec", container, "timeout", "15", *cmd, check=check)


def cluster_ip(lab: LabServer, svc: str) -> str:
    return json.loads(lab.kubectl("get", "service", svc, "-n", NS, "-o", "json").stdout)["spec"]["clusterIP"]


def test_the_dns_waited_for_the_gateway_and_kube_dns_points_there(lab: LabServer) -> None:
    ep = json.loads(lab.kubectl("get", "endpoints", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert ep["subsets"][0]["addresses"] == [{"ip": lab.net.gateway}]
    assert sorted((p["name"], p["port"], p["protocol"]) for p in ep["subsets"][0]["ports"]) == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]


def nslookup(lab: LabServer, pod_name: str, name: str) -> str:
    """busybox's nslookup walks the whole search path and fails if any step misses
    (`web.svc.cluster.local` does not exist), as it does against CoreDNS: read its
    output, not its status."""
    return in_pod(lab, pod_name, "nslookup", name, check=False).stdout


@pytest.mark.parametrize("name", ["web", f"web.{NS}", f"web.{NS}.svc.{ZONE}"], ids=["short", "namespaced", "fqdn"])
def test_a_pod_reaches_a_headless_service_by_every_name(lab: LabServer, name: str) -> None:
    """wget resolves through libc (getaddrinfo: the search path, ndots:5), as an app does;
    the headless Service's address is the pod's own, so no kube-proxy is involved."""
    page = in_pod(lab, "probe", "wget", "-qO-", f"http://{name}:8080/").stdout
    assert "app: blog" in page and "pod: web" in page


@pytest.mark.parametrize("name", ["web", f"web.{NS}.svc.{ZONE}"], ids=["short", "fqdn"])
def test_nslookup_finds_the_headless_service_s_pod(lab: LabServer, name: str) -> None:
    # (busybox's own nslookup applies the search path only to names without a dot)
    web_ip = get_pod(lab, "web")["status"]["podIP"]
    out = nslookup(lab, "probe", name)
    assert f"Name:\tweb.{NS}.svc.{ZONE}\nAddress: {web_ip}\n" in out, out


def test_a_pod_resolves_a_cluster_ip_service(lab: LabServer) -> None:
    out = nslookup(lab, "probe", "site")
    assert f"Address: {cluster_ip(lab, 'site')}" in out, out


def test_names_outside_the_cluster_are_refused_at_once(lab: LabServer) -> None:
    started = time.monotonic()
    out = nslookup(lab, "probe", "example.com")
    assert time.monotonic() - started < 10  # an answer, not a timeout
    assert "server can't find example.com: REFUSED" in out, out
    assert "Address: " not in out.split("Address:\t")[-1]  # no address but the server's own


def test_cluster_first_pods_get_the_kube_dns_cluster_ip(lab: LabServer) -> None:
    resolv = in_pod(lab, "first", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {DNS_SERVICE_IP}" in resolv
    assert f"search {NS}.svc.{ZONE} svc.{ZONE} {ZONE}" in resolv
    assert "ndots:5" in resolv


def test_cluster_first_pods_resolve_through_the_kube_dns_service(lab: LabServer) -> None:
    """Needs kube-proxy on the node: 10.96.0.10:53 -> the kube-dns Endpoints (the gateway)."""
    want = cluster_ip(lab, "site")

    def resolved() -> bool:
        return f"Address: {want}" in nslookup(lab, "first", "site")

    wait_for(resolved, timeout=30)  # kube-proxy may still be programming the node


def test_default_policy_pods_and_the_node_use_the_gateway(lab: LabServer) -> None:
    resolv = in_pod(lab, "plain", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {lab.net.gateway}" in resolv
    web_ip = get_pod(lab, "web")["status"]["podIP"]
    assert f"Address: {web_ip}" in nslookup(lab, "plain", f"web.{NS}.svc.{ZONE}")
    node = get_pod(lab, "web")["spec"]["nodeName"]
    got = lab.in_node(node, "python3", "-c",
                      f"import socket; print(socket.gethostbyname('site.{NS}.svc.{ZONE}'))")
    assert got.stdout.strip() == cluster_ip(lab, "site")
