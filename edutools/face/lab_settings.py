"""The course's JupyterLab defaults, installed into this environment:
``python -m edutools.face.lab_settings``.

JupyterLab 4 opens with a "Would you like to get notified about official Jupyter news?" toast
over the lesson until the user answers it, and checks a website for newer versions. The course
answers both for the learner: ``fetchNews = "false"`` and ``checkForUpdates = false`` of the
``@jupyterlab/apputils-extension:notification`` plugin. They go into the environment's
``share/jupyter/lab/settings/overrides.d/edutools.json``, the folder where JupyterLab reads the
defaults that packages ship (user settings still win: a learner can turn the news on in the
Settings Editor). README command (a) installs them (``python -m edutools.face.workspace`` calls
:func:`install_lab_settings`), and so does ``binder/postBuild``.

An editable install (``pip install -e .``, as ``requirements.txt`` does) cannot ship files
outside the package itself, hence this small installer instead of packaging data files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["LAB_OVERRIDES", "install_lab_settings", "overrides_path"]

LAB_OVERRIDES: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def overrides_path(prefix: str | Path | None = None) -> Path:
    """Where JupyterLab of the environment at ``prefix`` (default: this one, ``sys.prefix``)
    reads the course's defaults."""
    root = Path(sys.prefix if prefix is None else prefix)
    return root / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "edutools.json"


def install_lab_settings(prefix: str | Path | None = None) -> Path:
    """Write :data:`LAB_OVERRIDES` for the environment at ``prefix``; return the file's path.

    Rewrites the file only if its content differs, so running it again changes nothing.
    """
    path = overrides_path(prefix)
    text = json.dumps(LAB_OVERRIDES, indent=2) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"JupyterLab settings of the course: {install_lab_settings()}")
