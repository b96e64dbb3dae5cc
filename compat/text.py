"""Text that others wrote (packages, indexes, test output, a colleague's results
database) made inert for the place it is written to."""

from __future__ import annotations

import re

# C0 controls but tab and newline (ANSI escapes, bell, carriage return), DEL, and
# the bidirectional overrides that make a line read other than it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# ... and newlines too, for a place that must stay one line
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# what XML 1.0 cannot hold: controls but tab, newline and carriage return,
# surrogates, U+FFFE and U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def inert(text: str) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``), so that
    printing it to a terminal can only print it; newlines and tabs kept."""
    return _CONTROL.sub(_escaped, text)


def one_line(text: str) -> str:
    """``text`` as one line of a file (a comment of a Dockerfile or requirements
    file): newlines and every other control character shown as escapes."""
    return _CONTROL_OR_NEWLINE.sub(_escaped, text)


def for_xml(text: str) -> str:
    """``text`` with what XML cannot hold (an ANSI escape's ESC, a NUL) shown as escapes."""
    return _NOT_XML.sub(_escaped, text)
