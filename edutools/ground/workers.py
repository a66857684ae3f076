"""Worker processes that never outlive the process that started them.

joblib's local processes (loky) are kept alive between calls and, when their parent is killed
(``kill -9``, a closed terminal, a crashed kernel), can stay for minutes: loky only notices on its
idle timeout. A task function that may run in such a worker calls :func:`exit_with_parent` with
the pid of the process that submitted it; in a worker that is a direct child of that process, a
daemon thread then checks twice a second that the parent is still there and ends the worker
(``os._exit``) as soon as it is not. In the parent itself (``n_jobs=1``) and in workers of a
cluster (Dask, Ray: not our children) it does nothing.
"""

from __future__ import annotations

import os
import threading
import time

#: Seconds between two checks of the parent.
POLL_SECONDS = 0.5
_started = False
_lock = threading.Lock()


def exit_with_parent(parent_pid: int) -> None:
    """Start (once per process) the watch that ends this worker when ``parent_pid`` is gone."""
    global _started
    if os.getpid() == parent_pid or os.getppid() != parent_pid:
        return  # the parent itself, or a process we did not start: not ours to end
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_watch, args=(parent_pid,), daemon=True,
                     name="edutools-exit-with-parent").start()


def _watch(parent_pid: int) -> None:
    while True:
        # A dead parent's children are re-parented at once (even while it is a zombie).
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(POLL_SECONDS)
