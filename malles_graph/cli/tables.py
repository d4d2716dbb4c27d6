"""One way to print tables on the command line: rich on a terminal, full width when piped, or JSON / CSV.

Commands build their rich ``Table`` objects as before and hand them to :func:`emit` together with the
raw records behind them; the ``--json`` / ``--csv`` options (:data:`JsonOpt`, :data:`CsvOpt`) pick the form:

* table (default): rich tables. On a terminal they fit the window; when stdout is not a terminal
  (``| cat``, a file, CI logs) they are printed at their natural width, so no cell is cut to "decis…"
  by an assumed 80-column console.
* ``--json``: the records (numbers stay numbers), one JSON document on stdout.
* ``--csv``: the main table's cells as shown, with a header row, through the ``csv`` module.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

OutputFormat = Literal["table", "json", "csv"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print the data as JSON instead of tables")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="print the main table as CSV instead of tables")]

# A piped table is as wide as its content; this only bounds pathological cells.
PIPE_MAX_WIDTH = 10_000


def output_format(as_json: bool = False, as_csv: bool = False) -> OutputFormat:
    """The format chosen by the ``--json`` / ``--csv`` flags (at most one)."""
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--json/--csv")
    return "json" if as_json else "csv" if as_csv else "table"


def print_table(console: Console, table: Table) -> None:
    """Print ``table``; off a terminal at its natural width instead of the console's assumed 80 columns."""
    if console.is_terminal:
        console.print(table)
        return
    # console.print clamps any width to the console's; render the lines at the table's own width instead.
    width = Measurement.get(console, console.options.update_width(PIPE_MAX_WIDTH), table).maximum
    lines = console.render_lines(table, console.options.update_width(max(width, 1)), pad=False, new_lines=True)
    console.print(Segments(segment for line in lines for segment in line), crop=False, soft_wrap=True)


def plain(cell: object) -> str:
    """A table cell as plain text (rich markup and styles dropped)."""
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


def table_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a rich table, as plain text."""
    header = [plain(column.header) for column in table.columns]
    columns = [[plain(cell) for cell in column.cells] for column in table.columns]
    return header, [list(row) for row in zip(*columns, strict=True)]


def to_csv(table: Table) -> str:
    header, rows = table_rows(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def to_json(data: Any) -> str:
    """``data`` (pydantic models, dicts, lists, dates) as indented JSON."""
    return json.dumps(_jsonable(data), indent=2, default=str, ensure_ascii=False)


def _jsonable(data: Any) -> Any:
    if hasattr(data, "model_dump"):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(v) for v in data]
    return data


def emit(console: Console, tables: Sequence[Table], fmt: OutputFormat, data: Any) -> None:
    """Print ``tables`` (table form), ``data`` (JSON) or the first table (CSV) on stdout.

    JSON and CSV are written to ``sys.stdout`` directly (no rich wrapping or highlighting), so they parse.
    """
    if fmt == "json":
        sys.stdout.write(to_json(data) + "\n")
    elif fmt == "csv":
        sys.stdout.write(to_csv(tables[0]) if tables else "")
    else:
        for table in tables:
            print_table(console, table)
