"""Query languages of the API, parsed without any storage: text in, a typed tree out.

``device_filter`` reads IoT Central's device-group filter (contract §5.1); the stores turn the
tree into their own query language. This package imports nothing of ours but ``errors``.
"""
