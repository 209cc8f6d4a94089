"""No Docker engine runs where the tests run, so the deployment files are checked statically:
the image, the compose stack (Redis, three replicas, Envoy, a worker) and Envoy's config, and
that they agree with one another and with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from hyperdial.v1 import tuning_service_pb2

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
REPLICAS = ("hyperdial-1", "hyperdial-2", "hyperdial-3")
TUNING = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"].full_name
PROBE = ["CMD", "python", "-m", "hyperdial_server.healthcheck"]


def _yaml(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / name).read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, Any]:
    services = _yaml("compose.yaml")["services"]
    assert isinstance(services, dict)
    return services


def _instructions(name: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DOCKER / name).read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _stages(name: str) -> list[list[str]]:
    stages: list[list[str]] = []
    for line in _instructions(name):
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def _env(stage: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in stage:
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


# -- the server image ---------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_slim_and_ships_only_the_runtime() -> None:
    build, runtime = _stages("Dockerfile")
    assert build[0] == "FROM python:3.11-slim AS build"
    assert runtime[0] == "FROM python:3.11-slim"
    assert any('".[server]"' in line for line in build)
    copies = [line for line in runtime if line.startswith("COPY ")]
    # The runtime stage takes the installed environment only: no sources, no build tools.
    assert copies == ["COPY --from=build /opt/hyperdial /opt/hyperdial"]
    assert not any("apt-get" in line or "pip install" in line for line in runtime)


def test_dockerfile_runs_as_a_user_and_serves_on_every_interface() -> None:
    runtime = _stages("Dockerfile")[-1]
    users = [line for line in runtime if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    assert runtime.index(users[-1]) < len(runtime) - 1
    env = _env(runtime)
    assert env["HYPERDIAL_HOST"] == "0.0.0.0"
    assert env["PATH"].startswith("/opt/hyperdial/bin:")
    exposed = {p for line in runtime if line.startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == {env["HYPERDIAL_PORT"], env["HYPERDIAL_METRICS_PORT"]}
    assert runtime[-1] == 'ENTRYPOINT ["hyperdial", "serve"]'


def test_dockerfile_healthcheck_asks_the_grpc_health_service() -> None:
    checks = [line for line in _stages("Dockerfile")[-1] if line.startswith("HEALTHCHECK ")]
    assert len(checks) == 1
    command = checks[0].split(" CMD ", 1)[1]
    assert yaml.safe_load(command) == PROBE[1:]


def test_health_probe_loads_no_numerical_library() -> None:
    # It runs every few seconds in each container: it must stay light.
    code = (
        "import sys, hyperdial_server.healthcheck; "
        "print(sorted({'numpy', 'scipy', 'redis'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _ignored_allows(ignore_file: str, path: str) -> bool:
    """Whether a ``*``-then-``!allow`` .dockerignore lets ``path`` into the build context."""
    allowed = [
        line[1:].rstrip("/")
        for line in (DOCKER / ignore_file).read_text().splitlines()
        if line.startswith("!")
    ]
    return any(path == a or path.startswith(a + "/") for a in allowed)


def test_dockerignore_files_let_in_what_the_images_copy() -> None:
    for dockerfile in ("Dockerfile", "worker.Dockerfile"):
        sources = [
            src
            for line in _instructions(dockerfile)
            if line.startswith("COPY ") and "--from=" not in line
            for src in line.split()[1:-1]
        ]
        assert sources
        for src in sources:
            assert (ROOT / src).exists(), src
            assert _ignored_allows(f"{dockerfile}.dockerignore", src), (dockerfile, src)


# -- the compose stack --------------------------------------------------------------------------


def test_compose_has_redis_three_replicas_envoy_and_a_worker() -> None:
    assert set(_services()) == {"redis", *REPLICAS, "envoy", "worker"}


def test_compose_runs_redis_with_aof_a_volume_and_a_health_check() -> None:
    compose = _yaml("compose.yaml")
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    volume = next(v for v in redis["volumes"] if v.endswith(":/data"))
    assert volume.split(":")[0] in compose["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_replicas_share_redis_and_are_health_checked() -> None:
    services = _services()
    metrics_ports = set()
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert (DOCKER / replica["build"]["context"] / replica["build"]["dockerfile"]).is_file()
        env = replica["environment"]
        assert env["HYPERDIAL_REDIS_URL"] == "redis://redis:6379/0"
        assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
        assert replica["healthcheck"]["test"] == PROBE
        # docker stops a replica with SIGTERM and kills it only after stop_grace_period.
        assert int(replica["stop_grace_period"].rstrip("s")) > float(env["HYPERDIAL_GRACE"])
        (published,) = replica["ports"]
        host, container = published.split(":")
        assert container == env["HYPERDIAL_METRICS_PORT"]
        metrics_ports.add(host)
    assert len(metrics_ports) == len(REPLICAS)


def test_compose_envoy_fronts_the_replicas_and_the_worker_goes_through_it() -> None:
    services = _services()
    envoy = services["envoy"]
    mount = next(v for v in envoy["volumes"] if v.startswith("./envoy.yaml:"))
    config_path = mount.split(":")[1]
    command = envoy["command"]
    assert command[command.index("--config-path") + 1] == config_path
    assert "50051:50051" in envoy["ports"]
    assert {name: dep["condition"] for name, dep in envoy["depends_on"].items()} == {
        name: "service_healthy" for name in REPLICAS
    }
    worker = services["worker"]
    assert worker["build"] == {"context": "..", "dockerfile": "docker/worker.Dockerfile"}
    assert worker["environment"]["HYPERDIAL_TARGET"] == f"envoy:{_listener_port()}"
    assert "envoy" in worker["depends_on"]


# -- Envoy ---------------------------------------------------------------------------------------


def _envoy() -> dict[str, Any]:
    return _yaml("envoy.yaml")


def _listener_port() -> int:
    (listener,) = _envoy()["static_resources"]["listeners"]
    return int(listener["address"]["socket_address"]["port_value"])


def _cluster() -> dict[str, Any]:
    (cluster,) = _envoy()["static_resources"]["clusters"]
    assert isinstance(cluster, dict)
    return cluster


def test_envoy_routes_grpc_to_the_hyperdial_cluster() -> None:
    (listener,) = _envoy()["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    config = hcm["typed_config"]
    assert config["codec_type"] in ("AUTO", "HTTP2")
    assert config["http_filters"][-1]["name"] == "envoy.filters.http.router"
    routes = [r for vh in config["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert {r["route"]["cluster"] for r in routes} == {_cluster()["name"]}
    # No retry of a call that may have reached a replica (the client retries with request_id).
    for r in routes:
        retry_on = set(r["route"].get("retry_policy", {}).get("retry_on", "").split(","))
        assert retry_on <= {"", "connect-failure", "refused-stream"}


def test_envoy_cluster_is_the_three_replicas_over_http2() -> None:
    cluster = _cluster()
    assert cluster["type"] == "STRICT_DNS"
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in options["explicit_http_config"]
    endpoints = [
        e["endpoint"]["address"]["socket_address"]
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]
    assert sorted(e["address"] for e in endpoints) == list(REPLICAS)
    assert set(REPLICAS) <= set(_services())
    image_port = _env(_stages("Dockerfile")[-1])["HYPERDIAL_PORT"]
    assert {str(e["port_value"]) for e in endpoints} == {image_port}


def test_envoy_health_checks_the_tuning_service_over_grpc() -> None:
    (check,) = _cluster()["health_checks"]
    assert check["grpc_health_check"]["service_name"] == TUNING
    assert check["unhealthy_threshold"] >= 1 and check["healthy_threshold"] >= 1
    assert check["interval"] and check["timeout"]


def test_envoy_typed_configs_are_v3_envoy_types() -> None:
    types: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "@type" in node:
                types.append(node["@type"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(_envoy())
    assert types
    for t in types:
        assert re.fullmatch(r"type\.googleapis\.com/envoy\.[a-z_.0-9]+\.v3\.[A-Za-z]+", t), t


# -- the worker image ----------------------------------------------------------------------------


def test_worker_image_installs_from_the_lock_file_and_keeps_the_repository_layout() -> None:
    (stage,) = _stages("worker.Dockerfile")
    assert stage[0].startswith("FROM node:")
    assert any(line.startswith("RUN npm ci") for line in stage)
    workdir = next(line.split()[1] for line in stage if line.startswith("WORKDIR "))
    # worker.js loads ../../protos relative to its own directory.
    assert workdir == "/app/examples/node"
    assert "COPY protos /app/protos" in stage
    users = [line for line in stage if line.startswith("USER ")]
    assert users and users[-1] != "USER root"
    assert stage[-1] == 'ENTRYPOINT ["node", "worker.js"]'
    assert (ROOT / "examples" / "node" / "package-lock.json").is_file()


def test_docker_readme_says_how_to_run_the_stack() -> None:
    text = (DOCKER / "README.md").read_text()
    assert "docker compose -f docker/compose.yaml up --build" in text
    for name in ("envoy", "redis", "worker", *REPLICAS):
        assert name in text
