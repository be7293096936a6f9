"""When a dask-awkward graph fails: which of its chunks fail on their own (each run
eagerly, on the workers when there are some), reported by file and entries, and the
graph's chunks without them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tau3mu.chunks import ChunkError, chunk_message, error_cause, skipped_chunk
from tau3mu.reading import prepare_process

__all__ = ["chunks_to_skip", "failing_chunks", "probe_chunk", "without_chunks"]

log = logging.getLogger(__name__)


def probe_chunk(
    processor_instance: Any,
    schema: Any,
    dataset: str,
    metadata: dict[str, Any],
    path: str,
    tree: str,
    start: int,
    stop: int,
    uproot_options: dict[str, Any],
) -> str | None:
    """Run one chunk eagerly, reading with ``uproot_options``: None if it works, else
    its error (``Type: message``)."""
    from coffea.nanoevents import NanoEventsFactory

    prepare_process()
    meta = {**metadata, "dataset": dataset, "filename": path, "entrystart": start}
    meta["entrystop"] = stop
    try:
        events = NanoEventsFactory.from_root(
            {path: tree},
            schemaclass=schema,
            entry_start=start,
            entry_stop=stop,
            metadata=meta,
            mode="virtual",
            uproot_options=uproot_options,
        ).events()
        processor_instance.process(events)
    except Exception as err:
        return error_cause(err)
    return None


def failing_chunks(
    available: dict[str, Any],
    processor_instance: Any,
    schema: Any,
    client: Any,
    options_of: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every chunk of ``available`` that fails when run on its own (on the workers when
    there is a client), each file read with ``options_of(path)``: what a failed graph
    does not tell, its file and entries (:func:`tau3mu.chunks.skipped_chunk`)."""

    jobs = [
        (
            dataset,
            spec.get("metadata") or {},
            path,
            info["object_path"],
            start,
            stop,
            options_of(path),
        )
        for dataset, spec in available.items()
        for path, info in spec["files"].items()
        for start, stop in info["steps"]
        if stop > start
    ]
    if client is not None:
        futures = [
            client.submit(probe_chunk, processor_instance, schema, *job, pure=False) for job in jobs
        ]
        errors = client.gather(futures)
    else:
        errors = [probe_chunk(processor_instance, schema, *job) for job in jobs]
    return [
        skipped_chunk(dataset, path, start, stop, error)
        for (dataset, _, path, _, start, stop, _), error in zip(jobs, errors, strict=True)
        if error is not None
    ]


def without_chunks(available: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """``available`` less the steps of ``chunks`` (and files or datasets left empty)."""
    drop = {(c["dataset"], c["file"], tuple(c["entries"])) for c in chunks}
    out: dict[str, Any] = {}
    for dataset, spec in available.items():
        files = {}
        for path, info in spec["files"].items():
            steps = [s for s in info["steps"] if (dataset, path, tuple(s)) not in drop]
            if steps:
                files[path] = {**info, "steps": steps}
        if files:
            out[dataset] = {**spec, "files": files}
    return out


def chunks_to_skip(
    failure: Exception,
    available: dict[str, Any],
    processor_instance: Any,
    schema: Any,
    client: Any,
    skip_bad_files: bool,
    options_of: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """After the graph failed with ``failure``: its failing chunks, found by running each
    on its own (:func:`failing_chunks`), to skip (each logged).

    Raises ``failure`` as it came when no chunk fails alone (a lost cluster, ...), and
    :class:`~tau3mu.chunks.ChunkError` naming the first failing chunk unless
    ``skip_bad_files``.
    """

    failing = failing_chunks(available, processor_instance, schema, client, options_of)
    if not failing:
        raise failure
    message = chunk_message(failing[0])
    if len(failing) > 1:
        message += f" (and {len(failing) - 1} more failing chunk(s))"
    if not skip_bad_files:
        raise ChunkError(message) from failure
    for chunk in failing:
        log.warning("skipping chunk %s", chunk_message(chunk))
    return failing
