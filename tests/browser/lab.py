"""A throw-away JupyterLab server for browser tests, on FAST copies of the lessons.

The server runs from this same Python environment, on a free port of 127.0.0.1, with a random
token, on a temporary root folder holding lesson copies that papermill prepared with
``FAST=True`` injected (so the committed notebooks never get outputs). Its user settings turn
off what would make a test flaky: autosave and notebook windowing (every cell stays in the DOM);
the news prompt and the update check are off through the course's own JupyterLab defaults, which
the server's environment gets as README command (a) gives them (``install_lab_settings``).
Progress bars are on (``EDUTOOLS_QUIET=0``, ``CI`` unset for the server), as a learner has them.
``expose_app_in_browser`` publishes ``window.jupyterapp`` so that a test can read the kernel
status and run commands; the test still types and clicks like a learner.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edutools.face.lab_settings import install_lab_settings

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"

# JupyterLab user settings, one file per plugin (same format as the Advanced Settings Editor).
LAB_SETTINGS: dict[str, dict[str, object]] = {
    # 'none' attaches every cell to the DOM: the test can see all outputs without scrolling.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No autosave: the test decides when the notebook is written (Ctrl+S).
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Not here: the news prompt and the update check. The course's own defaults turn them off
    # (edutools.face.lab_settings, installed by README command (a)); the tests check that.
}


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab.

    Attributes:
        base_url: ``http://127.0.0.1:PORT`` (no trailing slash).
        token: the random authentication token.
        root_dir: the folder it serves (the lesson copies are in it).
        log_path: file receiving the server's stdout and stderr.
    """

    base_url: str
    token: str
    root_dir: Path
    log_path: Path

    def url(self, path: str) -> str:
        """Browser URL of ``path`` under the root (e.g. ``lab/tree/00_start_here.ipynb``)."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, *, method: str = "GET", timeout_s: float = 30.0) -> object:
        """Call the server's REST API (``api/...``); the decoded JSON answer (None if empty)."""
        request = urllib.request.Request(f"{self.base_url}/{path.lstrip('/')}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> int:
        """End every notebook session (and its kernel); how many there were."""
        sessions = self.api("api/sessions")
        for session in sessions:
            self.api(f"api/sessions/{session['id']}", method="DELETE")
        return len(sessions)

    def log_tail(self, num_chars: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-num_chars:]
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lesson_path(prefix: str) -> Path:
    """The committed lesson whose file name starts with ``prefix`` (e.g. ``"00"``)."""
    matches = sorted(LESSONS.glob(f"{prefix}*.ipynb"))
    if len(matches) != 1:
        raise ValueError(f"prefix={prefix!r} matches {len(matches)} lessons: {matches}")
    return matches[0]


def prepare_lessons(prefixes: Sequence[str], target: Path, *, fast: bool = True) -> list[Path]:
    """Copy the lessons named by ``prefixes`` into ``target`` with ``FAST`` injected.

    papermill writes the parameters cell it injects without executing anything; the copies get
    the kernel name ``python3``, which is this environment's kernel in a server started from it.
    """
    import papermill

    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for prefix in prefixes:
        source = lesson_path(prefix)
        copy = target / source.name
        papermill.execute_notebook(str(source), str(copy), parameters={"FAST": fast},
                                   prepare_only=True, kernel_name="python3",
                                   progress_bar=False, log_output=False)
        copies.append(copy)
    return copies


def write_lab_settings(settings_dir: Path,
                       settings: Mapping[str, Mapping[str, object]] = LAB_SETTINGS) -> None:
    """Write JupyterLab user settings (``<plugin path>.jupyterlab-settings`` files)."""
    for plugin, values in settings.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))


def lab_command(*, port: int, token: str, root_dir: Path, settings_dir: Path,
                workspaces_dir: Path, python: str = sys.executable) -> list[str]:
    """The ``jupyter lab`` command line of a test server (``--allow-root`` only for root)."""
    command = [python, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root_dir}", "--ServerApp.terminals_enabled=False",
               f"--LabApp.user_settings_dir={settings_dir}",
               f"--LabApp.workspaces_dir={workspaces_dir}",
               "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def _wait_until_up(server: LabServer, process: subprocess.Popen, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    status_url = f"{server.base_url}/api/status?token={server.token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n"
                               f"{server.log_tail()}")
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"JupyterLab did not answer within {timeout_s:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running_lab(root_dir: Path, *, work_dir: Path, startup_timeout_s: float = 120.0,
                env: Mapping[str, str] | None = None) -> Iterator[LabServer]:
    """Start JupyterLab on ``root_dir``; stop it (and its kernels) on exit.

    ``work_dir`` receives the settings, workspaces, runtime files and the server log.
    The kernels inherit ``PYTHONPATH`` with this checkout first, so they import its ``edutools``.
    """
    settings_dir, workspaces_dir = work_dir / "settings", work_dir / "workspaces"
    runtime_dir = work_dir / "runtime"
    for folder in (settings_dir, workspaces_dir, runtime_dir):
        folder.mkdir(parents=True, exist_ok=True)
    write_lab_settings(settings_dir)
    token = secrets.token_hex(24)
    port = free_port()
    server = LabServer(base_url=f"http://127.0.0.1:{port}", token=token, root_dir=root_dir,
                       log_path=work_dir / "jupyter_server.log")
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # As a learner has it: progress bars and live curves on (CI=true would turn them off).
    server_env = dict(os.environ, PYTHONPATH=python_path, JUPYTER_RUNTIME_DIR=str(runtime_dir),
                      EDUTOOLS_QUIET="0", CI="", **(env or {}))
    install_lab_settings()  # what README command (a)'s workspace step does
    command = lab_command(port=port, token=token, root_dir=root_dir, settings_dir=settings_dir,
                          workspaces_dir=workspaces_dir)
    with open(server.log_path, "wb") as log:
        # A new session: on exit the whole group (server and kernels) gets the signal.
        process = subprocess.Popen(command, cwd=root_dir, env=server_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_die_with_parent if sys.platform == "linux"
                                   else None)
    try:
        _wait_until_up(server, process, timeout_s=startup_timeout_s)
        yield server
    finally:
        _stop(process)


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM it if the test process is killed (Linux).

    Without this a killed pytest leaves JupyterLab and its kernels running: they are in their
    own session, out of reach of the terminal's signals.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(process: subprocess.Popen, *, grace_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$EDUTOOLS_CHROMIUM``, Debian's, or one on PATH."""
    override = os.environ.get("EDUTOOLS_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    return None
