"""Checks two scrapes of discoveryd's /metrics with Debian's python3-prometheus-client
parser: both parse, names follow the conventions, and the values moved as the test's
calls (one register, three resolves, one resolve of an unknown service) should move them.
Usage: admin_metrics.py BEFORE AFTER   (files holding the scrapes; run by admin_test)."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def load(path):
    with open(path, encoding="utf-8") as f:
        families = list(text_string_to_metric_families(f.read()))
    samples = {}
    for fam in families:
        if not (fam.name.startswith("discovery_") or fam.name.startswith("process_")):
            raise AssertionError("metric %s lacks the discovery_ prefix" % fam.name)
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return {f.name: f for f in families}, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def main():
    fam0, before = load(sys.argv[1])
    fam1, after = load(sys.argv[2])
    for name, kind in [("discovery_requests", "counter"),
                       ("discovery_request_duration_seconds", "histogram"),
                       ("discovery_instances", "gauge"), ("discovery_services", "gauge"),
                       ("discovery_revision", "gauge"), ("discovery_health_checks", "counter"),
                       ("discovery_health_check_duration_seconds", "histogram"),
                       ("discovery_events_published", "counter"),
                       ("discovery_subscribers", "gauge"),
                       ("discovery_store_commits", "counter"),
                       ("discovery_store_writes", "counter"),
                       ("discovery_store_commit_duration_seconds", "histogram"),
                       ("process_resident_memory_bytes", "gauge"),
                       ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge"),
                       ("process_cpu_seconds", "counter")]:
        if name not in fam1 or fam1[name].type != kind:
            raise AssertionError("%s: missing or not a %s" % (name, kind))

    def moved(name, by, **labels):
        d = value(after, name, **labels) - value(before, name, **labels)
        if d < by:
            raise AssertionError("%s%s moved by %s, expected at least %s" % (name, labels, d, by))

    moved("discovery_requests_total", 3, call="resolve", status="STATUS_OK")
    moved("discovery_requests_total", 1, call="resolve", status="STATUS_NOT_FOUND")
    moved("discovery_requests_total", 1, call="register", status="STATUS_OK")
    moved("discovery_request_duration_seconds_count", 4, call="resolve")
    moved("discovery_revision", 1)
    moved("discovery_services", 1)
    moved("discovery_instances", 1, health="unknown")
    moved("discovery_events_published_total", 1)
    moved("discovery_store_commits_total", 1)
    moved("discovery_store_writes_total", 1)
    moved("discovery_store_commit_duration_seconds_count", 1)
    if value(after, "process_resident_memory_bytes") <= 0 or value(after, "process_open_fds") <= 0:
        raise AssertionError("process metrics are not filled in")
    if value(after, "process_start_time_seconds") < 1e9:
        raise AssertionError("process_start_time_seconds is not a Unix time")
    print("metrics ok: %d families" % len(fam1))


if __name__ == "__main__":
    main()
