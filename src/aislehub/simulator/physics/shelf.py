"""An RFID/BLE shelf reader: units per SKU go down with sales and up with restocking.

Each SKU has a facing capacity and sells as a Poisson process (``salesPerHour``); staff
refill every ``restockEveryHours`` (some SKUs run out before that: the out-of-stock
events). A read misses a tag now and then (``readMissRate``). Faults: ``strayTags`` (tags
of other shelves' goods dumped here: 8-15 unknown tags per read), ``gatewayOffline``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aislehub.simulator.physics.base import CommandResult, Message, ModelBase, pick
from aislehub.simulator.profile import DevicePlan, FaultRecord


class ShelfReader(ModelBase):
    writable = {"readIntervalSeconds": (5, 3600), "rfPower": (0, 33)}

    def __init__(
        self,
        physics: Mapping[str, Any],
        plan: DevicePlan,
        faults: Sequence[FaultRecord],
        start: float,
    ) -> None:
        super().__init__(plan, faults, start)
        self.max_step_s = 30.0
        self.physics = physics
        skus = round(pick(self.rng, physics.get("skusPerShelf"), 6))
        self.capacity = {
            f"SKU-{self.rng.randrange(10_000, 99_999)}": round(
                pick(self.rng, physics.get("facingCapacity"), 24)
            )
            for _ in range(skus)
        }
        self.rates = {sku: pick(self.rng, physics.get("salesPerHour"), 5) for sku in self.capacity}
        self.stock = {sku: self.rng.randint(cap // 3, cap) for sku, cap in self.capacity.items()}
        self.next_restock = start + self.rng.uniform(
            0, 3600 * float(physics.get("restockEveryHours", 6))
        )
        self.commands = {"inventoryNow": self._inventory}

    def step(self, dt: float) -> None:
        for sku, rate in self.rates.items():
            if self.stock[sku] > 0 and self.rng.random() < rate / 3600 * dt:
                self.stock[sku] -= 1
                if self.stock[sku] == 0:
                    self.emit({"outOfStock": sku})
        if self.now >= self.next_restock:
            self.next_restock += 3600 * float(self.physics.get("restockEveryHours", 6))
            for sku, cap in self.capacity.items():
                if self.stock[sku] == 0:
                    self.emit({"restocked": sku})
                self.stock[sku] = cap

    def _read(self) -> dict[str, int]:
        miss = float(self.physics.get("readMissRate", 0.01))
        return {
            sku: sum(1 for _ in range(n) if self.rng.random() >= miss)
            for sku, n in self.stock.items()
        }

    def telemetry(self) -> list[Message]:
        read = self._read()
        unknown = (
            self.rng.randint(8, 15) if self.fault("strayTags") else int(self.rng.random() < 0.05)
        )
        return [
            (
                None,
                {
                    "stock": read,
                    "totalUnits": sum(read.values()),
                    "outOfStockSkus": sum(1 for n in self.stock.values() if n == 0),
                    "unknownTags": unknown,
                    "tagsRead": sum(read.values()) + unknown,
                },
            )
        ]

    def reported(self) -> dict[str, Any]:
        return {"firmwareVersion": "4.1.2"}

    def cloud_properties(self) -> dict[str, Any]:
        site = self.plan.site
        return {
            "store": site.name if site else "",
            "aisle": f"A{self.plan.index % 12 + 1}",
            "planogram": f"PG-{self.plan.index % 5 + 1}",
        }

    def _inventory(self, payload: Any) -> CommandResult:
        return 200, {"stock": self._read()}
