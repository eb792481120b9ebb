"""One proxy worker process: mitmproxy as a library, fed routing tables on stdin.

The worker is pure data plane. Its `Master` carries only the addons an ingress needs
(core, proxyserver, next_layer, our retry (retry.py), router and TLS terminator) instead
of mitmdump's ~36, because every hook walks every addon. mitmproxy runs in regular mode
with the lazy connection strategy so it never connects before our router has chosen the
endpoint.

Several workers share one port: each binds its own listening socket with SO_REUSEPORT
and the kernel spreads connections over them. mitmproxy has no option for that, so the
sockets are ours and each accepted connection goes to the `handle_stream` of a (never
started) mitmproxy regular-mode server instance, which builds the same layer stack
mitmproxy's own listener would.

Two more things are ours, each measured with bench/ingress.py: replies are written with
one send per loop pass (`corked.CorkedWriter`), and hooks skip mitmproxy's generic
dispatch (`dispatch`). The garbage collector runs less often (`tune_gc`).

Tables arrive from the supervisor on stdin as length-prefixed pickles (a private pipe
between our own processes). End of stdin means the supervisor is gone: the worker
stops, so no worker outlives its `tuik8s ingress`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Awaitable, Callable

from mitmproxy import options
from mitmproxy.addons import core, next_layer, proxyserver
from mitmproxy.master import Master
from mitmproxy.proxy.mode_servers import ServerInstance

from tuik8s.ingress import dispatch
from tuik8s.ingress.corked import CorkedWriter
from tuik8s.ingress.retry import NextUpstream
from tuik8s.ingress.router import Router
from tuik8s.ingress.table import RoutingTable
from tuik8s.ingress.tls import TlsTerminator

log = logging.getLogger(__name__)

FRAME = struct.Struct("!I")
READY = "ready"


def encode_table(table: RoutingTable) -> bytes:
    data = pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(data)) + data


async def read_table(reader: asyncio.StreamReader) -> RoutingTable | None:
    """The next table from the supervisor, or None once it has closed the pipe."""
    try:
        header = await reader.readexactly(FRAME.size)
        table: RoutingTable = pickle.loads(await reader.readexactly(FRAME.unpack(header)[0]))
    except asyncio.IncompleteReadError:
        return None
    return table


async def read_tables(reader: asyncio.StreamReader, apply: Callable[[RoutingTable], None]) -> None:
    """Apply every table the supervisor sends until it closes the pipe."""
    while (table := await read_table(reader)) is not None:
        apply(table)


def parse_address(value: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` (IPv6 hosts in brackets) as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f'"{value}" is not HOST:PORT') from None
    if not 0 <= number <= 65535:
        raise ValueError(f'"{value}": port must be 0-65535')
    return host, number


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT, so sibling workers can bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Worker:
    """A mitmproxy `Master` with our addons, serving on the given listeners."""

    def __init__(self, listeners: list[tuple[str, int]]) -> None:
        self.listeners = listeners
        self.router = Router()
        self.master: Master | None = None
        self.hooks: dispatch.HookTable | None = None
        self._servers: list[asyncio.Server] = []

    def build(self) -> Master:
        opts = options.Options()
        master = Master(opts)
        proxy = proxyserver.Proxyserver()
        master.addons.add(
            core.Core(), proxy, next_layer.NextLayer(), NextUpstream(self.router), self.router,
            TlsTerminator(lambda: self.router.table),
        )
        opts.update(
            mode=[],  # our own sockets, below
            connection_strategy="lazy",
            websocket=False,  # a 101 becomes a raw TCP pass-through, no frame parsing
            rawtcp=True,
            http2=False,
            http3=False,
            keep_host_header=True,
            validate_inbound_headers=True,
        )
        self.hooks = dispatch.install(master)
        self.master = master
        return master

    async def listen(self) -> None:
        assert self.master is not None
        proxy = self.master.addons.get("proxyserver")
        for host, port in self.listeners:
            instance = ServerInstance.make(f"regular@{port}", proxy)
            instance.make_top_layer = dispatch.inline_hooks(  # type: ignore[method-assign]
                instance.make_top_layer, self.hooks
            )
            sock = reuse_port_socket(host, port)
            self._servers.append(await asyncio.start_server(_corked(instance.handle_stream), sock=sock))

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()


def _corked(handle: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    async def handle_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(reader, writer if os.environ.get("TUIK8S_INGRESS_CORK") == "off" else CorkedWriter(writer))

    return handle_stream


async def run_worker(listeners: list[tuple[str, int]]) -> int:
    worker = Worker(listeners)
    master = worker.build()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    # the first table comes before the first connection is accepted: no 404s at start
    first = await read_table(reader)
    if first is None:
        return 0
    worker.router.set_table(first)
    await worker.listen()
    print(READY, flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    feeder = asyncio.create_task(read_tables(reader, worker.router.set_table))
    feeder.add_done_callback(lambda _t: master.shutdown())
    try:
        await master.run()
    finally:
        feeder.cancel()
        await worker.close()
    return 0


def tune_gc() -> None:
    """Fewer young-generation collections; the import graph frozen out of every collection.

    A proxied request allocates a few hundred container objects (flow, headers, layer
    events, generators) that die young, so the default threshold of 700 runs a gen-0
    collection every couple of requests, and the older generations drag mitmproxy's
    large import graph through each of their passes.
    """
    gc.collect()
    gc.freeze()
    try:
        threshold = int(os.environ.get("TUIK8S_INGRESS_GC", "20000"))
    except ValueError:
        threshold = 20000
    if threshold > 0:
        gc.set_threshold(threshold, 20, 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuik8s-ingress-worker")
    parser.add_argument("--listen", action="append", default=[], help="HOST:PORT (repeatable)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    listeners = [parse_address(v) for v in args.listen]
    tune_gc()
    try:
        return asyncio.run(run_worker(listeners))
    except OSError as e:
        print(f"tuik8s ingress worker: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
