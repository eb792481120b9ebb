#!/bin/bash
# Turns a Debian 12 VM (Vagrant's libvirt or virtualbox provider) into a tuik8s node that
# joins the control plane on the host. The Vagrantfile runs it as root with the node's join
# config in the environment (`tuik8s lab join-config --format env --node NAME` prints the
# same lines, to provision a machine by hand):
#
#   TUIK8S_NODE_NAME  TUIK8S_NODE_IP  TUIK8S_POD_CIDR  TUIK8S_CLUSTER_CIDR  TUIK8S_DNS
#   TUIK8S_API_SERVER  TUIK8S_TOKEN  TUIK8S_CA_DATA (base64 PEM)  TUIK8S_LOG_TOKEN (optional)
#   TUIK8S_ROUTES_LINES   "CIDR VIA NAME;..." for every node
#
#   vagrant-provision.sh            install docker, python and tuik8s (from the checkout the
#                                   Vagrantfile syncs to /opt/tuik8s/checkout), write the
#                                   node's credentials, start the systemd units
#   vagrant-provision.sh network    the pod network, at every boot (tuik8s-network.service):
#                                   routes to the other nodes' pod CIDRs, the same iptables
#                                   rules as lab/node-entrypoint.sh
#
# Idempotent: `vagrant provision` runs it again with a fresh token and CA.
set -euo pipefail

CHECKOUT="${TUIK8S_CHECKOUT:-/opt/tuik8s/checkout}"
VENV=/opt/tuik8s/venv
CONF=/etc/tuik8s
# images the kubelet needs (its pod sandbox is tuik8s/busybox) and the sample apps: built
# here as the lab builds them, with no registry
IMAGES="tuik8s/busybox tuik8s/blog tuik8s/shop tuik8s/voice tuik8s/log-collector"

say() { printf '==> tuik8s %s: %s\n' "${TUIK8S_NODE_NAME:-node}" "$*"; }
die() { printf 'tuik8s: error: %s\n' "$*" >&2; exit 1; }

lab_interface() {
    # the VM's interface on the lab network: the one holding the node's address
    ip -o -4 addr show | awk -v ip="$1" '{ split($4, a, "/"); if (a[1] == ip) print $2 }' | head -n 1
}

network() {
    # shellcheck disable=SC1091
    . "$CONF/node/env"
    sysctl -qw net.ipv4.ip_forward=1
    local cidr via want=" "
    while read -r cidr via _; do
        [ -n "$cidr" ] && [ -n "$via" ] || continue
        [ "$cidr" = "$TUIK8S_POD_CIDR" ] && continue
        ip route replace "$cidr" via "$via"
        want="$want$cidr "
    done <"$CONF/lab/routes"
    while read -r cidr _; do
        case "$want" in *" $cidr "*) ;; *) ip route del "$cidr" 2>/dev/null || true ;; esac
    done < <(ip -4 route show root "$TUIK8S_CLUSTER_CIDR" | grep ' via ' || true)
    # pod-to-pod traffic keeps the pod's IP; pods are reachable from the lab network
    iptables -t nat -C POSTROUTING -s "$TUIK8S_CLUSTER_CIDR" -d "$TUIK8S_CLUSTER_CIDR" -j RETURN 2>/dev/null ||
        iptables -t nat -I POSTROUTING 1 -s "$TUIK8S_CLUSTER_CIDR" -d "$TUIK8S_CLUSTER_CIDR" -j RETURN
    local lab_if
    lab_if="$(lab_interface "$TUIK8S_NODE_IP")"
    [ -n "$lab_if" ] || die "no interface holds $TUIK8S_NODE_IP (the Vagrantfile's private network)"
    iptables -C DOCKER-USER -i "$lab_if" -o docker0 -j ACCEPT 2>/dev/null ||
        iptables -I DOCKER-USER 1 -i "$lab_if" -o docker0 -j ACCEPT
}

if [ "${1:-}" = "network" ]; then
    network
    exit 0
fi

for var in TUIK8S_NODE_NAME TUIK8S_NODE_IP TUIK8S_POD_CIDR TUIK8S_CLUSTER_CIDR TUIK8S_API_SERVER TUIK8S_DNS; do
    [ -n "${!var:-}" ] || die "$var is not set (run it through the Vagrantfile, or export \`tuik8s lab join-config --format env --node NAME\`)"
done
[ -n "${TUIK8S_TOKEN:-}" ] && [ -n "${TUIK8S_CA_DATA:-}" ] ||
    die "no token or CA: start the control plane, then \`vagrant up\` (the Vagrantfile asks \`tuik8s lab join-config\`)"
[ -f "$CHECKOUT/pyproject.toml" ] || die "no tuik8s checkout in $CHECKOUT (the Vagrantfile rsyncs it there)"

export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null || ! [ -x "$VENV/bin/python" ]; then
    say "installing docker, python and friends"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        docker.io iptables iproute2 conntrack procps python3-venv python3-pip ca-certificates busybox-static >/dev/null
fi

say "writing the node's configuration"
install -d -m 0755 "$CONF/lab" /etc/docker
install -d -m 0700 "$CONF/node"
umask 077
printf '%s\n' "$TUIK8S_TOKEN" >"$CONF/node/token"
printf '%s' "$TUIK8S_CA_DATA" | base64 -d >"$CONF/node/ca.crt"
extra=""
if [ -n "${TUIK8S_LOG_TOKEN:-}" ]; then
    printf '%s\n' "$TUIK8S_LOG_TOKEN" >"$CONF/node/log-token"
    extra="--log-token-file $CONF/node/log-token"
fi
cat >"$CONF/node/env" <<ENV
TUIK8S_NODE_NAME=$TUIK8S_NODE_NAME
TUIK8S_NODE_IP=$TUIK8S_NODE_IP
TUIK8S_POD_CIDR=$TUIK8S_POD_CIDR
TUIK8S_CLUSTER_CIDR=$TUIK8S_CLUSTER_CIDR
TUIK8S_API_SERVER=$TUIK8S_API_SERVER
TUIK8S_DNS=$TUIK8S_DNS
TUIK8S_KUBELET_EXTRA_ARGS=$extra
ENV
umask 022
tr ';' '\n' <<<"${TUIK8S_ROUTES_LINES:-}" >"$CONF/lab/routes"

# dockerd on the node's pod CIDR: 10.X.N.0/24 -> its bridge 10.X.N.1/24 (as the entrypoint)
prefix="${TUIK8S_POD_CIDR%/*}"
bip="${prefix%.*}.$(( ${prefix##*.} + 1 ))/${TUIK8S_POD_CIDR#*/}"
cat >/etc/docker/daemon.json <<JSON
{"bip": "$bip", "dns": ["$TUIK8S_DNS"], "iptables": true, "ip-masq": true}
JSON
systemctl restart docker

say "installing tuik8s from $CHECKOUT"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$CHECKOUT"
ln -sf "$VENV/bin/tuik8s" /usr/local/bin/tuik8s
# shellcheck disable=SC2086
tuik8s lab build $IMAGES

say "starting the pod network, the kubelet and kube-proxy"
install -m 0644 "$CHECKOUT"/lab/systemd/tuik8s-*.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now tuik8s-network.service >/dev/null 2>&1
systemctl restart tuik8s-network.service
systemctl enable tuik8s-kubelet.service tuik8s-proxy.service >/dev/null 2>&1
systemctl restart tuik8s-kubelet.service tuik8s-proxy.service
say "joined $TUIK8S_API_SERVER as $TUIK8S_NODE_NAME (journalctl -u tuik8s-kubelet)"
