"""The evaluators' state as bytes, saved with the engine's log offset (``RuleStore.checkpoint``).

``AHRS1``, the length of what follows uncompressed (8 bytes, little-endian) and one zstd
frame (pyarrow's codec) of: the header's length (8 bytes, little-endian), the header
(JSON: the device table, then each array's ``<rule id>|<fingerprint>|<name>``, dtype and
shape) and the arrays' bytes one after the other. The fingerprint hashes what evaluation
depends on (target, match, conditions): a rule edited in those starts afresh, one whose
actions, severity or name changed keeps its windows.

Windows shared by several rules' conditions are saved once, as ``~windows|<window key>|``
arrays beside the rules (which keep what held at each window's last close, ``panes<k>.held``).
A checkpoint from before windows were shared has every rule's panes (``panes<k>.cnt`` ...):
the first rule restored on a window fills it, and the rules over one window had the same.

Saving is two steps: :func:`pack_state` copies the arrays (a few milliseconds; on the event
loop, while nothing changes them) and :func:`compress_state` compresses the copy (without
the GIL: a worker thread's part). For 100 rules over 1,000 devices (5 MB of arrays) zstd
takes ~2-4 ms where zlib took 30-80 ms, and finds the windows that rules over the same
field share (zlib's 32 kB window does not). A NumPy ``.npz`` archive, as written before,
cost ~40-200 ms of the loop per checkpoint (zip bookkeeping for some 500 members); such
checkpoints still load.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from aislehub.rules.model import Rule

__all__ = ["Snapshot", "compress_state", "dump_state", "fingerprint", "load_state", "pack_state"]

_DEVICES = "devices"
_MAGIC = b"AHRS1"


def fingerprint(rule: Rule) -> str:
    text = repr((rule.target, rule.match, rule.conditions)).encode()
    return hashlib.sha256(text).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Snapshot:
    devices: list[tuple[str, str]]
    rules: Mapping[tuple[str, str], Mapping[str, npt.NDArray[np.generic]]]  # (id, fp) → arrays


def pack_state(
    devices: list[tuple[str, str]],
    rules: Mapping[tuple[str, str], Mapping[str, npt.NDArray[np.generic]]],
) -> bytes:
    """The state, uncompressed: a copy of every array, so the evaluators may go on."""
    index: list[tuple[str, str, tuple[int, ...]]] = []
    parts: list[bytes] = []
    for (rule_key, fp), state in rules.items():
        for name, array in state.items():
            if array.dtype.hasobject:
                raise TypeError(f"{rule_key} {name}: object arrays cannot be saved")
            index.append((f"{rule_key}|{fp}|{name}", array.dtype.str, array.shape))
            parts.append(array.tobytes())
    header = orjson.dumps({_DEVICES: devices, "arrays": index})
    return b"".join([len(header).to_bytes(8, "little"), header, *parts])


def compress_state(packed: bytes) -> bytes:
    frame = pa.compress(packed, codec="zstd", asbytes=True)
    return b"".join([_MAGIC, len(packed).to_bytes(8, "little"), frame])


def dump_state(
    devices: list[tuple[str, str]],
    rules: Mapping[tuple[str, str], Mapping[str, npt.NDArray[np.generic]]],
) -> bytes:
    return compress_state(pack_state(devices, rules))


def load_state(blob: bytes) -> Snapshot:
    if not blob.startswith(_MAGIC):
        return _load_npz(blob)
    at = len(_MAGIC)
    packed = int.from_bytes(blob[at : at + 8], "little")
    frame = memoryview(blob)[at + 8 :]
    raw = bytearray(pa.decompress(frame, packed, codec="zstd", asbytes=True))  # writable
    header_size = int.from_bytes(raw[:8], "little")
    header = orjson.loads(raw[8 : 8 + header_size])
    pos = 8 + header_size
    rules: dict[tuple[str, str], dict[str, npt.NDArray[np.generic]]] = {}
    for key, dtype, shape in header["arrays"]:
        dt = np.dtype(dtype)
        count = math.prod(shape)
        array = np.frombuffer(raw, dt, count, pos).reshape(shape)
        pos += count * dt.itemsize
        rule_key, fp, name = key.split("|", 2)
        rules.setdefault((rule_key, fp), {})[name] = array
    return Snapshot([(a, d) for a, d in header[_DEVICES]], rules)


def _load_npz(blob: bytes) -> Snapshot:
    """A checkpoint written as a NumPy ``.npz`` archive (before ``AHRS1``)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        devices = [(a, d) for a, d in orjson.loads(archive[_DEVICES].tobytes())]
        rules: dict[tuple[str, str], dict[str, npt.NDArray[np.generic]]] = {}
        for name in archive.files:
            if name == _DEVICES:
                continue
            rule_key, fp, array = name.split("|", 2)
            rules.setdefault((rule_key, fp), {})[array] = archive[name]
    return Snapshot(devices, rules)
