"""The rules engine: a second consumer of the ingest log (consumer name ``rules``).

Loop: apply the rules when a watcher task found them changed (hot reload: a rule written
through the API or the CLI is seen within ``reload_interval``), device membership and
properties; read a batch after the last offset read; decode it into columns and step every
evaluator, on the event loop; then, when anything opened or resolved, or every
``checkpoint_interval``, save the offset, the evaluators' state and the alert changes in
one metadata transaction (:meth:`RuleStore.checkpoint`) before the actions are queued. A
restart resumes from the checkpoint and replays the log after it; evaluation depends only
on the records and the watermark, so the replay reproduces the transitions that were not
yet saved, and none that were.

The watermark is the clock minus ``grace`` while the engine keeps up with the log (a
record is appended within milliseconds of its timestamp), held back to the oldest append
the local log has not made durable yet, and the newest record's time while it catches up,
so a window is evaluated once all its records are read.

Under load every await of this loop waits for a turn of the event loop, and at saturation
one turn of the gateway (reading every ready connection) lasts a few hundred milliseconds:
so a step awaits as little as it can. The rules are polled beside it, the decoding runs
on the loop (~1.5 µs per record), the evaluators yield every ``_TURN``, and a checkpoint
is one call to the engine's checkpoint thread.

Resource handling: ``start`` spawns two named tasks (the loop and the rules watcher);
``close`` stops the watcher, lets the current step finish, saves a checkpoint and joins
the loop. The engine never truncates the log: ``committed_offset`` is what
:class:`aislehub.ingest.retention.LogRetention` needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from aislehub.hub.templates import CompiledTemplate
from aislehub.ingest.local_log import LocalLog
from aislehub.ingest.log import IngestLog
from aislehub.query.device_filter import parse_device_filter
from aislehub.rules.actions import ActionRunner
from aislehub.rules.batch import BatchDecoder, DeviceIndex
from aislehub.rules.evaluate import RuleEvaluator, Shared, Transition, field_keys
from aislehub.rules.model import (
    GeofenceCondition,
    PropertyCondition,
    Rule,
    RuleInvalid,
    Target,
    check_against_template,
    full_filter,
    parse_rule,
)
from aislehub.rules.properties import PropertyCache
from aislehub.rules.state import compress_state, fingerprint, load_state, pack_state
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.metadata import MetadataStore
from aislehub.store.rows import Json, iso_stamp
from aislehub.store.rules import ActionOutcome, Alert, Opening, Resolution, RuleRecord, RuleStore
from aislehub.store.schema import devices

__all__ = ["EngineStats", "RulesEngine"]

log = logging.getLogger(__name__)
RuleKey = tuple[str, str]  # (app, rule id)
_WINDOWS = "~windows"  # the checkpoint's key for shared windows (rule keys are "app/id")
# Seconds of evaluation on the event loop before the gateway gets a turn: each yield costs
# the engine a whole gateway turn (up to ~0.5 s at saturation); 100 rules over a quarter
# second of 1,000 devices' messages take ~0.1 s.
_TURN = 0.1
_QUEUED_CHECKPOINTS = 2  # queued behind the checkpoint thread before a step waits
Templates = Callable[[str, str], CompiledTemplate | None]


@dataclass(slots=True)
class EngineStats:
    batches: int = 0
    records: int = 0
    opened: int = 0
    resolved: int = 0
    checkpoints: int = 0
    eval_seconds: float = 0.0  # wall time of the steps' evaluation, yields included
    # CPU time of the engine's own work: decoding, evaluating and copying the state on
    # the loop's thread (its yields excluded), and the checkpoint thread's transactions.
    cpu_seconds: float = 0.0
    checkpoint_cpu_seconds: float = 0.0
    rules: int = 0
    invalid_rules: dict[str, str] = field(default_factory=dict)  # "app/rule" → why skipped


@dataclass(slots=True)
class _Loaded:
    record: RuleRecord
    rule: Rule
    evaluator: RuleEvaluator


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class RulesEngine:
    def __init__(
        self,
        log: IngestLog,
        store: MetadataStore,
        actions: ActionRunner,
        templates: Templates,
        consumer_name: str = "rules",
        batch_max: int = 50_000,
        poll_interval: float = 0.1,
        step_interval: float = 0.5,
        grace: float = 0.25,
        reload_interval: float = 0.25,
        refresh_interval: float = 1.0,
        checkpoint_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._store = store
        self.rules = RuleStore(store.engine)
        self.actions = actions
        self._templates = templates
        self.name = consumer_name
        self.batch_max = batch_max
        self.poll_interval = poll_interval
        # At most one step per interval while keeping up: each rule costs a fixed ~0.2 ms
        # of NumPy calls per step whatever the batch size, so under load the records
        # accumulate into larger batches instead (the latency budget is seconds; 0.25 s
        # cost the engine 10-15 % more CPU at ~30k msg/s for ~0.1 s less latency).
        self.step_interval = step_interval
        self.grace_ms = int(grace * 1000)
        self.reload_interval = reload_interval
        self.refresh_interval = refresh_interval
        self.checkpoint_interval = checkpoint_interval
        self._clock = clock
        self.stats = EngineStats()
        self.devices = DeviceIndex()
        self._decoder = BatchDecoder(self.devices)
        self._properties = PropertyCache(store.engine)
        self._loaded: dict[RuleKey, _Loaded] = {}
        self._shared = Shared()  # windows and columns the rules' conditions share
        self._restored: dict[tuple[str, str], dict[str, Any]] = {}
        self._read_to = -1
        self._committed = -1
        self._watermark = 0  # epoch ms; set by the first step (see the module docstring)
        self._prop_apps: set[str] = set()
        self._rules_seen: tuple[object, ...] | None = None
        self._catalog_seen: tuple[object, ...] | None = None
        self._target_ids: dict[tuple[str | None, ...], list[str]] = {}
        self._generation = -1
        self._next_refresh = self._next_checkpoint = 0.0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        # Checkpoints queued or under way, oldest first; one thread runs their transactions.
        self._saving: deque[asyncio.Task[None]] = deque()
        self._saver = ThreadPoolExecutor(1, thread_name_prefix=f"rules-checkpoint-{consumer_name}")
        self._save_failed: BaseException | None = None  # set by the checkpoint thread
        self._fresh: list[RuleRecord] | None = None  # read by the watcher, not yet applied

    @property
    def committed_offset(self) -> int:
        """The last log offset whose effects are saved; the log must keep what follows."""
        return self._committed

    @property
    def lag(self) -> int:
        return self._log.backlog(self._read_to)  # offsets need not be dense (JetStream)

    @property
    def watermark_lag(self) -> float:
        """Seconds between the clock and the watermark: a window closes at least this long
        after its end, so it is the floor of an aggregate alert's latency (0 before the
        first step)."""
        if not self._watermark:
            return 0.0
        return max(0, self._now_ms() - self._watermark) / 1000

    async def start(self) -> None:
        saved = await asyncio.to_thread(self.rules.load_checkpoint, self.name)
        end = self._log.durable_offset
        if saved is None:
            self._read_to = end  # rules judge what arrives from now on, not the past
        else:
            offset, blob = saved
            snapshot = load_state(blob)
            for app, device in snapshot.devices:
                self.devices.number(app, device)
            self._restored = {k: dict(v) for k, v in snapshot.rules.items() if k[0] != _WINDOWS}
            self._shared.saved = {k[1]: v for k, v in snapshot.rules.items() if k[0] == _WINDOWS}
            if offset > end:
                log.warning(
                    "rules engine at offset %d, log ends at %d: resuming there", offset, end
                )
            self._read_to = min(offset, end)
        self._committed = self._read_to
        await self._reload(force=True)
        self._shared.saved = {}  # a window first used later starts empty, not stale
        await self._checkpoint([])
        self._task = asyncio.create_task(self._run(), name=f"rules-engine:{self.name}")
        self._watcher = asyncio.create_task(self._watch(), name=f"rules-watcher:{self.name}")

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        try:
            if self._task is not None:
                await self._task
                self._task = None
            await self._saved()
        finally:  # after a failure too: the threads must not outlive the engine
            self._saver.shutdown()
            self._decoder.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- the loop --------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self._closing:
                await self._step()
            await self._checkpoint([])
        except Exception:
            log.exception("rules engine %s stopped", self.name)
            raise

    async def _step(self) -> None:
        began = time.monotonic()
        await self._step_once()
        pause = began + self.step_interval - time.monotonic()
        if pause > 0 and self.lag < self.batch_max and not self._closing:
            await asyncio.sleep(pause)

    async def _step_once(self) -> None:
        await self._reload()
        changed = await self._refresh()
        entries = await self._log.read(
            self._read_to, self.batch_max, self.poll_interval, consumer=self.name
        )
        caught_up = not entries or entries[-1][0] >= self._log.durable_offset
        started = time.perf_counter()
        transitions = await self._evaluate(entries, changed, caught_up)
        self.stats.eval_seconds += time.perf_counter() - started
        if entries:
            self._read_to = entries[-1][0]
            self.stats.batches += 1
            self.stats.records += len(entries)
        if transitions or time.monotonic() >= self._next_checkpoint:
            await self._checkpoint(transitions, wait=False)

    async def _evaluate(
        self,
        entries: list[tuple[int, bytes]],
        changed: set[tuple[str, str]],
        caught_up: bool | None,
    ) -> list[tuple[_Loaded, Transition]]:
        """Decode once, step every evaluator, both on the event loop. ``caught_up`` None:
        time stays where it is.

        The evaluators run on the loop, ``_TURN`` at a time, for the store writer's reason:
        a worker thread making many short NumPy calls waits for the GIL at each one while
        the gateway's loop is busy (CPython's convoy effect), and fell seconds behind under
        load. Decoding in a worker thread cost a gateway turn per step for ~10 ms of work.
        """
        cpu = time.thread_time()
        # No rule enabled, nothing to decode: the engine then only moves its offset on.
        cols = self._decoder.decode(entries) if entries and self._loaded else None
        if caught_up is None:
            watermark = self._watermark
        elif caught_up:
            watermark = self._caught_up_watermark()
        else:
            watermark = int(cols.ts.max()) if cols is not None and len(cols) else self._watermark
        self._watermark = watermark = max(self._watermark, watermark)
        props = {
            n: self._properties.get(k) for k in changed if (n := self.devices.find(*k)) is not None
        }
        self._shared.step(cols, watermark)  # once, before the evaluators compare
        out: list[tuple[_Loaded, Transition]] = []
        turn = time.perf_counter()
        for loaded in list(self._loaded.values()):
            mine = {
                d: p for d, p in props.items() if self.devices.keys[d][0] == loaded.record.app_id
            }
            loaded.evaluator.grow(len(self.devices))
            for t in loaded.evaluator.step(cols, watermark, mine):
                out.append((loaded, t))
            if time.perf_counter() - turn >= _TURN:
                self.stats.cpu_seconds += time.thread_time() - cpu
                await asyncio.sleep(0)  # let the gateway run
                turn, cpu = time.perf_counter(), time.thread_time()
        self.stats.cpu_seconds += time.thread_time() - cpu
        return out

    def _caught_up_watermark(self) -> int:
        """The clock minus ``grace``, held back to before the oldest record still being
        made durable: at saturation the local log's group commit takes a second or more,
        and a window closed before its last records are durable would drop them as late."""
        now = self._now_ms()
        if isinstance(self._log, LocalLog) and (since := self._log.unsynced_since) is not None:
            now = min(now, int(since * 1000))
        return now - self.grace_ms

    # -- checkpoint ------------------------------------------------------------------
    async def _checkpoint(
        self, transitions: list[tuple[_Loaded, Transition]], wait: bool = True
    ) -> None:
        """Save the offset read, the evaluators' state and the alert changes in one
        transaction, after the previous checkpoint's. ``wait`` False (the loop's steps):
        return once this one is queued, so evaluation goes on during its transaction.

        The state is copied on the loop (a few ms for 100 rules over 1,000 devices; in a
        worker thread that waited for the GIL for up to half a second at saturation) and
        compressed in the engine's checkpoint thread with the transaction. One thread runs
        the transactions in order, so a checkpoint queued behind another starts as soon as
        that one commits: waiting on the loop for the first one's result cost a gateway
        turn (up to half a second at saturation) between the two, and delayed the alerts.
        """
        self._collect_saved()  # an earlier checkpoint's failure stops the engine here
        while len(self._saving) >= _QUEUED_CHECKPOINTS:  # bounds the copies held
            await self._saving.popleft()
        cpu = time.thread_time()
        offset, packed = self._read_to, self._pack()
        changes = self._alert_changes(transitions)
        self.stats.cpu_seconds += time.thread_time() - cpu
        self._next_checkpoint = time.monotonic() + self.checkpoint_interval
        loop = asyncio.get_running_loop()
        saved = loop.run_in_executor(self._saver, self._save, offset, packed, changes)
        previous = self._saving[-1] if self._saving else None
        self._saving.append(
            asyncio.create_task(
                self._commit(previous, saved, offset, changes),
                name=f"rules-checkpoint:{self.name}",
            )
        )
        if wait:
            await self._saved()

    def _collect_saved(self) -> None:
        """Forget the checkpoints done, raising the first one's failure."""
        while self._saving and self._saving[0].done():
            self._saving.popleft().result()

    async def _saved(self) -> None:
        """Wait for every checkpoint queued (a failure is raised here)."""
        while self._saving:
            await self._saving.popleft()

    async def _commit(
        self,
        previous: asyncio.Task[None] | None,
        saved: asyncio.Future[list[tuple[Alert, list[ActionOutcome]]]],
        offset: int,
        changes: list[Opening | Resolution],
    ) -> None:
        """After the previous checkpoint's (in order): note the offset saved, acknowledge
        it to the log and queue the actions of the alerts opened."""
        if previous is not None:
            try:
                await previous
            except Exception:  # the engine stops on that failure, raised where it waits
                with contextlib.suppress(Exception):
                    await saved  # refused by the checkpoint thread
                return
        opened = await saved
        self._committed = offset
        await self._log.acknowledge(self.name, self._committed)  # after the commit only
        self.stats.checkpoints += 1
        self.stats.opened += len(opened)
        self.stats.resolved += sum(isinstance(c, Resolution) for c in changes)
        for alert, outcomes in opened:
            self.actions.submit(alert, outcomes)

    def _save(
        self, offset: int, packed: bytes, changes: list[Opening | Resolution]
    ) -> list[tuple[Alert, list[ActionOutcome]]]:
        """Checkpoint thread: the offset, the compressed state and the alert changes,
        stamped now, in one transaction; none after one that failed (its alert changes
        would be lost behind a later offset)."""
        if self._save_failed is not None:
            raise RuntimeError("an earlier checkpoint failed") from self._save_failed
        cpu = time.thread_time()
        try:
            return self._transaction(offset, packed, changes)
        except BaseException as exc:
            self._save_failed = exc
            raise
        finally:  # this thread's alone: the loop's thread adds to the other figure
            self.stats.checkpoint_cpu_seconds += time.thread_time() - cpu

    def _transaction(
        self, offset: int, packed: bytes, changes: list[Opening | Resolution]
    ) -> list[tuple[Alert, list[ActionOutcome]]]:
        blob = compress_state(packed)
        recorded = iso_stamp(datetime.now(UTC))
        for change in changes:
            if isinstance(change, Opening):
                change.detail["recordedAt"] = recorded
        return self.rules.checkpoint(self.name, offset, blob, changes)

    def _pack(self) -> bytes:
        states = {
            (f"{k[0]}/{k[1]}", fingerprint(v.rule)): v.evaluator.state()
            for k, v in self._loaded.items()
        }
        states |= {(_WINDOWS, key): w for key, w in self._shared.state().items()}
        return pack_state(list(self.devices.keys), states)

    def _alert_changes(
        self, transitions: list[tuple[_Loaded, Transition]]
    ) -> list[Opening | Resolution]:
        changes: list[Opening | Resolution] = []
        for loaded, t in transitions:
            app, device = self.devices.keys[t.device]
            rule, at = loaded.rule, _when(t.t_ms)
            if not t.opened:
                changes.append(Resolution(app, rule.id, device, at))
                continue
            detail: Json = {
                "ruleDisplayName": rule.display_name,
                "conditionAt": iso_stamp(at),
                "recordedAt": None,  # stamped as the transaction begins
                "conditions": [
                    {"type": _kind(c), "holds": x == 1}
                    for c, x in zip(rule.conditions, t.truths, strict=False)
                ],
            }
            actions = [(a["type"], a) for a in loaded.record.document.get("actions", [])]
            changes.append(Opening(app, rule.id, device, rule.severity, at, detail, actions))
        return changes

    # -- hot reload ------------------------------------------------------------------
    async def _reload(self, force: bool = False) -> None:
        """Apply the rules the watcher read (``force``: read them now, whatever changed)."""
        if force:
            self._fresh = await self._read_rules(force=True)
        fresh, self._fresh = self._fresh, None
        if fresh is not None:
            await self._apply(fresh)

    async def _read_rules(self, force: bool = False) -> list[RuleRecord] | None:
        """Every rule, when any was written (by any process) or this process's device
        catalog changed since the last read; else None."""
        seen = await asyncio.to_thread(self.rules.fingerprint)
        generation = self._store.generation
        if not force and seen == self._rules_seen and generation == self._generation:
            return None
        records = await asyncio.to_thread(self.rules.all)
        self._rules_seen, self._generation = seen, generation
        return records

    async def _watch(self) -> None:
        """Beside the engine's loop, every ``reload_interval``: read the rules when they
        changed, for the next step to apply. Under load each await of the loop waits for
        a turn of the gateway, so the steps themselves make no query when nothing changed.
        """
        while not self._closing:
            await asyncio.sleep(self.reload_interval)
            try:
                records = await self._read_rules()
            except Exception:  # the metadata store is unavailable: try again next time
                log.exception("rules engine %s could not read the rules", self.name)
                continue
            if records is not None:
                self._fresh = records

    async def _apply(self, records: list[RuleRecord]) -> None:
        wanted: dict[RuleKey, tuple[RuleRecord, Rule]] = {}
        self.stats.invalid_rules = {}
        for record in records:
            if not record.enabled:
                continue
            try:
                rule = parse_rule(record.document, record.id)
                rule = check_against_template(
                    rule, self._templates(record.app_id, rule.target.template)
                )
            except RuleInvalid as exc:  # a template changed under the rule
                self.stats.invalid_rules[f"{record.app_id}/{record.id}"] = exc.message
                continue
            wanted[(record.app_id, record.id)] = (record, rule)
        active = await asyncio.to_thread(self.rules.active_alerts)
        members = await asyncio.to_thread(
            self._members, [(k[0], r.target) for k, (_, r) in wanted.items()]
        )
        transitions: list[tuple[_Loaded, Transition]] = []
        for key in [k for k in self._loaded if k not in wanted]:  # deleted or disabled
            gone = self._loaded.pop(key)
            gone.evaluator.close()
            for d in np.flatnonzero(gone.evaluator.active):
                transitions.append((gone, Transition(gone.rule.id, int(d), self._now_ms(), False)))
        needs_props = set()
        for i, (key, (record, rule)) in enumerate(wanted.items()):
            current = self._loaded.get(key)
            if current is None or fingerprint(current.rule) != fingerprint(rule):
                replaced = current
                current = _Loaded(record, rule, self._evaluator(key, rule, active))
                self._loaded[key] = current
                if replaced is not None:  # after: a window both use keeps its panes
                    replaced.evaluator.close()
            else:
                current.record, current.rule = record, rule
                current.evaluator.rule = rule
            mask = np.zeros(len(self.devices), bool)
            mask[members[i]] = True
            for t in current.evaluator.set_members(mask, self._now_ms()):
                transitions.append((current, t))
            if any(isinstance(c, PropertyCondition | GeofenceCondition) for c in rule.conditions):
                needs_props.add(key)
        self._prop_apps = {k[0] for k in needs_props}
        fields = set().union(*(field_keys(v.rule) for v in self._loaded.values()))
        self._decoder.set_fields(fields)
        self.stats.rules = len(self._loaded)
        changed = await self._refresh(force=True)
        if changed:
            transitions += await self._evaluate([], changed, None)
        if transitions:
            await self._checkpoint(transitions)

    def _evaluator(
        self, key: RuleKey, rule: Rule, active: list[tuple[str, str, str]]
    ) -> RuleEvaluator:
        evaluator = RuleEvaluator(rule, self._now_ms(), self._shared)
        saved = self._restored.pop((f"{key[0]}/{key[1]}", fingerprint(rule)), None)
        evaluator.grow(len(self.devices))
        if saved is not None:
            evaluator.restore(saved)
            return evaluator
        for app, rule_id, device in active:  # alerts left open: no second alert for them
            if (app, rule_id) == key:
                number = self.devices.number(app, device)
                evaluator.grow(len(self.devices))
                evaluator.active[number] = True
        return evaluator

    def _members(self, targets: list[tuple[str, Target]]) -> list[list[int]]:
        """Worker thread: device numbers of each rule's target, as the store evaluates it.

        One query of device ids per distinct target (rules usually share a few), and none
        while the device catalog is unchanged: a hundred rules written one by one through
        the API reload the rules a hundred times, each with every rule's membership.
        """
        catalog = (self._store.generation, self._store.catalog_fingerprint())
        if catalog != self._catalog_seen:
            self._catalog_seen, self._target_ids = catalog, {}
        groups: dict[tuple[str, str], str | None] = {}
        out = []
        for app, target in targets:
            group_filter = None
            if target.device_group:
                if (app, target.device_group) not in groups:
                    group = self._store.groups.get(app, target.device_group)
                    groups[(app, target.device_group)] = group.filter if group else None
                group_filter = groups[(app, target.device_group)]
            key = (app, target.template, target.device_group, group_filter, target.filter)
            ids = self._target_ids.get(key)
            if ids is None:
                ids = self._target_ids[key] = self._device_ids(app, target, group_filter)
            out.append([self.devices.number(app, d) for d in ids])
        return out

    def _device_ids(self, app: str, target: Target, group_filter: str | None) -> list[str]:
        d = devices.c
        clause = (d.app_id == app) & (d.template == target.template)
        if target.device_group:
            clause = clause & (  # a deleted group has no members
                sa.false()
                if group_filter is None
                else filter_clause(parse_device_filter(group_filter))
            )
        if target.filter:
            clause = clause & filter_clause(parse_device_filter(full_filter(target.filter)))
        with self._store.engine.connect() as conn:
            return list(conn.execute(sa.select(d.id).where(clause).order_by(d.id)).scalars())

    async def _refresh(self, force: bool = False) -> set[tuple[str, str]]:
        """Devices whose properties changed since the last refresh; ``force``: all known."""
        now = time.monotonic()
        apps = self._prop_apps
        if not apps or (not force and now < self._next_refresh):
            return set()
        self._next_refresh = now + self.refresh_interval
        changed = await asyncio.to_thread(self._properties.refresh, apps)
        return changed | set(self._properties.known()) if force else changed


def _kind(cond: Any) -> str:
    return {
        "TelemetryCondition": "telemetry",
        "PropertyCondition": "property",
        "GeofenceCondition": "geofence",
        "NoDataCondition": "noData",
    }[type(cond).__name__]
