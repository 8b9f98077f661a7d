"""``aislehub template …``: import plain DTDL and IoT Central exports into an install.

The command runs in-process (``cli.main``): a subprocess per call would spend most of the
test importing the package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aislehub.cli import main
from tests.api.template_samples import CONTROLLER, controller_template
from tests.models import samples


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(data_dir: Path, *args: str) -> Result:
        capsys.readouterr()  # drop what came before
        code = main(["template", *args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def write(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_import_list_show_delete(tmp_path: Path, run: Any) -> None:
    data = tmp_path / "install"
    assert main(["init", "--data-dir", str(data)]) == 0

    dtdl = write(tmp_path / "controller.json", samples.controller_set())
    imported = run(data, "import", dtdl)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["id"] == samples.CONTROLLER

    export = write(tmp_path / "export.json", controller_template())  # an IoT Central export
    imported = run(data, "import", export, "--id", CONTROLLER)
    assert imported.returncode == 0, imported.stderr
    again = json.loads(run(data, "import", export, "--id", CONTROLLER).stdout)
    assert again["version"] == 2

    listed = json.loads(run(data, "list").stdout)
    assert [t["id"] for t in listed] == [CONTROLLER, samples.CONTROLLER]
    shown = json.loads(run(data, "show", CONTROLLER).stdout)
    assert shown["@id"] == CONTROLLER and shown["etag"] == again["etag"]

    broken = samples.thermostat()
    broken["contents"][0]["schema"] = "decimal"
    failed = run(data, "import", write(tmp_path / "broken.json", broken))
    assert failed.returncode == 1
    assert "contents[0] (temperature) / schema" in failed.stderr

    assert run(data, "delete", CONTROLLER).returncode == 0
    missing = run(data, "show", CONTROLLER)
    assert missing.returncode == 1 and "not found" in missing.stderr
