"""Operating Cutline: health, readiness, metrics, production settings, static files.

Real components throughout: real workers for readiness and metrics, ``manage.py`` in
processes of their own for the settings and the CLI (as an operator's shell runs it),
a real Daphne for the static files.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from cluster.devserver.children import Child, free_port, port_open, stop_all, wait_until
from cluster.devserver.launcher import BASE_DIR, Launcher
from snapshots import services
from snapshots.models import Snapshot
from tests.integration.engine_helpers import (
    await_live_shards,
    await_traffic,
    cli_env,
    manage_argv,
    poll,
    set_run_status_everywhere,
    start_demo_run,
    take_snapshot,
)

README = BASE_DIR / "README.md"


def ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def scrape(client: Client, **headers: str) -> dict[str, float]:
    """``/metrics`` as {sample with its labels: value}, parsed by prometheus-client's own parser."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


# --- health, readiness and metrics with real workers -----------------------------------


def test_readiness_and_metrics_follow_the_cluster(cluster_workers: Callable[[int], list[Child]]) -> None:
    workers = cluster_workers(2)
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}

    run = start_demo_run("complete-4", "bank", rate=10)
    await_live_shards(2, workers)
    status, body = ready(client)
    assert status == 200, body
    assert body["ready"] is True
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "broker": True,
        "workers": True,
    }
    assert body["checks"]["workers"]["live"] == ["0/2", "1/2"]
    assert body["checks"]["broker"]["transport"] in ("redis", "amqp")

    # One complete snapshot, then the run paused, so the counters hold still while
    # the scrape and the services read them.
    await_traffic(run, 20, workers)
    export = take_snapshot(run)
    assert export["status"] == Snapshot.Status.COMPLETE, export
    set_run_status_everywhere(run, "paused", 2, workers)
    live = services.run_status(run)
    metrics = scrape(client)
    labels = f'run="{run.pk}",topology="{run.topology.name}"'
    assert metrics['cutline_snapshots{algorithm="chandy-lamport",status="complete"}'] == 1
    assert metrics['cutline_snapshots{algorithm="lai-yang",status="complete"}'] == 0
    assert metrics['cutline_snapshot_duration_seconds_count{algorithm="chandy-lamport"}'] == 1
    assert metrics['cutline_snapshot_duration_seconds_bucket{algorithm="chandy-lamport",le="+Inf"}'] == 1
    snapshot = Snapshot.objects.get()
    assert snapshot.finished_at is not None
    took = (snapshot.finished_at - snapshot.started_at).total_seconds()
    assert metrics[f"cutline_run_last_snapshot_duration_seconds{{{labels}}}"] == pytest.approx(took)
    assert metrics[f"cutline_run_markers_sent_total{{{labels}}}"] == live["markers_sent"] > 0
    assert metrics[f"cutline_run_markers_received_total{{{labels}}}"] == live["markers_received"] > 0
    assert metrics[f"cutline_run_messages_sent_total{{{labels}}}"] == live["messages_sent"] > 0
    assert metrics[f"cutline_run_messages_in_flight{{{labels}}}"] == live["messages_in_flight"]
    assert metrics[f"cutline_run_duplicates_total{{{labels}}}"] == live["duplicates"]
    assert metrics[f"cutline_run_retransmissions_total{{{labels}}}"] == live["retransmissions"]
    assert metrics[f"cutline_run_restores_total{{{labels}}}"] == 0
    assert metrics['cutline_runs{status="paused"}'] == 1
    assert metrics["cutline_workers_live{}"] == 2
    assert metrics['cutline_worker_up{shard="1/2"}'] == 1
    assert metrics["cutline_redis_up{}"] == 1

    # The worker of shard 1 goes: its processes (the odd ones) have no worker, so the
    # instance is not ready, and says which processes of which run are left alone.
    stop_all([workers[1]])
    status, body = poll(
        lambda: ready(client),
        lambda answer: answer[0] == 503,
        what="/readyz to notice the missing worker",
        timeout=30.0,
        workers=workers[:1],
    )
    assert body["ready"] is False
    assert body["checks"]["workers"]["live"] == ["0/2"]
    assert body["checks"]["workers"]["unserved"] == {str(run.pk): run.process_names[1::2]}
    assert all(body["checks"][name]["ok"] for name in ("database", "redis", "broker"))
    assert scrape(client)["cutline_workers_live{}"] == 1


def test_readyz_needs_no_worker_while_no_run_is_active(db: None) -> None:
    status, body = ready(Client())
    assert status == 200, body
    assert body["checks"]["workers"] == {"ok": True, "live": [], "active_runs": 0, "unserved": {}}


# --- who may read /metrics ---------------------------------------------------------------


def test_metrics_from_loopback_by_default_and_refused_elsewhere(db: None) -> None:
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    refused = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert refused.status_code == 403
    assert b"cutline_" not in refused.content


def test_metrics_with_the_token_only(db: None) -> None:
    token = secrets.token_urlsafe(32)
    with override_settings(CUTLINE={**settings.CUTLINE, "METRICS_NETWORKS": [], "METRICS_TOKEN": token}):
        client = Client(REMOTE_ADDR="127.0.0.1")
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}x").status_code == 403
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {token}").status_code == 403
        assert "cutline_redis_up{}" in scrape(client, HTTP_AUTHORIZATION=f"Bearer {token}")


# --- production settings, checked by Django in a process of its own ----------------------


