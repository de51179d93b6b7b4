"""common.metrics: per-process registries, rendering in both exposition formats."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from common.metrics import make_registry, render


def samples(body: bytes) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_registries_are_independent_of_each_other_and_the_global_one() -> None:
    one, two = make_registry(process=False), make_registry(process=False)
    counter = Counter("kokoa_test_requests", "Requests", ["service"], registry=one)
    counter.labels("web").inc(3)
    Counter("kokoa_test_requests", "Requests", ["service"], registry=two)  # same name: no clash
    body, content_type = render(one)
    assert content_type.startswith("text/plain; version=")
    assert samples(body)["kokoa_test_requests_total[('service', 'web')]"] == 3.0
    assert b"kokoa_test_requests_total{" not in render(two)[0]
    assert b"kokoa_test_requests" not in generate_latest(REGISTRY)


def test_process_metrics() -> None:
    body, _ = render(make_registry())
    names = {name.split("[")[0] for name in samples(body)}
    assert {"process_resident_memory_bytes", "process_open_fds", "python_info"} <= names
    assert b"process_" not in render(make_registry(process=False))[0]


def test_openmetrics_when_asked() -> None:
    registry = make_registry(process=False)
    Counter("kokoa_test_bytes", "Bytes", registry=registry).inc(5)
    body, content_type = render(registry, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    [family] = list(parse_om(body.decode()))  # type: ignore[no-untyped-call]
    assert family.name == "kokoa_test_bytes"
    assert family.samples[0].value == 5.0
    _, plain = render(registry, "text/plain")
    assert plain.startswith("text/plain")
