"""Notebook progress bars leave nothing behind: in a Jupyter kernel they draw into one display
output that closing empties (no stderr output, which JupyterLab draws as an error box)."""

import sys
import threading

import IPython.display
import pytest
from tqdm.std import tqdm

from edutools.face import progress
from edutools.face.progress import DisplayBar, notebook_progress_bar
from edutools.ground.progress import progress_bar, use_progress_bars


class FakeHandle:
    def __init__(self, log, bundle):
        self.log = log
        log.append(("display", bundle))

    def update(self, bundle, raw=False):
        assert raw
        self.log.append(("update", bundle))


@pytest.fixture
def displays(monkeypatch):
    log = []

    def display(bundle, raw=False, display_id=False):
        assert raw and display_id
        return FakeHandle(log, bundle)

    monkeypatch.setattr(IPython.display, "display", display)
    return log


def test_display_bar_draws_in_place_and_closing_empties_it(displays, capsys):
    bar = DisplayBar(total=3, desc="training", leave=False, mininterval=0)
    for _ in range(3):
        bar.update()
    bar.close()
    kinds = [kind for kind, _ in displays]
    assert kinds[0] == "display" and set(kinds[1:]) == {"update"}  # one output, redrawn
    assert "training" in displays[0][1]["text/plain"]
    assert any("3/3" in bundle.get("text/plain", "") for _, bundle in displays)
    assert displays[-1] == ("update", {})  # emptied: nothing left in the cell
    assert capsys.readouterr().err == ""  # and nothing went to stderr


def test_outside_a_kernel_it_is_tqdms_text_bar_on_stderr(capsys):
    assert not progress.in_jupyter_kernel()
    bar = notebook_progress_bar(total=2, desc="grid", leave=False, mininterval=0)
    assert type(bar) is tqdm
    bar.update(2)
    bar.close()
    assert "grid" in capsys.readouterr().err


def test_in_a_kernel_the_main_thread_gets_a_display_bar_and_others_none(monkeypatch, displays):
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    bar = notebook_progress_bar(total=2, desc="x", leave=False, mininterval=0.5)
    assert isinstance(bar, DisplayBar)
    bar.close()
    found = []
    worker = threading.Thread(target=lambda: found.append(
        notebook_progress_bar(total=2, desc="x", leave=False, mininterval=0.5)))
    worker.start()
    worker.join()
    assert found[0].disable and not isinstance(found[0], DisplayBar)


def test_importing_the_face_layer_gives_the_engine_notebook_bars(monkeypatch, displays):
    """The training loop's and the grid's bars (edutools.ground.progress.progress_bar) are
    notebook bars once edutools.face is imported, and a disabled bar stays disabled."""
    monkeypatch.setattr(progress, "in_jupyter_kernel", lambda: True)
    assert isinstance(progress_bar(total=2, desc="training", disable=False), DisplayBar)
    assert progress_bar(total=2, desc="training", disable=True).disable
    try:
        use_progress_bars(None)
        assert type(progress_bar(total=2, desc="training", disable=False)) is tqdm
    finally:
        use_progress_bars(notebook_progress_bar)


def test_in_jupyter_kernel_needs_a_kernel(monkeypatch):
    class Shell:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert progress.in_jupyter_kernel()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert not progress.in_jupyter_kernel()
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert not progress.in_jupyter_kernel()
