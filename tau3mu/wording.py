"""The wording of one-line messages: a short listing of names, the closest known name to
a misspelt one, and any text (a library's error message) on one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["error_text", "few", "one_line", "suggestion"]


def few(names: Iterable[str], limit: int = 8) -> str:
    """``'a', 'b', ... (N in all)``: a listing that stays short however many names."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names):,} in all)" if len(names) > limit else "")


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``word``; empty when none is
    close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_line(text: str) -> str:
    """``text`` with every line break and run of whitespace as one space."""
    return " ".join(text.split())


def error_text(err: BaseException) -> str:
    """``Type: message`` of ``err``, on one line (:func:`one_line`)."""
    return f"{type(err).__name__}: {one_line(str(err))}"
