#!/bin/bash
# The entry command of a tuik8s lab node (image tuik8s/node).
#
#   tuik8s-node-entrypoint           start this node's dockerd on its pod CIDR, wire the pod
#                                    network, then run the kubelet (restarted if it exits)
#   tuik8s-node-entrypoint routes    (re)apply the routes to the other nodes' pod CIDRs
#
# Everything comes from the environment, which `tuik8s lab up` sets:
#   TUIK8S_NODE_NAME       the Node's name (default: the hostname)
#   TUIK8S_POD_CIDR        this node's pod CIDR, a /24 such as 10.244.1.0/24 (required)
#   TUIK8S_CLUSTER_CIDR    all pod CIDRs (default 10.244.0.0/16): pod-to-pod traffic inside it
#                          keeps its source IP
#   TUIK8S_API_SERVER      https://GATEWAY:PORT of the control plane
#   TUIK8S_NODE_IP         this node's address on the lab network
#   TUIK8S_DNS             the resolver pods get from dockerd (an address inside the lab, where
#                          the cluster DNS lives; nothing outside the lab is ever configured)
#   TUIK8S_CLUSTER_DNS     the kube-dns Service's ClusterIP, the kubelet's --cluster-dns for
#                          ClusterFirst pods (unset: they get TUIK8S_DNS, without search path)
#   TUIK8S_CREDENTIALS     directory with token, ca.crt, kubeconfig (default /etc/tuik8s/node)
#   TUIK8S_ROUTES          "CIDR VIA" per line for every node (default /etc/tuik8s/lab/routes)
#   TUIK8S_KUBELET_COMMAND run this (with bash -c) instead of the default kubelet command
#   TUIK8S_SERVICE_CIDR    the Services' ClusterIP range (default 10.96.0.0/12)
#
# kube-proxy (`tuik8s proxy`) runs beside the kubelet with the same credentials, restarted
# the same way; it programs this node's iptables for Services.
#
# The project's code is not in the image: it is bind-mounted read-only at
# /opt/tuik8s/src/tuik8s, and runs on the image's venv (/opt/tuik8s/venv).
set -uo pipefail

NODE_NAME="${TUIK8S_NODE_NAME:-$(hostname)}"
POD_CIDR="${TUIK8S_POD_CIDR:-}"
CLUSTER_CIDR="${TUIK8S_CLUSTER_CIDR:-10.244.0.0/16}"
CREDENTIALS="${TUIK8S_CREDENTIALS:-/etc/tuik8s/node}"
ROUTES="${TUIK8S_ROUTES:-/etc/tuik8s/lab/routes}"
PYTHON="${TUIK8S_PYTHON:-/opt/tuik8s/venv/bin/python}"

say() { printf '%s tuik8s-node %s: %s\n' "$(date -u +%H:%M:%S)" "$NODE_NAME" "$*"; }

apply_routes() {
    # Routes to every other node's pod CIDR through that node, and none to nodes that left.
    [ -r "$ROUTES" ] || return 0
    local cidr via want=" "
    while read -r cidr via _; do
        [ -n "$cidr" ] && [ -n "$via" ] || continue
        [ "$cidr" = "$POD_CIDR" ] && continue
        ip route replace "$cidr" via "$via" || say "cannot add route $cidr via $via"
        want="$want$cidr "
    done <"$ROUTES"
    while read -r cidr _; do
        case "$want" in *" $cidr "*) ;; *) ip route del "$cidr" 2>/dev/null || true ;; esac
    done < <(ip -4 route show root "$CLUSTER_CIDR" | grep ' via ')
}

pod_network_rules() {
    # dockerd masquerades everything its bridge sends out; traffic between pods must keep
    # the pod's IP (the other node routes the answer back), so it returns before that rule.
    iptables -t nat -C POSTROUTING -s "$CLUSTER_CIDR" -d "$CLUSTER_CIDR" -j RETURN 2>/dev/null ||
        iptables -t nat -I POSTROUTING 1 -s "$CLUSTER_CIDR" -d "$CLUSTER_CIDR" -j RETURN
    # dockerd drops forwarded traffic into its bridge unless a port is published; pods are
    # reachable from the lab network (other nodes' pods, the host), as in Kubernetes.
    iptables -C DOCKER-USER -i eth0 -o docker0 -j ACCEPT 2>/dev/null ||
        iptables -I DOCKER-USER 1 -i eth0 -o docker0 -j ACCEPT
}

if [ "${1:-}" = "routes" ]; then
    apply_routes
    exit 0
fi

if [ -z "$POD_CIDR" ]; then
    say "TUIK8S_POD_CIDR is not set"
    exit 2
fi

# 10.244.N.0/24 -> the bridge's own address 10.244.N.1/24
prefix="${POD_CIDR%/*}"
bip="${prefix%.*}.$(( ${prefix##*.} + 1 ))/${POD_CIDR#*/}"

dockerd_args=(
    --host unix:///var/run/docker.sock
    --bip "$bip"
    --iptables=true
    --ip-masq=true
    --storage-driver overlay2
    --data-root /var/lib/docker
    --shutdown-timeout 5
)
[ -n "${TUIK8S_DNS:-}" ] && dockerd_args+=(--dns "$TUIK8S_DNS")

