"""Services on the real lab: kube-proxy's iptables rules on every node, tried as a user would.

A Deployment of the web app behind a ClusterIP Service and a NodePort Service on a 2-node
lab: a pod on one node reaches pods on both nodes through the ClusterIP, a pod reaches
itself through its Service, the host reaches every node's NodePort; with no endpoints a
client is refused at once; new endpoints are served within a second of the Endpoints change
and a pod being deleted gets no new connections.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LabServer, sh, start_lab_server, stop_lab_server, wait_for

pytestmark = pytest.mark.lab

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: tuik8s/blog:latest
          imagePullPolicy: IfNotPresent
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node2
  terminationGracePeriodSeconds: 0
  containers:
    - name: client
      image: tuik8s/busybox:latest
      imagePullPolicy: IfNotPresent
      command: [sleep, "3600"]
"""

# connects to HOST:PORT every 10 ms from a node; prints the time of the first success
PROBE = """
import socket, sys, time
host, port, until = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
print("started", flush=True)
while time.time() < until:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        print(time.time(), flush=True)
        break
    except OSError:
        time.sleep(0.01)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("services"), "svc")
    try:
        server.lab("up", "--nodes", "2")
        server.kubectl("apply", "-f", "-", input=APP)
        wait_for(lambda: len(ready_pods(server)) == 3 and client_id(server), timeout=120)
        wait_for(lambda: len(endpoint_ips(server)) == 3, timeout=30)
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def get(lab: LabServer, *what: str) -> dict:
    return json.loads(lab.kubectl("get", *what, "-o", "json").stdout)


def ready_pods(lab: LabServer) -> list[dict]:
    def ready(p: dict) -> bool:
        conditions = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        return conditions.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp")

    return [p for p in get(lab, "pods", "-l", "app=web")["items"] if ready(p)]


def endpoint_ips(lab: LabServer, name: str = "web") -> set[str]:
    subsets = get(lab, "endpoints", name).get("subsets") or []
    return {a["ip"] for s in subsets for a in s.get("addresses") or []}


def container_id(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return statuses[0]["containerID"].removeprefix("docker://") if statuses and statuses[0].get("containerID") else ""


def client_id(lab: LabServer) -> str:
    pod = get(lab, "pod", "client")
    return container_id(pod) if pod.get("status", {}).get("phase") == "Running" else ""


def dnat_targets(lab: LabServer, node: str, key: str) -> set[str]:
    """The endpoints node's proxy DNATs the service port `key` (ns/name:port) to."""
    save = lab.in_node(node, "iptables-save", "-t", "nat").stdout
    return {line.split("--to-destination ")[1].split()[0] for line in save.splitlines()
            if f'--comment "{key}" ' in line and "--to-destination" in line}  # iptables-save quotes it


def cluster_ip(lab: LabServer, name: str = "web") -> str:
    return get(lab, "service", name)["spec"]["clusterIP"]


def in_pod(lab: LabServer, node: str, cid: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return lab.in_node(node, "docker", "exec", cid, "sh", "-c", script, check=False, timeout=timeout)


def fetch_names(lab: LabServer, node: str, cid: str, url: str, n: int) -> list[str]:
    """`wget` n times from inside a pod (busybox's `wget -T` crashes; `timeout` bounds it)."""
    out = in_pod(lab, node, cid, f'for i in $(seq {n}); do timeout 5 wget -qO- {url} | grep "^pod: " || echo failed; done')
    return [line.removeprefix("pod: ").strip() for line in out.stdout.splitlines()]


def test_a_pod_on_another_node_reaches_pods_on_every_node_through_the_cluster_ip(lab: LabServer) -> None:
    pods = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in ready_pods(lab)}
    assert len(set(pods.values())) == 2, f"the scheduler put every web pod on one node: {pods}"
    names = fetch_names(lab, "node2", client_id(lab), f"http://{cluster_ip(lab)}/", 30)
    counts = Counter(names)
    assert "failed" not in counts, names
    assert set(counts) == set(pods), counts  # each of 3 pods; missing one has odds of 1 in 60,000
    assert {pods[name] for name in counts} == {"node1", "node2"}


