"""Jobs: bulk property, cloud-property, command and template operations over a device group
(IoT Central's ``/jobs`` and ``/scheduledJobs``, contract §2.11-2.12).

``model`` parses a ``Job`` body and does the batch and threshold arithmetic; ``checks``
holds it against the group and template; ``operations`` is what a job does to one device;
``executor`` runs one job batch by batch; ``schedule`` computes when scheduled jobs fire;
``service`` ties them together and runs them in the server (``JobService``).
"""
