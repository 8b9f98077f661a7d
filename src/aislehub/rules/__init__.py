"""Rules, alerts and actions.

Layers, from the data up: ``model`` (rule JSON → frozen dataclasses, checked against the
target template), ``evaluate`` (pure, sans-IO: condition truth over column batches, window
panes, edges → alert transitions), ``state`` (the evaluators' arrays as bytes, saved with
the consumer offset), ``alerts`` (the open → acknowledged → resolved lifecycle),
``actions`` (webhook, email, command, job; their own tasks), ``engine`` (the ingest-log
consumer that wires them to the log, the metadata store and the hub).
"""