def test_a_pod_reaches_itself_through_its_service(lab: LabServer) -> None:
    pod = ready_pods(lab)[0]
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    started = time.monotonic()
    names = fetch_names(lab, node, container_id(pod), f"http://{cluster_ip(lab)}/", 15)
    assert "failed" not in names and name in names, names  # hairpin: masqueraded back to itself
    assert time.monotonic() - started < 15  # no SYN retried after a hairpin drop


def test_every_node_reaches_the_cluster_ip(lab: LabServer) -> None:
    ip = cluster_ip(lab)
    for node in ("node1", "node2"):
        out = lab.in_node(node, "python3", "-c",
                          f"import urllib.request; print(urllib.request.urlopen('http://{ip}/', timeout=5).read().decode())")
        assert "app: blog" in out.stdout


def test_node_port_answers_on_every_nodes_ip_from_the_host(lab: LabServer) -> None:
    node_port = get(lab, "service", "web-np")["spec"]["ports"][0]["nodePort"]
    seen: set[str] = set()
    for n in (1, 2):
        for _ in range(6):
            body = sh("curl", "-s", "--max-time", "5", f"http://{lab.net.node_ip(n)}:{node_port}/").stdout
            assert "pod: " in body, body
            seen.add(body.split("pod: ")[1].split()[0])
    assert len(seen) >= 2  # balanced over the pods, local and remote


def test_scaling_to_zero_refuses_at_once_and_scaling_up_serves_within_a_second(lab: LabServer) -> None:
    ip = cluster_ip(lab)
    node_port = get(lab, "service", "web-np")["spec"]["ports"][0]["nodePort"]
    lab.kubectl("scale", "deployment", "web", "--replicas", "0")
    wait_for(lambda: not endpoint_ips(lab) and not endpoint_ips(lab, "web-np"), timeout=30)
    wait_for(lambda: not any(dnat_targets(lab, n, k) for n in ("node1", "node2")
                             for k in ("default/web:http", "default/web-np:http")), timeout=10, interval=0.05)
    started = time.monotonic()
    curl = sh("curl", "-s", "--max-time", "5", f"http://{lab.net.node_ip(1)}:{node_port}/", check=False)
    # refused, not a hang: a hang runs into --max-time / timeout 5 (the bounds leave room for
    # starting the processes on a busy machine)
    assert curl.returncode == 7 and time.monotonic() - started < 4.0
    started = time.monotonic()
    out = in_pod(lab, "node2", client_id(lab), f"timeout 5 wget -qO- http://{ip}/; echo rc=$?")
    assert "refused" in out.stderr.lower() and time.monotonic() - started < 4.5, (out.stdout, out.stderr)

    # scale up: a probe on node1 connects every 10 ms; a watch notes when the Endpoints gets
    # its first address; the probe must connect within a second of that
    probe = subprocess.Popen(["docker", "exec", lab.container("node1"), "python3", "-c", PROBE, ip, "80", "90"],
                             stdout=subprocess.PIPE, text=True)
    watch = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(lab.kubeconfig), "get", "endpoints", "web", "--watch", "-o",
         "jsonpath={.subsets[*].addresses[*].ip}{'\\n'}"], stdout=subprocess.PIPE, text=True, env=lab.env())
    first_address: list[float] = []

    def read_watch() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            if line.strip():
                first_address.append(time.time())
                return

    reader = threading.Thread(target=read_watch, daemon=True)
    reader.start()
    try:
        assert probe.stdout is not None and probe.stdout.readline().strip() == "started"
        lab.kubectl("scale", "deployment", "web", "--replicas", "2")
        connected = float(probe.stdout.readline() or 0)
        reader.join(timeout=30)
    finally:
        for proc in (probe, watch):
            proc.kill()
            proc.wait()
    assert connected and first_address, "the probe never connected or the Endpoints never got an address"
    latency = connected - first_address[0]
    print(f"endpoint change seen by a watch -> served through the ClusterIP on node1: {latency * 1000:.0f} ms")
    # The figure (rules follow endpoint changes within 1 s) is measured by
    # bench/proxy.py; under the whole suite's load a sync has taken up to ~0.9 s, so the test
    # guards against a regression to seconds rather than re-measuring the target.
    assert latency < 2.0
    wait_for(lambda: len(ready_pods(lab)) == 2, timeout=60)


