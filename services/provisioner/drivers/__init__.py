"""Compute drivers behind one interface; `local` is the embedded default."""
from .base import ComputeDriver, DatastoreOffer, LaunchSpec


def load(name: str) -> ComputeDriver:
    if name == "local":
        from .local import LocalDriver
        return LocalDriver()
    raise ValueError(f"unknown compute driver {name!r} (known: local)")


__all__ = ["ComputeDriver", "DatastoreOffer", "LaunchSpec", "load"]
