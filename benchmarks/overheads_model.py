"""A model of ``tau3mu run``'s wall time on W Dask workers, from measured terms.

The terms are measured by ``bench_overheads.py`` on one machine; this module is the
model alone (pure functions, no I/O), so that its behaviour can be tested and the
documentation rendered from the saved terms. For a workload of ``files`` files of
``events_per_file`` events, cut into coffea's chunks (``round(events_per_file /
chunksize)`` equal chunks per file, at least one; one Dask task each; files smaller than
a chunk grouped as :mod:`tau3mu.filegroups` groups them, ``Workload.tasks_on``), on
``W`` workers of one thread:

    T(W) = start + data + merge + transfer + write

    start    = client_start + cluster_start + warmup + cluster_close
                                                               (workers start in parallel)
    data     = max(compute, scheduler, io)                     (the dominating term)
    compute  = ceil(tasks / W) * task_s + opens * per_file_s / W
    task_s   = chunk_fixed_s + events / tasks * (s_per_event + bytes_read_per_event / xrootd_rate)
               + task_overhead_s
    opens    = files * min(chunks_per_file, W)                 (each worker opens a file)
    scheduler= (tasks + reduce_tasks) * scheduler_s_per_task   (one scheduler, serial)
    io       = events * bytes_read_per_event / min(W * xrootd_rate, site_rate)
    merge    = sum over the depth of coffea's tree reduction (fan-in 20) of one
               reduce task: items * merge_s_per_item + bytes * merge_s_per_byte
    transfer = final output bytes / client_link_rate
    write    = events * write_s_per_event                      (the client writes outputs)

Local files (the check points) read at the rate measured into ``s_per_event``: the
XRootD terms are left out (``remote=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHEP_BYTES",
    "PROJECTED_WORKERS",
    "SMALL_FILE_EVENTS",
    "TREE_REDUCTION",
    "Assumptions",
    "Prediction",
    "Terms",
    "Workload",
    "chep_workloads",
    "chunk_costs",
    "model_terms",
    "phases",
    "predict",
    "projection",
    "scheduler_bound_workers",
    "term_rows",
]

#: coffea's ``DaskExecutor.treereduction``: outputs merged 20 at a time
TREE_REDUCTION = 20


@dataclass(frozen=True)
class Terms:
    """Measured costs, in seconds and bytes (see ``bench_overheads.py``)."""

    client_start_s: float  # interpreter start and the imports of tau3mu run's process
    cluster_start_s: float  # LocalCluster and Client up, workers connected
    cluster_close_s: float  # the client and its cluster closed at the end
    warmup_s: float  # a worker's first chunk over a warm one's: imports, numba cache, opens
    s_per_event: float  # a chunk's cost per event on a warm worker (local reading + processing)
    chunk_fixed_s: float  # a chunk's cost whatever its events (NanoEvents, selection set-up)
    task_overhead_s: float  # a Dask task beyond its compute: round trip, (de)serialisation
    scheduler_s_per_task: float  # 1 / the scheduler's throughput of empty tasks
    per_file_s: float  # open, metadata, inspection of one file, beyond its chunk's fixed cost
    output_fixed_bytes: float  # a chunk's compressed output without events (histograms)
    output_bytes_per_event: float  # the output's growth per input event (the snapshot)
    merge_s_per_item: float  # merging one more output of histograms into a reduce task
    merge_s_per_byte: float  # merging a compressed output byte (decompress, concat, compress)
    write_s_per_event: float  # the client writing histograms and snapshot, per input event
    bytes_read_per_event: float  # compressed bytes of the branches the analysis reads


@dataclass(frozen=True)
class Assumptions:
    """What is not measured here: named, stated in docs/benchmarks.md."""

    xrootd_MB_per_s_per_worker: float = 100.0  # one worker reading over XRootD
    site_GB_per_s: float = 10.0  # the storage's aggregate bandwidth to all workers
    client_link_MB_per_s: float = 1000.0  # the scheduler's and client's network


@dataclass(frozen=True)
class Workload:
    """``files`` files of ``events_per_file`` events, cut into chunks of ``chunksize``;
    with ``group_files`` above 1, files smaller than a chunk run up to that many to a
    task, as :mod:`tau3mu.filegroups` groups them (:meth:`tasks_on`)."""

    files: int
    events_per_file: int
    chunksize: int
    group_files: int = 1

    def files_per_task(self, workers: int) -> int:
        """Files a task holds on ``workers`` workers: 1 for files of a chunk or more;
        else as many as fit in a chunk, at most ``group_files``, and few enough that
        every worker gets two tasks (:func:`tau3mu.filegroups.files_per_group`)."""
        from tau3mu.filegroups import files_per_group

        if self.group_files <= 1 or self.events_per_file >= self.chunksize:
            return 1
        fit = self.chunksize // self.events_per_file
        return max(1, min(self.group_files, fit, files_per_group(self.files, workers)))

    def tasks_on(self, workers: int) -> int:
        """The tasks on ``workers`` workers (:attr:`tasks` without groups)."""
        return math.ceil(self.tasks / self.files_per_task(workers))

    @property
    def events(self) -> int:
        return self.files * self.events_per_file

    @property
    def chunks_per_file(self) -> int:
        return max(1, round(self.events_per_file / self.chunksize))

    @property
    def tasks(self) -> int:
        return self.files * self.chunks_per_file


@dataclass(frozen=True)
class Prediction:
    """The model's wall time and its terms (seconds)."""

    workers: int
    wall_s: float
    start_s: float  # the client's and the cluster's start, the workers' warm-up, the close
    compute_s: float
    scheduler_s: float
    io_s: float
    merge_s: float
    transfer_s: float
    write_s: float
    reduce_tasks: int
    depth: int
    tasks: int

    @property
    def data_s(self) -> float:
        return max(self.compute_s, self.scheduler_s, self.io_s)

    @property
    def dominant(self) -> str:
        """The term that sets the data phase: ``compute``, ``scheduler`` or ``I/O``."""
        terms = {"compute": self.compute_s, "scheduler": self.scheduler_s, "I/O": self.io_s}
        return max(terms, key=lambda k: terms[k])

    @property
    def largest(self) -> str:
        """The largest term of the whole wall: ``start``, the data phase's dominant term,
        ``merge`` or ``transfer + write``."""
        terms = {
            "start": self.start_s,
            self.dominant: self.data_s,
            "merge": self.merge_s,
            "transfer + write": self.transfer_s + self.write_s,
        }
        return max(terms, key=lambda k: terms[k])


