"""A subscriber's stored name made fit for the To header and the greeting, or dropped.

Names arrive from sign-up forms and CSV imports. Line and paragraph separators (U+2028,
U+2029, U+0085) and other C0/C1 controls break a header or a greeting line in some readers;
bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder the text around them, so
a name could make the greeting or the From line beside it read differently. They are replaced
by a space (separators, controls) or removed (bidi), and runs of spaces collapse to one.
A name that still cannot be written as UTF-8 (a lone surrogate from a lax database) is no
name at all: the delivery goes out with the greeting fallback and a bare To address.
"""

from __future__ import annotations

import re

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# C0 and C1 controls (tab, CR, LF and NUL among them), DEL, and the line and paragraph separators.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")


def clean_name(raw: str) -> str:
    """The name as header and greeting show it; "" when nothing usable is left."""
    text = _SPACES.sub(" ", _BREAKS.sub(" ", _BIDI.sub("", raw))).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return text
