"""Prometheus metrics of the process (``GET /metrics``).

Most are the process's own counters. The gauges marked "read from the database" are not:
the API reads them when it is scraped (``ops.signals``), so every API instance reports the
same value; aggregate them with ``max``, never ``sum``.

``corespond serve --workers N`` serves the API from N processes. They keep their counters,
histograms and gauges in files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode), and whichever answers ``/metrics`` reports the sum of all of them
(gauges: the largest); the gauges read from the database are the answering process's own
read, never kept in those files. The ``process_*`` and ``python_*`` series of the client
library are left out then: they would describe one process of N.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class ReadAtScrape(Collector):
    """A gauge whose series are what the answering process last read from the database
    (``show``), or none at all when that read failed (``hide``): never another process's
    read, never a stale one. Not a ``Gauge``: in multiprocess mode a Gauge is kept in files
    where a series once set stays."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def show(self, series: Mapping[tuple[str, ...], float]) -> None:
        """Replace every series by ``series`` (label values -> value)."""
        with self._lock:
            self._series = {labels: float(value) for labels, value in series.items()}

    def hide(self) -> None:
        """No series until the next ``show``."""
        self.show({})

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            for labels, value in self._series.items():
                family.add_metric(list(labels), value)
        yield family


REQUESTS = Counter(
    "corespond_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "corespond_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENTS_INGESTED = Counter(
    "corespond_cad_events_ingested_total",
    "CAD events received, by source and outcome (accepted, duplicate, rejected, other_agency).",
    ["source", "status"],
)
CAD_UNKNOWN_FIELDS = Counter(
    "corespond_cad_unknown_fields_total",
    "Fields of CAD events this contract does not know (ignored, kept in the raw event).",
    ["source"],
)
EVENTS_PROCESSED = Counter(
    "corespond_cad_events_processed_total",
    "CAD events folded into their calls by the worker.",
)
EVENT_FOLD_FAILURES = Counter(
    "corespond_cad_event_fold_failures_total",
    "Calls whose events could not be folded (retried later).",
)
EVENTS_UNPROCESSED = Gauge(
    "corespond_cad_events_unprocessed",
    "CAD events not yet folded, by state: pending (will be tried) or dead (out of attempts).",
    ["state"],
    multiprocess_mode="max",
)
TRIAGE_DECISIONS = Counter(
    "corespond_triage_decisions_total",
    "Triage decisions recorded, by decision.",
    ["decision"],
)
TURNED_DANGEROUS = Counter(
    "corespond_triage_turned_dangerous_total",
    "Calls that were eligible or under review and then showed a danger signal.",
)
RULES_RELOAD_FAILURES = Counter(
    "corespond_triage_rules_reload_failures_total",
    "Rule-file reloads refused as invalid (the last good rules stay in force).",
)
ASSIGNMENT_CHANGES = Counter(
    "corespond_assignment_changes_total",
    "Assignment changes, by what happened (offered, accepted, expired, unfilled …).",
    ["change"],
)
MATCH_SECONDS = Histogram(
    "corespond_match_seconds",
    "Time to match a request (rank the candidates, make the offer or record it unfilled), "
    "by trigger (auto, dispatcher).",
    ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SUPERVISOR_ALERTS = Counter(
    "corespond_supervisor_alerts_total",
    "Alerts raised for the supervisor on duty, by kind (unfilled, danger).",
    ["kind"],
)
DELIVERIES = Counter(
    "corespond_dispatch_deliveries_total",
    "Delivery attempts to CAD callbacks, by source and outcome (delivered, retry, dead).",
    ["source", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "corespond_dispatch_delivery_seconds",
    "Time for a CAD callback to answer a delivery.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DISPATCH_FAILING_SOURCES = Gauge(
    "corespond_dispatch_failing_sources",
    "CAD sources whose deliveries have been failing for longer than the alert threshold.",
    multiprocess_mode="max",
)

NOTIFICATIONS = Counter(
    "corespond_notifications_total",
    "Notification attempts to peers, by channel and outcome (sent, retry, gone, dead).",
    ["channel", "outcome"],
)

DISPATCH_OLDEST_UNDELIVERED = ReadAtScrape(
    "corespond_dispatch_oldest_undelivered_seconds",
    "Age of the oldest message still waiting to be delivered to each enabled CAD source's "
    "callback (since it was written, or since its redelivery was asked for); 0 when none "
    "waits. Read from the database when the API is scraped.",
    ["source"],
)
PEERS_AVAILABLE = ReadAtScrape(
    "corespond_peers_available",
    "Peers who could be offered a call in each county now (on shift there, of a provider "
    "serving it, credentials valid, available and not on a call), as the coverage page "
    "counts them. Counties a provider serves or someone is on shift in. Read from the "
    "database when the API is scraped.",
    ["county", "county_name"],
)
PEERS_ON_SHIFT = ReadAtScrape(
    "corespond_peers_on_shift",
    "Peers on shift in each county now, free or not (same counties as "
    "corespond_peers_available). Read from the database when the API is scraped.",
    ["county", "county_name"],
)
DATABASE_GAUGE_FAILURES = Counter(
    "corespond_metrics_database_read_failures_total",
    "Scrapes whose gauges read from the database could not be read in time (those gauges "
    "are left out of that scrape rather than shown stale).",
)
READ_AT_SCRAPE = (DISPATCH_OLDEST_UNDELIVERED, PEERS_AVAILABLE, PEERS_ON_SHIFT)


def exposition(multiprocess_directory: Path | None = None) -> bytes:
    """The text of ``/metrics``: this process's metrics, or, given the directory where the
    API processes of ``serve --workers N`` keep theirs, all of theirs together (with this
    process's reads of the database)."""
    if multiprocess_directory is None:
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(multiprocess_directory))  # type: ignore[no-untyped-call]
    for gauge in READ_AT_SCRAPE:
        registry.register(gauge)
    return generate_latest(registry)


@contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """The directory the API processes of ``serve --workers N`` keep their metrics in:
    ``PROMETHEUS_MULTIPROC_DIR`` when set, emptied of an earlier run's files first (else
    their counts would be added to this run's), or a temporary one, removed afterwards."""
    named = os.environ.get(MULTIPROCESS_VARIABLE, "").strip()
    if named:
        directory = Path(named)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="corespond-metrics-") as temporary:
        yield Path(temporary)
