"""The evaluators' state as bytes, saved with the engine's log offset (``RuleStore.checkpoint``).

One compressed ``.npz`` archive (NumPy's zip of ``.npy`` arrays, no pickles): the device table as
JSON, then each rule's arrays under ``<rule id>|<fingerprint>|<name>``. The fingerprint
hashes what evaluation depends on (target, match, conditions): a rule edited in those
starts afresh, one whose actions, severity or name changed keeps its windows.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from aislehub.rules.model import Rule

__all__ = ["Snapshot", "dump_state", "fingerprint", "load_state"]

_DEVICES = "devices"


def fingerprint(rule: Rule) -> str:
    text = repr((rule.target, rule.match, rule.conditions)).encode()
    return hashlib.sha256(text).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Snapshot:
    devices: list[tuple[str, str]]
    rules: Mapping[tuple[str, str], Mapping[str, npt.NDArray[np.generic]]]  # (id, fp) → arrays


def dump_state(
    devices: list[tuple[str, str]],
    rules: Mapping[tuple[str, str], Mapping[str, npt.NDArray[np.generic]]],
) -> bytes:
    arrays: dict[str, npt.NDArray[np.generic]] = {
        _DEVICES: np.frombuffer(orjson.dumps(devices), np.uint8)
    }
    for (rule_key, fp), state in rules.items():
        for name, array in state.items():
            arrays[f"{rule_key}|{fp}|{name}"] = array
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)  # mostly zeros: zlib is cheap
    return out.getvalue()


def load_state(blob: bytes) -> Snapshot:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        devices = [(a, d) for a, d in orjson.loads(archive[_DEVICES].tobytes())]
        rules: dict[tuple[str, str], dict[str, npt.NDArray[np.generic]]] = {}
        for name in archive.files:
            if name == _DEVICES:
                continue
            rule_key, fp, array = name.split("|", 2)
            rules.setdefault((rule_key, fp), {})[array] = archive[name]
    return Snapshot(devices, rules)
