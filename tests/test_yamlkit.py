"""The one node reader: every shape problem, at its line and column, in one wording."""

from __future__ import annotations

import datetime as dt

import engine.yamlkit as yamlkit
from engine.errors import ConfigError, DurationError, GengbaoError
from engine.yamlkit import MapNode, NodeReader, from_plain, parse_yaml

TEXT = """\
colour: red
name: 12
count: lots
share: 1.5
flag: yes
id: Bad-Id
wait: 2 weeks
zone: Mars/Olympus
day: 2027-02-30x
kind: vilage
roles: [a, 3, b]
empty: []
"""


def _read() -> tuple[NodeReader, MapNode]:
    root, diagnostics = parse_yaml(TEXT, "f.yaml")
    assert diagnostics == [] and isinstance(root, MapNode)
    return NodeReader("f.yaml"), root


def test_every_problem_is_gathered_with_its_position_and_path() -> None:
    reader, root = _read()
    allowed = [k for k in root.entries if k != "colour"] + ["must"]
    assert reader.mapping(root, "", allowed=allowed, required=["must"]) is root
    assert reader.text(root.get("name"), "name") is None
    assert reader.text(root.get("name"), "name", numbers=True) == "12"
    assert reader.integer(root.get("count"), "count", min=1) is None
    assert reader.number(root.get("share"), "share", min=0, max=1) is None
    assert reader.boolean(root.get("flag"), "flag") is None
    assert reader.identifier(root.get("id"), "id", "workflow id") is None
    assert reader.duration(root.get("wait"), "wait") is None
    assert reader.timezone(root.get("zone"), "zone") is None
    assert reader.date(root.get("day"), "day") is None
    assert reader.choice(root.get("kind"), "kind", ["village", "town"]) is None
    assert reader.list_of(root.get("roles"), "roles", reader.text) == ["a", "b"]
    assert reader.items(root.get("empty"), "empty", non_empty=True, what=" of roles") == []
    assert reader.text(None, "absent") is None  # absent is not an error
    assert [str(d) for d in reader.diagnostics] == [
        "f.yaml:1:1: error: colour: unknown key 'colour' (allowed: name, count, share, flag, id, "
        "wait, zone, day, kind, roles, empty, must)",
        "f.yaml:1:1: error: missing required key 'must'",
        "f.yaml:2:7: error: name: expected text, got a number (12); quote it: '12'",
        "f.yaml:3:8: error: count: expected a whole number ≥ 1, got text ('lots')",
        "f.yaml:4:8: error: share: expected a number from 0 to 1, got a number (1.5)",
        "f.yaml:5:7: error: flag: expected true or false, got text ('yes'); write true "
        "('yes' is text in gengbao files)",
        "f.yaml:6:5: error: id: bad workflow id 'Bad-Id': use lower-case letters, digits and '_', "
        "starting with a letter",
        "f.yaml:7:7: error: wait: cannot read duration '2 weeks': write '30m', '2h', '3d' "
        "(calendar days) or '3 working days' (also 30分钟, 2小时, 3天, 3个工作日)",
        "f.yaml:8:7: error: zone: unknown time zone 'Mars/Olympus' (e.g. 'Asia/Shanghai')",
        "f.yaml:9:6: error: day: expected a date like 2027-01-01, got text ('2027-02-30x')",
        "f.yaml:10:7: error: kind: expected one of village, town, got text ('vilage'); "
        "did you mean 'village'?",
        "f.yaml:11:12: error: roles[1]: expected text, got a number (3); quote it: '3'",
        "f.yaml:12:8: error: empty: expected a non-empty list of roles, got an empty list",
    ]
    assert not reader.ok
    assert reader.positions["roles[2]"] == (11, 15)


def test_values_that_fit_come_back_typed() -> None:
    root, _ = parse_yaml(
        "n: 3\nx: 2.5\nb: false\nd: 2027-01-01\nt: Asia/Shanghai\nw: 3 working days\n"
        "m: 2026-09-18T10:00:00+08:00\n",
        "ok.yaml",
    )
    assert isinstance(root, MapNode)
    reader = NodeReader("ok.yaml")
    assert reader.integer(root.get("n"), "n", min=1, max=5) == 3
    assert reader.number(root.get("x"), "x", positive=True) == 2.5
    assert reader.boolean(root.get("b"), "b") is False
    assert reader.date(root.get("d"), "d") == dt.date(2027, 1, 1)
    assert reader.timezone(root.get("t"), "t") == "Asia/Shanghai"
    duration = reader.duration(root.get("w"), "w")
    assert duration is not None and (duration.kind, duration.amount) == ("working_days", 3)
    assert reader.moment(root.get("m"), "m") == dt.datetime(2026, 9, 18, 2, tzinfo=dt.UTC)
    assert reader.ok and reader.diagnostics == []


def test_values_built_in_code_name_the_path_only() -> None:
    reader = NodeReader("<settings>")
    node = from_plain({"retry": {"max_attempts": "lots"}})
    assert isinstance(node, MapNode)
    retry = node.get("retry")
    assert isinstance(retry, MapNode)
    reader.integer(retry.get("max_attempts"), "timers.retry.max_attempts", min=1)
    assert [str(d) for d in reader.diagnostics] == [
        "timers.retry.max_attempts: expected a whole number ≥ 1, got text ('lots')"
    ]


def test_duration_errors_belong_to_the_one_tree() -> None:
    assert issubclass(DurationError, ConfigError) and issubclass(DurationError, GengbaoError)
    assert issubclass(DurationError, ValueError)  # value parsers may catch it as a bad value


def test_public_surface_is_pinned() -> None:
    assert sorted(yamlkit.__all__) == [
        "Diagnostic",
        "Duration",
        "DurationError",
        "IDENTIFIER",
        "MapNode",
        "Node",
        "NodeReader",
        "ScalarNode",
        "SeqNode",
        "Severity",
        "describe",
        "did_you_mean",
        "from_plain",
        "is_null",
        "join_path",
        "parse_duration",
        "parse_yaml",
    ]
