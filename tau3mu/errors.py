"""The errors a user's mistake raises: one base class, reported as one line with exit code 2.

``tau3mu.cli`` maps every :class:`Tau3MuError` to ``tau3mu <command>: <message>`` on
stderr and exit code 2, without a traceback (``-v`` shows it); any other exception is a
bug of ours and keeps its traceback. A message names the option or the file and what
is wrong with it, on one line.
"""

from __future__ import annotations

__all__ = ["FileError", "OptionError", "OutputError", "Tau3MuError"]


class Tau3MuError(Exception):
    """Something the user gave cannot be used as it is: exit code 2 and one line."""


class FileError(Tau3MuError):
    """A file the user named is missing, unreadable, or not what it should be."""


class OptionError(Tau3MuError):
    """An option's value (or the file it names) is wrong; the message names the option.

    A run stops on it wherever it is found, even inside a chunk: it is never blamed on
    an input file nor skipped by ``--skip-bad-files``.
    """


class OutputError(OptionError):
    """Where the outputs go (``--out``, ``--checkpoint``) cannot be created or written."""