stopping=0
dockerd_pid=""
kubelet_pid=""
proxy_loop_pid=""

shutdown() {
    stopping=1
    say "stopping"
    [ -n "$proxy_loop_pid" ] && kill -TERM "$proxy_loop_pid" 2>/dev/null  # stops beside the kubelet
    [ -n "$kubelet_pid" ] && kill -TERM "$kubelet_pid" 2>/dev/null && wait "$kubelet_pid" 2>/dev/null
    [ -n "$proxy_loop_pid" ] && wait "$proxy_loop_pid" 2>/dev/null
    [ -n "$dockerd_pid" ] && kill -TERM "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    exit 0
}
trap shutdown TERM INT

# A pid file left by a node that was killed would stop dockerd from starting again.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
say "starting dockerd (bridge $bip)"
dockerd "${dockerd_args[@]}" >>/var/log/dockerd.log 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 300); do
    docker version >/dev/null 2>&1 && break
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        say "dockerd exited; the end of /var/log/dockerd.log:"
        tail -n 20 /var/log/dockerd.log
        exit 1
    fi
    sleep 0.1
done
if ! docker version >/dev/null 2>&1; then
    say "dockerd did not answer within 30 s; see /var/log/dockerd.log"
    exit 1
fi
pod_network_rules
apply_routes
say "dockerd ready"

proxy_loop() {
    # kube-proxy as under systemd's Restart=always, in a subshell of its own: TERM stops it
    local child="" delay=1 started rc
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"; exit 0' TERM
    while :; do
        started=$(date +%s)
        "$PYTHON" -m tuik8s.cli proxy --node-name "$NODE_NAME" --cluster-cidr "$CLUSTER_CIDR" \
            --server "${TUIK8S_API_SERVER:?TUIK8S_API_SERVER is not set}" \
            --token-file "$CREDENTIALS/token" --ca-file "$CREDENTIALS/ca.crt" \
            ${TUIK8S_NODE_IP:+--node-ip "$TUIK8S_NODE_IP"} &
        child=$!
        wait "$child"
        rc=$?
        child=""
        (( $(date +%s) - started > 30 )) && delay=1
        say "kube-proxy exited with status $rc; restarting in ${delay}s"
        sleep "$delay" &
        wait $!
        delay=$(( delay * 2 > 10 ? 10 : delay * 2 ))
    done
}

if grep -q add_proxy_parser /opt/tuik8s/src/tuik8s/cli.py 2>/dev/null; then
    # ClusterIPs are virtual: the node's own connection to one needs some route before the
    # nat OUTPUT rule rewrites its destination; a lab network without a default route has none
    ip -4 route show default | grep -q . ||
        ip route replace "${TUIK8S_SERVICE_CIDR:-10.96.0.0/12}" dev eth0 ||
        say "cannot add the route to the Services' CIDR"
    proxy_loop &
    proxy_loop_pid=$!
fi

if [ -n "${TUIK8S_KUBELET_COMMAND:-}" ]; then
    kubelet=(bash -c "$TUIK8S_KUBELET_COMMAND")
else
    # `tuik8s kubelet` once the CLI has it; its own module's entry point until then
    if grep -q add_kubelet_parser /opt/tuik8s/src/tuik8s/cli.py 2>/dev/null; then
        kubelet=("$PYTHON" -m tuik8s.cli kubelet)
    else
        kubelet=("$PYTHON" -m tuik8s.kubelet.cli)
    fi
    kubelet+=(
        --node-name "$NODE_NAME"
        --server "${TUIK8S_API_SERVER:?TUIK8S_API_SERVER is not set}"
        --token-file "$CREDENTIALS/token"
        --ca-file "$CREDENTIALS/ca.crt"
        --pod-cidr "$POD_CIDR"
    )
    [ -f "$CREDENTIALS/log-token" ] && kubelet+=(--log-token-file "$CREDENTIALS/log-token")
    [ -n "${TUIK8S_NODE_IP:-}" ] && kubelet+=(--node-ip "$TUIK8S_NODE_IP")
    [ -n "${TUIK8S_DNS:-}" ] && kubelet+=(--node-dns "$TUIK8S_DNS")
    [ -n "${TUIK8S_CLUSTER_DNS:-}" ] && kubelet+=(--cluster-dns "$TUIK8S_CLUSTER_DNS")
fi

# The kubelet runs as under systemd's Restart=always: a crash or a missing command does
# not take the node (and its pods) down; dockerd keeps running, the kubelet comes back.
delay=1
while [ "$stopping" = 0 ]; do
    started=$(date +%s)
    "${kubelet[@]}" &
    kubelet_pid=$!
    wait "$kubelet_pid"
    rc=$?
    kubelet_pid=""
    [ "$stopping" = 1 ] && break
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
        say "dockerd exited; stopping the node"
        exit 1
    fi
    (( $(date +%s) - started > 30 )) && delay=1
    say "kubelet exited with status $rc; restarting in ${delay}s"
    sleep "$delay" &
    wait $!
    delay=$(( delay * 2 > 10 ? 10 : delay * 2 ))
done
