"""Server-side telemetry: what certctl, PostgreSQL, the other stack services and the
generator itself did while a run ran, in the same report as its latency.

* :mod:`.sampler` -- the thread beside a run (:class:`Sampler`, :class:`TelemetrySources`);
* :mod:`.processes` -- CPU, RSS, threads and file descriptors of process trees (psutil);
* :mod:`.postgres` -- ``pg_stat_database``, ``pg_stat_activity``, ``pg_stat_statements``;
* :mod:`.prometheus` -- certctl's ``/api/v1/metrics/prometheus``, parsed with
  prometheus_client;
* :mod:`.model` -- what is kept (:class:`ServerTelemetry`), the ``server`` object of
  summary.json and the line of context a breach message ends with.

Imports no pytest, and nothing of the engine: a run's start time is handed in.
"""

from .model import GENERATOR, ServerTelemetry, Tick
from .sampler import Sampler, TelemetrySources

__all__ = ["GENERATOR", "Sampler", "ServerTelemetry", "TelemetrySources", "Tick"]
