"""`/metrics`: only for allowed addresses or the metrics token; one sum over all worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import tenantry
from tenantry.api.app import create_app
from tenantry.config import load_settings

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def make_client(backend, clean_db) -> Iterator[Any]:
    """`make_client(host, **settings)`: a client seen by the app as coming from `host`."""

    def make(host: str, **overrides: Any) -> TestClient:
        app = create_app(load_settings(database_url=backend.app_url, **overrides), db=clean_db)
        return TestClient(app, client=(host, 50000))

    return make


def _requests_total(text: str, route: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "tenantry_http_requests":
            return sum(
                s.value for s in family.samples if s.name.endswith("_total") and s.labels["route"] == route
            )
    return 0.0


# --- who may read it -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_metrics_200_for_loopback_by_default(make_client, host):
    c = make_client(host)
    c.get("/healthz")
    r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'route="/healthz"' in r.text


def test_metrics_counts_by_route_template_not_by_path(make_client, personas):
    c = make_client("127.0.0.1")
    c.get("/api/v1/tenants/acme", headers={"Authorization": f"Bearer {personas.tokens['acme_member']}"})
    r = c.get("/metrics")
    assert 'route="/api/v1/tenants/{tenant}"' in r.text
    assert 'route="/api/v1/tenants/acme"' not in r.text


@pytest.mark.parametrize("host", ["testclient", "10.1.2.3", "2001:db8::1", "127.0.0.2"])
def test_metrics_404_like_an_unknown_path_for_other_addresses(make_client, host):
    c = make_client(host)
    r = c.get("/metrics")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json() == c.get("/no-such-path").json()  # nothing tells it apart from a missing route
    assert "tenantry_http_requests" not in r.text


def test_metrics_allow_list_takes_networks_and_replaces_loopback(make_client):
    allow = "10.0.0.0/8, 192.0.2.7"
    assert make_client("10.200.3.4", metrics_allow=allow).get("/metrics").status_code == 200
    assert make_client("192.0.2.7", metrics_allow=allow).get("/metrics").status_code == 200
    assert make_client("192.0.2.8", metrics_allow=allow).get("/metrics").status_code == 404
    assert make_client("127.0.0.1", metrics_allow=allow).get("/metrics").status_code == 404


def test_metrics_empty_allow_list_refuses_even_loopback(make_client):
    assert make_client("127.0.0.1", metrics_allow="").get("/metrics").status_code == 404


def test_metrics_a_relayed_request_is_not_allowed_by_the_proxy_address(make_client):
    """Behind a reverse proxy on the same host every caller would look like 127.0.0.1."""
    c = make_client("127.0.0.1")
    assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert c.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 404


def test_metrics_token_lets_any_address_in(make_client):
    c = make_client("203.0.113.9", metrics_token=TOKEN)
    assert c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    relayed = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"}
    assert c.get("/metrics", headers=relayed).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer ", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN],
)
def test_metrics_wrong_or_missing_token_404(make_client, authorization):
    c = make_client("203.0.113.9", metrics_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    assert c.get("/metrics", headers=headers).status_code == 404


def test_metrics_without_a_configured_token_no_bearer_value_opens_it(make_client):
    c = make_client("203.0.113.9")
    for value in ("Bearer ", "Bearer None", "Bearer null"):
        assert c.get("/metrics", headers={"Authorization": value}).status_code == 404


def test_metrics_token_shorter_than_16_characters_refused_at_start():
    from tenantry.config import ConfigError

    with pytest.raises(ConfigError, match="TENANTRY_METRICS_TOKEN"):
        load_settings(metrics_token="short")
    assert load_settings(metrics_token="").metrics_token is None


def test_metrics_allow_bad_entry_refused_at_start():
    from tenantry.config import ConfigError

    for bad in ("10.0.0.1/8", "localhost", "10.0.0.0/33"):
        with pytest.raises(ConfigError, match="TENANTRY_METRICS_ALLOW"):
            load_settings(metrics_allow=bad)


def test_metrics_token_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TENANTRY_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("TENANTRY_METRICS_ALLOW", "10.0.0.0/8,::1")
    s = load_settings()
    assert s.metrics_token is not None and s.metrics_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s)
    assert [str(n) for n in s.metrics_allow] == ["10.0.0.0/8", "::1/128"]


# --- several worker processes ------------------------------------------------------------------

_WRITER = """
from prometheus_client import Counter
c = Counter("tenantry_http_requests_total", "HTTP requests", ["method", "route", "status"])
c.labels("GET", "/from-another-process", "200").inc(3)
"""


def test_metrics_multiprocess_dir_sums_what_other_processes_wrote(make_client, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _WRITER], env=env, check=True, timeout=60)
    subprocess.run([sys.executable, "-c", _WRITER], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    r = make_client("127.0.0.1").get("/metrics")
    assert r.status_code == 200
    assert _requests_total(r.text, "/from-another-process") == 6.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_with_counters(tmp: Path) -> set[str]:
    return {p.name.split("_")[-1].removesuffix(".db") for p in tmp.glob("tenantry-metrics-*/counter_*.db")}


def test_serve_with_two_workers_metrics_sums_both(tmp_path):
    """`tenantry serve --workers 2` for real: the count of /healthz answers in /metrics is every
    answer sent, whichever worker served it, and no answer names the server."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(tenantry.__file__).resolve().parents[1]),  # these sources, not another
        "TENANTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "TMPDIR": str(tmp),  # where serve creates its metrics directory
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "tenantry"]
    init = subprocess.run([*cmd, "init"], env=env, timeout=120, capture_output=True, text=True)
    assert init.returncode == 0, init.stdout + init.stderr
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe nobody reads (it could fill up)
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=log, stderr=log
    )
    answered = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    answered += 1
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not start: " + (tmp_path / "serve.log").read_text())

        def one(_: int) -> int:
            with httpx.Client(timeout=5) as c:  # a new connection each time, any worker may take it
                return int(c.get(base + "/healthz").status_code == 200)

        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(_pids_with_counters(tmp)) < 2 and time.monotonic() < deadline:
                answered += sum(pool.map(one, range(40)))
        assert len(_pids_with_counters(tmp)) == 2, "both workers should have served requests"

        for _ in range(6):  # whichever worker answers, it reports the sum of both
            with httpx.Client(timeout=5) as c:
                r = c.get(base + "/metrics")
            assert r.status_code == 200
            assert "server" not in r.headers
            assert _requests_total(r.text, "/healthz") == answered
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    assert list(tmp.glob("tenantry-metrics-*")) == []  # removed at exit
