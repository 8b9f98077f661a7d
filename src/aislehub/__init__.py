"""aislehub: an open, self-hostable IoT application platform for retail.

Layers, bottom up: ``protocol`` (sans-IO codecs) and ``models`` import nothing else of
ours; ``gateway``, ``ingest`` and ``store`` build on them; ``hub`` is the device-facing
domain; ``api`` and ``cli`` sit on top.
"""

__version__ = "0.1.0"
