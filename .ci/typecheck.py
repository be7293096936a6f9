"""Run mypy over the installed layout of the package: ``tau3mu`` with ``tau3mu.kernels``
and ``tau3mu.processors``.

pyproject.toml maps ``tau3mu.kernels`` to ``kernels/`` and ``tau3mu.processors`` to
``processors/`` (``package-dir``), which mypy cannot follow: checked from the repository
root, ``kernels/best.py`` would be the module ``kernels.best`` and every
``from tau3mu.kernels import ...`` an unresolved import. This script builds that layout
from symbolic links in a temporary folder, runs mypy there with the repository's
``[tool.mypy]`` configuration, and prints mypy's report with the paths of the repository.

Usage: ``python .ci/typecheck.py [extra mypy options]``; exit status: mypy's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the package's subpackages that live outside tau3mu/ (pyproject.toml's package-dir)
MAPPED = {"kernels": ROOT / "kernels", "processors": ROOT / "processors"}


def build_layout(target: Path) -> Path:
    """``target/tau3mu``: links to every entry of tau3mu/ plus the mapped subpackages."""
    package = target / "tau3mu"
    package.mkdir()
    for entry in (ROOT / "tau3mu").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, source in MAPPED.items():
        (package / name).symlink_to(source, target_is_directory=True)
    return package


def repository_paths(report: str) -> str:
    """mypy's report with ``tau3mu/kernels/...`` as ``kernels/...`` (the files' real paths)."""
    for name in MAPPED:
        report = report.replace(f"tau3mu/{name}/", f"{name}/")
    return report


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="tau3mu-mypy-") as folder:
        build_layout(Path(folder))
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "tau3mu",
            *argv,
        ]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    sys.stdout.write(repository_paths(done.stdout))
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
