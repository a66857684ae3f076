"""The course's JupyterLab defaults: no news prompt, no update check, in this environment."""

import functools
import json
import shutil
import sys

from jupyterlab_server.settings_utils import _get_overrides

from edutools.face import lab_settings, workspace
from edutools.face.lab_settings import LAB_OVERRIDES, install_lab_settings, overrides_path

NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_installed_defaults_are_what_jupyterlab_reads(tmp_path):
    path = install_lab_settings(tmp_path)
    assert path == tmp_path / "share/jupyter/lab/settings/overrides.d/edutools.json"
    # JupyterLab's server reads overrides.d/*.json of the environment's lab settings folder.
    overrides, error = _get_overrides(str(tmp_path / "share/jupyter/lab/settings"))
    assert not error
    assert overrides[NOTIFICATION] == {"fetchNews": "false", "checkForUpdates": False}
    assert json.loads(path.read_text()) == LAB_OVERRIDES


def test_values_are_valid_for_jupyterlabs_schema():
    schema_path = (lab_settings.Path(sys.prefix) / "share/jupyter/lab/schemas"
                   / "@jupyterlab/apputils-extension/notification.json")
    properties = json.loads(schema_path.read_text())["properties"]
    values = LAB_OVERRIDES[NOTIFICATION]
    assert values["fetchNews"] in [choice["const"] for choice in properties["fetchNews"]["oneOf"]]
    assert properties["checkForUpdates"]["type"] == "boolean"
    assert set(values) <= set(properties)


def test_install_rewrites_only_a_changed_file(tmp_path):
    path = install_lab_settings(tmp_path)
    stamp = path.stat().st_mtime_ns
    assert install_lab_settings(tmp_path) == path and path.stat().st_mtime_ns == stamp
    path.write_text("{}")
    install_lab_settings(tmp_path)
    assert json.loads(path.read_text()) == LAB_OVERRIDES


def test_readme_command_a_workspace_step_installs_them(tmp_path, monkeypatch, capsys):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    shutil.copy(sorted((workspace.ROOT / "lessons").glob("00_*.ipynb"))[0], lessons)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "env"))
    monkeypatch.setattr(workspace, "prepare_workspace",
                        functools.partial(workspace.prepare_workspace, lessons=lessons))
    assert workspace.main([]) == 0
    assert json.loads(overrides_path().read_text()) == LAB_OVERRIDES
    assert overrides_path() == tmp_path / "env/share/jupyter/lab/settings/overrides.d/edutools.json"
