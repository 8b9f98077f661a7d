"""Per-device anomaly detection and predictive maintenance (DESIGN §1, Intelligence).

``detector`` is pure: hourly robust features per device, a baseline fitted on each
device's own first days, and a one-sided CUSUM that flags sustained drift
(docs/anomaly.md explains the choice and its measurements). ``specs`` declares, per
template, which features to watch. ``monitor`` runs the detectors over stored telemetry
(periodically, from DuckDB) and records what they find.
"""

from aislehub.intelligence.detector import Anomaly, DetectorConfig, Feature, FleetDetector
from aislehub.intelligence.specs import SPECS, spec_for

__all__ = ["SPECS", "Anomaly", "DetectorConfig", "Feature", "FleetDetector", "spec_for"]