def reduce_tree(tasks: int, fan_in: int = TREE_REDUCTION) -> list[int]:
    """Items merged by one reduce task at each level of coffea's tree reduction of
    ``tasks`` outputs (the largest at that level), from the first level to the last."""
    levels, n = [], tasks
    while n > 1:
        levels.append(min(fan_in, n))
        n = math.ceil(n / fan_in)
    return levels


def merge_seconds(terms: Terms, workload: Workload, tasks: int) -> tuple[float, int]:
    """Seconds of the reduce tasks on the critical path after the last of ``tasks``
    chunks, and the number of reduce tasks in all."""
    levels = reduce_tree(tasks)
    total_bytes = workload.events * terms.output_bytes_per_event
    seconds, merged, reduce_tasks, n = 0.0, 1, 0, tasks
    for items in levels:
        merged *= items  # chunks behind one reduce task's output at this level
        share = min(1.0, merged / tasks)
        size = share * total_bytes + items * terms.output_fixed_bytes
        seconds += items * terms.merge_s_per_item + size * terms.merge_s_per_byte
        n = math.ceil(n / TREE_REDUCTION)
        reduce_tasks += n
    return seconds, reduce_tasks


def predict(
    terms: Terms,
    workload: Workload,
    workers: int,
    assumptions: Assumptions | None = None,
    *,
    remote: bool = True,
) -> Prediction:
    """The model's wall time of ``workload`` on ``workers`` workers (see the module's
    docstring). ``remote``: the files are read over XRootD at ``assumptions``' rates;
    else from local disk, as measured. Raises ValueError for fewer than one worker."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    assumed = assumptions or Assumptions()
    xrootd_rate = assumed.xrootd_MB_per_s_per_worker * 1e6
    read_s_per_event = terms.bytes_read_per_event / xrootd_rate if remote else 0.0
    tasks = workload.tasks_on(workers)
    task_s = workload.events / tasks * (terms.s_per_event + read_s_per_event)
    task_s += terms.chunk_fixed_s + terms.task_overhead_s
    opens = workload.files * min(workload.chunks_per_file, workers)
    compute = math.ceil(tasks / workers) * task_s + opens * terms.per_file_s / workers
    merge, reduce_tasks = merge_seconds(terms, workload, tasks)
    scheduler = (tasks + reduce_tasks) * terms.scheduler_s_per_task
    io = 0.0
    if remote:
        rate = min(workers * xrootd_rate, assumed.site_GB_per_s * 1e9)
        io = workload.events * terms.bytes_read_per_event / rate
    final_bytes = terms.output_fixed_bytes + workload.events * terms.output_bytes_per_event
    transfer = final_bytes / (assumed.client_link_MB_per_s * 1e6)
    write = workload.events * terms.write_s_per_event
    start = terms.client_start_s + terms.cluster_start_s + terms.warmup_s
    start += terms.cluster_close_s
    wall = start + max(compute, scheduler, io) + merge + transfer + write
    return Prediction(
        workers=workers,
        wall_s=wall,
        start_s=start,
        compute_s=compute,
        scheduler_s=scheduler,
        io_s=io,
        merge_s=merge,
        transfer_s=transfer,
        write_s=write,
        reduce_tasks=reduce_tasks,
        depth=len(reduce_tree(tasks)),
        tasks=tasks,
    )


def phases(terms: Terms, prediction: Prediction) -> dict[str, float]:
    """The prediction split as a fresh ``tau3mu run`` reports its time: the process
    before the analysis, the cluster's start and close (with the inspection), the
    processing (first chunk to merged output) and the writing of the outputs."""
    return {
        "process start": terms.client_start_s,
        "cluster and inspection": terms.cluster_start_s + terms.cluster_close_s,
        "processing": terms.warmup_s
        + prediction.data_s
        + prediction.merge_s
        + prediction.transfer_s,
        "writing": prediction.write_s,
    }


def scheduler_bound_workers(
    terms: Terms, workload: Workload, assumptions: Assumptions | None = None, *, remote: bool = True
) -> int | None:
    """The fewest workers (up to 2**20) at which the scheduler's throughput, not the
    workers' compute, sets the data phase; None if it never does."""
    low, high = 1, 2**20
    if predict(terms, workload, high, assumptions, remote=remote).dominant != "scheduler":
        return None
    while low < high:
        middle = (low + high) // 2
        bound = predict(terms, workload, middle, assumptions, remote=remote).dominant
        if bound == "scheduler":
            high = middle
        else:
            low = middle + 1
    return low


