"""Time of the mass fit: per phase in a fresh process, and a cold ``tau3mu fit`` end to end.

Per phase (results/fit.json): each engine in its own fresh process times its imports
(tau3mu.fit, and zfit with TensorFlow as ``tau3mu fit`` imports them), ``build`` (the
model for the 62-bin h_mass binning), ``compile`` (the first evaluation of the loss,
timed apart by one call), ``first_fit`` (Migrad, Hesse and the rest on a 2017B-like
toy), ``cold`` (their sum) and ``warm`` (the median of ``--warm`` refits of further toys,
the data swapped in place). Engines: ``zfit``, ``zfit+grad`` (TensorFlow's gradient),
``zfit, no XLA``, ``iminuit``, ``zfit before`` (tau3mu/fit.py at ``--before``), each in
``--repeat`` processes interleaved; medians; warm yields compared with iminuit's.

Cold (results/cold_fit.json): the wall time of ``tau3mu fit histograms.pkl`` (one
2017B-like dataset: fit, fit.json, figures) in fresh processes, beside ``python -c
'import zfit'`` (also in a process whose garbage collector is set as the ``tau3mu``
command sets it: the reference of the zfit rows) and the same command of
``--cold-before`` (its tau3mu package unpacked from git), the rows interleaved in each
of ``--rounds`` rounds after one untimed run of each (caches filled); medians, ranges,
and each median less the reference's.

Usage: ``python benchmarks/bench_fit.py [--only phases|cold] [--help]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_worker, save

ROOT_DIR = Path(__file__).resolve().parents[1]
#: the 2017B-like spectrum (2017B, 4.8 fb^-1); the means are the PDG masses
TRUTH = {
    "n_ds": 5000.0,
    "n_dplus": 1800.0,
    "n_bkg": 64500.0,
    "sigma_ds": 0.0115,
    "alpha_ds": 1.8,
    "n_cb_ds": 3.0,
    "sigma_dplus": 0.011,
    "alpha_dplus": 1.8,
    "n_cb_dplus": 3.0,
    "slope": -1.3,
}

WORKER = r"""
import json, statistics, sys, time
tic = time.perf_counter()
config = json.loads(sys.argv[1])
engine = config["engine"]
if engine == "iminuit":
    import iminuit  # noqa: F401
    from tau3mu import fit
elif engine == "zfit before":
    import zfit  # noqa: F401
    import importlib.util
    spec = importlib.util.spec_from_file_location("fit_before", config["before_path"])
    fit = importlib.util.module_from_spec(spec)
    sys.modules["fit_before"] = fit
    spec.loader.exec_module(fit)
    model_for = fit._model_for
else:
    from tau3mu import fit
    from tau3mu.fit import engine_zfit
    engine_zfit.import_zfit()
    engine_zfit.XLA = engine != "zfit, no XLA"
    model_for = engine_zfit.model_for
import numpy as np
import iminuit

t_import = time.perf_counter() - tic

# Migrad and Hesse timed inside the fits, whichever layer calls them
spent = {"migrad": 0.0, "hesse": 0.0}
for name in spent:
    original = getattr(iminuit.Minuit, name)
    def timed(self, *args, _original=original, _name=name, **kwargs):
        t0 = time.perf_counter()
        try:
            return _original(self, *args, **kwargs)
        finally:
            spent[_name] += time.perf_counter() - t0
    setattr(iminuit.Minuit, name, timed)

edges = np.asarray(config["edges"])
toys = [np.asarray(c, dtype=np.float64) for c in config["toys"]]
"""

WORKER += r"""
def toy(i):
    return toys[i]

def run_fit(counts):
    if engine == "iminuit":
        return fit.fit_counts_iminuit(counts, edges)
    if engine == "zfit+grad":
        return fit.fit_counts(counts, edges, gradient=True)
    return fit.fit_counts(counts, edges)

tic = time.perf_counter()
if engine != "iminuit":
    model = model_for(edges)
t_build = time.perf_counter() - tic

