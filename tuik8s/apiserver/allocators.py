"""Service ClusterIP and NodePort allocation.

Allocation happens inside the store's write function, so it is serialized with every
other write; the allocators only remember what is taken. They are rebuilt from the
stored Services at start, so nothing about them needs persisting.
"""

from __future__ import annotations

import ipaddress
import random

from tuik8s.api import errors
from tuik8s.api.errors import FieldError

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)


class ClusterIPAllocator:
    def __init__(self, cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.network = ipaddress.ip_network(cidr)
        self._used: set[str] = set()

    @property
    def first(self) -> str:
        """The address of the `kubernetes` Service, by convention the first one."""
        return str(self.network.network_address + 1)

    @property
    def dns(self) -> str:
        """The `kube-dns` Service's address, by kubeadm's convention the tenth one
        (10.96.0.10, what kubelets get as --cluster-dns). Never handed out by `allocate`;
        only a Service asking for it by name gets it."""
        return str(self.network.network_address + 10)

    def reserve(self, ip: str, path: str = "spec.clusterIP") -> None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise errors.invalid("Service", "", [FieldError(path, f'Invalid value: "{ip}": must be a valid IP address')]) from None
        if addr not in self.network:
            raise errors.invalid(
                "Service", "",
                [FieldError(path, f'Invalid value: "{ip}": the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.network}')],
            )
        if ip in self._used:
            raise errors.invalid(
                "Service", "",
                [FieldError(path, f'Invalid value: "{ip}": failed to allocate IP {ip}: provided IP is already allocated')],
            )
        self._used.add(ip)

    def mark(self, ip: str) -> None:
        self._used.add(ip)

    def allocate(self) -> str:
        size = self.network.num_addresses
        dns = self.dns
        # Random probing like upstream: sequential scans get slow as the range fills.
        for _ in range(64):
            offset = random.randrange(2, size - 1)
            ip = str(self.network.network_address + offset)
            if ip not in self._used and ip != dns:
                self._used.add(ip)
                return ip
        for offset in range(2, size - 1):
            ip = str(self.network.network_address + offset)
            if ip not in self._used and ip != dns:
                self._used.add(ip)
                return ip
        raise errors.StatusError(500, "InternalError", "failed to allocate a serviceIP: range is full")

    def release(self, ip: str | None) -> None:
        if ip:
            self._used.discard(ip)


class NodePortAllocator:
    def __init__(self, low: int = NODE_PORT_RANGE[0], high: int = NODE_PORT_RANGE[1]) -> None:
        self.low, self.high = low, high
        self._used: set[int] = set()

    def reserve(self, port: int, path: str) -> None:
        if not self.low <= port <= self.high:
            raise errors.invalid(
                "Service", "",
                [FieldError(path, f"Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {self.low}-{self.high}")],
            )
        if port in self._used:
            raise errors.invalid(
                "Service", "", [FieldError(path, f"Invalid value: {port}: provided port is already allocated")]
            )
        self._used.add(port)

    def mark(self, port: int) -> None:
        self._used.add(port)

    def allocate(self) -> int:
        free = [p for p in range(self.low, self.high + 1) if p not in self._used]
        if not free:
            raise errors.StatusError(500, "InternalError", "failed to allocate a nodePort: range is full")
        port = random.choice(free)
        self._used.add(port)
        return port

    def release(self, port: int | None) -> None:
        if port:
            self._used.discard(port)
