"""Helpers for ``root://`` paths: recognise and join URLs, open files with retries.

How uproot 5.7 reads ``root://`` (checked against a real ``xrootd`` in
``tests/test_xrootd.py``):

- by default every string path goes to ``uproot.source.fsspec.FSSpecSource``, which for
  ``root://`` uses fsspec-xrootd. That works, but uproot drops its own ``timeout`` option
  before it reaches fsspec, and fsspec-xrootd caches file handles per filesystem
  instance: after the server restarts, reads fail with "I/O operation on closed file"
  until ``XRootDFileSystem.clear_instance_cache()`` is called.
- ``handler=uproot.source.xrootd.XRootDSource`` uses the ``xrootd`` bindings directly,
  honours ``timeout`` and reconnects by itself once the XRootD client is told to try
  again within seconds rather than minutes (:data:`XROOTD_CLIENT_SETTINGS`,
  :func:`configure_xrootd_client`). :func:`xrootd_options` selects it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tau3mu.retries import RetriesExhaustedError, with_retries

__all__ = [
    "XROOTD_CLIENT_SETTINGS",
    "XRootDOpenError",
    "configure_xrootd_client",
    "ensure_xrootd_configured",
    "is_remote",
    "is_xrootd",
    "join_url",
    "local_path",
    "open_root",
    "reset_connections",
    "split_url",
    "xrootd_options",
]

XROOTD_SCHEMES = ("root", "roots", "xroot", "xroots")


class XRootDOpenError(RetriesExhaustedError):
    """A file could not be opened (or read) even after retrying."""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """True for URLs other than ``file://`` (``root://``, ``https://``, ``s3://`` ...);
    False for plain paths, absolute or relative, and ``file://`` URLs (files of this
    machine: :func:`local_path` gives their path)."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | os.PathLike[str]) -> str:
    """The file system path of a local file (``file:///a.root`` -> ``/a.root``); raises
    ValueError for a remote URL (:func:`is_remote`)."""
    text = os.fspath(path)
    if is_remote(text):
        raise ValueError(f"{text} is not a file of this machine")
    return text.removeprefix("file://")


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


#: The XRootD client settings tau3mu gives every process that reads ``root://`` (the
#: client's own defaults in the comments). With them the client bridges a server outage
#: of up to ``ConnectionWindow * ConnectionRetry`` (30 s) by itself: it tries to reconnect
#: every ``ConnectionWindow`` seconds, then reopens the file and reissues the pending
#: reads, so the outage costs its own length plus at most one window. After a longer
#: outage the chunk's reads fail and tau3mu's chunk retries
#: (:func:`tau3mu.chunks.retry_chunk`) start it again after 1, 2, 4 ... s.
XROOTD_CLIENT_SETTINGS: dict[str, int] = {
    # seconds between timeout checks (15): every timeout and reconnection is late by up to this
    "TimeoutResolution": 1,
    # seconds a connection may take, and between attempts after a refused one (120)
    "ConnectionWindow": 5,
    # connection attempts before the stream is declared broken and its requests fail (5)
    "ConnectionRetry": 6,
    # seconds a host stays marked broken after that, every request to it failing at once (1800)
    "StreamErrorWindow": 1,
}

_CONFIGURED = False


def configure_xrootd_client(
    *,
    timeout_resolution: int | None = None,
    connection_window: int | None = None,
    connection_retry: int | None = None,
    stream_error_window: int | None = None,
) -> None:
    """Tune the XRootD client of this process so that it recovers from a server outage soon.

    Sets :data:`XROOTD_CLIENT_SETTINGS`; a keyword given replaces its setting (tests use
    ``connection_window=1, connection_retry=1`` to make the client give up at once). An
    ``XRD_<KEY>`` environment variable the user set (``XRD_CONNECTIONWINDOW``, ...) wins
    over both. The client reads these when it first connects to a server, so call this
    before the first ``root://`` open of the process (:func:`ensure_xrootd_configured`).
    """
    global _CONFIGURED
    try:
        from XRootD.client import EnvPutInt
    except ImportError:  # the bindings are optional for local files
        return
    given = {
        "TimeoutResolution": timeout_resolution,
        "ConnectionWindow": connection_window,
        "ConnectionRetry": connection_retry,
        "StreamErrorWindow": stream_error_window,
    }
    for key, default in XROOTD_CLIENT_SETTINGS.items():
        if f"XRD_{key.upper()}" not in os.environ:
            value = given[key]
            EnvPutInt(key, int(default if value is None else value))
    _CONFIGURED = True


def ensure_xrootd_configured() -> None:
    """:func:`configure_xrootd_client` unless this process did it already (a worker
    process calls this before its first chunk: settings do not travel with the work)."""
    if not _CONFIGURED:
        configure_xrootd_client()


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
    import uproot  # not at import time: tau3mu.datasets, and --help, do without it

    if handler == "fsspec":
        return {"timeout": int(timeout)}
    if handler != "xrootd":
        raise ValueError(f"handler must be 'xrootd' or 'fsspec', not {handler!r}")
    return {"handler": uproot.source.xrootd.XRootDSource, "timeout": int(timeout)}


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
    override them. Retries follow :func:`tau3mu.retries.is_transient`; raises
    :class:`XRootDOpenError` once the attempts are used up.
    """
    import uproot

    text = os.fspath(path)
    if not is_remote(text):
        return uproot.open(text, **options)
    if is_xrootd(text):
        ensure_xrootd_configured()  # an explicit configure_xrootd_client() call wins
        options = {**xrootd_options(timeout, handler=handler), **options}
    else:
        options.setdefault("timeout", timeout)
    return with_retries(
        lambda: uproot.open(text, **options),
        what=f"open {text}",
        attempts=attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        between=reset_connections,
        exhausted=XRootDOpenError,
    )