def documented_production_env() -> dict[str, str]:
    """The ``production.env`` block of README.md, with a fresh SECRET_KEY for its placeholder."""
    block = re.search(r"```sh\n# production\.env\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no production.env block"
    pairs = dict(line.split("=", 1) for line in block.group(1).splitlines() if "=" in line and not line.startswith("#"))
    assert pairs.get("SECRET_KEY", "").startswith("<")
    return {**pairs, "SECRET_KEY": secrets.token_urlsafe(50)}


def manage(*args: str, env: dict[str, str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(manage_argv(*args), env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=timeout)


def shell_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Another shell's environment: nothing of this session's but Redis and the venv."""
    keep = ("PATH", "HOME", "LANG", "REDIS_URL")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "CUTLINE_VAR_DIR": str(var_dir), **extra}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path: Path) -> None:
    production = documented_production_env()
    bare = shell_env(tmp_path, DEBUG="0", SECRET_KEY=production["SECRET_KEY"])
    warned = manage("check", "--deploy", "--fail-level", "WARNING", env=bare)
    assert warned.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in warned.stderr, warned.stderr

    clean = manage("check", "--deploy", "--fail-level", "WARNING", env=shell_env(tmp_path, **production))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no issues" in clean.stdout


def test_a_bad_proxy_header_setting_is_named(tmp_path: Path) -> None:
    done = manage("check", env=shell_env(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))
    assert done.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO,https" in done.stderr


def test_runtime_env_gives_another_shell_the_database(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: the CLI must try PostgreSQL and say so
    launcher = Launcher(workers=1, host="127.0.0.1", port=8000)
    launcher.var_dir, launcher.runtime_env = tmp_path, tmp_path / "runtime.env"
    database_url = f"postgres://cutline:pw@127.0.0.1:{port}/cutline"
    launcher._write_runtime_env(
        {"REDIS_URL": os.environ["REDIS_URL"], "DATABASE_URL": database_url, "CUTLINE_SHARDS": "2"}
    )
    assert stat.S_IMODE(launcher.runtime_env.stat().st_mode) == 0o600
    assert f"DATABASE_URL={database_url}\n" in launcher.runtime_env.read_text()

    shell = shell_env(tmp_path)
    read = manage(
        "shell", "-c", "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'])", env=shell
    )
    assert read.stdout.split()[-1] == "django.db.backends.postgresql", read.stdout + read.stderr

    done = manage("topology", "list", env=shell)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot use the postgresql database cutline" in done.stderr, done.stderr


def test_the_cli_on_a_database_without_tables_says_what_to_do(tmp_path: Path) -> None:
    done = manage("topology", "list", env=shell_env(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "no such table" in done.stderr
    assert "manage.py migrate" in done.stderr


def test_the_api_throttles_a_user_past_the_configured_rate(tmp_path: Path) -> None:
    env = shell_env(tmp_path, CUTLINE_THROTTLE_USER="3/min")
    assert manage("migrate", "-v0", env=env, timeout=300).returncode == 0
    code = (
        "from django.contrib.auth.models import User; from django.test import Client;"
        "c = Client(HTTP_HOST='localhost'); c.force_login(User.objects.create_superuser('t'));"
        "print([c.get('/api/topologies/').status_code for _ in range(4)])"
    )
    done = manage("shell", "-c", code, env=env)
    assert done.stdout.strip().splitlines()[-1] == "[200, 200, 200, 429]", done.stdout + done.stderr


# --- static files ----------------------------------------------------------------------


def test_daphne_serves_static_files_compressed_with_cache_headers(tmp_path: Path) -> None:
    env = shell_env(tmp_path, PYTHONUNBUFFERED="1")
    collected = manage("collectstatic", "--noinput", "-v0", env=env, timeout=300)
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    daphne = Child.start(
        "daphne",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        env=env,
        cwd=BASE_DIR,
        log_path=tmp_path / "daphne.log",
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), what="Daphne to listen", timeout=60.0, children=[daphne])
        url = f"http://127.0.0.1:{port}/static/vendor/cytoscape/cytoscape.min.js"
        source = (BASE_DIR / "static/vendor/cytoscape/cytoscape.min.js").read_bytes()
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            headers = response.headers
        assert headers["Content-Encoding"] == "gzip"
        assert len(body) < len(source) / 2
        assert gzip.decompress(body) == source
        assert headers["Cache-Control"] == "max-age=3600, public"
        assert headers["ETag"]
        assert "Access-Control-Allow-Origin" not in headers

        again = urllib.request.Request(url, headers={"If-None-Match": headers["ETag"]})
        with pytest.raises(urllib.error.HTTPError) as unchanged:
            urllib.request.urlopen(again, timeout=30)
        assert unchanged.value.code == 304
    finally:
        stop_all([daphne])


# --- Flower ------------------------------------------------------------------------------


def flower_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_flower_shows_the_broker_and_its_queues(cluster_workers: Callable[[int], list[Child]], tmp_path: Path) -> None:
    workers = cluster_workers(1)
    run = start_demo_run("complete-4", "bank", rate=10)
    port = free_port()
    flower = Child.start(
        "flower",
        [sys.executable, "-m", "celery", "-A", "config", "flower", "--address=127.0.0.1", f"--port={port}"],
        env=cli_env(),
        cwd=BASE_DIR,
        log_path=tmp_path / "flower.log",
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), what="Flower to listen", timeout=60.0, children=[flower])
        status, page = flower_get(port, "/broker")
        assert status == 200, page[:500]
        assert b"redis://" in page
        # The queues the workers consume, once Flower has asked them (its inspector).
        poll(
            lambda: flower_get(port, "/broker"),
            lambda answer: f"cutline.r{run.pk}.".encode() in answer[1],
            what="Flower's broker page to list the run's queues",
            timeout=60.0,
            workers=[*workers, flower],
        )
    finally:
        stop_all([flower])
