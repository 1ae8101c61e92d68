"""Configuration parameter rules, per datastore version, as data: one JSON file per
engine and version in parameters/ (`<manager>-<version>.json`, e.g. postgresql-15),
checked against the real engines by tests/e2e/test_parameter_rules.py. Each rule has
a name, a type (integer, string, boolean, float), min/max or allowed values, whether
a change needs a restart, and for PostgreSQL the unit of a number. Pure functions:
a configuration group's values are checked here before anything stores them."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

RULES_DIR = Path(__file__).parent / "parameters"
TYPES = ("integer", "string", "boolean", "float")
MAX_STRING = 1024

# PostgreSQL's units (its GUC parser's): a number may carry one of the same kind as
# the parameter's base unit, e.g. shared_buffers (8kB) = "256MB"
MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")


class InvalidValue(ValueError):
    """A value the rules refuse; the message names the parameter."""


@dataclass(frozen=True)
class Rule:
    name: str
    type: str
    restart_required: bool
    min: int | float | None = None
    max: int | float | None = None
    allowed_values: tuple[str, ...] = ()
    unit: str | None = None  # of a number (PostgreSQL): "8kB", "ms", ...

    def view(self, version_id: str) -> dict:
        """Trove's parameter object, plus allowed_values and unit where there are some."""
        doc = {"name": self.name, "datastore_version_id": version_id,
               "restart_required": self.restart_required, "type": self.type}
        for key in ("min", "max", "unit"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        if self.allowed_values:
            doc["allowed_values"] = list(self.allowed_values)
        return doc


def parse(raw: dict) -> Rule:
    rule = Rule(name=raw["name"], type=raw["type"], restart_required=bool(raw["restart_required"]),
                min=raw.get("min"), max=raw.get("max"), allowed_values=tuple(raw.get("allowed_values", ())),
                unit=raw.get("unit"))
    if rule.type not in TYPES:
        raise ValueError(f"parameter {rule.name}: unknown type {rule.type!r}")
    return rule


@functools.cache
def rules_for(manager: str, version: str) -> dict[str, Rule]:
    """The version's rules by lower-case name (names are case-insensitive, as in
    Trove); empty when there is no rules file for it."""
    path = RULES_DIR / f"{manager}-{version}.json"
    if not path.is_file():
        return {}
    rules = [parse(raw) for raw in json.loads(path.read_text())["configuration-parameters"]]
    return {rule.name.lower(): rule for rule in rules}


def validate(rules: dict[str, Rule], values) -> dict:
    """The values keyed by their parameters' own names; InvalidValue for an unknown
    parameter, a wrong type or a value out of range."""
    if not isinstance(values, dict):
        raise InvalidValue("The configuration values must be an object of parameter names and values.")
    if not rules:
        raise InvalidValue("This datastore version has no configuration parameters.")
    checked = {}
    for name, value in values.items():
        rule = rules.get(str(name).lower())
        if rule is None:
            raise InvalidValue(f"The configuration parameter {name} is not supported for this datastore version.")
        check(rule, value)
        checked[rule.name] = value
    return checked


def check(rule: Rule, value) -> None:
    if rule.type == "boolean":
        if not isinstance(value, bool):
            raise _wrong_type(rule)
        return
    if rule.type == "string":
        _check_string(rule, value)
        return
    if isinstance(value, str) and rule.unit:
        number = in_base_unit(rule, value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or (
            rule.type == "integer" and not isinstance(value, int)):
        raise _wrong_type(rule)
    else:
        number = value
    if rule.min is not None and number < rule.min:
        raise InvalidValue(f"The value for the configuration parameter {rule.name} is less than the minimum "
                           f"allowed: {rule.min}{_unit(rule)}.")
    if rule.max is not None and number > rule.max:
        raise InvalidValue(f"The value for the configuration parameter {rule.name} is greater than the maximum "
                           f"allowed: {rule.max}{_unit(rule)}.")


def _check_string(rule: Rule, value) -> None:
    if not isinstance(value, str):
        raise _wrong_type(rule)
    # a line break or control character could smuggle another setting into the engine's file
    if len(value) > MAX_STRING or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidValue(f"The value for the configuration parameter {rule.name} must be at most {MAX_STRING} "
                           "characters without line breaks or control characters.")
    if rule.allowed_values and value.lower() not in {v.lower() for v in rule.allowed_values}:
        raise InvalidValue(f"The value for the configuration parameter {rule.name} must be one of: "
                           f"{', '.join(rule.allowed_values)}.")


def in_base_unit(rule: Rule, text: str) -> float:
    """A PostgreSQL quantity such as '256MB' or '5min' in the parameter's base unit."""
    m = QUANTITY.match(text)
    base = re.match(r"^(\d*)(\D+)$", rule.unit or "")
    if not m or not base:
        raise _wrong_type(rule)
    number, unit = float(m.group(1)), m.group(2)
    base_count, base_unit = int(base.group(1) or 1), base.group(2)
    for units in (MEMORY_UNITS, TIME_UNITS):
        if base_unit in units:
            if unit not in units:
                raise InvalidValue(f"The value for the configuration parameter {rule.name} has unit {unit!r}; "
                                   f"use one of {', '.join(units)}.")
            return number * units[unit] / (units[base_unit] * base_count)
    raise _wrong_type(rule)


def _unit(rule: Rule) -> str:
    return f" ({rule.unit})" if rule.unit else ""


def _wrong_type(rule: Rule) -> InvalidValue:
    accepted = rule.type
    if rule.unit and rule.type in ("integer", "float"):
        accepted += f" (in {rule.unit}) or a string with a unit such as '64MB' or '5s'"
    return InvalidValue(f"The value provided for the configuration parameter {rule.name} is not of type {accepted}.")


def typed(rule: Rule, text: str):
    """A value as an engine reports it (always text) in the rule's type."""
    if rule.type == "boolean" or (rule.type == "integer" and rule.min == 0 and rule.max == 1
                                  and text.lower() in ("on", "off", "yes", "no", "true", "false")):
        flag = text.lower() in ("on", "yes", "true", "1")
        return flag if rule.type == "boolean" else int(flag)
    try:
        if rule.type == "integer":
            return int(text)
        if rule.type == "float":
            return float(text)
    except ValueError:
        pass  # e.g. "-1" spelled otherwise, or a unit: show it as the engine said it
    return text
