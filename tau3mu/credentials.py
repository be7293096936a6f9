"""Grid proxies on Dask workers: what the original notebook did by hand, as a worker plugin.

``upload_proxy(client, path)`` reads the proxy here and registers :class:`X509ProxyPlugin`:
every worker, including those that join later, writes it to a file of its own with mode
0600 and sets ``X509_USER_PROXY`` and ``X509_CERT_DIR`` in its environment, so that the
XRootD client there authenticates; ``remove_proxy(client)`` takes it off them again.
Without Dask workers (the iterative and futures executors read in this process and its
children) :func:`proxy_environment` points this process at the proxy. The proxy's bytes
never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from tau3mu.errors import Tau3MuError

log = logging.getLogger(__name__)
DEFAULT_CERT_DIR = "/etc/grid-security/certificates"
PLUGIN_NAME = "tau3mu-x509-proxy"


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


class X509ProxyPlugin(WorkerPlugin):
    """Writes the proxy on each worker (mode 0600) and points ``X509_USER_PROXY`` at it.

    The proxy travels inside the plugin as bytes (the client's path means nothing on a
    remote worker); ``repr`` shows only its size and a short fingerprint.
    """

    name = PLUGIN_NAME
    idempotent = False

    def __init__(
        self, proxy: bytes, cert_dir: str = DEFAULT_CERT_DIR, filename: str = "x509up_tau3mu"
    ) -> None:
        self._proxy = Secret(proxy)
        self.cert_dir = cert_dir
        self.filename = filename
        #: sha256 prefix, to tell proxies apart without showing them
        self.fingerprint = hashlib.sha256(self._proxy.reveal()).hexdigest()[:12]
        self.path: str | None = None
        self._previous: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return (
            f"X509ProxyPlugin(<{len(self._proxy)} bytes hidden, sha256 {self.fingerprint}>, "
            f"cert_dir={self.cert_dir!r})"
        )

    __str__ = __repr__

    def setup(self, worker: Any) -> None:
        directory = Path(
            getattr(worker, "local_directory", None) or os.environ.get("TMPDIR", "/tmp")
        )
        target = directory / self.filename
        tmp = target.with_name(f".{self.filename}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._proxy.reveal())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
        self._previous = {key: os.environ.get(key) for key in ("X509_USER_PROXY", "X509_CERT_DIR")}
        os.environ["X509_USER_PROXY"] = str(target)
        os.environ["X509_CERT_DIR"] = self.cert_dir
        self.path = str(target)
        log.info(
            "grid proxy %s installed on worker %s",
            self.fingerprint,
            getattr(worker, "address", "?"),
        )

    def teardown(self, worker: Any) -> None:
        """Remove the worker's copy; restore the environment it replaced."""
        if self.path is None:
            return
        Path(self.path).unlink(missing_ok=True)
        if os.environ.get("X509_USER_PROXY") == self.path:
            for key, value in self._previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.path = None


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


def upload_proxy(
    client: Any,
    path: str | os.PathLike[str] | None = None,
    cert_dir: str | None = None,
) -> X509ProxyPlugin:
    """Ship the proxy at ``path`` (default ``$X509_USER_PROXY``) to every present and future
    worker of ``client``; ``cert_dir`` defaults to ``$X509_CERT_DIR`` or the grid default.

    The plugin class travels by value, so workers need not have ``tau3mu`` installed.
    """
    from tau3mu.cluster import pickled_by_value

    plugin = X509ProxyPlugin(
        read_proxy(path), cert_dir or os.environ.get("X509_CERT_DIR", DEFAULT_CERT_DIR)
    )
    with pickled_by_value(sys.modules[__name__]):
        client.register_plugin(plugin)
    log.info("grid proxy %s registered for all workers", plugin.fingerprint)
    return plugin


def remove_proxy(client: Any) -> bool:
    """Unregister the proxy plugin: every worker deletes its copy and restores its
    environment (the plugin's ``teardown``). False, with a log line, if that failed."""
    try:
        client.unregister_worker_plugin(PLUGIN_NAME)
    except Exception as err:  # a scheduler gone, a worker lost: nothing to keep the run for
        log.warning("could not remove the grid proxy from the workers: %s", type(err).__name__)
        return False
    log.info("grid proxy removed from the workers")
    return True


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