# -- the terms of a saved measurement, the CHEP workloads -------------------------------
#: the CHEP stress test: about 100 GiB of Run 3 NanoAOD
CHEP_BYTES = 100 * 2**30
#: events in one of the original input.json's small files ("a few thousand"): assumed
SMALL_FILE_EVENTS = 3000
PROJECTED_WORKERS = (16, 64, 256)


def chunk_costs(rates: dict[str, dict[str, Any]], events: int) -> tuple[float, float]:
    """A chunk's fixed seconds and seconds per event, from the in-process walls of the
    same events at two chunk sizes: ``wall = chunks * fixed + events * per_event``.
    Raises ValueError, naming the chunk sizes, when both gave the same number of chunks."""
    (size_a, a), (size_b, b) = sorted(rates.items(), key=lambda item: item[1]["chunks"])
    if a["chunks"] == b["chunks"]:
        raise ValueError(
            f"chunk sizes {size_a} and {size_b} both give {a['chunks']} chunks: "
            "a chunk's fixed cost needs two different chunk counts"
        )
    fixed = max(0.0, (b["wall_s"] - a["wall_s"]) / (b["chunks"] - a["chunks"]))
    return fixed, (a["wall_s"] - a["chunks"] * fixed) / events


def model_terms(measured: dict[str, Any], name: str, workers: int) -> Terms:
    """The model's terms for set ``name`` on ``workers`` workers: for 1 or 2, the local
    cluster measured with that many; for more, one worker's start and warm-up (workers
    start in parallel, on their own nodes). The per-file cost is the small-files
    benchmark's, every file inspected: its files run in groups, so it holds no chunk's
    fixed cost. A difference of two walls (warm-up, task overhead) below zero is noise:
    taken as 0."""
    started = (
        measured["cluster"][str(min(workers, 2))] if workers <= 2 else measured["cluster"]["1"]
    )
    data = measured["sets"][name]
    fixed, per_event = chunk_costs(measured["compute"][name], data["events"])
    output = measured["output"][name]
    return Terms(
        client_start_s=measured["client_start_s"],
        cluster_start_s=started["start_s"],
        cluster_close_s=started["close_s"],
        warmup_s=max(0.0, started["warmup_s"]),  # a negative difference is noise
        s_per_event=per_event,
        chunk_fixed_s=fixed,
        task_overhead_s=max(0.0, measured["cluster"]["1"]["task_overhead_s"]),
        scheduler_s_per_task=measured["cluster"]["2"]["s_per_task"],
        per_file_s=measured["per_file"]["per_file_s"],
        output_fixed_bytes=output["output_fixed_bytes"],
        output_bytes_per_event=output["output_bytes_per_event"],
        merge_s_per_item=output["merge_s_per_item"],
        merge_s_per_byte=output["merge_s_per_byte"],
        write_s_per_event=measured["write_s_per_event"][name],
        bytes_read_per_event=data["bytes_read"] / data["events"],
    )


