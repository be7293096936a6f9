"""What a physicist sees: figure labels, sqrt(s) per era, fixed parameters, a quiet terminal,
progress that suits where it goes, and help on every option."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from spectra import AXIS, EDGES, TRUTH

from tau3mu import fit
from tau3mu.cli import build_parser, main
from tau3mu.eras import period_of, sqrt_s_tev, year_of


@pytest.fixture(scope="module")
def toy():
    counts = fit.toy_counts(np.random.default_rng(4), EDGES, TRUTH)
    return counts, fit.fit_counts_iminuit(counts, EDGES)


# -- help ------------------------------------------------------------------------------
def _options_without_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _options_without_help(sub, f"{path} {name}")
        elif not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    assert _options_without_help(parser, "tau3mu") == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in commands.choices.values():  # the walk reached every subcommand's options
        assert any(a.option_strings == ["-v", "--verbose"] for a in sub._actions)
    assert {"--label", "--no-progress"} <= set(commands.choices["run"]._option_string_actions)
    assert "--label" in commands.choices["fit"]._option_string_actions
    assert "--label" in commands.choices["demo"]._option_string_actions


# -- eras ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("era", "year", "period", "tev"),
    [
        ("2016", 2016, "run2", 13.0),
        ("2017B", 2017, "run2", 13.0),
        ("2018D", 2018, "run2", 13.0),
        ("2022F", 2022, "run3", 13.6),
        ("2023", 2023, "run3", 13.6),
        ("2024C", 2024, "run3", 13.6),
    ],
)
def test_era_decides_year_period_and_energy(era, year, period, tev):
    assert year_of(era) == year
    assert period_of(era) == period
    assert sqrt_s_tev(era) == tev


@pytest.mark.parametrize("era", ["2012", "2019", "2021", "B2017", "17", ""])
def test_era_without_a_run_period_is_an_error(era):
    with pytest.raises(ValueError, match="era"):
        sqrt_s_tev(era)


# -- figures ---------------------------------------------------------------------------
def _texts(fig) -> list[str]:
    import matplotlib.text

    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


@pytest.mark.parametrize(
    ("options", "left", "right"),
    [
        ({"era": "2022F"}, "Private work", "4.8 $\\mathrm{fb^{-1}}$ (13.6 TeV)"),
        ({"era": "2017", "simulation": True}, "Simulation Private work", "(13 TeV)"),
        ({"era": "2018D", "label": "Preliminary"}, "Preliminary", "(13 TeV)"),
        ({"era": None}, "Private work", "4.8 $\\mathrm{fb^{-1}}$"),
    ],
)
def test_figure_label_and_energy(toy, options, left, right):
    from tau3mu.fitplot import draw_fit

    counts, result = toy
    texts = _texts(draw_fit(counts, EDGES, result, lumi=4.8, **options))
    assert "CMS" in texts
    assert left in texts
    assert any(t.endswith(right) for t in texts), texts
    if "label" not in options:
        assert not any("Preliminary" in t for t in texts)
    if options["era"] is None:  # no era: no energy claimed
        assert not any("TeV" in t for t in texts)
    assert ("Simulation" in texts) == bool(options.get("simulation"))  # the points' legend


def test_fixed_parameters_are_shown_as_fixed(toy, tmp_path):
    from tau3mu.fitplot import draw_fit

    counts, result = toy
    assert set(result.fixed) >= {"n_cb_ds", "n_cb_dplus"}
    table = result.table()
    assert "nan" not in table
    for name in result.params:
        (line,) = [x for x in table.splitlines() if x.split()[:1] == [name]]
        assert line.endswith("(fixed)") == (name in result.fixed), line
    assert result.value_text("n_cb_ds") == "3 (fixed)"
    assert "+-" in result.value_text("n_ds")
    # fit.json: a flag per parameter, read back as written
    result.to_json(tmp_path / "fit.json")
    params = json.loads((tmp_path / "fit.json").read_text())["params"]
    assert {n for n, p in params.items() if p["fixed"]} == set(result.fixed)
    assert fit.load_result(tmp_path / "fit.json").fixed == result.fixed
    # the figure names each fixed shape parameter with its value
    (line,) = [t for t in _texts(draw_fit(counts, EDGES, result)) if t.startswith("Fixed:")]
    assert line.count("= 3$") == 2


def test_a_held_yield_is_fixed_on_the_figure(toy):
    """A yield the strategy held (an absent peak) reads ``N = 1 (fixed)``, not ``+- nan``;
    so does a result written before the flag existed (no error means fixed)."""
    from tau3mu.fitplot import draw_fit

    counts, result = toy
    old = result.to_dict()
    for p in old["params"].values():
        p.pop("fixed")
    old["params"]["n_dplus"].update(value=1.0, error=None)  # as JSON holds a NaN
    held = fit.FitResult.from_dict(old)
    assert held.is_fixed("n_dplus")
    assert not held.is_fixed("n_ds")
    texts = _texts(draw_fit(counts, EDGES, held))
    (summary,) = [t for t in texts if t.startswith("$N(D_s^+)")]
    assert "$N(D^+) = 1$ (fixed)" in summary
    assert "nan" not in summary


# -- a quiet terminal --------------------------------------------------------------------
def _fit_command(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    counts = fit.toy_counts(np.random.default_rng(7), EDGES, TRUTH)
    import hist

    h = hist.Hist(
        hist.axis.StrCategory(["toy"], name="dataset"),
        hist.axis.Regular(AXIS.bins, AXIS.start, AXIS.stop, name="mass"),
    )
    h[{"dataset": "toy"}] = counts
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "histograms.pkl"
    path.write_bytes(pickle.dumps({"h_mass": h}))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ZFIT_DISABLE_TF_WARNINGS", "TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")
    }
    return subprocess.run(
        [sys.executable, "-m", "tau3mu.cli", "fit", str(path), "--out", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


#: a line of TensorFlow's (absl's) C++ log: ``I0000 00:00:17964.. 1234 port.cc:153] ...``
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]", re.MULTILINE)


@pytest.mark.slow
def test_fit_command_with_zfit_shows_no_library_noise_unless_verbose(tmp_path):
    quiet = _fit_command(tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stderr == ""  # no UserWarning, no TensorFlow log: nothing
    assert "(fixed)" in quiet.stdout
    assert "nan" not in quiet.stdout
    verbose = _fit_command(tmp_path / "verbose", "-v")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert TF_LOG_LINE.search(verbose.stderr), verbose.stderr[-3000:]


def test_quiet_mode_drops_library_warnings_only(recwarn):
    """Within a command, other packages' warnings are dropped, tau3mu's are shown."""
    import warnings

    from tau3mu.credentials import ProxyWarning
    from tau3mu.verbosity import is_own_warning, library_output

    assert is_own_warning(ProxyWarning, "/anywhere.py")
    assert not is_own_warning(UserWarning, np.__file__)
    shown: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        with library_output(verbose=False):
            warnings.warn_explicit("from a library", UserWarning, np.__file__, 1)
            warnings.warn_explicit("ours", ProxyWarning, "/elsewhere.py", 1)
        with library_output(verbose=True):
            warnings.warn_explicit("from a library, verbose", UserWarning, np.__file__, 1)
    assert shown == ["ours", "from a library, verbose"]


# -- progress ----------------------------------------------------------------------------
def test_progress_mode_follows_the_terminal(monkeypatch):
    from tau3mu.progress import progress_mode

    assert progress_mode(False) == "off"
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's own switch: as a terminal
    assert progress_mode(True) == "bar"
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert progress_mode(True) == "lines"


@pytest.mark.parametrize("total", [1, 3, 10, 24, 1000])
def test_decile_progress_prints_at_most_ten_lines(total, capsys):
    from tau3mu.progress import DecileProgress

    with DecileProgress() as bar:
        task = bar.add_task("Processing", total=total, unit="chunk")
        merge = bar.add_task("Merging", total=total, unit="merges")
        for _ in bar.track(range(total), task_id=task):
            bar.advance(merge)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == min(total, 10)
    assert all(line.startswith("Processing: ") for line in lines)  # the merges not shown
    assert lines[-1].startswith(f"Processing: 100% ({total}/{total} chunks")


def _progress_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Processing:")]


@pytest.mark.parametrize(
    "options",
    [
        ["--executor", "iterative"],
        ["--executor", "futures", "--workers", "2"],
        ["--executor", "iterative", "--mode", "dask-awkward"],
    ],
    ids=["iterative", "futures", "dask-awkward"],
)
def test_run_progress_in_a_log_is_a_line_per_tenth(
    options, run3_dataset, tmp_path, capfd, monkeypatch
):
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # as in a log file, whatever runs the tests
    argv = ["run", run3_dataset["datasets_json"], "--out", str(tmp_path), "--no-fit"]
    assert main([*argv, "--chunksize", "500", *options]) == 0
    captured = capfd.readouterr()
    lines = _progress_lines(captured.out)
    assert 1 <= len(lines) <= 10, captured.out
    assert "100%" in lines[-1]
    assert "\r" not in captured.out + captured.err
    assert main([*argv, "--chunksize", "500", *options, "--no-progress"]) == 0
    captured = capfd.readouterr()
    assert _progress_lines(captured.out) == []
    assert "%" not in captured.out.split("Cutflow")[0]  # coffea's bars silenced too
    assert "\r" not in captured.out + captured.err


@pytest.mark.distributed
@pytest.mark.parametrize("mode", ["runner", "dask-awkward"])
def test_progress_on_a_dask_cluster_in_a_log(
    mode, run3_dataset, fileset_of, dask_client, capfd, monkeypatch
):
    from tau3mu.execution import run_dask_awkward, run_runner
    from tau3mu.processors.dsphipi import DsPhiPiProcessor

    fileset = fileset_of(run3_dataset)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    if mode == "runner":
        run_runner(
            fileset,
            DsPhiPiProcessor(),
            executor="dask",
            client=dask_client,
            chunksize=1000,
            progress=True,
        )
    else:
        run_dask_awkward(
            fileset, DsPhiPiProcessor(), client=dask_client, chunksize=1000, progress=True
        )
    captured = capfd.readouterr()
    lines = _progress_lines(captured.out)
    assert 1 <= len(lines) <= 10, captured.out
    assert "100%" in lines[-1]
    assert "\r" not in captured.out
