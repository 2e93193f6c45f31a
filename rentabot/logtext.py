"""Text from clients made safe to put in a log line."""

from __future__ import annotations


def printable(value: object) -> str:
    """Return ``value`` as text with newlines and other control characters escaped.

    Labels, reasons and paths come from clients. Written raw, a newline in one would
    start a forged log line, and a terminal escape would act on the terminal of the
    person reading the log.
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
