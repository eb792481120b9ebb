"""kube-proxy: Services' ClusterIPs, NodePorts and external IPs → their ready endpoints, in
the node's iptables, as upstream's iptables mode.

- `rules`: pure: Services + Endpoints + this node → the iptables-restore text (and the UDP
  conntrack flows to forget);
- `proxier`: informers on Services and Endpoints, the rate-limited sync loop, the firewall
  commands (`iptables-restore --noflush`, `iptables-save`, `conntrack`);
- `hairpin`: hairpin mode on the pod bridge's ports, so a pod reaches itself through its
  Service;
- `cli`: `tuik8s proxy`, which lab/node-entrypoint.sh runs beside the kubelet.
"""
