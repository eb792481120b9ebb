"""How kubectl prints where a Service's traffic goes: the ENDPOINTS cell of Endpoints and the
PORTS and ENDPOINTS cells of EndpointSlices (upstream's printers, formatEndpoints and
listWithMoreString). Shared by the API server's Table output and the TUI's list views, which
draw raw objects from any cluster."""

from __future__ import annotations

from typing import Any

MORE_AFTER = 3


def join_host_port(host: str, port: Any) -> str:
    """`host:port`, with an IPv6 host in brackets (Go's net.JoinHostPort)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoints_cell(subsets: Any) -> str:
    """Up to three ready addresses (`ip:port`, or `ip` where a subset has no ports), then
    "+ N more..."; "<none>" without subsets."""
    if not subsets:
        return "<none>"
    shown: list[str] = []
    more = False
    count = 0
    for subset in subsets:
        addresses = subset.get("addresses") or ()
        ports = subset.get("ports") or (None,)  # a headless Service may have no ports
        for port in ports:
            count += len(addresses)
            for a in addresses:
                if len(shown) == MORE_AFTER:
                    more = True
                    break
                ip = a.get("ip") or ""
                shown.append(ip if port is None else join_host_port(ip, port.get("port") or 0))
    cell = ",".join(shown)
    return f"{cell} + {count - MORE_AFTER} more..." if more else cell


def list_with_more(items: list[str]) -> str:
    """The first three, then "+ N more..."; "<unset>" for none."""
    if len(items) > MORE_AFTER:
        return f"{','.join(items[:MORE_AFTER])} + {len(items) - MORE_AFTER} more..."
    return ",".join(items) or "<unset>"


def endpointslice_cells(obj: dict[str, Any]) -> tuple[str, str, str]:
    """An EndpointSlice's ADDRESSTYPE, PORTS and ENDPOINTS cells."""
    ports = []
    for port in obj.get("ports") or ():
        number = port.get("port")
        name = port.get("name")
        ports.append(str(number) if number is not None else name if name is not None else "*")
    addresses = [str(a) for e in obj.get("endpoints") or () for a in e.get("addresses") or ()]
    return obj.get("addressType") or "", list_with_more(ports), list_with_more(addresses)
