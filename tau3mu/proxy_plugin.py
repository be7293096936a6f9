"""Grid proxies on Dask workers: what the original notebook did by hand, as a worker plugin.

``upload_proxy(client, path)`` reads the proxy here and registers :class:`X509ProxyPlugin`:
every worker, including those that join later, writes it to a file of its own with mode
0600 and sets ``X509_USER_PROXY`` and ``X509_CERT_DIR`` in its environment, so that the
XRootD client there authenticates; ``remove_proxy(client)`` takes it off them again.
This module imports ``distributed``; :mod:`tau3mu.credentials` (reading a proxy, this
process's environment) does not, so that runs without Dask do not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from tau3mu import credentials
from tau3mu.cluster import pickled_by_value
from tau3mu.credentials import DEFAULT_CERT_DIR, Secret, read_proxy

__all__ = ["PLUGIN_NAME", "X509ProxyPlugin", "remove_proxy", "upload_proxy"]

log = logging.getLogger(__name__)
PLUGIN_NAME = "tau3mu-x509-proxy"


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


def upload_proxy(
    client: Any,
    path: str | os.PathLike[str] | None = None,
    cert_dir: str | None = None,
) -> X509ProxyPlugin:
    """Ship the proxy at ``path`` (default ``$X509_USER_PROXY``) to every present and future
    worker of ``client``; ``cert_dir`` defaults to ``$X509_CERT_DIR`` or the grid default.

    The plugin class travels by value, so workers need not have ``tau3mu`` installed.
    """
    plugin = X509ProxyPlugin(
        read_proxy(path), cert_dir or os.environ.get("X509_CERT_DIR", DEFAULT_CERT_DIR)
    )
    with pickled_by_value(sys.modules[__name__], credentials):
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
