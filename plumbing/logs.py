"""Structured (JSON-lines) logs. Secrets never reach them: values of keys that
look secret are masked before a record is written."""
from __future__ import annotations

import json
import logging
import sys

SECRET_WORDS = ("password", "secret", "token", "sealed", "private")


def redact(value):
    if isinstance(value, dict):
        return {k: ("***" if any(w in k.lower() for w in SECRET_WORDS) else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": self.formatTime(record), "level": record.levelname,
               "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(redact(fields))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(service: str, level: str = "INFO") -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel("WARNING")
    return logging.getLogger(service)


def log(logger: logging.Logger, level: int, msg: str, exc_info: bool = False, **fields) -> None:
    logger.log(level, msg, exc_info=exc_info, extra={"fields": fields})