first = toy(0)
starts = {n: spec[0] for n, spec in fit.SHAPE_DEFAULTS.items()}
starts.update(fit.start_values(first, edges))
tic = time.perf_counter()
if engine == "iminuit":
    fit.model_cdf(edges, starts, edges[0], edges[-1])
elif not hasattr(model, "fcn"):  # a "zfit before" without the compiled loss
    model.data.update_data(first)
    model.loss.value()
else:
    model.data.update_data(first)
    model.fcn(np.array([starts[n] for n in model.ORDER]))
t_compile = time.perf_counter() - tic

for name in spent:
    spent[name] = 0.0
tic = time.perf_counter()
result = run_fit(first)
t_first = time.perf_counter() - tic
cold = {"import_s": t_import, "build_s": t_build, "compile_s": t_compile,
        "first_fit_s": t_first, "first_migrad_s": spent["migrad"],
        "first_hesse_s": spent["hesse"], "converged": result.converged}
warm, migrad, hesse, yields = [], [], [], []
for i in range(1, config["warm"] + 1):
    counts = toy(i)
    for name in spent:
        spent[name] = 0.0
    tic = time.perf_counter()
    result = run_fit(counts)
    warm.append(time.perf_counter() - tic)
    migrad.append(spent["migrad"])
    hesse.append(spent["hesse"])
    yields.append({n: [result.value(n), result.error(n)] if result.converged else None
                   for n in ("n_ds", "n_dplus", "n_bkg")})
print("RESULT" + json.dumps({**cold, "warm_s": statistics.median(warm),
                             "warm_min_s": min(warm), "warm_max_s": max(warm),
                             "warm_migrad_s": statistics.median(migrad),
                             "warm_hesse_s": statistics.median(hesse), "yields": yields}))
