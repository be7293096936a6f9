"""Grid proxies on Dask workers: what the original notebook did by hand, as a worker plugin."""

from __future__ import annotations

import logging
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger(__name__)
DEFAULT_CERT_DIR = "/etc/grid-security/certificates"


class ProxyError(ValueError):
    """The proxy file is missing or unreadable."""


class X509ProxyPlugin(WorkerPlugin):
    """Write the proxy on every worker (also ones that join later) with mode 0600 and set
    ``X509_USER_PROXY`` and ``X509_CERT_DIR`` in the worker's environment.

    The proxy travels as bytes inside the plugin; its repr never shows them.
    """

    name = "tau3mu-x509-proxy"

    def __init__(self, proxy: bytes, cert_dir: str = DEFAULT_CERT_DIR, filename: str = "x509up_tau3mu") -> None:
        self._proxy = proxy
        self.cert_dir = cert_dir
        self.filename = filename
        self.path: str | None = None

    def __repr__(self) -> str:
        return f"X509ProxyPlugin(<{len(self._proxy)} bytes hidden>, cert_dir={self.cert_dir!r})"

    __str__ = __repr__

    def setup(self, worker: Any) -> None:
        directory = Path(getattr(worker, "local_directory", None) or "/tmp")
        target = directory / self.filename
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self._proxy)
        os.chmod(target, 0o600)
        os.environ["X509_USER_PROXY"] = str(target)
        os.environ["X509_CERT_DIR"] = self.cert_dir
        self.path = str(target)
        log.info("grid proxy installed on worker %s", getattr(worker, "address", "?"))


def read_proxy(path: str | None) -> bytes:
    """The proxy's bytes; ``path`` defaults to ``$X509_USER_PROXY``."""
    path = path or os.environ.get("X509_USER_PROXY")
    if not path:
        raise ProxyError("no grid proxy: pass --x509-proxy PATH or set X509_USER_PROXY")
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ProxyError(f"grid proxy {p}: {err.strerror}") from err
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        warnings.warn(f"grid proxy {p} is readable by others (mode {mode:o}); it should be 0600", stacklevel=2)
    return data


def upload_proxy(client: Any, path: str | None = None, cert_dir: str | None = None) -> X509ProxyPlugin:
    """Register the proxy plugin on the cluster: present and future workers get it."""
    plugin = X509ProxyPlugin(read_proxy(path), cert_dir or os.environ.get("X509_CERT_DIR", DEFAULT_CERT_DIR))
    client.register_plugin(plugin)
    return plugin
