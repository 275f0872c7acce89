"""Plain words for the YAML mistakes administrators really make.

PyYAML reports where its parser gave up, in the parser's terms (``mapping
values are not allowed here``, ``expected <block end>``), often a line after
the cause.  These hints look at the text around that spot and name the
cause instead: a full-width colon typed on a Chinese keyboard, a key indented
to a column no block has, a line indented under a key that already has a value.
"""

from __future__ import annotations

import re

__all__ = ["explain"]

# A key written with the full-width colon: ``title：待制止`` (before any ':').
_FULL_WIDTH_KEY = re.compile(r"^(\s*(?:-\s+)?)([^\s:#'\"{}\[\]：][^:#'\"{}\[\]：]*?)\s*：")
_KEY_WITH_VALUE = re.compile(r"^(\s*(?:-\s+)?)([^\s:#'\"{}\[\]][^:#]*?):\s+[^\s#]")


def explain(text: str, problem: str, line: int, column: int) -> tuple[int, int, str] | None:
    """A better (line, column, message) for a YAML syntax error at *line*:*column*, or None."""
    lines = text.splitlines()
    full_width = _full_width_colon(lines, line)
    if full_width is not None:
        at_line, at_col = full_width
        return (
            at_line,
            at_col,
            f"full-width colon '：' at {at_line}:{at_col}; use ':' (an ASCII colon and a space)",
        )
    if problem.startswith("expected <block end>"):
        return _dedented(lines, line)
    if problem.startswith("mapping values are not allowed here"):
        return _indented_under_value(lines, line)
    return None


def _full_width_colon(lines: list[str], line: int) -> tuple[int, int] | None:
    """The nearest key written with '：' at or just before *line* (1-based)."""
    for number in range(min(line, len(lines)), max(line - 3, 0), -1):
        match = _FULL_WIDTH_KEY.match(lines[number - 1])
        if match:
            return number, match.end()
    return None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _content_lines(lines: list[str], upto: int) -> list[tuple[int, str]]:
    return [
        (n, t)
        for n, t in enumerate(lines[:upto], start=1)
        if t.strip() and not t.lstrip().startswith("#")
    ]


def _dedented(lines: list[str], line: int) -> tuple[int, int, str] | None:
    """The first line up to *line* whose indentation matches no open block."""
    # The open blocks: (indent, line, what, is_list_item), outermost first.
    stack: list[tuple[int, int, str, bool]] = []
    for number, content in _content_lines(lines, min(line, len(lines))):
        indent = _indent(content)
        body = content.strip()
        item = body == "-" or body.startswith("- ")
        what = body if item else body.split(":")[0]
        closed = None
        while stack and stack[-1][0] > indent:
            closed = stack.pop()
        if stack and stack[-1][0] == indent:
            if stack[-1][3] and not item:  # a key where a list item's '-' stands
                above = _first_key_of(stack[-1][2])
                return (
                    number,
                    indent + 1,
                    f"'{what}' lines up with the '-' of the list item on line "
                    f"{stack[-1][1]}: indent it to column {indent + 3} like '{above}'",
                )
            stack[-1] = (indent, number, what, item)
        elif closed is not None:
            message = (
                f"'{what}' is indented to column {indent + 1}, which lines up with no block "
                f"above: indent it to column {closed[0] + 1} like '{closed[2]}' (line {closed[1]})"
            )
            if stack:
                message += f", or to column {stack[-1][0] + 1} like '{stack[-1][2]}' "
                message += f"(line {stack[-1][1]})"
            return number, indent + 1, message
        else:
            stack.append((indent, number, what, item))
        if item and ":" in body:  # "- key: value" opens the item's mapping at the key
            stack.append((indent + 2, number, _first_key_of(body), False))
    return None


def _first_key_of(item: str) -> str:
    return item.lstrip("- ").split(":")[0]


def _indented_under_value(lines: list[str], line: int) -> tuple[int, int, str] | None:
    """A line indented under a key that already has a value on its own line."""
    content = _content_lines(lines, min(line, len(lines)))
    if len(content) < 2:
        return None
    (_, before), (number, here) = content[-2], content[-1]
    match = _KEY_WITH_VALUE.match(before)
    if match is None or _indent(here) <= _indent(before):
        return None
    key = match.group(2).strip()
    return (
        number,
        _indent(here) + 1,
        f"this line is indented deeper than '{key}' on the line above, which already has a "
        f"value: indent it to column {_indent(before) + 1} like '{key}'",
    )
