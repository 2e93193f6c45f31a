"""The descriptor loader: accepted forms, and errors that name the file, line and field."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rentabot.config.descriptor import DescriptorError, load_descriptor
from tests.support.servers import LAB_DESCRIPTOR


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_example_lab_loads() -> None:
    descriptor = load_descriptor(LAB_DESCRIPTOR)

    assert len(descriptor.resources) >= 20
    assert {spec.max_lock_duration for spec in descriptor.resources} > {86400}


def test_fields_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "board:\n  description: d\n  endpoint: ssh://x\n  tags: arm, board\n"
        "  max_lock_duration: 600\nbare:\n",
    )

    board, bare = load_descriptor(path).resources

    assert (board.name, board.description, board.endpoint) == ("board", "d", "ssh://x")
    assert board.tags_text == "arm, board"
    assert board.max_lock_duration == 600
    assert (bare.name, bare.tags_text, bare.max_lock_duration) == ("bare", "", 86400)


def test_tags_as_list_joined(tmp_path: Path) -> None:
    path = write(tmp_path, "board:\n  tags: [arm, board]\n")

    assert load_descriptor(path).resources[0].tags_text == "arm, board"


def test_dashed_max_lock_duration_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "board:\n  max-lock-duration: 60\n")

    assert load_descriptor(path).resources[0].max_lock_duration == 60


def test_unknown_field_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "board:\n  colour: red\n")

    with caplog.at_level(logging.WARNING):
        spec = load_descriptor(path).resources[0]

    assert spec.name == "board"
    assert "colour" in caplog.text
    assert "line=2" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [\n", "lab.yaml:2:1: not valid YAML"),
        ("", "the descriptor is empty"),
        ("- a\n- b\n", "lab.yaml:1: the descriptor must be a mapping"),
        (
            "a:\n  tags: x\na:\n  tags: y\n",
            "lab.yaml:3: resource 'a' is declared twice (first on line 1)",
        ),
        ("a: 5\n", "lab.yaml:1: resource 'a' must be a mapping"),
        ("a:\n  max_lock_duration: ten\n", "lab.yaml:2: resource 'a': max_lock_duration must be"),
        (
            "a:\n  max_lock_duration: 0\n",
            "lab.yaml:2: resource 'a': max_lock_duration=0 is outside",
        ),
        ("a:\n  max_lock_duration: true\n", "lab.yaml:2: resource 'a': max_lock_duration must be"),
        ("a:\n  description: [x]\n", "lab.yaml:2: resource 'a': description must be text"),
        ("a:\n  tags: {x: 1}\n", "lab.yaml:2: resource 'a': tags must be"),
        ("a:\n  tags: [x, 'y,z']\n", "lab.yaml:2: resource 'a': each tag in the list"),
        ("a:\n  tags: x\n  tags: y\n", "lab.yaml:3: resource 'a' sets 'tags' twice"),
    ],
    ids=[
        "not-yaml",
        "empty",
        "list",
        "duplicate-name",
        "scalar-resource",
        "text-duration",
        "zero-duration",
        "bool-duration",
        "list-description",
        "mapping-tags",
        "comma-in-tag",
        "field-twice",
    ],
)
def test_bad_descriptor_named(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(DescriptorError) as raised:
        load_descriptor(path)

    assert expected in str(raised.value)
    assert str(path) in str(raised.value)


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(DescriptorError) as raised:
        load_descriptor(tmp_path / "absent.yaml")

    assert "absent.yaml: cannot read" in str(raised.value)


def test_maintenance_and_health_check_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rig:\n"
        "  maintenance:\n"
        "    - {start: '2030-01-01T08:00:00+00:00', end: '2030-01-01T10:00:00+00:00', reason: firmware}\n"
        "  health_check: {type: http, target: 'http://10.0.0.5/status', expect_status: 204, interval: 10, timeout: 2, failures: 4}\n"
        "pi:\n"
        "  health_check: {type: tcp, target: '10.0.0.6:22'}\n",
    )

    rig, pi = load_descriptor(path).resources

    assert [(w.start.hour, w.end.hour, w.reason) for w in rig.windows] == [(8, 10, "firmware")]
    assert rig.health_check is not None
    assert (rig.health_check.kind, rig.health_check.expect_status) == ("http", 204)
    assert (rig.health_check.interval, rig.health_check.timeout, rig.health_check.failures) == (
        10,
        2,
        4,
    )
    assert pi.health_check is not None
    assert (pi.health_check.kind, pi.health_check.target, pi.health_check.failures) == (
        "tcp",
        "10.0.0.6:22",
        3,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n  maintenance: {start: x}\n", "maintenance must be a list"),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T08:00:00+00:00', reason: x}\n",
            "maintenance[1] is missing end",
        ),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T08:00:00', end: '2030-01-01T09:00:00+00:00', reason: x}\n",
            "has no UTC offset",
        ),
        (
            "a:\n  maintenance:\n    - {start: soon, end: '2030-01-01T09:00:00+00:00', reason: x}\n",
            "must be an ISO 8601 time",
        ),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T09:00:00+00:00', end: '2030-01-01T08:00:00+00:00', reason: x}\n",
            "is not after its start",
        ),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T08:00:00+00:00', end: '2030-01-01T10:00:00+00:00', reason: x}\n    - {start: '2030-01-01T09:00:00+00:00', end: '2030-01-01T11:00:00+00:00', reason: y}\n",
            "maintenance windows overlap",
        ),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T08:00:00+00:00', end: '2030-01-01T10:00:00+00:00', reason: x, who: me}\n",
            "unknown key 'who'",
        ),
        (
            "a:\n  maintenance:\n    - {start: '2030-01-01T08:00:00+00:00', end: '9999-12-31T23:00:00-05:00', reason: x}\n",
            "lab.yaml:3: resource 'a': maintenance[1].end 9999-12-31T23:00:00-05:00 is after "
            "9999-12-31T23:59:59.999999+00:00, the latest instant rentabot can store",
        ),
        (
            "a:\n  maintenance:\n    - {start: '0001-01-01T00:30:00+01:00', end: '2030-01-01T10:00:00+00:00', reason: x}\n",
            "maintenance[1].start 0001-01-01T00:30:00+01:00 is before 0001-01-01T00:00:00+00:00, "
            "the earliest instant",
        ),
        ("a:\n  health_check: {type: ping, target: x}\n", "type must be tcp or http"),
        ("a:\n  health_check: {type: tcp, target: 'host'}\n", "target must be host:port"),
        (
            "a:\n  health_check: {type: http, target: 'ftp://x'}\n",
            "must be an http:// or https:// URL",
        ),
        ("a:\n  health_check: {type: tcp}\n", "needs type (tcp or http) and target"),
        (
            "a:\n  health_check: {type: tcp, target: 'h:1', interval: 0}\n",
            "health_check.interval=0 is outside",
        ),
        ("a:\n  health_check: {type: tcp, target: 'h:1', failures: lots}\n", "must be a number"),
        ("a:\n  health_check: {type: tcp, target: 'h:1', retries: 3}\n", "unknown key 'retries'"),
    ],
    ids=[
        "windows-not-list",
        "window-missing-end",
        "window-naive-time",
        "window-bad-time",
        "window-backwards",
        "windows-overlap",
        "window-unknown-key",
        "window-end-after-9999",
        "window-start-before-year-1",
        "check-bad-type",
        "check-tcp-target",
        "check-http-target",
        "check-no-target",
        "check-zero-interval",
        "check-text-failures",
        "check-unknown-key",
    ],
)
def test_bad_maintenance_or_check_named(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(DescriptorError) as raised:
        load_descriptor(path)

    assert expected in str(raised.value)
