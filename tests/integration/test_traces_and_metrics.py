"""Traces and metrics of a real stack: one instance create is ONE trace with spans
from the api, scheduler, provisioner and the instance's agent, exported over
OTLP/HTTP to a receiver in this test; every service serves Prometheus metrics.

This module runs a stack of its own (its own broker, COFFER_HOME and SQLite
databases): the session stack exports nothing, and sharing its broker would let
two sets of services consume each other's records."""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client.parser import text_string_to_metric_families

from plumbing import broker
from plumbing import topics as T
from tests.conftest import RUN_ID, SERVICES, stack_env, trove, wait_for
from tests.e2e.support import installed_pg_version, wait_active, wait_gone

pytestmark = pytest.mark.e2e

# a topic each service consumes, whose consumed-records counter must have moved
CONSUMED_TOPIC = {"api": T.INSTANCE_EVENTS, "scheduler": T.INSTANCE_REQUESTS,
                  "provisioner": T.AGENT_EVENTS, "backup": T.INSTANCE_EVENTS, "monitor": T.TELEMETRY,
                  "notifier": T.INSTANCE_EVENTS}


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (protobuf) that keeps every span it is sent."""

    def __init__(self):
        self.spans: list[dict] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    found.append({"service": resource.get("service.name", ""),
                                  "instance": resource.get("service.instance.id", ""),
                                  "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                  "parent_id": span.parent_span_id.hex(), "name": span.name,
                                  "kind": span.kind})
        with self._lock:
            self.spans += found
            self.requests += 1

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.spans)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _with_environ(values: dict, fn):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        return fn()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def traced():
    import asyncio

    from coffer.cli import _create_token
    from coffer.stack import Stack

    home = Path(tempfile.mkdtemp(prefix=f"coffer-otel-{RUN_ID}-", dir="/tmp"))
    os.chmod(home, 0o755)  # the engines' OS users must traverse it
    kafka_port = broker.free_port()
    kafka_proc = broker.start(kafka_port)
    receiver = OtlpReceiver().__enter__()
    stack = None
    try:
        env = stack_env(f"127.0.0.1:{kafka_port}", home, None)
        env.pop("COFFER_DATABASE_URL_TEMPLATE", None)
        # SQLite under this home for every service, whatever the session's environment says
        databases = {f"COFFER_{s.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{home / f'{s}.db'}"
                     for s in SERVICES}
        metrics_ports = {s: broker.free_port() for s in SERVICES}
        env.update(databases)
        env.update({f"COFFER_{s.upper()}_METRICS_PORT": str(p) for s, p in metrics_ports.items()})
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_TRACES_EXPORTER": "otlp"})
        project = f"otel-{RUN_ID}"
        # tokens first: the API's SQLite database gets its schema before the API starts
        member = _with_environ({"COFFER_HOME": str(home), **databases},
                               lambda: asyncio.run(_create_token(project, "member")))
        admin = _with_environ({"COFFER_HOME": str(home), **databases},
                              lambda: asyncio.run(_create_token(project, "admin")))
        stack = Stack(home=home, api_port=broker.free_port(), extra_env=env)
        stack.project, stack.member_token, stack.admin_token = project, member, admin
        stack.metrics_ports = metrics_ports
        stack.start()
        stack.wait_ready(admin, project)

        client = trove(stack)
        inst = client.instances.create("traced", "d1", volume={"size": 1}, datastore="postgresql",
                                       datastore_version=installed_pg_version(), databases=[{"name": "db"}],
                                       users=[{"name": "owner", "password": f"Pw-{uuid.uuid4().hex}",
                                               "databases": [{"name": "db"}]}])
        wait_active(client, inst.id)
        yield stack, receiver, inst.id
        client.instances.delete(inst.id)
        wait_gone(client, inst.id)
    finally:
        if stack is not None:
            stack.stop()
        receiver.__exit__()
        kafka_proc.kill()
        kafka_proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def _create_trace(receiver: OtlpReceiver) -> str | None:
    """The trace id of the API's one POST /instances server span, once exported."""
    servers = [s for s in receiver.snapshot() if s["service"] == "api" and s["kind"] == Span.SPAN_KIND_SERVER
               and s["name"] == "POST /v1.0/{project}/instances"]
    assert len(servers) <= 1, servers
    return servers[0]["trace_id"] if servers else None


