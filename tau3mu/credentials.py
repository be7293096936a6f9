"""Grid proxies: reading one (:func:`read_proxy`), pointing this process at it
(:func:`proxy_environment`, for the iterative and futures executors, which read in this
process and its children), and :class:`Secret`, bytes that never show themselves. Dask
workers get the proxy through :mod:`tau3mu.proxy_plugin`. The proxy's bytes never
appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from tau3mu.errors import Tau3MuError

log = logging.getLogger(__name__)
DEFAULT_CERT_DIR = "/etc/grid-security/certificates"


class ProxyError(Tau3MuError, ValueError):
    """The proxy file is missing, unreadable or empty."""


class ProxyWarning(UserWarning):
    """The proxy file is readable by others than its owner."""


class Secret:
    """Bytes that do not show themselves: repr/str give only their size."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<secret: {len(self._value)} bytes>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __getstate__(self) -> bytes:
        return self._value

    def __setstate__(self, state: bytes) -> None:
        self._value = state


def read_proxy(path: str | os.PathLike[str] | None = None) -> bytes:
    """The proxy's bytes; ``path`` defaults to ``$X509_USER_PROXY``.

    A missing, unreadable or empty file raises :class:`ProxyError`; a file others may read
    gives a :class:`ProxyWarning` (grid tools refuse such proxies).
    """
    text = os.fspath(path) if path else os.environ.get("X509_USER_PROXY")
    if not text:
        raise ProxyError(
            "no grid proxy: pass --x509-proxy PATH or set X509_USER_PROXY (voms-proxy-init makes one)"
        )
    p = Path(text).expanduser()
    try:
        data = p.read_bytes()
        mode = stat.S_IMODE(p.stat().st_mode)
    except OSError as err:
        raise ProxyError(f"grid proxy {p}: {err.strerror or err}") from err
    if not data.strip():
        raise ProxyError(f"grid proxy {p} is empty")
    if mode & 0o077:
        warnings.warn(
            f"grid proxy {p} has mode {mode:04o}: others can read it; it should be 0600 (chmod 600 {p})",
            ProxyWarning,
            stacklevel=3,
        )
    return data


def cert_dir_for(cert_dir: str | None = None) -> str | None:
    """``cert_dir``, else ``$X509_CERT_DIR``, else the grid default where it exists, else None."""
    if cert_dir:
        return cert_dir
    if os.environ.get("X509_CERT_DIR"):
        return os.environ["X509_CERT_DIR"]
    return DEFAULT_CERT_DIR if os.path.isdir(DEFAULT_CERT_DIR) else None


@contextlib.contextmanager
def proxy_environment(path: str | os.PathLike[str], cert_dir: str | None = None) -> Iterator[Path]:
    """``X509_USER_PROXY`` (the proxy's absolute path) and ``X509_CERT_DIR`` (see
    :func:`cert_dir_for`; left alone when none is known) in this process while inside,
    then the environment as it was.

    For the executors without Dask workers: XRootD reads in this process and in the
    processes it starts, which inherit the environment. The proxy is checked first
    (:func:`read_proxy`), so a missing one is a :class:`ProxyError` here.
    """
    read_proxy(path)
    proxy = Path(path).expanduser().resolve()
    values = {"X509_USER_PROXY": str(proxy), "X509_CERT_DIR": cert_dir_for(cert_dir)}
    previous = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is not None:
            os.environ[key] = value
    try:
        yield proxy
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
