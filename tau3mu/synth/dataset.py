"""Generate a whole synthetic dataset: files in parallel, and the datasets JSON beside them."""

from __future__ import annotations

import ctypes
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tau3mu.eras import period_of, year_of
from tau3mu.layouts import LAYOUTS
from tau3mu.synth.physics import simulate
from tau3mu.synth.tuning import Tuning

#: skimmed events per fb^-1 that give the yields of docs/physics.md, "Synthetic data", after the full selection
#: (per 4.8 fb^-1: ~5.0k Ds+, ~1.75k D+ and ~61k background best candidates in
#: [1.65, 2.01], the background falling from ~1230 to ~780 per bin), measured with this
#: generator's default :class:`Tuning`; about 8 % of the events pass the selection
EVENTS_PER_INVERSE_FB = 180_000
#: the dataset's run number per era, so files of different eras do not collide
RUN_NUMBERS = {"2016": 275000, "2017": 297050, "2018": 315252, "2022": 355100, "2023": 367100}


@dataclass(frozen=True)
class FileJob:
    path: str
    layout: Literal["run2", "run3"]
    seed: int
    index: int
    n_events: int
    era: str
    mc: bool
    compression: str
    compression_level: int
    first_event: int
    #: the normalisation's truth (tau3mu.synth.truth): share of signal from b hadrons
    #: (None: no origin or flight distance drawn), the data's efficiency ratio to
    #: simulation (None: data as simulated), the muon scale-factor file it applies
    f_b: float | None = None
    efficiency_ratio: float | None = None
    muon_sf: str | None = None


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the kernel.

    By default arrays above 32 MB are mmap'd and unmapped when freed, so each file's
    arrays fault in fresh pages that the kernel must zero first: on the reference machine
    a visible share (~10-25 %) of a file's CPU time. Called in the generator's own
    processes only (``tau3mu generate``, the pool workers), not in a library caller's.
    Returns whether the setting was applied (glibc on Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


#: layouts whose one-time setup this process has done
_SET_UP: set[str] = set()


def _set_up(layout: str) -> float:
    """Once per process and layout: load the compiled kernels (and ROOT); CPU seconds."""
    if layout in _SET_UP:
        return 0.0
    tic = time.process_time()
    events = simulate(0, 0, 16)
    if layout == "run2":
        from tau3mu.synth.run2 import load_root

        load_root()
    else:
        import uproot.writing  # noqa: F401

        from tau3mu.synth.run3 import codec, run3_branches

        run3_branches(events)
        codec("zlib", 1)  # ISA-L
    _SET_UP.add(layout)
    return time.process_time() - tic


def _write_one(job: FileJob) -> dict[str, Any]:
    """Simulate and write one file; CPU seconds (this process) of each part.

    ``setup_s``: the process's one-time setup (numba loading the compiled kernels, ROOT's
    declarations), non-zero for the first file a process writes, kept apart from the
    per-event cost.
    """
    setup = _set_up(job.layout)
    tic = time.process_time()
    events = simulate(
        job.seed,
        job.index,
        job.n_events,
        mc=job.mc,
        run_number=RUN_NUMBERS.get(str(year_of(job.era)), 300000),
        first_event=job.first_event,
    )
    events = _with_truth(events, job)
    simulated = time.process_time()
    if job.layout == "run2":
        from tau3mu.synth.run2 import write_run2

        write_run2(
            job.path,
            events,
            seed=job.seed * 1_000_003 + job.index,
            era=job.era,
            compression=job.compression,
            compression_level=job.compression_level,
            mc=job.mc,
        )
    else:
        from tau3mu.synth.run3 import write_run3

        write_run3(
            job.path,
            events,
            compression=job.compression,
            compression_level=job.compression_level,
            mc=job.mc,
            seed=job.seed * 1_000_003 + job.index,
        )
    done = time.process_time()
    return {
        "path": job.path,
        "events": len(events),
        "bytes": os.path.getsize(job.path),
        "simulate_s": simulated - tic,
        "write_s": done - simulated,
        "setup_s": setup,
        "raw_events": events.raw_events,
        "kept_events": len(events),
    }


def _with_truth(events: Any, job: FileJob) -> Any:
    """The simulated events with origin and flight distance (``f_b``) and, for data, the
    efficiency ratio applied (:mod:`tau3mu.synth.truth`)."""
    from tau3mu.synth.truth import add_origin_and_flight, thin_signal

    if job.f_b is not None:
        events = add_origin_and_flight(events, seed=job.seed, file_index=job.index, f_b=job.f_b)
    if job.efficiency_ratio is not None and not job.mc:
        events = thin_signal(
            events,
            seed=job.seed,
            file_index=job.index,
            efficiency_ratio=job.efficiency_ratio,
            scale_factors=_scale_factors(job.muon_sf),
        )
    return events


def _scale_factors(path: str | None) -> Any:
    from tau3mu.corrections import MuonScaleFactors

    return MuonScaleFactors(path) if path is not None else None


def _merge_json(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` into the JSON object of ``path``, keeping its other keys."""
    merged = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            merged = {}
    merged.update(content)
    path.write_text(json.dumps(merged, indent=2) + "\n")


def _truth(
    results: list[dict[str, Any]],
    kind: str,
    era: str,
    lumi: float,
    f_b: float | None,
    efficiency_ratio: float | None,
    muon_sf: str | None,
) -> dict[str, Any]:
    """What a dataset was generated with: the truth its normalisation closes against."""
    from tau3mu.synth.truth import simulation_xsec_pb

    truth: dict[str, Any] = {
        "type": kind,
        "era": era,
        "lumi": lumi,
        "f_b": f_b,
        "efficiency_ratio": efficiency_ratio if kind == "data" else None,
        "muon_sf": muon_sf,
        "events": sum(r["kept_events"] for r in results),
        "raw_events": sum(r["raw_events"] for r in results),
    }
    if kind == "mc":
        truth["ngen"] = truth["raw_events"]
        truth["xsec"] = simulation_xsec_pb(EVENTS_PER_INVERSE_FB, _scale_factors(muon_sf))
    return truth


def generate_dataset(
    outdir: str | Path,
    *,
    layout: Literal["run2", "run3"] = "run3",
    files: int = 1,
    events_per_file: int = 10_000,
    seed: int = 1,
    lumi: float | None = None,
    era: str | None = None,
    mc: bool = False,
    compression: str = "zlib",
    compression_level: int = 1,
    jobs: int = 1,
    name: str | None = None,
    f_b: float | None = None,
    efficiency_ratio: float | None = None,
    muon_sf: str | None = None,
) -> dict[str, Any]:
    """Write ``files`` ntuples and ``datasets.json``; return the datasets JSON content.

    With ``lumi`` (fb^-1) the number of events is set to give the yields of docs/physics.md, "Synthetic data", for
    that luminosity, spread over ``files`` files. File ``k`` depends only on
    ``(seed, k)``: the same dataset is produced with any ``jobs``.

    Simulation gets ``xsec`` and ``ngen`` (raw events) in datasets.json; ``f_b``,
    ``efficiency_ratio`` and ``muon_sf`` are the normalisation's truth
    (:mod:`tau3mu.synth.truth`), written to ``truth.json`` beside datasets.json.
    """
    era = _checked_era(layout, era, files)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    events_per_file, lumi = _events_and_lumi(files, events_per_file, lumi)
    kind = "mc" if mc else "data"
    name = name or f"{'DsPhiPi_MC' if mc else 'DoubleMuonLowMass'}_{era}_{layout}_synth"
    jobs_list = [
        FileJob(
            path=str(outdir / f"{name}_{k:04d}.root"),
            layout=layout,
            seed=seed,
            index=k,
            n_events=events_per_file,
            era=era,
            mc=mc,
            compression=compression,
            compression_level=compression_level,
            first_event=1 + k * events_per_file,
            f_b=f_b,
            efficiency_ratio=efficiency_ratio,
            muon_sf=muon_sf,
        )
        for k in range(files)
    ]
    tic = time.perf_counter()
    results = _run_jobs(jobs_list, jobs)
    wall = time.perf_counter() - tic
    truth = _truth(results, kind, era, lumi, f_b, efficiency_ratio, muon_sf)
    entry = {
        "rootpath": str(outdir) + "/",
        "files": " ".join(Path(r["path"]).name for r in results),
        "treename": LAYOUTS[layout].tree,
        "era": era,
        "lumi": lumi,
        "type": kind,
    }
    if mc:
        # simulation is normalised to the luminosity of the data of its era: a "lumi" of
        # its own would name a target luminosity instead (tau3mu.weights)
        del entry["lumi"]
        entry |= {"xsec": truth["xsec"], "ngen": truth["ngen"]}
    datasets_path = outdir / "datasets.json"
    _merge_json(datasets_path, {name: entry})
    _merge_json(outdir / "truth.json", {name: truth})
    return {
        "datasets": {name: entry},
        "datasets_json": str(datasets_path),
        **_summary(results, wall),
    }


def _checked_era(layout: str, era: str | None, files: int) -> str:
    """The era of the dataset (the layout's default year when None); ValueError for an
    unknown layout, an era of the other run period, or no file."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use run2 or run3")
    era = era or ("2017" if layout == "run2" else "2022")
    if period_of(era) != layout:
        raise ValueError(f"era {era!r} is not a {layout} era (2016-2018: run2, 2022 on: run3)")
    if files < 1:
        raise ValueError("need at least one file")
    return era


def _events_and_lumi(files: int, events_per_file: int, lumi: float | None) -> tuple[int, float]:
    """(events per file, luminosity): ``lumi`` sets the events when given, else the events
    set it (:data:`EVENTS_PER_INVERSE_FB`); ValueError beyond 2^32 events."""
    if (files * events_per_file if lumi is None else lumi * EVENTS_PER_INVERSE_FB) >= 2**32:
        raise ValueError("more than 2^32 events: Run 2 event numbers are unsigned int")
    if lumi is not None:
        return math.ceil(lumi * EVENTS_PER_INVERSE_FB / files), lumi
    return events_per_file, files * events_per_file / EVENTS_PER_INVERSE_FB


def _run_jobs(jobs_list: list[FileJob], jobs: int) -> list[dict[str, Any]]:
    """Each file's :func:`_write_one` result, in ``jobs`` processes when more than one."""
    if jobs > 1 and len(jobs_list) > 1:
        workers = min(jobs, len(jobs_list))
        with ProcessPoolExecutor(max_workers=workers, initializer=keep_freed_memory) as pool:
            return list(pool.map(_write_one, jobs_list))
    return [_write_one(job) for job in jobs_list]


def _summary(results: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """Files, events, bytes and the speed of writing them."""
    total_events = sum(r["events"] for r in results)
    total_bytes = sum(r["bytes"] for r in results)
    cpu = sum(r["simulate_s"] + r["write_s"] for r in results)
    return {
        "files": [r["path"] for r in results],
        "events": total_events,
        "bytes": total_bytes,
        "wall_s": wall,
        "events_per_s_per_core": total_events / cpu if cpu else float("nan"),
        "mb_per_s_per_core": total_bytes / 1e6 / cpu if cpu else float("nan"),
        "bytes_per_event": total_bytes / total_events if total_events else float("nan"),
        "simulate_s": sum(r["simulate_s"] for r in results),
        "write_s": sum(r["write_s"] for r in results),
        "setup_s": sum(r["setup_s"] for r in results),
    }


__all__ = ["EVENTS_PER_INVERSE_FB", "Tuning", "generate_dataset"]
