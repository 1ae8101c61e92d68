from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class DatastoreOffer:
    datastore: str
    version: str
    version_number: str
    manager: str
    port: int            # the engine's default port, where its instances listen


@dataclass(frozen=True)
class LaunchSpec:
    instance_id: str
    project_id: str
    host: str
    address: str
    port: int
    datastore: str
    version: str
    ram_mb: int
    vcpus: int
    volume_gb: int
    initial_configuration: str = "{}"  # JSON: a configuration group's values the engine starts with
    traceparent: str = ""  # the agent continues the trace of the request that made it


class ComputeDriver(ABC):
    """Every call is idempotent: launching a running instance or destroying a
    destroyed one does nothing."""

    name: str

    @abstractmethod
    def start(self) -> None:
        """Get ready for launches (called once when the provisioner starts)."""

    @abstractmethod
    def offers(self) -> list[DatastoreOffer]: ...

    @abstractmethod
    def allocate_address(self, taken: set[str]) -> str: ...

    @abstractmethod
    def launch(self, spec: LaunchSpec, kafka_bootstrap: str) -> None: ...

    @abstractmethod
    def is_running(self, instance_id: str) -> bool: ...

    @abstractmethod
    def destroy(self, instance_id: str) -> None: ...

    def grow_volume(self, instance_id: str, volume_gb: int) -> None:
        """Grow the instance's volume (its engine is stopped meanwhile)."""
        raise NotImplementedError(f"the {self.name} driver cannot resize volumes")

    @abstractmethod
    def stop_all(self) -> None: ...

    # -- stable endpoints of replica sets: one address that reaches the current primary
    def open_endpoint(self, set_id: str, address: str, port: int, target: tuple[str, int]) -> None:
        raise NotImplementedError(f"the {self.name} driver has no stable endpoints")

    def move_endpoint(self, set_id: str, target: tuple[str, int]) -> None:
        raise NotImplementedError(f"the {self.name} driver has no stable endpoints")

    def close_endpoint(self, set_id: str) -> None:
        """Idempotent."""

    # -- public access: the instance reachable on a public address, from allowed networks
    def open_public(self, instance_id: str, target: tuple[str, int], allowed_cidrs: list[str]) -> tuple[str, int]:
        """Expose `target` (the instance's own address) publicly, or change who may
        connect; idempotent. Returns the public (address, port)."""
        raise NotImplementedError(f"the {self.name} driver cannot expose instances publicly")

    def close_public(self, instance_id: str) -> None:
        """Idempotent."""

    def power_off(self, instance_id: str) -> None:
        """Fence an instance: kill its processes at once, keeping its data (a
        failover's STONITH: whatever its agent does, its engine takes no more writes)."""
        raise NotImplementedError(f"the {self.name} driver cannot fence")
