"""What the libraries under tau3mu may say on the terminal: nothing, unless asked (``-v``).

By default a command shows its own output and its own warnings only: Python warnings
raised from other packages (zfit's note about TensorFlow's warnings, deprecations, ...)
are dropped, and TensorFlow's C++ log is silenced through zfit. With ``-v``/``--verbose``
all of them come through, TensorFlow's log included, and tau3mu's own log shows at the
INFO level. Environment variables set by the user (``ZFIT_DISABLE_TF_WARNINGS``,
``TF_CPP_MIN_LOG_LEVEL``) are left as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: the package's folder: warnings raised from code in it are tau3mu's own
_PACKAGE = Path(__file__).resolve().parent


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """``-v``/``--verbose`` on a command's parser."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the traceback of every error (a mistake in the options included), the "
        "libraries' warnings, TensorFlow's log and tau3mu's INFO log",
    )


def is_own_warning(category: type[Warning], filename: str) -> bool:
    """Whether a warning is tau3mu's: its class is defined in tau3mu, or the code that
    raised it (as its ``stacklevel`` names it) is in the package."""
    if category.__module__.split(".")[0] == "tau3mu":
        return True
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def _own_warnings_only(show: Callable[..., None]) -> Callable[..., None]:
    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if is_own_warning(category, filename):
            show(message, category, filename, lineno, file, line)

    return showwarning


@contextlib.contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """Within the block, the libraries are quiet (or, with ``verbose``, not); the warning
    filters, ``warnings.showwarning``, the environment and the log level are restored
    after it, so that a caller in the same process (a test) is not affected."""
    defaults = {"ZFIT_DISABLE_TF_WARNINGS": "0" if verbose else "1"}
    if not verbose:
        defaults["TF_CPP_MIN_LOG_LEVEL"] = "2"  # TensorFlow's C++ INFO and WARNING lines
    saved_env = {name: os.environ.get(name) for name in defaults}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    own_log = logging.getLogger("tau3mu")
    saved_level = own_log.level
    try:
        with warnings.catch_warnings():
            if verbose:
                own_log.setLevel(logging.INFO)
                if not logging.getLogger().handlers:
                    logging.basicConfig(format="%(name)s: %(message)s")
            else:
                warnings.showwarning = _own_warnings_only(warnings.showwarning)
            yield
    finally:
        own_log.setLevel(saved_level)
        for name, saved in saved_env.items():
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved
