"""The cyclic garbage collector's settings for a serving process.

CPython frees most objects by reference counting; its cyclic collector exists for
reference cycles, and each collection scans every tracked container of the generations it
collects. At the default thresholds (700, 10, 10) a server under load collects the oldest
generation over and over, and that generation holds everything long-lived: the
connections and their sessions, the log's tail, the store writer's batch, the rules'
state. Measured with ``gc.callbacks`` in ``aislehub serve`` during ``aislehub bench
ingest`` (1,000 QoS 1 devices, 2-core machine): 15 full collections in one 10 s window at
~0.19 s each, 2.8 s of the event loop in the collector.

So once a process has started: :func:`gc.freeze` moves what startup built (modules, the
API, templates, certificates) out of every collection for good, and the thresholds make a
young collection wait for 50,000 new containers (~12 ms to scan them) and a full one for
200 young ones. Cycles are still collected, later; reference counting is unaffected.
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_for_serving"]

THRESHOLDS = (50_000, 20, 10)


def tune_for_serving() -> None:
    """Freeze what exists now and raise the collection thresholds (call once started)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
