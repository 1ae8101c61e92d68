"""The interface every datastore plugin implements."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

# present while the engine runs with settings older than its configuration files
RESTART_MARKER = "restart.pending"
# present while the engine is stopped on purpose (the stop action): a relaunched agent
# leaves it stopped, and its heartbeat says so, so nothing takes it for a failure
STOPPED_MARKER = "engine.stopped"


@dataclass(frozen=True)
class InstanceConfig:
    instance_id: str
    host: str
    address: str
    port: int
    datastore: str
    version: str
    ram_mb: int
    vcpus: int
    volume_gb: int
    kafka_bootstrap: str
    templates_dir: str
    directory: Path
    project_id: str = ""   # the tenant, for the project header of the agent's events
    initial_configuration: str = "{}"  # JSON: the values of the configuration group attached at create
    traceparent: str = ""  # the trace of the request that launched this agent


@dataclass(frozen=True)
class UserSpec:
    name: str
    password: str
    host: str = "%"
    databases: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceLink:
    """Where a replica streams from: the source's address and the account (and, for
    PostgreSQL, the replication slot) the source keeps for this replica."""
    address: str
    port: int
    user: str
    password: str
    slot: str = ""


@dataclass(frozen=True)
class ReplicationState:
    role: str            # "primary" or "replica"
    position: int        # how far its data goes: WAL bytes, GTID sequence, replication offset
    lag_seconds: float = 0.0


@dataclass(frozen=True)
class Metrics:
    engine_up: bool
    connections: int = 0
    xact_commit: int = 0
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    disk_used_bytes: int = 0
    cache_hit_ratio: float | None = None  # reads served from the engine's memory, since it started
    database_size_bytes: int = 0          # the data itself, as the engine counts it


class DatastoreManager(ABC):
    def __init__(self, config: InstanceConfig):
        self.config = config
        self._restart_marker = config.directory / RESTART_MARKER

    @abstractmethod
    async def engine_version(self) -> str: ...

    @abstractmethod
    async def bootstrap(self) -> None:
        """Make the data directory exist (initdb or template) and start the engine;
        adopt an engine that is already running."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def prepare(self, databases: list[dict], users: list[UserSpec]) -> None:
        """Create databases and users; idempotent."""

    @abstractmethod
    async def metrics(self) -> Metrics: ...

    @abstractmethod
    async def is_running(self) -> bool:
        """Whether the engine process runs (whether or not it accepts connections yet)."""

    async def restart(self) -> None:
        """Stop the engine cleanly and bring it up again with its current settings."""
        await self.stop()
        (self.config.directory / STOPPED_MARKER).unlink(missing_ok=True)  # a restart mends a failed stop too
        await self.bootstrap()
        self._restart_marker.unlink(missing_ok=True)

    async def resize(self, ram_mb: int, vcpus: int) -> None:
        """Restart the engine with the memory settings of a new flavor. If it does not
        come up with them it is brought back up on the old ones, and the error raised."""
        old = self.config
        self.config = replace(old, ram_mb=ram_mb, vcpus=vcpus)
        try:
            await self.restart()
        except Exception:
            self.config = old
            await self.restart()
            raise

    async def stop_engine(self) -> None:
        """Stop the engine and keep it stopped (the mark first: an agent that dies
        half-way and is relaunched still leaves it stopped)."""
        (self.config.directory / STOPPED_MARKER).touch()
        try:
            await self.stop()
        except Exception:
            if await self.is_running():  # still running: not stopped, whatever was asked
                (self.config.directory / STOPPED_MARKER).unlink(missing_ok=True)
            raise

    async def start_engine(self) -> None:
        """Start an engine stopped on purpose; a failed start is a failure, not a stop."""
        (self.config.directory / STOPPED_MARKER).unlink(missing_ok=True)
        await self.bootstrap()
        self._restart_marker.unlink(missing_ok=True)  # a fresh start reads every setting

    @property
    def stopped_on_purpose(self) -> bool:
        return (self.config.directory / STOPPED_MARKER).exists()

    # -- replication (agent/datastores/<engine>/replication.py) ------------------
    async def serve_replica(self, account: str, password: str) -> None:
        """Be a replication source for one replica: its account (and slot), named `account`."""
        raise NotImplementedError(f"{self.config.datastore} has no replication")

    async def follow(self, source: SourceLink, copy_data: bool) -> None:
        """Replicate from `source`: a fresh copy of its data first, or (copy_data False)
        re-point the streaming of data already shared with it."""
        raise NotImplementedError(f"{self.config.datastore} has no replication")

    async def forget_replica(self, account: str) -> None:
        """The replica served with `account` is gone: drop its account (and slot)."""
        raise NotImplementedError(f"{self.config.datastore} has no replication")

    async def set_synchronous(self, enabled: bool) -> None:
        """As a primary: acknowledge a commit only once a replica has it (or stop)."""
        raise NotImplementedError(f"{self.config.datastore} has no synchronous replication")

    async def refuse_writes(self) -> None:
        """Before a planned stop: no write after the position reported last (engines
        whose clean stop ships every write to the replicas need nothing)."""

    async def promote(self) -> None:
        """Stop replicating and accept writes."""
        raise NotImplementedError(f"{self.config.datastore} has no replication")

    async def replication_state(self) -> ReplicationState:
        return ReplicationState("primary", 0)

    @property
    def restart_pending(self) -> bool:
        return self._restart_marker.exists()

    def mark_restart_pending(self) -> None:
        self._restart_marker.touch()


# datastore name -> its plugin package. Each package has `bootstrap.py` with a
# blocking, stdlib-only `bootstrap(config)` and `engine_running(config)` (and
# optionally `warm_templates(dir)` for the host launcher) and `manager.py` with a
# `Manager(DatastoreManager)`.
PLUGINS = {
    "postgresql": "agent.datastores.postgresql",
    "redis": "agent.datastores.redis",
    "mariadb": "agent.datastores.mariadb",
    "mysql": "agent.datastores.mariadb",
}


def _plugin(datastore: str) -> str:
    try:
        return PLUGINS[datastore]
    except KeyError:
        raise ValueError(f"no agent plugin for datastore {datastore!r}") from None


def bootstrap_function(config: InstanceConfig):
    """The plugin's blocking bring-up, so the agent can start the engine in a
    thread before it imports its bus and database clients. An engine that is not
    running will start afresh, reading every setting: nothing waits for a restart
    (one a previous agent left running is adopted as it is)."""
    module = importlib.import_module(f"{_plugin(config.datastore)}.bootstrap")
    if (config.directory / STOPPED_MARKER).exists():
        return lambda: None  # stopped on purpose: it stays so until the start action
    if not module.engine_running(config):
        (config.directory / RESTART_MARKER).unlink(missing_ok=True)
    return lambda: module.bootstrap(config)


def load(config: InstanceConfig) -> DatastoreManager:
    return importlib.import_module(f"{_plugin(config.datastore)}.manager").Manager(config)
