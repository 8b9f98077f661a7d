"""What the simulated devices raise: client-side failures, apart from the server's tree.

::

    SimulatorError                 base (an AislehubError)
    ├── ConnectionLost             the socket closed or went silent; reconnect
    ├── ConnectRefused             CONNACK with a non-zero code; ``transient`` for code 3
    ├── RequestFailed              a twin or DPS request answered with a status >= 300
    └── ProvisioningFailed         DPS said ``failed`` (or something we cannot read)
"""

from __future__ import annotations

from aislehub.errors import AislehubError

# The CONNACK codes the SDK retries (contract §1: 3 = server unavailable); 4 and 5 mean
# the credentials are wrong and retrying cannot help.
TRANSIENT_CONNACK_CODES = frozenset({3})


class SimulatorError(AislehubError):
    """Base of the simulator's own errors."""


class ConnectionLost(SimulatorError):
    """The connection ended (EOF, reset, no PINGRESP, SAS renewal); the client reconnects."""


class ConnectRefused(SimulatorError):
    """The server answered CONNECT with a non-zero return code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"CONNACK return code {code}")
        self.code = code

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CONNACK_CODES


class RequestFailed(SimulatorError):
    """A twin or DPS request came back with an HTTP-like status >= 300."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"status {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class ProvisioningFailed(SimulatorError):
    """DPS reported ``failed`` or an operation status the device cannot use."""