def chep_workloads(measured: dict[str, Any]) -> dict[str, Workload]:
    """100 GiB at the Run 3 set's bytes per event, in 2 GB and 4 GB files or in the
    original input.json's small files, cut at the default chunk size; small files run
    in groups (:data:`tau3mu.filegroups.MAX_GROUP_FILES` at most)."""
    from tau3mu.config import DEFAULT_CHUNKSIZE
    from tau3mu.filegroups import MAX_GROUP_FILES

    run3 = measured["sets"]["run3"]
    events = CHEP_BYTES / (run3["bytes"] / run3["events"])
    workloads = {}
    for label, per_file in (
        ("2 GB files", 2e9 / (run3["bytes"] / run3["events"])),
        ("4 GB files", 4e9 / (run3["bytes"] / run3["events"])),
        (f"small files ({SMALL_FILE_EVENTS:,} events)", SMALL_FILE_EVENTS),
    ):
        files = math.ceil(events / per_file)
        workloads[label] = Workload(
            files, round(events / files), DEFAULT_CHUNKSIZE, group_files=MAX_GROUP_FILES
        )
    return workloads


def projection(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The model on 1, 16, 64 and 256 workers for each CHEP workload, over XRootD."""
    rows = []
    for label, workload in chep_workloads(measured).items():
        terms = model_terms(measured, "run3", max(PROJECTED_WORKERS))
        one = predict(terms, workload, 1)
        bound = scheduler_bound_workers(terms, workload)
        for workers in PROJECTED_WORKERS:
            p = predict(terms, workload, workers)
            rows.append(
                {
                    "files": label,
                    "n_files": workload.files,
                    "tasks": p.tasks,
                    "workers": workers,
                    "wall_s": round(p.wall_s, 1),
                    "dominant": p.dominant,
                    "largest": p.largest,
                    "efficiency": round(one.wall_s / (workers * p.wall_s), 2),
                    "compute_s": round(p.compute_s, 1),
                    "scheduler_s": round(p.scheduler_s, 1),
                    "io_s": round(p.io_s, 1),
                    "merge_s": round(p.merge_s, 2),
                    "start_s": round(p.start_s, 1),
                    "write_s": round(p.write_s, 1),
                    "transfer_s": round(p.transfer_s, 1),
                    "scheduler_binds_from": bound,
                }
            )
    return rows


def term_rows(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The measured terms as a table: term, value, unit, load when measured."""
    rows: list[tuple[str, float, str, Any]] = []

    def add(term: str, value: float, unit: str, load: Any = "") -> None:
        rows.append((term, value, unit, load))

    add("client start (fresh interpreter, tau3mu run's imports)", measured["client_start_s"], "s")
    for name in measured["compute"]:
        for size, rate in measured["compute"][name].items():
            add(f"{name}: chunk compute, {int(size):,}-event chunks", rate["us_per_event"],
                "µs/event", rate["load"])  # fmt: skip
        out = measured["output"][name]
        add(f"{name}: a chunk's shipped output ({out['chunk_events']:,} events)",
            out["output_bytes"] / 1e3, "kB", out["load"])  # fmt: skip
        add(f"{name}: the same without the snapshot", out["output_fixed_bytes"] / 1e3, "kB")
        add(f"{name}: reduce of {TREE_REDUCTION} outputs", out["merge_20_s"], "s", out["load"])
        add(f"{name}: client writes outputs", 1e6 * measured["write_s_per_event"][name], "µs/event")
    for row in (measured["cluster"]["1"], measured["cluster"]["2"]):
        w, load = row["workers"], row["load"]
        add(f"cluster start, {w} worker(s)", row["start_s"], "s", load)
        add(f"cluster close, {w} worker(s)", row["close_s"], "s", load)
        add(f"worker imports ({w} worker(s), client.run)", row["worker_imports_s"], "s", load)
        add(f"worker warm-up ({w}): imports + cold run over warm", row["warmup_s"], "s", load)
        add(f"Dask task overhead ({w}), {row['small_tasks']} tasks",
            1e3 * row["task_overhead_s"], "ms/task", load)  # fmt: skip
    two = measured["cluster"]["2"]
    add(f"scheduler: {two['empty_tasks']} empty tasks, 2 workers", two["tasks_per_s"], "tasks/s",
        two["load"])  # fmt: skip
    add("scheduler: one round trip", 1e3 * two["round_trip_s"], "ms", two["load"])
    add("per-file cost (bench_small_files, Run 2)", 1e3 * measured["per_file"]["per_file_s"],
        "ms/file")  # fmt: skip
    return [{"term": t, "value": round(v, 3), "unit": u, "load": at} for t, v, u, at in rows]
