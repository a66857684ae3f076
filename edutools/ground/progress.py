"""Progress bars of the training loop and the grid, with a front end the face layer can swap.

:func:`progress_bar` makes tqdm's text bar on stderr, which is right in a terminal. In a
notebook it is not: every write to stderr becomes part of a *stderr* output, which JupyterLab
draws on a red-tinted background, and a bar that clears its line when done still leaves that
output behind holding only whitespace (an empty error box per run). The engine must not draw,
so the notebook bar lives in :mod:`edutools.face.progress`, which installs itself here with
:func:`use_progress_bars` when ``edutools.face`` is imported (every lesson imports it).
"""

from __future__ import annotations

from typing import Any, Protocol

from tqdm.std import tqdm

__all__ = ["ProgressBar", "ProgressBarFactory", "progress_bar", "text_bar", "use_progress_bars"]


class ProgressBar(Protocol):
    """What the engine calls on a bar (tqdm's names)."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix(self, *args: Any, refresh: bool = True, **kwargs: Any) -> Any: ...

    def close(self) -> Any: ...


class ProgressBarFactory(Protocol):
    def __call__(self, *, total: int, desc: str, leave: bool,
                 mininterval: float) -> ProgressBar: ...


def text_bar(*, total: int, desc: str, leave: bool, mininterval: float) -> tqdm:
    """tqdm's text bar on stderr."""
    return tqdm(total=total, desc=desc, leave=leave, mininterval=mininterval)


_factory: ProgressBarFactory = text_bar


def use_progress_bars(factory: ProgressBarFactory | None) -> None:
    """Make every later :func:`progress_bar` with ``factory``; ``None``: back to the text bar."""
    global _factory
    _factory = text_bar if factory is None else factory


def progress_bar(*, total: int, desc: str, disable: bool, leave: bool = False,
                 mininterval: float = 0.5) -> ProgressBar:
    """A progress bar over ``total`` steps labelled ``desc`` (a disabled tqdm if ``disable``).

    ``leave=False`` (the default) removes the bar when it closes. Use it like tqdm:
    ``bar.update()``, ``bar.set_postfix(...)``, ``bar.close()``.
    """
    if disable:
        return tqdm(total=total, disable=True)
    return _factory(total=total, desc=desc, leave=leave, mininterval=mininterval)
