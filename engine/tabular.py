"""Tables out: aligned text, CSV, XLSX and HTML from column titles and rows.

Used by the patrol ledger export and the assessment report.  Text tables
align Chinese (double-width) characters; CSV is UTF-8 with a byte-order mark
so that Excel opens it with the right encoding; XLSX needs ``openpyxl``.
"""

from __future__ import annotations

import csv
import html
import io
import unicodedata
from collections.abc import Sequence
from typing import Any

__all__ = ["Cell", "csv_text", "html_page", "text_table", "width", "xlsx_bytes"]

Cell = str | int | float | None


def width(text: str) -> int:
    """Display width: East Asian wide and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _show(value: Cell) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return str(value)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, left: int = 1) -> str:
    """Columns aligned for a terminal; the first *left* columns left-aligned, the rest right."""
    cells = [[_show(v) for v in row] for row in rows]
    widths = [width(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], width(text))

    def line(values: Sequence[str]) -> str:
        out = []
        for i, text in enumerate(values):
            pad = " " * (widths[i] - width(text))
            out.append(text + pad if i < left else pad + text)
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return "\ufeff" + buffer.getvalue()


def xlsx_bytes(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "Sheet1"
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    for i, header in enumerate(headers, start=1):
        longest = max([width(header), *(width(_show(r[i - 1])) for r in rows)])
        sheet.column_dimensions[get_column_letter(i)].width = min(60, longest + 2)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def html_page(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    note: str = "",
    indent: Sequence[int] | None = None,
) -> str:
    """A standalone page; every value is escaped.  *indent* gives the first cell's depth."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for n, row in enumerate(rows):
        cells = []
        for i, value in enumerate(row):
            style = ""
            if i == 0 and indent is not None:
                style = f' style="padding-left:{0.3 + 1.2 * indent[n]:.1f}em"'
            cls = ' class="n"' if isinstance(value, (int, float)) else ""
            cells.append(f"<td{cls}{style}>{esc(_show(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "th,td{border:1px solid #bbb;padding:.25em .5em}th{background:#eee}"
        "td.n{text-align:right}caption{text-align:left;font-weight:bold;margin:.5em 0}"
        "</style></head><body>\n"
        f"<table><caption>{esc(title)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>\n"
        + (f"<p>{esc(note)}</p>\n" if note else "")
        + "</body></html>\n"
    )