"""


def toys(count: int) -> tuple[list[float], list[list[float]]]:
    """2017B-like toy histograms on the h_mass binning, made here for every engine."""
    import numpy as np

    from tau3mu import fit
    from tau3mu.config import DPLUS_MASS, DS_MASS, MassAxis

    axis = MassAxis()
    edges = np.linspace(axis.start, axis.stop, axis.bins + 1)
    truth = {**TRUTH, "mean_ds": DS_MASS, "mean_dplus": DPLUS_MASS}
    rng = np.random.default_rng(2024)
    return edges.tolist(), [fit.toy_counts(rng, edges, truth).tolist() for _ in range(count)]


def run_engine(engine: str, warm: int, before_path: str | None, data: tuple) -> dict:
    edges, histograms = data
    config = {
        "engine": engine,
        "warm": warm,
        "before_path": before_path,
        "edges": edges,
        "toys": histograms,
    }
    proc = run_worker(WORKER, json.dumps(config), env=dict(os.environ), cwd=ROOT_DIR, timeout=1800)
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    return json.loads(line[len("RESULT") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=9, help="refits for the warm median")
    parser.add_argument(
        "--before", default="e2327d3", help="git revision of tau3mu/fit.py for 'zfit before'"
    )
    parser.add_argument("--no-before", action="store_true", help="skip the 'zfit before' run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="fresh processes per engine, interleaved; the table shows the median of each time",
    )
    parser.add_argument("--engines", nargs="+", help="only these engines (iminuit is always run)")
    parser.add_argument(
        "--cold-before",
        default="95ce04c",
        help="git revision whose 'tau3mu fit' the cold table measures beside this one",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="fresh processes per row of the cold table"
    )
    parser.add_argument(
        "--only", choices=["phases", "cold"], help="only the per-phase table or the cold table"
    )
    args = parser.parse_args()
    if args.only != "cold":
        per_phase(args)
    if args.only != "phases":
        cold(args)


def per_phase(args: argparse.Namespace) -> None:
    """The per-phase table (module docstring), saved as results/fit.json."""
    load_before = [round(x, 2) for x in os.getloadavg()]

    engines = ["zfit", "zfit+grad", "zfit, no XLA", "iminuit"]
    before_path = None
    if not args.no_before:
        source = subprocess.run(
            ["git", "show", f"{args.before}:tau3mu/fit.py"],
            capture_output=True,
            text=True,
            cwd=ROOT_DIR,
            check=True,
        ).stdout
        before_file = Path("/tmp") / f"tau3mu_fit_before_{args.before}.py"
        before_file.write_text(source)
        before_path = str(before_file)
        engines.insert(0, "zfit before")

    if args.engines:
        engines = [e for e in engines if e in args.engines or e == "iminuit"]
    data = toys(args.warm + 1)
    runs: dict[str, list[dict]] = {engine: [] for engine in engines}
    for _ in range(args.repeat):  # interleaved: a load change on the machine hits all
        for engine in engines:
            runs[engine].append(run_engine(engine, args.warm, before_path, data))
            row = {k: v for k, v in runs[engine][-1].items() if k != "yields"}
            print(engine, row, flush=True)
    measured = {}
    for engine, results in runs.items():
        measured[engine] = {
            key: statistics.median(r[key] for r in results)
            for key, value in results[0].items()
            if isinstance(value, float)
        }
        measured[engine]["yields"] = results[0]["yields"]

    reference = measured["iminuit"]["yields"]
    rows = []
    for engine, m in measured.items():
        deviation = 0.0
        for ours, ref in zip(m["yields"], reference, strict=True):
            if ours is None or ref is None:
                deviation = float("nan")
                break
            for name, (value, _) in ours.items():
                deviation = max(deviation, abs(value - ref[name][0]) / ref[name][1])
        row = {"engine": engine}
        for key in ("import_s", "build_s", "compile_s", "first_fit_s"):
            row[key] = round(m[key], 2)
        row["first_migrad_s"] = round(m["first_migrad_s"], 2)
        row["first_hesse_s"] = round(m["first_hesse_s"], 2)
        row["cold_s"] = round(m["import_s"] + m["build_s"] + m["compile_s"] + m["first_fit_s"], 2)
        for key in ("warm_s", "warm_migrad_s", "warm_hesse_s"):
            row[key] = round(m[key], 3)
        row["max_yield_diff_sigma"] = round(deviation, 4)
        rows.append(row)
    meta = {
        "warm_refits": args.warm,
        "repeat": args.repeat,
        "before": None if args.no_before else args.before,
        "bins": 62,
        "toy": "2017B-like (2017B, 4.8 fb^-1): 5000 Ds+, 1800 D+, 64500 background",
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(save("fit", rows, meta))


# -- cold: ``tau3mu fit`` in a fresh process, wall clock, as a user runs it -----------------
#: ``tau3mu fit`` with the loss compiled without XLA
WITHOUT_XLA = (
    "import sys; from tau3mu.fit import engine_zfit; engine_zfit.XLA = False; "
    "from tau3mu.cli import console_main; sys.exit(console_main())"
)
#: the ``tau3mu`` command's entry point (an older revision's ``main`` where it has none)
CLI = "import sys; from tau3mu import cli; sys.exit(getattr(cli, 'console_main', cli.main)())"
#: the reference the zfit rows are compared with: importing zfit in a process whose
#: garbage collector is set as the ``tau3mu`` command sets it (``tau3mu.cli.console_main``)
IMPORT_ZFIT = "python -c 'import zfit', collector set as in tau3mu"
IMPORT_ZFIT_AS_TAU3MU = (
    "import gc; from tau3mu.collector import tune; tune(); import zfit; gc.freeze()"
)


def histograms_pkl(folder: Path) -> Path:
    """A histograms.pkl as ``tau3mu run`` writes it, with one 2017B-like toy dataset."""
    import pickle

    import hist
    import numpy as np

    edges, (counts,) = toys(1)
    h = hist.Hist(
        hist.axis.StrCategory(["toy2017B"], name="dataset"),
        hist.axis.StrCategory(["nominal"], name="systematic"),
        hist.axis.Variable(edges, name="mass"),
        storage=hist.storage.Weight(),
    )
    h.view()["value"][0, 0] = h.view()["variance"][0, 0] = np.asarray(counts)
    path = folder / "histograms.pkl"
    path.write_bytes(pickle.dumps({"h_mass": h}))
    return path


def cold_commands(folder: Path, before: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """{row: (command line, environment)} of the cold table; ``before``'s tau3mu package
    is unpacked in ``folder`` and put first on the path of its rows."""
    import io
    import tarfile

    archive = subprocess.run(
        ["git", "archive", before, "tau3mu"], cwd=ROOT_DIR, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder / "before", filter="data")
    old_flag = (
        "--engine"
        if '"--engine"' in (folder / "before/tau3mu/fit_command.py").read_text()
        else "--fit-engine"
    )
    pkl, out = str(histograms_pkl(folder)), str(folder / "out")
    now = dict(os.environ)
    then = {**now, "PYTHONPATH": str(folder / "before"), "TAU3MU_CACHE_DIR": str(folder / "cache")}
    fit = ["fit", pkl, "--out", out]
    return {
        "python -c 'import zfit'": ([sys.executable, "-c", "import zfit"], now),
        IMPORT_ZFIT: ([sys.executable, "-c", IMPORT_ZFIT_AS_TAU3MU], now),
        "tau3mu fit (zfit)": ([sys.executable, "-c", CLI, *fit], now),
        "tau3mu fit (zfit), loss without XLA": ([sys.executable, "-c", WITHOUT_XLA, *fit], now),
        "tau3mu fit --fit-engine iminuit": (
            [sys.executable, "-c", CLI, *fit, "--fit-engine", "iminuit"],
            now,
        ),
        f"{before}: tau3mu fit (zfit), XLA cache filled": ([sys.executable, "-c", CLI, *fit], then),
        f"{before}: tau3mu fit {old_flag} iminuit": (
            [sys.executable, "-c", CLI, *fit, old_flag, "iminuit"],
            then,
        ),
    }


def _run_timed(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall, CPU user + system) seconds of ``command`` run to its end."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
    wall = time.perf_counter() - tic
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def cold(args: argparse.Namespace) -> None:
    """Wall and CPU time of each cold row, ``--rounds`` fresh processes each, rows
    interleaved within a round; saved as results/cold_fit.json."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench_cold_fit_") as folder:
        commands = cold_commands(Path(folder), args.cold_before)
        for command, env in commands.values():  # untimed: fills the caches (XLA, .pyc)
            subprocess.run(command, env=env, cwd=folder, capture_output=True, check=True)
        walls: dict[str, list[float]] = {row: [] for row in commands}
        cpus: dict[str, list[float]] = {row: [] for row in commands}
        for _ in range(args.rounds):
            for row, (command, env) in commands.items():
                wall, cpu = _run_timed(command, env, folder)
                walls[row].append(wall)
                cpus[row].append(cpu)
                print(row, round(wall, 2), round(cpu, 2), flush=True)
    reference = statistics.median(walls[IMPORT_ZFIT])
    reference_cpu = statistics.median(cpus[IMPORT_ZFIT])
    rows = [
        {
            "command": row,
            "median_s": round(statistics.median(times), 2),
            "min_s": round(min(times), 2),
            "max_s": round(max(times), 2),
            "median_minus_import_zfit_s": round(statistics.median(times) - reference, 2),
            "cpu_median_s": round(statistics.median(cpus[row]), 2),
            "cpu_minus_import_zfit_s": round(statistics.median(cpus[row]) - reference_cpu, 2),
        }
        for row, times in walls.items()
    ]
    meta = {
        "rounds": args.rounds,
        "before": args.cold_before,
        "reference": IMPORT_ZFIT,
        "histogram": "2017B-like toy, 62 bins, in a histograms.pkl; fit, fit.json and figures",
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(save("cold_fit", rows, meta))


if __name__ == "__main__":
    main()
