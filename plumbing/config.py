"""Settings, all from environment variables so compose, systemd or Kubernetes
configure every service the same way."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def coffer_home() -> Path:
    return Path(_env("COFFER_HOME", str(Path.cwd() / ".coffer"))).resolve()


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = field(default_factory=lambda: _env("COFFER_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    # Short group timings suit the embedded broker (it holds every JoinGroup for
    # session/2); real Kafka deployments raise them through the environment.
    session_timeout_ms: int = field(default_factory=lambda: int(_env("COFFER_KAFKA_SESSION_TIMEOUT_MS", "4000")))
    heartbeat_interval_ms: int = field(default_factory=lambda: int(_env("COFFER_KAFKA_HEARTBEAT_MS", "500")))
    # The embedded broker answers a fetch only when this wait ends, so it bounds
    # every hop's latency; idle polling at 20 ms costs little.
    fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("COFFER_KAFKA_FETCH_MAX_WAIT_MS", "20")))
    partitions: int = field(default_factory=lambda: int(_env("COFFER_KAFKA_PARTITIONS", "6")))
    replication_factor: int = field(default_factory=lambda: int(_env("COFFER_KAFKA_REPLICATION", "1")))
    # A group id suffix lets a test run start from fresh consumer groups.
    group_suffix: str = field(default_factory=lambda: _env("COFFER_KAFKA_GROUP_SUFFIX", ""))

    def group(self, name: str) -> str:
        return f"{name}{self.group_suffix}"


def database_url(service: str) -> str:
    """The service's own database: COFFER_<SERVICE>_DATABASE_URL, else
    COFFER_DATABASE_URL_TEMPLATE with {service}, else SQLite under COFFER_HOME."""
    explicit = os.environ.get(f"COFFER_{service.upper()}_DATABASE_URL")
    if explicit:
        return explicit
    template = os.environ.get("COFFER_DATABASE_URL_TEMPLATE")
    if template:
        return template.format(service=service)
    home = coffer_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{home / f'{service}.db'}"
