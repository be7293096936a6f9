"""Progress of a run, as suits where it is shown: a live bar, ten lines, or nothing.

A terminal (or a notebook) gets coffea's rich bar. Anything else, a log file or a pipe,
gets at most one line per tenth of the work (``Processing:  40% (4/10 chunks, 12 s)``),
never a carriage return. ``off`` shows nothing. The same three modes serve both ways of
running: the coffea ``Runner`` executors (:func:`coffea_bars`) and the dask-awkward graph
(:func:`dask_local_bar` for dask's synchronous scheduler, :func:`distributed_bar` for a
Dask cluster).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any, Literal

from rich.progress import Progress, TaskID

from tau3mu.reading import supported

Mode = Literal["bar", "lines", "off"]


def progress_mode(enabled: bool) -> Mode:
    """``off`` unless ``enabled``; else ``bar`` where rich draws live (a terminal or a
    notebook, as coffea's console sees standard output), ``lines`` everywhere else."""
    if not enabled:
        return "off"
    from coffea.util import coffea_console

    live = coffea_console.is_terminal or coffea_console.is_jupyter
    return "bar" if live else "lines"


class DecileProgress(Progress):
    """A rich ``Progress`` that draws nothing live: it prints one line each time its first
    task passes another tenth of its total (at most ten lines per task), to standard
    output, flushed. Later tasks (coffea's merging) are counted but not shown."""

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True  # no live display: the lines below are the display
        kwargs["auto_refresh"] = False  # track() then calls advance(), reported below
        super().__init__(*columns, **kwargs)
        self._shown: dict[TaskID, int] = {}
        self._first: TaskID | None = None

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(*args, **kwargs)
        if self._first is None:
            self._first = task_id
            self._shown[task_id] = 0
        return task_id

    def update(self, task_id: TaskID, *args: Any, **kwargs: Any) -> None:
        super().update(task_id, *args, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        if task_id != self._first:
            return
        task = self._tasks[task_id]
        if not task.total or task.total <= 0:
            return
        tenth = min(int(10 * task.completed / task.total), 10)
        if tenth <= self._shown[task_id]:
            return
        self._shown[task_id] = tenth
        print(decile_line(task.description, task.completed, task.total, task.fields, task.elapsed))
        sys.stdout.flush()


def decile_line(
    description: str, completed: float, total: float, fields: dict[str, Any], elapsed: float | None
) -> str:
    """``Processing:  40% (4/10 chunks, 12 s)``; rich markup in ``description`` removed."""
    from rich.text import Text

    name = Text.from_markup(description).plain or "Progress"
    unit = str(fields.get("unit") or "")
    if unit and not unit.endswith("s"):
        unit += "s"  # coffea's "chunk"
    return (
        f"{name}: {100 * completed / total:3.0f}% "
        f"({completed:.0f}/{total:.0f}{' ' * bool(unit)}{unit}, {elapsed or 0:.0f} s)"
    )


def make_bar(mode: Mode) -> Progress:
    """A rich ``Progress`` for ``mode``: coffea's bar, :class:`DecileProgress`, or one that
    shows nothing."""
    from coffea.util import rich_bar

    if mode == "bar":
        return rich_bar()
    if mode == "lines":
        return DecileProgress()
    return Progress(disable=True, auto_refresh=False)


#: coffea's modules that draw their progress with ``coffea.util.rich_bar``
_COFFEA_BAR_MODULES = ("coffea.processor.executor", "coffea.processor._dask")


@contextlib.contextmanager
def coffea_bars(mode: Mode) -> Iterator[None]:
    """While in the block, coffea's executors draw their progress as ``mode`` says.

    coffea builds every bar of its executors with ``rich_bar()`` (its futures executor
    even when given ``status=False``), with no option to choose another; so its modules'
    ``rich_bar`` are replaced within the block (this process only; the bars are drawn by
    the process that runs the Runner) and restored after. ``bar`` leaves them alone, and
    so does a coffea version this was not tested with (:func:`tau3mu.reading.supported`):
    coffea's own bars are then shown.
    """
    if mode == "bar" or not supported("coffea"):
        yield
        return

    modules = []
    for name in _COFFEA_BAR_MODULES:
        if name.endswith("_dask") and "distributed" not in sys.modules:
            continue  # only the Dask executor uses it, and only with distributed loaded
        module = importlib.import_module(name)
        if hasattr(module, "rich_bar"):
            modules.append(module)
    # coffea's module-level rich_bar is private and untyped; hasattr above guards it
    saved = [module.rich_bar for module in modules]
    for module in modules:
        module.rich_bar = lambda: make_bar(mode)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.rich_bar = original  # type: ignore[attr-defined]


class _DaskCallbackBar:
    """Counts the tasks of dask's local schedulers into a rich ``Progress`` (one task for
    every ``dask.compute`` within the block, their totals added)."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: TaskID | None = None
        self.total = 0
        self.done = 0

    def start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        self.total += sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        if self.task is None:
            self.task = self.bar.add_task("Processing", total=self.total, unit="tasks")
        self.bar.update(self.task, total=self.total, refresh=True)

    def posttask(self, *args: Any) -> None:
        self.done += 1
        if self.task is not None:
            self.bar.update(self.task, completed=min(self.done, self.total), refresh=True)


@contextlib.contextmanager
def dask_local_bar(mode: Mode) -> Iterator[None]:
    """Progress of ``dask.compute`` on dask's local schedulers within the block."""
    if mode == "off":
        yield
        return
    from dask.callbacks import Callback

    bar = make_bar(mode)
    counter = _DaskCallbackBar(bar)
    with bar, Callback(start_state=counter.start_state, posttask=counter.posttask):
        yield


def distributed_bar(futures: list[Any], client: Any, mode: Mode) -> None:
    """Wait for ``futures`` of ``client``, showing their progress (all tasks they need)."""
    if mode == "off" or not futures:
        return
    from distributed.diagnostics.progressbar import ProgressBar

    class _Bar(ProgressBar):
        def __init__(self, bar: Progress) -> None:
            from distributed.utils import LoopRunner

            self.bar = bar
            self.task: TaskID | None = None  # added with the first count of tasks
            # this client's scheduler: by default the bar follows the latest Client made in
            # this process, which may be another cluster's; it then waits forever
            super().__init__(futures, client.scheduler.address, "100ms", complete=True)
            with bar:
                LoopRunner(loop=None).run_sync(self.listen)

        def _draw_bar(self, remaining: int = 0, all: int = 0, **kwargs: Any) -> None:
            if not all:
                return
            if self.task is None:
                self.task = self.bar.add_task("Processing", total=all, unit="tasks")
            self.bar.update(self.task, total=all, completed=all - remaining, refresh=True)

        def _draw_stop(self, remaining: int = 0, all: int = 0, **kwargs: Any) -> None:
            self._draw_bar(remaining, all)

    _Bar(make_bar(mode))
