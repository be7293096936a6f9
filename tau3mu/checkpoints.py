"""Checkpoints of finished chunks: a resumed run loads them instead of reading again.

A checkpoint is a pickle, and unpickling runs whatever code the file names, so a file
is unpickled only after two checks on a one-line JSON header written before the pickle:

- its ``fingerprint`` is this chunk's (:func:`chunk_fingerprint`: the processor and its
  configuration, the dataset's metadata, the tau3mu version, the file's UUID and the
  entry range), so a checkpoint made for another chunk or another setup is not reused;
- its ``hmac`` (HMAC-SHA256 over the fingerprint and the pickle) was made with the
  user's checkpoint key: 32 random bytes in ``checkpoint.key`` in tau3mu's cache folder
  (:func:`tau3mu.cache.cache_dir`, ``~/.cache/tau3mu`` by default), mode 0600, made at
  first use (:func:`user_key`).

A file that fails either check is logged, ignored and overwritten by the chunk computed
again. What this protects against: anyone who can write into the checkpoint folder but
cannot read the key (other users of a shared or group-writable folder, a folder copied
from someone else) cannot make a run execute their code or take their numbers. What it
does not: whoever can read the key (the user's account, root, whoever administers the
file system holding the cache folder) can sign a checkpoint; whoever can change tau3mu
or the Python environment does not need to; with a Dask cluster the key travels to the
workers inside the checkpointer, as the grid proxy does, so the workers' operators can
read it. Checkpoints are not encrypted: the checkpoint folder is created with mode 0700
and should stay private. Paths inside the folder are made from hashes and escaped names
only (:func:`path_component`), so no dataset name reaches outside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from coffea import processor

import tau3mu
from tau3mu.atomic import write_bytes
from tau3mu.cache import cache_dir
from tau3mu.credentials import Secret
from tau3mu.errors import OutputError

log = logging.getLogger(__name__)

#: the header's ``format``; bump when the header or what it signs changes
FORMAT = "tau3mu-checkpoint/1"
KEY_BYTES = 32
#: longest header read before giving up on a file (a real one is ~200 bytes)
_MAX_HEADER = 4096
#: per-chunk keys of coffea's chunk metadata; the rest is the dataset's metadata
#: what names a chunk, not its dataset (``files``: a group's, :mod:`tau3mu.filegroups`)
_CHUNK_KEYS = ("filename", "entrystart", "entrystop", "fileuuid", "files")


class CheckpointError(OutputError):
    """A finished chunk cannot be kept in the ``--checkpoint`` folder: the run's output
    side, never blamed on an input file nor skipped."""


class CheckpointKeyError(OSError):
    """The checkpoint key cannot be read or made."""


def key_path() -> Path:
    """Where the user's checkpoint key lives: ``checkpoint.key`` in tau3mu's cache folder
    (``~/.cache/tau3mu`` when the user turned the cache off: the key is not a cache)."""

    folder = cache_dir()
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "tau3mu"
    return folder / "checkpoint.key"


def _private_key(path: Path) -> bytes | None:
    """The key at ``path`` if it is ours, 0600 or stricter and whole; else None (logged)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("checkpoint key %s cannot be read (%s); making a new one", path, err)
        return None
    try:
        info = os.fstat(fd)
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        log.warning(
            "checkpoint key %s is not private (owner uid %d, mode %o); making a new one: "
            "checkpoints signed with the old key will be computed again",
            path,
            info.st_uid,
            stat.S_IMODE(info.st_mode),
        )
        return None
    return key if len(key) == KEY_BYTES else None