def test_one_instance_create_is_one_trace_across_services_and_agent(traced):
    stack, receiver, instance_id = traced
    trace_id = wait_for(lambda: _create_trace(receiver), 15, what="the API's POST /instances span")

    def whole_trace():
        """The trace once it has every service and each span's parent arrived too."""
        spans = [s for s in receiver.snapshot() if s["trace_id"] == trace_id]
        ids = {s["span_id"] for s in spans}
        services = {s["service"] for s in spans}
        orphans = [s["name"] for s in spans if s["parent_id"] and s["parent_id"] not in ids]
        # the agent exports its spans in batches: its command span may come after its first ones
        obeyed = any(s["name"] == "command prepare" for s in spans)
        if {"api", "scheduler", "provisioner", "agent"} <= services and obeyed and not orphans:
            return spans
        return None

    spans = wait_for(whole_trace, 20, interval=0.2,
                     what="one trace with spans of api, scheduler, provisioner and agent (its command "
                          "included), parents included")
    by_id = {s["span_id"]: s for s in spans}

    # the agent's spans are the instance's, and its command ran in the trace
    agent_spans = [s for s in spans if s["service"] == "agent"]
    assert {s["instance"] for s in agent_spans} == {instance_id}
    command = [s for s in agent_spans if s["name"] == "command prepare"]
    assert len(command) == 1 and command[0]["kind"] == Span.SPAN_KIND_CONSUMER

    # every consumer span's parent is the producer span whose context the record carried
    consumers = [s for s in spans if s["kind"] == Span.SPAN_KIND_CONSUMER]
    assert {s["service"] for s in consumers} >= {"api", "scheduler", "provisioner", "agent"}
    for span in consumers:
        assert by_id[span["parent_id"]]["kind"] == Span.SPAN_KIND_PRODUCER, (span, by_id[span["parent_id"]])
    # the request's record: api server span -> transaction -> producer -> scheduler's consumer
    placed_by = [s for s in consumers if s["service"] == "scheduler"
                 and s["name"] == "consume coffer.instance.create_requested.v1"]
    assert placed_by and by_id[placed_by[0]["parent_id"]]["service"] == "api"
    # the command the agent obeyed was produced by the provisioner
    assert by_id[command[0]["parent_id"]]["service"] == "provisioner"
    # database work shows as transactions
    assert any(s["kind"] == Span.SPAN_KIND_CLIENT and s["name"].startswith("transaction ") for s in spans)
    # one root: the request (no span's parent is missing, see whole_trace)
    roots = [s for s in spans if not s["parent_id"]]
    assert len(roots) == 1 and roots[0]["service"] == "api"


def _scrape(port: int) -> dict[tuple[str, str], float]:
    """coffer_records_consumed_total summed by (topic, outcome)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "coffer_records_consumed_total":
                key = (sample.labels["topic"], sample.labels["outcome"])
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def test_every_service_serves_prometheus_metrics(traced):
    stack, _receiver, _instance_id = traced
    for service, port in stack.metrics_ports.items():
        topic = CONSUMED_TOPIC.get(service)  # None: a service this test does not know yet, any topic

        def consumed():
            totals = _scrape(port)
            return totals if sum(v for (t, _o), v in totals.items() if topic in (None, t)) > 0 else None

        wait_for(consumed, 10, interval=0.5, what=f"{service} counting records consumed from {topic}")
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_ports['api']}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for name in ("coffer_handler_duration_seconds_bucket", "coffer_records_produced_total",
                 "coffer_http_server_duration_seconds_bucket", "coffer_consumer_lag", "coffer_outbox_depth"):
        assert name in text, name


NOT_CONFIGURED = """
import sys
from opentelemetry import trace
from plumbing import metrics, tracing
tracing.setup("api")
port = metrics.setup("api")
provider = trace.get_tracer_provider()
processors = provider._active_span_processor._span_processors
with trace.get_tracer("t").start_as_current_span("s"):
    traceparent = tracing.current_traceparent()
print(len(processors), port, traceparent != "",
      any(m.startswith("opentelemetry.exporter.otlp") for m in sys.modules),
      "prometheus_client" in sys.modules)
"""


def test_nothing_is_exported_or_served_unless_configured():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and not k.endswith("METRICS_PORT")}
    out = subprocess.run([sys.executable, "-c", NOT_CONFIGURED], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == 0, out.stderr
    # no span processor and no exporter loaded, yet spans still carry context on the bus;
    # no metrics endpoint and not even the Prometheus client loaded
    assert out.stdout.split() == ["0", "None", "True", "False", "False"], out.stdout
