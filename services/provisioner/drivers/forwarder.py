"""The local driver's stable endpoint of a replica set: a TCP forwarder listening on
an address of its own at the engine's default port, passing each connection to the
current primary. The target is a file ("address:port") read at every new
connection; SIGHUP (sent when the target moves) closes every open connection, so
clients reconnect, and reach the new primary.

Run: python -m services.provisioner.drivers.forwarder <address> <port> <target file>"""
from __future__ import annotations

import asyncio
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
    def __init__(self, target_file: Path):
        self.target_file = target_file
        self.open: set[asyncio.Task] = set()

    def target(self) -> tuple[str, int]:
        address, port = self.target_file.read_text().strip().rsplit(":", 1)
        return address, int(port)

    async def handle(self, client_reader, client_writer) -> None:
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


async def main(address: str, port: int, target_file: Path) -> None:
    forwarder = Forwarder(target_file)
    server = await asyncio.start_server(forwarder.handle, address, port, reuse_address=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, forwarder.cut_all)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
