"""The agent's life: register (publish the public key), bring the engine up, obey
commands for this instance, and send a heartbeat every second."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import time
from pathlib import Path

from nacl.public import PrivateKey
from opentelemetry.trace import Status, StatusCode

from plumbing import metrics, sealing
from plumbing import topics as T
from plumbing import tracing
from plumbing.bus import DecodeError, Producer, decode_record
from plumbing.config import KafkaSettings
from plumbing.envelope import Event
from plumbing.logs import log

from . import verbs, volume
from .backups import wal
from .commands import CommandChannel
from .fencing import EpochGuard, Fenced
from .manager import DatastoreManager, InstanceConfig, UserSpec, load

SOURCE = "agent"
HEARTBEAT_SECONDS = float(os.environ.get("COFFER_HEARTBEAT_SECONDS", "1"))
logger = logging.getLogger("agent")


def load_key(path: Path) -> PrivateKey:
    if path.exists():
        return PrivateKey(path.read_bytes())
    key = sealing.new_private_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(bytes(key))
    return key


class Agent:
    def __init__(self, config: InstanceConfig, engine_starting: concurrent.futures.Future | None = None,
                 started: float | None = None):
        self.config = config
        self.started = started or time.monotonic()
        self.engine_starting = engine_starting  # a bring-up already under way, if any
        self.key = load_key(config.directory / "agent.key")
        self.manager: DatastoreManager = load(config)
        self.kafka = KafkaSettings(bootstrap=config.kafka_bootstrap)
        self.producer = Producer(self.kafka, source=f"{SOURCE}/{config.instance_id}")
        self.channel = CommandChannel(config.kafka_bootstrap, config.instance_id,
                                      config.directory / "commands.offset")
        self.epochs = EpochGuard(config.directory / "epoch")
        self.engine_up: asyncio.Future | None = None  # result or failure of bring-up
        self.seq = 0
        self._previous: tuple[float, int, float] | None = None  # (when, xact_commit, cpu_seconds) of the last beat

    def _event(self, type_: str, data: dict, cause: Event | None = None) -> Event:
        if cause is not None:
            return cause.caused(type_, data, subject=self.config.instance_id, source=self.producer.source)
        return Event(type_, self.config.instance_id, data, source=self.producer.source,
                     project=self.config.project_id)

    def _registration(self, data: dict) -> Event:
        event = self._event("coffer.agent.registered.v1", data)
        event.traceparent = self.config.traceparent
        return event

    async def register(self, engine_version: str) -> None:
        c = self.config
        await self.producer.send(T.AGENT_EVENTS, self._registration({
            "instance_id": c.instance_id, "host": c.host, "address": c.address, "port": c.port,
            "public_key": sealing.public_key_b64(self.key), "datastore": c.datastore,
            "engine_version": engine_version, "restart_pending": self.manager.restart_pending}))
        log(logger, logging.INFO, "registered", seconds_since_agent_start=self._since_start())

    def _since_start(self) -> float:
        return round(time.monotonic() - self.started, 3)

    async def bring_up_engine(self) -> None:
        try:
            if self.engine_starting is not None:
                await asyncio.wrap_future(self.engine_starting)
            else:
                await self.manager.bootstrap()
        except Exception as exc:  # reported to whoever waits for the engine
            log(logger, logging.ERROR, "engine failed to start", error=str(exc))
            self.engine_up.set_exception(exc)
            return
        self.engine_up.set_result(True)
        log(logger, logging.INFO, "engine up", seconds_since_agent_start=self._since_start())

    async def obey(self) -> None:
        async for record in self.channel.records():
            try:
                command = decode_record(record)
            except DecodeError as exc:
                log(logger, logging.ERROR, "undecodable command skipped", offset=record.offset, error=str(exc))
                continue
            await self.execute(command)

    async def execute(self, command: Event) -> None:
        name = command.type.split(".")[2]  # coffer.agent.<name>.v1
        # one span per command, in the trace the command carries; the result is sent
        # inside it, so its producer span is the command span's child
        with tracing.consuming(tracing.tracer("coffer.agent"), command, f"command {name}", {
                "messaging.destination.name": T.AGENT_COMMANDS, "coffer.instance_id": self.config.instance_id,
                "coffer.command": name, "coffer.command_id": command.data.get("command_id", "")}) as span:
            if name == "command":
                name = command.data["command"]
                span.set_attribute("coffer.command", name)
            started = time.perf_counter()
            error, output = "", {}
            try:
                self.epochs.admit(command.data.get("epoch", 0))
                if command.type == "coffer.agent.prepare.v1":
                    output = await self.prepare(command.data)
                elif command.type == "coffer.agent.command.v1":
                    output = await self.run_verb(name, command.data)
                else:
                    raise ValueError(f"unknown command {command.type}")
            except Fenced as exc:
                error = str(exc)
            except Exception as exc:  # report every failure; the saga decides what follows
                error = f"{type(exc).__name__}: {exc}"
            if error:
                span.set_status(Status(StatusCode.ERROR, error[:500]))
            metrics.agent_command_duration.record(time.perf_counter() - started, {
                "command": name, "outcome": "failed" if error else "done"})
            log(logger, logging.INFO if not error else logging.ERROR, "command done",
                command=name, command_id=command.data.get("command_id"), error=error,
                seconds_since_agent_start=self._since_start())
            await self._send_until_acknowledged(T.AGENT_EVENTS, self._event("coffer.agent.command_result.v1", {
                "instance_id": self.config.instance_id, "command_id": command.data.get("command_id", ""),
                "command": name, "success": not error, "error": error,
                "engine_running": await self.manager.is_running(),
                "restart_pending": self.manager.restart_pending, "output": json.dumps(output)}, cause=command))

    async def _send_until_acknowledged(self, topic: str, event: Event) -> None:
        """A result must not be lost while the broker is away: the command counts as
        done (its offset is saved) only once its result is acknowledged."""
        delay = 0.5
        while True:
            try:
                await self.producer.send(topic, event)
                return
            except Exception as exc:  # the broker is unreachable: keep the engine running, retry
                log(logger, logging.WARNING, "result not sent yet", event_type=event.type, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def prepare(self, data: dict) -> dict:
        """Make the requested databases and users; when the data came from a copy,
        the output names every database and user the engine then has."""
        passwords = sealing.open_sealed(self.key, data["sealed_credentials"]) if data.get("sealed_credentials") else {}
        missing = [u["name"] for u in data["users"] if u["name"] not in passwords]
        if missing:
            raise ValueError(f"no credentials for users {missing}")
        users = [UserSpec(u["name"], passwords[u["name"]], u.get("host", "%"), tuple(u.get("databases", ())))
                 for u in data["users"]]
        await asyncio.wait_for(asyncio.shield(self.engine_up), 120)
        await self.manager.prepare(data["databases"], users)
        return {"accounts": await self.manager.inventory()} if data.get("inventory") else {}

    async def run_verb(self, name: str, data: dict) -> dict:
        """One verb of the manager, once the engine's bring-up has ended."""
        secrets = sealing.open_sealed(self.key, data["sealed"]) if data.get("sealed") else {}
        # a failed bring-up does not stop a verb: a restart may be what mends it
        await asyncio.wait([self.engine_up], timeout=120)
        return await verbs.run(name, self.manager, json.loads(data.get("arguments") or "{}"), secrets)

    async def heartbeat(self) -> None:
        while True:
            try:
                await self._beat()
            except Exception as exc:  # a missed beat is the monitor's business, not a reason to stop
                log(logger, logging.WARNING, "heartbeat not sent", error=repr(exc))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _beat(self) -> None:
        # after the bring-up, even a failed one (a restart may mend it), the engine speaks for itself
        stopped = self.manager.stopped_on_purpose
        m = await self.manager.metrics() if self.engine_up.done() and not stopped else None
        replication = await self._replication_state() if m and m.engine_up else None
        # the manager's config: a volume resize changes its size
        disk_used, disk_total = volume.usage(self.config.directory / "data", self.manager.config.volume_gb,
                                             m.disk_used_bytes if m else 0)
        rates = self._rates(m)
        self.seq += 1
        await self.producer.send(T.TELEMETRY, self._event("coffer.telemetry.heartbeat.v1", {
            "instance_id": self.config.instance_id, "host": self.config.host, "seq": self.seq,
            "sent_at": int(time.time() * 1000), "engine_up": bool(m and m.engine_up), "engine_stopped": stopped,
            "role": replication.role if replication else "primary",
            "replication_position": replication.position if replication else 0,
            "replication_lag_seconds": replication.lag_seconds if replication else 0.0,
            "connections": m.connections if m else 0, "xact_commit": m.xact_commit if m else 0,
            "cpu_seconds": m.cpu_seconds if m else 0.0, "rss_bytes": m.rss_bytes if m else 0,
            "disk_used_bytes": disk_used, "disk_total_bytes": disk_total,
            "transactions_per_second": rates[0], "cpu_percent": rates[1],
            "cache_hit_ratio": m.cache_hit_ratio if m else None,
            "database_size_bytes": m.database_size_bytes if m else 0}))

    def _rates(self, m) -> tuple[float, float]:
        """(transactions per second, CPU percent) since the previous beat with the engine up."""
        now, previous = time.monotonic(), self._previous
        self._previous = (now, m.xact_commit, m.cpu_seconds) if m and m.engine_up else None
        if self._previous is None or previous is None or now <= previous[0]:
            return 0.0, 0.0
        elapsed = now - previous[0]
        # a counter that went back is a restarted engine: no rate this time
        return (max(0.0, (m.xact_commit - previous[1]) / elapsed),
                max(0.0, 100 * (m.cpu_seconds - previous[2]) / elapsed))

    async def _replication_state(self):
        try:
            return await self.manager.replication_state()
        except Exception:  # noqa: BLE001 - the engine went away between two questions: next beat
            return None

    async def run(self) -> None:
        # here, in the forked agent, never in the launcher: the span processor has a thread
        tracing.setup("agent", self.config.instance_id)
        try:
            await self._run()
        finally:
            tracing.flush()  # the agent leaves by os._exit: no atexit hook exports for it

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.engine_up = loop.create_future()
        # the engine boots while the bus connects, the key travels and the credentials are sealed
        tasks = [asyncio.create_task(self.bring_up_engine())]
        engine_version, *_ = await asyncio.gather(self.manager.engine_version(), self.producer.start(),
                                                  self.channel.start())
        await self.register(engine_version)
        tasks += [asyncio.create_task(self.obey()), asyncio.create_task(self.heartbeat())]
        if self.config.datastore in ("postgresql", "mariadb", "mysql"):  # WAL / binlog archiving, once enabled
            tasks.append(asyncio.create_task(wal.keep_shipping(self.manager)))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(tasks[1:] + [waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception():
                log(logger, logging.ERROR, "agent task failed", error=repr(task.exception()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.manager.stop()
        await self.channel.stop()
        await self.producer.stop()
