"""The resource routers; each module serves one family of IoT Central paths (contract §2)."""
