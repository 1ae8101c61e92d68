"""Avro single-object encoding (C3 01, 8-byte CRC-64-AVRO fingerprint, binary body)
with fastavro. Each CloudEvents type has one schema file, schemas/<type>.avsc;
schemas/released/ keeps earlier versions so old records still resolve."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from .config import REPO_ROOT

MAGIC = b"\xc3\x01"


class DecodeError(Exception):
    """A record that is not a single-object Avro record of a known schema."""


@dataclass(frozen=True)
class Schema:
    event_type: str
    raw: dict
    parsed: Any
    fingerprint: bytes

    @classmethod
    def from_file(cls, path: Path, event_type: str) -> "Schema":
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw, _write_hint=False)
        canonical = to_parsing_canonical_form(raw)
        return cls(event_type, raw, parsed, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")))


def schemas_dir() -> Path:
    return Path(os.environ.get("COFFER_SCHEMAS_DIR", REPO_ROOT / "schemas"))


class SchemaRegistry:
    """Current schemas (reader side) by event type; every known writer schema by fingerprint."""

    def __init__(self, directory: Path | None = None):
        directory = directory or schemas_dir()
        self.current: dict[str, Schema] = {}
        self.writers: dict[bytes, Schema] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = Schema.from_file(path, path.stem)
            self.current[schema.event_type] = schema
            self.writers[schema.fingerprint] = schema
        for path in sorted((directory / "released").glob("*.avsc")):
            # released/<type>@<n>.avsc: an earlier writer schema of <type>
            event_type = path.stem.split("@")[0]
            schema = Schema.from_file(path, event_type)
            self.writers.setdefault(schema.fingerprint, schema)

    def encode(self, event_type: str, data: dict) -> bytes:
        schema = self.current.get(event_type)
        if schema is None:
            raise KeyError(f"no schema for event type {event_type}")
        out = io.BytesIO()
        out.write(MAGIC)
        out.write(schema.fingerprint)
        fastavro.schemaless_writer(out, schema.parsed, data)
        return out.getvalue()

    def decode(self, event_type: str, value: bytes) -> dict:
        if not value or value[:2] != MAGIC or len(value) < 10:
            raise DecodeError("not an Avro single-object record")
        writer = self.writers.get(value[2:10])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {value[2:10].hex()}")
        reader = self.current.get(event_type, writer)
        if writer.event_type != reader.event_type:
            raise DecodeError(f"writer schema is {writer.event_type}, header says {event_type}")
        try:
            return fastavro.schemaless_reader(io.BytesIO(value[10:]), writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises several types on a bad body
            raise DecodeError(f"undecodable body: {exc}") from exc


_registry: SchemaRegistry | None = None


def registry() -> SchemaRegistry:
    global _registry
    if _registry is None:
        _registry = SchemaRegistry()
    return _registry
