"""docker-compose.yml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_four_services_wired_together():
    services = _compose()["services"]
    assert set(services) >= {"postgres", "redis", "api", "worker"}
    api, worker = services["api"], services["worker"]
    for service in (api, worker):
        env = service["environment"]
        assert env["TUNELAB_BROKER_URL"].startswith("redis://redis:")
        assert (
            env["TUNELAB_DATABASE_URL"].startswith("postgresql+psycopg://")
            and "@postgres:" in env["TUNELAB_DATABASE_URL"]
        )
        assert env["TUNELAB_API_URL"] == "http://api:8000"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "serve" in api["command"] and "0.0.0.0" in api["command"]
    assert "worker" in worker["command"]
    assert worker["environment"]["TUNELAB_TOKEN"]


def test_worker_reserves_gpus_and_scales():
    worker = _compose()["services"]["worker"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    # `--scale worker=N` needs no fixed names or host ports.
    assert "container_name" not in worker and "ports" not in worker
    assert any(v.endswith(":/data/checkpoints") for v in worker["volumes"])


def test_dockerfile_installs_the_package_and_serves():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in text
    for folder in ("app/", "worker/", "tunelab/", "migrations/"):
        assert f"COPY {folder}" in text
    assert 'CMD ["tunelab", "serve"' in text
