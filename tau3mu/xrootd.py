"""Helpers for ``root://`` paths: recognise and join URLs, open files with retries.

How uproot 5.7 reads ``root://`` (checked against a real ``xrootd`` in
``tests/test_xrootd.py``):

- by default every string path goes to ``uproot.source.fsspec.FSSpecSource``, which for
  ``root://`` uses fsspec-xrootd. That works, but uproot drops its own ``timeout`` option
  before it reaches fsspec, and fsspec-xrootd caches file handles per filesystem
  instance: after the server restarts, reads fail with "I/O operation on closed file"
  until ``XRootDFileSystem.clear_instance_cache()`` is called.
- ``handler=uproot.source.xrootd.XRootDSource`` uses the ``xrootd`` bindings directly,
  honours ``timeout`` and reconnects by itself once the XRootD client is told not to
  blacklist a host for 30 minutes after a stream error (``StreamErrorWindow``, see
  :func:`configure_xrootd_client`). :func:`xrootd_options` selects it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

XROOTD_SCHEMES = ("root", "roots", "xroot", "xroots")
#: XRootD error codes that no retry will fix: not found, not authorised, is a directory
_PERMANENT = ("[3011]", "[3010]", "[3016]", "no such file", "not authorized", "permission denied")


class XRootDOpenError(OSError):
    """A file could not be opened (or read) even after retrying."""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """True for URLs other than ``file://`` (``root://``, ``https://``, ``s3://`` ...)."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def is_xrootd(path: str | os.PathLike[str]) -> bool:
    """True for ``root://``, ``roots://``, ``xroot://`` and ``xroots://`` URLs."""
    scheme, sep, _ = os.fspath(path).partition("://")
    return bool(sep) and scheme.lower() in XROOTD_SCHEMES


def split_url(url: str) -> tuple[str, str]:
    """``root://host:port//abs/path`` -> (``root://host:port``, ``//abs/path``)."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}", slash + path


def join_url(base: str, path: str) -> str:
    """Join a directory (local or URL) and a path, keeping XRootD's ``//`` before absolute paths.

    ``join_url("root://eosuser.cern.ch/", "/eos/user/a.root")`` ->
    ``root://eosuser.cern.ch//eos/user/a.root``;
    ``join_url("root://host//eos/dir", "a.root")`` -> ``root://host//eos/dir/a.root``;
    a ``path`` that is already a URL is returned as it is.
    """
    if is_remote(path):
        return path
    if is_remote(base):
        server, base_path = split_url(base)
        if path.startswith("/"):
            # XRootD wants root://host//abs/path; other protocols one slash
            return f"{server}/{path}" if is_xrootd(base) else f"{server}{path}"
        if not base_path or base_path == "/":
            return f"{server}/{path}"
        return f"{server}{base_path}{'' if base_path.endswith('/') else '/'}{path}"
    if not base:
        return path
    if path.startswith("/"):
        # a local prefix before an absolute path: /mnt/eos + /eos/user -> /mnt/eos/eos/user
        return str(Path(base) / path.lstrip("/"))
    return str(Path(base) / path)


_CONFIGURED = False


def configure_xrootd_client(
    *, stream_error_window: int = 1, connection_window: int = 10, connection_retry: int = 2
) -> None:
    """Tune the XRootD client of this process so that it can recover from a server outage.

    Its defaults refuse to contact a host for 30 minutes after a stream error
    (``StreamErrorWindow`` 1800 s) and wait 120 s per connection attempt. ``XRD_*``
    environment variables the user set win over these values.
    """
    global _CONFIGURED
    try:
        from XRootD.client import EnvPutInt
    except ImportError:  # the bindings are optional for local files
        return
    for key, value in (
        ("StreamErrorWindow", stream_error_window),
        ("ConnectionWindow", connection_window),
        ("ConnectionRetry", connection_retry),
    ):
        if f"XRD_{key.upper()}" not in os.environ:
            EnvPutInt(key, int(value))
    _CONFIGURED = True


def reset_connections() -> None:
    """Forget cached fsspec-xrootd filesystems: their handles are stale after a server restart."""
    try:
        from fsspec_xrootd import XRootDFileSystem
    except ImportError:
        return
    XRootDFileSystem.clear_instance_cache()


def xrootd_options(timeout: int = 30, *, handler: str = "xrootd") -> dict[str, Any]:
    """``uproot.open`` options for ``root://`` URLs.

    ``handler="xrootd"`` (default) uses uproot's ``XRootDSource`` (the ``xrootd`` bindings,
    honours ``timeout``, reconnects after a restart); ``"fsspec"`` keeps uproot's default,
    fsspec-xrootd, whose timeout uproot does not forward.
    """
    import uproot

    if handler == "fsspec":
        return {"timeout": int(timeout)}
    if handler != "xrootd":
        raise ValueError(f"handler must be 'xrootd' or 'fsspec', not {handler!r}")
    return {"handler": uproot.source.xrootd.XRootDSource, "timeout": int(timeout)}


def is_retryable(err: BaseException) -> bool:
    """Whether retrying might help: timeouts and connection errors yes, a missing file no."""
    if isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    if isinstance(err, ValueError):  # fsspec-xrootd's stale handle after a restart
        return "closed file" in str(err)
    if isinstance(err, OSError | TimeoutError):
        message = str(err).lower()
        return not any(marker.lower() in message for marker in _PERMANENT)
    return False


def with_retries(
    func: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    retryable: Callable[[BaseException], bool] = is_retryable,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``func()`` up to ``attempts`` times with exponential backoff between tries.

    Delays are ``base_delay * 2**k`` capped at ``max_delay``; each retry is logged with
    ``what`` and the error. Errors ``retryable`` rejects are raised at once; when the
    attempts are used up, :class:`XRootDOpenError` says how many and the last error.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    tic = time.monotonic()
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except Exception as err:
            if not retryable(err):
                raise
            if attempt == attempts:
                raise XRootDOpenError(
                    f"{what}: failed {attempts} times in {time.monotonic() - tic:.1f} s; "
                    f"last error: {type(err).__name__}: {err}"
                ) from err
            wait = min(delay, max_delay)
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
            reset_connections()
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def open_root(
    path: str | os.PathLike[str],
    *,
    attempts: int = 4,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    timeout: int = 30,
    handler: str = "xrootd",
    **options: Any,
) -> Any:
    """``uproot.open`` with retries and exponential backoff for remote files.

    Local paths are opened once (a missing file is not worth waiting for). For
    ``root://`` URLs the XRootD client is configured to recover from outages
    (:func:`configure_xrootd_client`) and :func:`xrootd_options` are used; ``options``
    override them. Raises :class:`XRootDOpenError` once the attempts are used up.
    """
    import uproot

    text = os.fspath(path)
    if not is_remote(text):
        return uproot.open(text, **options)
    if is_xrootd(text):
        if not _CONFIGURED:  # an explicit configure_xrootd_client() call wins
            configure_xrootd_client()
        options = {**xrootd_options(timeout, handler=handler), **options}
    else:
        options.setdefault("timeout", timeout)
    return with_retries(
        lambda: uproot.open(text, **options),
        what=f"open {text}",
        attempts=attempts,
        base_delay=base_delay,
        max_delay=max_delay,
    )
