"""The REST API: IoT Central's data-plane surface over the device hub and the stores.

Layers, outside in:

- ``app``: ``create_api(ctx)`` builds the FastAPI app from the routers.
- ``handlers``: the one error shape (``{"error": {...}}`` + ``x-ms-error-code``) and request ids.
- ``deps``: per-request dependencies: api-version, the caller's token (→ its app), path ids.
- ``routes/*``: thin endpoints that parse (``models``), call the domain (``MetadataStore``,
  ``DeviceHub``, telemetry) and respond (``views``, ``paging``).
- ``tokens``: API tokens, issued in IoT Central's layout and stored only as a hash.

Every endpoint is ``async``: the metadata store and the hub belong to the event loop thread
(the store's single writer; the hub's links write to asyncio transports), so no endpoint
may run in FastAPI's thread pool.
"""

from aislehub.api.app import create_api
from aislehub.api.deps import ApiContext, TelemetryReader
from aislehub.api.tokens import issue_api_token

__all__ = ["ApiContext", "TelemetryReader", "create_api", "issue_api_token"]
