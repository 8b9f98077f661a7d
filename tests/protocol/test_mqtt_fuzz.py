"""Runs ``bench/fuzz_mqtt.py`` for a few seconds; select it with ``pytest -m slow``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

FUZZ_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fuzz_mqtt.py"


def _load_fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_mqtt", FUZZ_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fuzz_codec_and_session(request: pytest.FixtureRequest) -> None:
    # Nothing deselects `slow` by default, so skip unless the run asked for it by name.
    markexpr = str(request.config.getoption("markexpr") or "")
    if "slow" not in markexpr or "not slow" in markexpr:
        pytest.skip("fuzzing runs only with -m slow")
    counts = _load_fuzzer().run(seconds=5.0, seed=20240601)
    assert counts["session ok"] > 0 and counts["decode ok"] > 0
