"""The rules engine's checkpoints on a real local log and SQLite metadata: saved in
order while the engine reads on, and a failed one stops the engine before anything after
it is saved (its alert changes would be lost behind a later offset)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.rules.actions import ActionConfig, ActionRunner
from aislehub.rules.engine import RulesEngine
from aislehub.store.metadata import MetadataStore
from aislehub.store.rules import RuleStore


def record(n: int) -> bytes:
    body = b'{"temperature": %d}' % n
    now = int(time.time() * 1000)
    return encode_record(TelemetryRecord("app1", f"d{n % 7}", None, now, {}, body))


def engine_on(log: LocalLog, store: MetadataStore) -> RulesEngine:
    actions = ActionRunner(RuleStore(store.engine), None, ActionConfig())
    return RulesEngine(
        log,
        store,
        actions,
        lambda app, template: None,
        step_interval=0.001,
        poll_interval=0.01,
        checkpoint_interval=0.0,  # every step saves one
    )


def test_checkpoints_commit_in_order_while_the_engine_reads_on(
    tmp_path: Path, store: MetadataStore
) -> None:
    async def run() -> list[int]:
        log = LocalLog(tmp_path / "log")
        await log.start()
        engine = engine_on(log, store)
        await engine.start()
        seen = [engine.committed_offset]
        for n in range(300):
            await log.append(record(n))
            seen.append(engine.committed_offset)
        while engine.committed_offset < log.durable_offset:
            await asyncio.sleep(0.005)
            seen.append(engine.committed_offset)
        await engine.close()
        await log.close()
        return seen

    seen = asyncio.run(run())
    assert seen == sorted(seen)
    assert seen[-1] == 299
    assert len(set(seen)) > 10  # many checkpoints, not one at the end
    saved = RuleStore(store.engine).load_checkpoint("rules")
    assert saved is not None and saved[0] == 299


def test_a_failed_checkpoint_stops_the_engine_and_nothing_after_it_is_saved(
    tmp_path: Path, store: MetadataStore
) -> None:
    failed = threading.Event()

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def fail_once(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        """The first checkpoint from offset 100 on fails, slowly (the engine queues the
        next ones meanwhile); none after it would."""
        insert = statement.startswith("INSERT INTO rule_checkpoints")
        if insert and params[1] >= 100 and not failed.is_set():
            failed.set()
            time.sleep(0.3)
            raise OSError("disk full")

    async def run() -> tuple[int, BaseException | None]:
        log = LocalLog(tmp_path / "log")
        await log.start()
        engine = engine_on(log, store)
        await engine.start()
        for n in range(300):
            await log.append(record(n))
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(30):
                await engine.close()
        except OSError as exc:
            failure = exc
        await log.close()
        return engine.committed_offset, failure

    committed, failure = asyncio.run(run())
    assert failure is not None and "disk full" in str(failure)
    assert committed < 100
    saved = RuleStore(store.engine).load_checkpoint("rules")
    assert saved is not None and saved[0] == committed
