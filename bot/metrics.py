"""The `/metrics` exposition of `steward serve`, and the Slack API error counter.

The exposition contains the process counters of `governance.metrics` (connector
errors, job runs), the Slack API error counter defined here, and the gauges
that `governance.metrics.DatabaseCollector` reads at scrape time. Modules of
the bot call `record_slack_error`; the core's modules call the recorders of
`governance.metrics`, which are re-exported here for the bot's convenience.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from governance.app import Steward
from governance.metrics import (
    COUNTERS,
    DatabaseCollector,
    record_connector_error,
    record_job_run,
)

__all__ = [
    "StewardMetrics",
    "record_connector_error",
    "record_job_run",
    "record_slack_error",
]

_SLACK_API_ERRORS = Counter(
    "steward_slack_api_errors",
    "Slack Web API calls that failed, by method and Slack error code.",
    ["method", "error"],
    registry=COUNTERS,
)


def record_slack_error(method: str, code: str) -> None:
    """Count one failed Web API call, where `code` is Slack's `error` field.

    Failures without a response from Slack use the codes `timeout` and
    `connection_error`.
    """
    _SLACK_API_ERRORS.labels(method=method, error=code).inc()


class _ProcessCounters(Collector):
    """Adds the counters of `COUNTERS` to another registry."""

    def collect(self) -> Iterable[Metric]:
        return COUNTERS.collect()


class StewardMetrics:
    """The exposition for one app: call it for the body and its content type."""

    def __init__(self, steward: Steward) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ProcessCounters())
        self.registry.register(DatabaseCollector(steward))

    def __call__(self) -> tuple[bytes, str]:
        return _generate_latest(self.registry), CONTENT_TYPE_LATEST
