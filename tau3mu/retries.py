"""When to try again, and how: one transient-error rule and one backoff loop.

:func:`is_transient` is the only rule in tau3mu for "a later attempt may succeed": the
coffea Runner's chunk retries (:func:`tau3mu.chunks.retry_chunk`) and the XRootD opens
(:func:`tau3mu.xrootd.open_root`) both ask it. :func:`with_retries` calls a function
with exponential backoff under that rule.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "RetriesExhaustedError",
    "backoff_delays",
    "error_chain",
    "is_transient",
    "with_retries",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: errors of the file itself, which fail the same way on every attempt
PERMANENT_TYPES = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
#: what an XRootD server says when no retry will help: not found, not authorised, a directory
PERMANENT_MESSAGES = (
    "[3011]",
    "[3010]",
    "[3016]",
    "no such file",
    "not authorized",
    "permission denied",
)


class RetriesExhaustedError(OSError):
    """A transient failure that outlasted every attempt."""


def error_chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_transient(err: BaseException) -> bool:
    """Whether a later attempt may not meet ``err``.

    Transient: an I/O error anywhere in the chain of causes (a server restarting, a
    network blip, a timeout) or fsspec-xrootd's stale handle after a restart (a
    ``ValueError`` about a closed file). Permanent, whatever else the chain holds: a
    missing file, a denied permission, a directory (by type, or as an XRootD server
    words it); and everything else (a corrupt basket, a bad value, our own bugs).
    """
    chain = error_chain(err)
    if any(isinstance(c, PERMANENT_TYPES) for c in chain):
        return False
    messages = [str(c).lower() for c in chain]
    if any(marker in text for text in messages for marker in PERMANENT_MESSAGES):
        return False
    return any(
        isinstance(c, OSError) or (isinstance(c, ValueError) and "closed file" in text)
        for c, text in zip(chain, messages, strict=True)
    )


def backoff_delays(base: float, cap: float = float("inf")) -> Callable[[int], float]:
    """Seconds to wait before attempt ``k + 1`` after ``k`` failures: ``base * 2**(k-1)``,
    at most ``cap``."""
    return lambda failures: min(base * 2.0 ** (failures - 1), cap)


def with_retries(
    func: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    retryable: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
    between: Callable[[], None] | None = None,
    exhausted: type[RetriesExhaustedError] = RetriesExhaustedError,
) -> T:
    """Call ``func()`` up to ``attempts`` times with exponential backoff between tries.

    Delays are ``base_delay * 2**k`` capped at ``max_delay``; each retry is logged with
    ``what`` and the error, then ``between()`` runs (dropping stale connections). Errors
    ``retryable`` rejects are raised at once; when the attempts are used up, ``exhausted``
    (a :class:`RetriesExhaustedError`) says how many and the last error. Raises
    ``ValueError`` for ``attempts < 1``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    tic = time.monotonic()
    delay = backoff_delays(base_delay, max_delay)
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except Exception as err:
            if not retryable(err):
                raise
            if attempt == attempts:
                raise exhausted(
                    f"{what}: failed {attempts} times in {time.monotonic() - tic:.1f} s; "
                    f"last error: {type(err).__name__}: {err}"
                ) from err
            wait = delay(attempt)
            log.warning(
                "%s: attempt %d of %d failed (%s: %s); retrying in %.1f s",
                what,
                attempt,
                attempts,
                type(err).__name__,
                err,
                wait,
            )
            sleep(wait)
            if between is not None:
                between()
    raise AssertionError("unreachable")  # pragma: no cover
