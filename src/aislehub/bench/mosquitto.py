"""The reference broker: Debian's Mosquitto with our own configuration on our own port.

Never the system broker on 127.0.0.1:1883: :class:`Mosquitto` writes a config with a
``listener`` on the loopback address and port it is given, no persistence (aislehub's
durable append is compared with Mosquitto's in-memory QoS 1, which flatters Mosquitto),
and in-flight/queue limits generous enough that the broker never drops or stalls a message
because of them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["MOSQUITTO", "Mosquitto", "mosquitto_available"]

MOSQUITTO = "/usr/sbin/mosquitto"

_CONFIG = """\
per_listener_settings false
listener {port} {host}
allow_anonymous true
persistence false
max_connections -1
max_inflight_messages 1000
max_queued_messages 1000000
max_queued_bytes 0
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
"""


def mosquitto_available() -> bool:
    return Path(MOSQUITTO).is_file() or shutil.which("mosquitto") is not None


class Mosquitto:
    def __init__(self, host: str, port: int, work_dir: Path) -> None:
        self.host, self.port = host, port
        self.config = work_dir / "mosquitto.conf"
        self.log_path = work_dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = MOSQUITTO if Path(MOSQUITTO).is_file() else shutil.which("mosquitto")
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed")
        self.config.write_text(_CONFIG.format(host=self.host, port=self.port))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
