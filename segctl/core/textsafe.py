"""User values written as text (log lines, CLI tables) with their control characters made
visible, so a quarantine reason, host name or LDAP value cannot forge a line or a field."""

from __future__ import annotations

import logging
import re
from typing import Any

# C0, DEL, C1 (NEL U+0085 among them) and the Unicode line and paragraph separators: each ends a
# line for some reader (a terminal, str.splitlines, a log shipper) or drives a terminal.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A value with any of these is quoted (logfmt style), so `reason="EDR by=admin"` stays one field.
_NEEDS_QUOTES = re.compile('[\\s"=\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]|^$')


def _escape(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}")


def printable(text: Any) -> str:
    """TEXT with every control character and line separator written as an escape (`\\n`,
    `\\x1b`, `\\u2028`): one line, whatever it holds. Backslashes are left alone (Windows paths and
    LDAP DNs stay readable); a literal `\\n` cannot break a line, so nothing is forged by it."""
    return _UNSAFE.sub(_escape, str(text))


def key_values(fields: dict) -> str:
    """`key=value ...` for the fields that are set; a value with spaces, quotes, `=`, a backslash
    or a control character is quoted with `\\` and `"` escaped inside, so the line parses back."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)


def _value(value: Any) -> str:
    text = str(value)
    if not _NEEDS_QUOTES.search(text):
        return text
    return '"' + printable(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


class PrintableFormatter(logging.Formatter):
    """One log record, one line: the message (and every user value in it) is escaped. A traceback
    keeps its lines, each indented, so a line at column 0 always starts a record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        # What follows the (escaped, so one-line) message is the traceback or stack, however it
        # was formatted: another handler may have cached the record's exception text already.
        line, _, rest = super().format(record).partition("\n")
        if not rest:
            return line
        return "\n    ".join([line, *map(printable, rest.split("\n"))])
