"""The ingress node's Prometheus metrics, on the registry the composition root hands in.

Labels are bounded: `service` comes from the configuration, `status` from the HTTP status
codes we send, `code` from the protocol's error codes and `reason` from a fixed list (see
`REJECT_REASONS`). Per-request code goes through `service(name)`, which caches the labelled
children of one service so the hot path never looks labels up twice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REJECT_REASONS = (
    "bad_request",
    "header_too_large",
    "header_timeout",
    "unknown_host",
    "method_not_allowed",
    "version_not_supported",
    "expectation_failed",
    "redirected",
)
"""Why a request was answered without reaching a service (`kokoa_ingress_rejected_total`)."""

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """The labelled children of one service's metrics (cached by `IngressMetrics.service`).

    Plain totals are kept beside them for the control channel's status message (cumulative
    since the process started): `requests`, `errors` (responses >= 500, and requests whose
    tunnel stream failed whatever the client got), `received`, `sent`.
    """

    __slots__ = (
        "_by_status",
        "_parent",
        "active",
        "bytes_received",
        "bytes_sent",
        "errors",
        "name",
        "received",
        "request_seconds",
        "requests",
        "sent",
    )

    def __init__(self, parent: IngressMetrics, name: str) -> None:
        self._parent = parent
        self.name = name
        self.request_seconds = parent.request_seconds.labels(service=name)
        self.bytes_received = parent.bytes_received.labels(service=name)
        self.bytes_sent = parent.bytes_sent.labels(service=name)
        self._by_status: dict[int, Counter] = {}
        # Requests in flight: a plain counter on the hot path, read by the gauge at scrape.
        self.active = 0
        parent.in_flight.labels(service=name).set_function(lambda: self.active)
        self.requests = self.errors = self.received = self.sent = 0

    def count(
        self, status: int, seconds: float, received: int, sent: int, *, failed: bool = False
    ) -> None:
        """Record one finished request (`failed`: its tunnel stream failed)."""
        self.requests += 1
        if status >= 500 or failed:
            self.errors += 1
        self.received += received
        self.sent += sent
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._parent.requests.labels(service=self.name, status=str(status))
            self._by_status[status] = counter
        counter.inc()
        self.request_seconds.observe(seconds)
        if received:
            self.bytes_received.inc(received)
        if sent:
            self.bytes_sent.inc(sent)

    def reset(self, code: int) -> None:
        """A tunnel stream of this service ended with a reset (either side), `code`."""
        self._parent.streams_reset.labels(service=self.name, code=str(code)).inc()


class IngressMetrics:
    """Every metric of the ingress node, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "kokoa_ingress_requests",
            "Requests answered, by service and HTTP status",
            ["service", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "kokoa_ingress_request_seconds",
            "Time from a complete request head to the end of the response",
            ["service"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.bytes_received = Counter(
            "kokoa_ingress_bytes_received",
            "Request body bytes received from clients",
            ["service"],
            registry=registry,
        )
        self.bytes_sent = Counter(
            "kokoa_ingress_bytes_sent",
            "Response body bytes sent to clients",
            ["service"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "kokoa_ingress_in_flight",
            "Requests being proxied right now",
            ["service"],
            registry=registry,
        )
        self.agents_connected = Gauge(
            "kokoa_ingress_agents_connected",
            "Agents connected and serving the service",
            ["service"],
            registry=registry,
        )
        self.streams_reset = Counter(
            "kokoa_ingress_streams_reset",
            "Tunnel streams that ended with a reset, by error code",
            ["service", "code"],
            registry=registry,
        )
        self.rejected = Counter(
            "kokoa_ingress_rejected",
            "Requests answered without reaching a service, by reason",
            ["reason"],
            registry=registry,
        )
        self._services: dict[str, ServiceMetrics] = {}
        self._rejected = {reason: self.rejected.labels(reason=reason) for reason in REJECT_REASONS}

    def service(self, name: str) -> ServiceMetrics:
        """The cached labelled children of service `name`."""
        metrics = self._services.get(name)
        if metrics is None:
            metrics = self._services[name] = ServiceMetrics(self, name)
        return metrics

    def services(self) -> list[ServiceMetrics]:
        """Every service that has had a request since the process started."""
        return list(self._services.values())

    def reject(self, reason: str) -> None:
        """Count a request refused before it reached a service; `reason` in REJECT_REASONS."""
        self._rejected[reason].inc()
