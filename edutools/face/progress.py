"""Progress bars in a notebook that leave nothing behind.

tqdm's text bar writes ``\\r``-overwritten lines to stderr; in Jupyter those become a *stderr*
output, drawn on a red-tinted background, and a bar that clears its line when done
(``leave=False``) still leaves that output behind, holding only whitespace: an empty error box
per training run. tqdm's widget bar (``tqdm.auto``) is no better: a saved notebook shows
"Error displaying widget" once its kernel has gone.

In the main thread of a Jupyter kernel, :func:`notebook_progress_bar` draws tqdm's same text line
into one display output (``text/plain``, updated in place through a display id) and empties it
when the bar closes: nothing stays behind, on the page or in the saved notebook. In a kernel's
other threads (a slider panel's background run, which reports its progress in the panel) there
is no bar. Outside a kernel it is tqdm's text bar on stderr. Importing ``edutools.face`` installs
it for the engine's training loop and grid (:func:`edutools.ground.progress.use_progress_bars`).
"""

from __future__ import annotations

import threading
from typing import Any

from tqdm.std import tqdm

from edutools.ground.progress import text_bar

__all__ = ["DisplayBar", "in_jupyter_kernel", "notebook_progress_bar"]


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel attached)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Discard:
    """A file that drops what is written: tqdm's own writes go nowhere, the display shows it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class DisplayBar(tqdm):
    """tqdm's text bar, drawn into one notebook display output instead of stderr.

    The output is created at the first draw and updated in place; :meth:`close` of a bar with
    ``leave=False`` empties it (an output with no data, which JupyterLab draws as nothing).
    """

    monitor_interval = 0  # no tqdm monitor thread: every draw comes from the counting thread

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._handle: Any = None
        kwargs["file"] = _Discard()
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        from IPython.display import display

        text = self.__str__() if msg is None else msg
        bundle = {"text/plain": text} if text.strip() else {}
        if self._handle is None:
            if bundle:
                self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        return True


def notebook_progress_bar(*, total: int, desc: str, leave: bool, mininterval: float) -> tqdm:
    """A :class:`DisplayBar` in a kernel's main thread, no bar in its other threads, and tqdm's
    text bar outside a kernel."""
    if not in_jupyter_kernel():
        return text_bar(total=total, desc=desc, leave=leave, mininterval=mininterval)
    if threading.current_thread() is not threading.main_thread():
        return tqdm(total=total, disable=True)
    return DisplayBar(total=total, desc=desc, leave=leave, mininterval=mininterval)