def test_a_pod_being_deleted_gets_no_new_connections(lab: LabServer) -> None:
    lab.kubectl("scale", "deployment", "web", "--replicas", "3")
    wait_for(lambda: len(endpoint_ips(lab)) == 3, timeout=90)
    victim = ready_pods(lab)[0]
    ip = victim["status"]["podIP"]
    wait_for(lambda: all(f"{ip}:8080" in dnat_targets(lab, n, "default/web:http") for n in ("node1", "node2")),
             timeout=10, interval=0.1)
    lab.kubectl("delete", "pod", victim["metadata"]["name"], "--wait=false")
    started = time.monotonic()

    def gone_everywhere() -> bool:
        return all(f"{ip}:8080" not in dnat_targets(lab, n, "default/web:http") for n in ("node1", "node2"))

    wait_for(gone_everywhere, timeout=10, interval=0.05)
    assert time.monotonic() - started < 3.0  # while its grace period (5 s) still runs
    names = fetch_names(lab, "node2", client_id(lab), f"http://{cluster_ip(lab)}/", 12)
    assert victim["metadata"]["name"] not in names and "failed" not in names, names


ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(512)
    s.sendto(sys.argv[1].encode() + b" " + data, peer)
"""

# one UDP socket (one 5-tuple, as a resolver's) asking every 50 ms; prints "time answer"
ASKER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40053))
s.settimeout(0.05)
until = time.time() + float(sys.argv[2])
while time.time() < until:
    s.sendto(b"?", (sys.argv[1], 53))
    try:
        data, _ = s.recvfrom(512)
        print(time.time(), data.decode().split()[0], flush=True)
        time.sleep(0.05)
    except OSError:
        pass
"""


def test_a_udp_client_follows_its_endpoint_when_the_old_one_goes(lab: LabServer) -> None:
    """A Service without a selector whose Endpoints the user writes (as kube-dns's points at
    the lab's gateway): UDP through the ClusterIP, and when the endpoint is replaced, the
    client's flow (same socket, so same conntrack entry) moves within a second: the proxy
    deletes the conntrack entries of the endpoint that went, as upstream."""
    node1, node2 = lab.net.node_ip(1), lab.net.node_ip(2)
    for node in ("node1", "node2"):
        lab.in_node(node, "sh", "-c", f"python3 -c '{ECHO}' {node} >/dev/null 2>&1 &")

    def endpoints(ip: str) -> str:
        return ("apiVersion: v1\nkind: Endpoints\nmetadata: {name: echo}\n"
                f"subsets: [{{addresses: [{{ip: {ip}}}], ports: [{{name: dns, port: 5353, protocol: UDP}}]}}]\n")

    lab.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Service\nmetadata: {name: echo}\n"
                "spec: {ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]}\n")
    lab.kubectl("apply", "-f", "-", input=endpoints(node2))
    ip = cluster_ip(lab, "echo")
    wait_for(lambda: f"{node2}:5353" in dnat_targets(lab, "node1", "default/echo:dns"), timeout=10, interval=0.1)
    asker = subprocess.Popen(["docker", "exec", lab.container("node1"), "python3", "-c", ASKER, ip, "30"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert asker.stdout is not None
        assert asker.stdout.readline().split()[1] == "node2"
        changed = time.time()
        lab.kubectl("apply", "-f", "-", input=endpoints(node1))
        for line in asker.stdout:
            when, who = line.split()
            if who == "node1":
                moved = float(when) - changed
                break
        else:
            raise AssertionError("the UDP flow never left the endpoint that went")
    finally:
        asker.kill()
        asker.wait()
    print(f"UDP flow moved to the new endpoint {moved * 1000:.0f} ms after `kubectl apply` began")
    assert moved < 3.0  # kubectl's own start (~0.5 s) is in it
