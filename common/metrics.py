"""Prometheus helpers: a registry per process (never prometheus_client's global one) and
rendering it for a scrape. Components define their own metrics on the registry they are given:

    registry = make_registry()
    requests = Counter("kokoa_requests", "Requests served", ["service"], registry=registry)
    body, content_type = render(registry, request_accept_header)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, choose_encoder, generate_latest


def make_registry(*, process: bool = True) -> CollectorRegistry:
    """A new registry; with `process`, it also reports this process's CPU, memory, open files
    and Python version (`process_*`, `python_info`)."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """The scrape body and its content type: OpenMetrics if `accept` (the scraper's Accept
    header) asks for it, else the Prometheus text format."""
    if accept:
        encoder, content_type = choose_encoder(accept)
        return encoder(registry), content_type
    return generate_latest(registry), CONTENT_TYPE_LATEST
