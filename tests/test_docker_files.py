"""No Docker engine runs where the tests run, so the deployment files are checked statically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_redis_with_aof_and_the_server_on_it() -> None:
    services = _compose()["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"]
    server = services["hyperdial"]
    assert server["environment"]["HYPERDIAL_REDIS_URL"].startswith("redis://redis:")
    assert server["depends_on"]["redis"]["condition"] == "service_healthy"
    assert server["build"]["dockerfile"] == "docker/Dockerfile"
    assert "50051:50051" in server["ports"]


def test_dockerfile_is_slim_non_root_and_serves() -> None:
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all("slim" in line for line in froms)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert any('".[server]"' in line for line in lines)
    assert lines[-1] == 'ENTRYPOINT ["hyperdial", "serve"]'
    assert any("HYPERDIAL_HOST=0.0.0.0" in line for line in lines)
