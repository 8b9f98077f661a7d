"""Errors of the DTDL model reader.

::

    AislehubError
    ├── ModelError     one broken rule at one place: ``.path``, ``.rule``, ``.message``, ``.spec``
    └── ModelErrors    every error of a document set, raised once by ``parse_models``

``.path`` names the place in the model the way a reader finds it, for example
``dtmi:com:example:Thermostat;1 / contents[2] (targetTemperature) / schema``.
``.rule`` is a short stable id (``name-pattern``, ``extends-cycle`` …) that tests and the API
can match on; ``.spec`` cites the section of the DTDL specification that states the rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from aislehub.errors import AislehubError


class ModelError(AislehubError):
    """One rule of the DTDL language broken at one place in a model."""

    def __init__(self, path: str, rule: str, message: str, spec: str = "") -> None:
        self.path = path
        self.rule = rule
        self.message = message
        self.spec = spec
        super().__init__(str(self))

    def __str__(self) -> str:
        cite = f"; {self.spec}" if self.spec else ""
        return f"{self.path}: {self.message} [{self.rule}{cite}]"


class ModelErrors(AislehubError):
    """All the errors found in a set of model documents (never empty)."""

    def __init__(self, errors: Iterable[ModelError]) -> None:
        self.errors: tuple[ModelError, ...] = tuple(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"{len(self.errors)} error(s) in the model:"]
        lines.extend(f"  {error}" for error in self.errors)
        return "\n".join(lines)

    def rules(self) -> set[str]:
        """The ids of the rules broken, handy for tests and summaries."""
        return {error.rule for error in self.errors}