def user_key() -> Any:
    """The user's checkpoint key (a :class:`tau3mu.credentials.Secret`), made on first use.

    The key file is created with mode 0600 in a folder tau3mu makes with mode 0700. A key
    file that is not the user's, is readable or writable by others, or is damaged is
    replaced by a new key (checkpoints signed with the old one are then recomputed).
    Raises :class:`CheckpointKeyError` when no key can be written.
    """
    path = key_path()
    key = _private_key(path)
    if key is not None:
        return Secret(key)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fresh = secrets.token_bytes(KEY_BYTES)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, fresh)
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.lexists(path):  # not private, or damaged: replaced
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):  # another process made one meanwhile
                os.link(tmp, path)
            tmp.unlink()
    except OSError as err:
        raise CheckpointKeyError(f"cannot write the checkpoint key {path}: {err}") from err
    key = _private_key(path)
    if key is None:
        raise CheckpointKeyError(f"the checkpoint key {path} cannot be read back")
    return Secret(key)


def path_component(text: str) -> str:
    """A file name made from ``text`` that is only itself: letters, digits, ``_`` and
    ``-`` kept (at most 48), everything else one ``_``, then a hash of the whole text,
    so that names that differ never meet and ``..`` or ``/`` never reach the path."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:48]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def checkpoint_key(processor_instance: Any, metadata: dict[str, Any]) -> str:
    """A short hash of everything a chunk's output depends on besides its events: the
    processor (its ``fingerprint()``: class, cuts, scale factors' content, ...), the
    dataset's metadata (type, era, lumi, tree, ...) and the tau3mu version. A checkpoint
    made under another key is never reused; the file's path is not in it, so a run
    resumes over another prefix (same file UUID)."""
    fingerprint = getattr(processor_instance, "fingerprint", None)
    if callable(fingerprint):
        made_by = fingerprint()
    else:
        config = getattr(processor_instance, "config", None)
        made_by = {
            "processor": f"{type(processor_instance).__module__}."
            f"{type(processor_instance).__qualname__}",
            "config": config.to_dict() if config is not None else None,
        }
    payload = {
        "tau3mu": tau3mu.__version__,
        "processor": made_by,
        "dataset": {k: v for k, v in metadata.items() if k not in _CHUNK_KEYS},
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _uuid_text(uuid: Any) -> str:
    """A file UUID as hex (coffea gives bytes), or an escaped string."""
    return uuid.hex() if isinstance(uuid, bytes | bytearray) else path_component(str(uuid))


def chunk_fingerprint(processor_instance: Any, metadata: dict[str, Any]) -> str:
    """What a checkpoint's header must carry to stand for this chunk: a hash of its
    :func:`checkpoint_key`, dataset, file UUID and entry range."""
    chunk = {
        "key": checkpoint_key(processor_instance, metadata),
        "dataset": str(metadata["dataset"]),
        "fileuuid": _uuid_text(metadata["fileuuid"]),
        "entries": [int(metadata["entrystart"]), int(metadata["entrystop"])],
    }
    return hashlib.sha256(json.dumps(chunk, sort_keys=True).encode()).hexdigest()


def _signature(key: Any, fingerprint: str, payload: bytes) -> str:
    message = f"{FORMAT}\n{fingerprint}\n".encode() + payload
    return hmac.new(key.reveal(), message, hashlib.sha256).hexdigest()


def seal(key: Any, fingerprint: str, payload: bytes) -> bytes:
    """A checkpoint file's bytes: the JSON header line, then ``payload`` (the pickle)."""
    header = {"format": FORMAT, "fingerprint": fingerprint}
    header["hmac"] = _signature(key, fingerprint, payload)
    return json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def unseal(key: Any, fingerprint: str, blob: bytes) -> tuple[bytes | None, str | None]:
    """``(payload, None)`` when ``blob`` is a checkpoint of this chunk signed with
    ``key``, else ``(None, why not)``. Only the header is parsed (as JSON); nothing is
    unpickled here."""
    line, newline, payload = blob[: _MAX_HEADER + 1].partition(b"\n")
    if not newline:
        return None, "no tau3mu checkpoint header"
    try:
        header = json.loads(line)
    except ValueError:
        return None, "no tau3mu checkpoint header"
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None, "no tau3mu checkpoint header of this version"
    if header.get("fingerprint") != fingerprint:
        return None, "made for another chunk or setup (fingerprint differs)"
    payload = blob[len(line) + 1 :]
    claimed = header.get("hmac")
    if not isinstance(claimed, str) or not hmac.compare_digest(
        claimed, _signature(key, fingerprint, payload)
    ):
        return None, "not signed with your checkpoint key (written by someone else, or changed)"
    return payload, None


def private_folder(path: Path) -> None:
    """Make ``path`` (and missing parents) with mode 0700; an existing folder of ours
    that others can enter is made private (logged); one of another user is only logged."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if not stat.S_IMODE(info.st_mode) & 0o077:
        return
    if info.st_uid == os.geteuid():
        os.chmod(path, 0o700)
        log.warning("checkpoint folder %s was open to others; made private (0700)", path)
    else:
        log.warning(
            "checkpoint folder %s belongs to another user and is open to others: only "
            "checkpoints signed with your key are used from it",
            path,
        )


class AtomicCheckpointer(processor.CheckpointerABC):
    """One file per finished chunk under ``DIR/<key>/<dataset>/<file uuid>/A-B.pkl`` (the
    key: :func:`checkpoint_key`; the dataset escaped by :func:`path_component`), written
    atomically, with a signed header (:func:`seal`). A chunk loaded from it counts in the
    output's ``checkpoint.resumed``; a skipped chunk is never saved, so a later run tries
    it again. ``DIR`` is made with mode 0700. ``key``: the signing key (default
    :func:`user_key`), which travels with the checkpointer to the workers.
    """

    def __init__(self, directory: str | Path, key: Any = None) -> None:
        self.directory = Path(directory)
        try:
            private_folder(self.directory)
        except OSError as err:
            raise CheckpointError(
                f"--checkpoint {self.directory}: cannot write ({err.strerror or err})"
            ) from err
        self.key = key if key is not None else user_key()

    def _path(self, metadata: Any, processor_instance: Any) -> Path:
        return (
            self.directory
            / checkpoint_key(processor_instance, dict(metadata))
            / path_component(str(metadata["dataset"]))
            / _uuid_text(metadata["fileuuid"])
            / f"{int(metadata['entrystart'])}-{int(metadata['entrystop'])}.pkl"
        )

    def load(self, metadata: Any, processor_instance: Any) -> Any:
        import cloudpickle

        path = self._path(metadata, processor_instance)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("ignoring unreadable checkpoint %s: %s", path, err)
            return None
        fingerprint = chunk_fingerprint(processor_instance, dict(metadata))
        payload, problem = unseal(self.key, fingerprint, blob)
        if payload is None:
            log.warning("ignoring checkpoint %s: %s; computing the chunk again", path, problem)
            return None
        try:
            out = cloudpickle.loads(payload)
        except Exception as err:  # signed but unreadable: recomputed, not trusted
            log.warning("ignoring unreadable checkpoint %s: %s", path, err)
            return None
        if isinstance(out, dict) and isinstance(out.get("out"), dict):
            out["out"]["checkpoint"] = {"resumed": 1}
        return out

    def save(self, output: Any, metadata: Any, processor_instance: Any) -> None:
        import cloudpickle

        if isinstance(output, dict) and output.get("out", {}).get("skipped"):
            return  # never resume past a chunk that failed: a later run tries it again
        path = self._path(metadata, processor_instance)
        fingerprint = chunk_fingerprint(processor_instance, dict(metadata))
        blob = seal(self.key, fingerprint, cloudpickle.dumps(output))
        try:
            if not self.directory.is_dir():  # on a worker, the folder may not exist yet
                private_folder(self.directory)
            write_bytes(path, blob)
        except OSError as err:  # the run's output side: stop the run, blame no input file
            raise CheckpointError(
                f"--checkpoint {self.directory}: cannot write {path.relative_to(self.directory)} "
                f"({err.strerror or err})"
            ) from err
