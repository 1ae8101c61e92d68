"""The local driver's TCP forwarder: a replica set's stable endpoint (an address of
its own at the engine's default port, passing each connection to the current
primary) and a public instance's address (the host's, passing to the instance's own
loopback address). The target is a file ("address:port") read at every new
connection; SIGHUP (sent when the target moves, or the allowed networks change)
closes every open connection, so clients reconnect, and reach the new primary.

With an allowed-networks file (one CIDR a line, read at every new connection), a
client whose address is in none of them is closed at once.

Run: python -m services.provisioner.drivers.forwarder <address> <port> <target file> [<allowed file>]"""
from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
from pathlib import Path

CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class Forwarder:
    def __init__(self, target_file: Path, allowed_file: Path | None = None):
        self.target_file, self.allowed_file = target_file, allowed_file
        self.open: set[asyncio.Task] = set()

    def target(self) -> tuple[str, int]:
        address, port = self.target_file.read_text().strip().rsplit(":", 1)
        return address, int(port)

    def admits(self, peer: str) -> bool:
        if self.allowed_file is None:
            return True
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
            networks = [ipaddress.ip_network(line, strict=False)
                        for line in self.allowed_file.read_text().split() if line]
        except (OSError, ValueError):
            return False  # no readable list: nobody, rather than everybody
        if getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in networks)

    async def handle(self, client_reader, client_writer) -> None:
        if not self.admits(client_writer.get_extra_info("peername")[0]):
            client_writer.close()  # outside the allowed networks: closed before a byte is passed
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target())
        except (OSError, ValueError):
            client_writer.close()  # no primary reachable: the client sees a refused connection
            return
        task = asyncio.current_task()
        self.open.add(task)
        try:
            await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        finally:
            self.open.discard(task)
            client_writer.close()
            server_writer.close()

    def cut_all(self) -> None:
        for task in list(self.open):
            task.cancel()


async def main(address: str, port: int, target_file: Path, allowed_file: Path | None = None) -> None:
    forwarder = Forwarder(target_file, allowed_file)
    server = await asyncio.start_server(forwarder.handle, address, port, reuse_address=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, forwarder.cut_all)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    allowed_file = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), allowed_file))
