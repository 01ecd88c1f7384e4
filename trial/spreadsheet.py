"""Tables written for spreadsheets: a cell a person typed must never run as a formula on the
statistician's machine. One serialisation for every CSV and XLSX the platform writes (the
analysis's exports and report, the metrics' tables)."""

from __future__ import annotations

import pandas as pd

#: A text cell starting with one of these can run as a formula in Excel, LibreOffice or Google
#: Sheets (OWASP "CSV injection"; tab and carriage return because importers may drop them and
#: expose what follows). :func:`neutralise` also prefixes text starting with the quote itself,
#: so the rule can be undone exactly.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISING_PREFIX = "'"


def neutralise(value: object) -> object:
    """``value`` made safe for a spreadsheet cell: text starting with a formula trigger (or with
    the quote) gets one leading ``'``; anything that is not text is returned unchanged.

    Why this rule: case ids, exclusion reasons, usernames and imported source names are typed
    by people, and ``=HYPERLINK(...)`` or ``@SUM(A1)`` in them would run as a formula on the
    statistician's machine. Whether a cell is a number is decided by its Python type, never by
    parsing text: numbers (int, float, bool, including -1.5) are written as numbers, while the
    text "-1.5" (a case id, say) is prefixed like any other text. Exempting text that "looks
    numeric" would mean guessing each spreadsheet's and locale's parser ("-1,5", "-1e3",
    "+1 (2)", dates), which is where escaping rules are bypassed; the uniform rule is safe and
    exactly reversible (drop the first character of text starting with ``'``), which is why
    text that already starts with ``'`` is prefixed too.
    """
    if isinstance(value, str) and value.startswith((*FORMULA_TRIGGERS, NEUTRALISING_PREFIX)):
        return NEUTRALISING_PREFIX + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with :func:`neutralise` applied to every cell and column name: what
    every CSV and XLSX writer of the analysis writes (numeric columns are left as they are)."""
    safe = frame.rename(columns=neutralise)
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            safe.isetitem(position, column.map(neutralise))
    return safe


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV, neutralised: the one CSV serialisation of every export (tidy
    tables, data dictionary, the report's results tables).

    Python's csv writer (before 3.13) quotes a field holding a lone carriage return only when
    ``\r`` is in the line terminator; unquoted, a spreadsheet ends the row there and the text
    after the CR (``reason\r=1+2``) starts a row of its own, where no neutralising reaches it.
    So the rows are written with ``\r\n`` (every field with a CR or LF quoted) and the record
    terminators, the ``\r\n`` outside quotes, turned back into the ``\n`` the files (and the
    snapshot hash) have always used: ordinary data is byte for byte as before.
    """
    text = neutralise_frame(frame).to_csv(index=False, lineterminator="\r\n")
    parts = text.split('"')  # even parts are outside quotes ("" inside a field: an empty part)
    parts[::2] = [part.replace("\r\n", "\n") for part in parts[::2]]
    return '"'.join(parts).encode()
