"""No Docker engine runs where the tests run, so the deployment files are checked statically:
the image, the compose stack (Redis, three replicas, Envoy, a worker) and Envoy's config, and
that they agree with one another and with the code."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from hyperdial.v1 import tuning_service_pb2
from hyperdial_server.server import STOP_BOUND

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest and mypy bring tomli on Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
REPLICAS = ("hyperdial-1", "hyperdial-2", "hyperdial-3")
TUNING = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"].full_name
PROBE = ["CMD", "python", "-m", "hyperdial_server.healthcheck"]
#: image:X.Y.Z..., a full version (a floating tag like 3.12-slim or 7-alpine moves under you).
PINNED_TAG = re.compile(r"v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?")
#: Compose's ${NAME:-default}: what a published address is when NAME is not set.
DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


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


def _base(stage: list[str]) -> str:
    """``python:3.12.12-slim-trixie`` for ``FROM python:3.12.12-slim-trixie AS build``."""
    return stage[0].split()[1]


def image_python() -> str:
    """The Python version of the server image (``3.12.12``), from its base image's tag."""
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-\w+", _base(_stages("Dockerfile")[-1]))
    assert match, _base(_stages("Dockerfile")[-1])
    return match.group(1)


def test_dockerfile_is_multi_stage_slim_and_ships_only_the_runtime() -> None:
    build, runtime = _stages("Dockerfile")
    assert build[0].endswith(" AS build")
    # Both stages on one base: the environment built in one runs on the other's Python.
    assert _base(build) == _base(runtime)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", _base(runtime))
    assert any('[server]"' in line for line in build)
    copies = [line for line in runtime if line.startswith("COPY ")]
    # The runtime stage takes the installed environment only: no sources, no build tools.
    assert copies == ["COPY --from=build /opt/hyperdial /opt/hyperdial"]
    assert not any("apt-get" in line or "pip install" in line for line in runtime)


def _user(stage: list[str]) -> tuple[int, int]:
    """The numeric ``USER uid:gid`` the stage ends with, checked to be created in the stage."""
    users = [line for line in stage if line.startswith("USER ")]
    assert users, "no USER: the process would run as root"
    match = re.fullmatch(r"USER (\d+):(\d+)", users[-1])
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert match, users[-1]
    uid, gid = int(match.group(1)), int(match.group(2))
    assert uid != 0 and gid != 0
    assert stage.index(users[-1]) < len(stage) - 1
    created = " ".join(line for line in stage if line.startswith("RUN "))
    assert re.search(rf"groupadd [^&]*--gid {gid}\b", created), "the group is not created"
    assert re.search(rf"useradd [^&]*--uid {uid} --gid {gid}\b", created), "no such user"
    return uid, gid


def server_user() -> tuple[int, int]:
    """The server image's uid and gid (the Kubernetes manifests run as the same)."""
    return _user(_stages("Dockerfile")[-1])


def test_images_run_as_a_numeric_non_root_user_with_its_group() -> None:
    assert server_user() == (10001, 10001)
    (worker,) = _stages("worker.Dockerfile")
    assert _user(worker) == (10001, 10001)
    # Nothing handed to that user: the code stays root's, readable but not writable by it.
    for name in ("Dockerfile", "worker.Dockerfile"):
        assert not any("--chown" in line or "chmod" in line for line in _instructions(name))


def test_base_images_are_pinned_to_full_versions() -> None:
    bases = [
        _base(stage) for name in ("Dockerfile", "worker.Dockerfile") for stage in _stages(name)
    ]
    images = [s["image"] for s in _services().values() if "image" in s and "build" not in s]
    assert bases and {"redis", "envoy"} <= {s for s, v in _services().items() if "image" in v}
    for image in bases + images:
        tag = image.partition(":")[2]
        assert PINNED_TAG.fullmatch(tag), f"{image}: not pinned to a full version"


def test_dockerfile_runs_as_a_user_and_serves_on_every_interface() -> None:
    runtime = _stages("Dockerfile")[-1]
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


# -- the constraints file ------------------------------------------------------------------------


def _lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_lock", DOCKER / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (DOCKER / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9A-Za-z.+!-]*)", line)
        assert match, f"not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{name} pinned twice"
        pins[name] = Version(match.group(2))
    return pins


def project() -> dict[str, Any]:
    """The ``[project]`` table of pyproject.toml."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(table, dict)
    return table


def _server_requirements() -> list[Requirement]:
    """What ``pip install .[server]`` asks for, from pyproject.toml."""
    table = project()
    return [
        Requirement(r) for r in table["dependencies"] + table["optional-dependencies"]["server"]
    ]


def _image_environment() -> dict[str, str]:
    """Marker values of the image's Python, where they may differ from this one's."""
    full = image_python()
    return {"python_version": full.rsplit(".", 1)[0], "python_full_version": full, "extra": ""}


def test_constraints_pin_every_server_requirement_within_its_bounds() -> None:
    pins = _pins()
    for requirement in _server_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned"
        # A bound raised in pyproject.toml without regenerating the file fails here.
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_constraints_pin_the_whole_runtime_and_nothing_else() -> None:
    """Transitive dependencies too: an unpinned one would float at every build. Walks the
    requirements of the installed distributions, with the markers of the image's Python."""
    environment = _image_environment()
    needed: set[str] = set()
    todo = list(_server_requirements())
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        for line in importlib.metadata.requires(name) or []:
            todo.append(Requirement(line))
    pins = _pins()
    assert needed <= set(pins), f"not pinned: {sorted(needed - set(pins))}"
    # Besides the runtime: the build backend, and packaging (which wheel needs).
    build = {canonicalize_name(n) for n in _lock_module().BUILD_TOOLS}
    assert set(pins) - needed == build | {"packaging"}


def test_constraints_were_resolved_for_the_image_python() -> None:
    header = (DOCKER / "constraints.txt").read_text()
    python = _image_environment()["python_version"]
    assert f"# Resolved for Python {python} on Linux." in header
    assert _lock_module().image_python() == python


def test_dockerfile_installs_everything_through_the_constraints() -> None:
    build = _stages("Dockerfile")[0]
    assert "COPY docker/constraints.txt ./" in build
    assert (ROOT / "docker" / "constraints.txt").is_file()
    installs = [
        part
        for line in build
        if line.startswith("RUN ")
        for part in line.split("&&")
        if "pip install" in part
    ]
    assert len(installs) == 2  # the build backend, then the server with its dependencies
    for command in installs:
        assert "-c constraints.txt" in command, command
    # The project's wheel is built by the pinned backend, not an isolated one fetched anew.
    assert any("--no-build-isolation" in line for line in build)
    assert any("--only-binary=:all:" in part and "[server]" in part for part in installs)


def test_lock_script_renders_pip_report_as_sorted_pins() -> None:
    report = {
        "install": [
            {"metadata": {"name": "hyperdial", "version": "0.1.0"}, "is_direct": True},
            {"metadata": {"name": "typing_extensions", "version": "4.16.0"}, "is_direct": False},
            {"metadata": {"name": "Grpcio", "version": "1.85.3"}, "is_direct": False},
        ]
    }
    text = _lock_module().render(report, "3.12")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["grpcio==1.85.3", "typing-extensions==4.16.0"]
    assert "# Resolved for Python 3.12 on Linux." in text


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
        # Past the grace, the server still takes up to STOP_BOUND to close.
        grace = float(env["HYPERDIAL_GRACE"]) + STOP_BOUND
        assert int(replica["stop_grace_period"].rstrip("s")) >= grace
        (published,) = replica["ports"]
        _, host, container = _published(published)
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
    assert (LOOPBACK, str(_listener_port()), str(_listener_port())) in map(
        _published, envoy["ports"]
    )
    assert {name: dep["condition"] for name, dep in envoy["depends_on"].items()} == {
        name: "service_healthy" for name in REPLICAS
    }
    worker = services["worker"]
    assert worker["build"] == {"context": "..", "dockerfile": "docker/worker.Dockerfile"}
    assert worker["environment"]["HYPERDIAL_TARGET"] == f"envoy:{_listener_port()}"
    # Started once Envoy answers, not once its container exists.
    assert worker["depends_on"]["envoy"]["condition"] == "service_healthy"


LOOPBACK = "127.0.0.1"


def _published(port: str) -> tuple[str, str, str]:
    """(host address, host port, container port) of a compose ``ports`` entry, the address
    as it is when no variable is set (a ``${NAME:-default}`` counts as its default)."""
    resolved = DEFAULTED.sub(lambda m: m.group(2), port)
    assert "$" not in resolved, f"{port}: a variable without a default"
    parts = resolved.split(":")
    # A bare "HOST_PORT:CONTAINER_PORT" listens on every interface.
    assert len(parts) == 3, f"{port}: no host address (published on every interface)"
    return parts[0], parts[1], parts[2]


def test_compose_publishes_on_loopback_unless_told_otherwise() -> None:
    published = 0
    variables: set[str] = set()
    for name, service in _services().items():
        for port in service.get("ports", []):
            address = _published(port)[0]
            assert address == LOOPBACK, (name, port)
            variables.update(m.group(1) for m in DEFAULTED.finditer(port))
            published += 1
    assert published >= len(REPLICAS) + 2
    # One documented switch widens them deliberately.
    (variable,) = variables
    assert f"{variable}=0.0.0.0 docker compose" in (DOCKER / "README.md").read_text()


def test_compose_never_widens_envoy_admin() -> None:
    admin = _envoy()["admin"]["address"]["socket_address"]["port_value"]
    (entry,) = [p for p in _services()["envoy"]["ports"] if p.endswith(f":{admin}")]
    # A literal address: the admin page can stop Envoy and rewrite its state.
    assert entry == f"{LOOPBACK}:{admin}:{admin}"


def test_compose_envoy_health_check_asks_its_admin_ready_endpoint() -> None:
    check = _services()["envoy"]["healthcheck"]
    test = check["test"]
    # The envoyproxy/envoy image (Ubuntu) has bash but neither curl nor wget.
    assert test[:3] == ["CMD", "bash", "-c"]
    admin = _envoy()["admin"]["address"]["socket_address"]["port_value"]
    assert f"/dev/tcp/127.0.0.1/{admin}" in test[3]
    assert "GET /ready HTTP/1.1" in test[3] and "' 200 '" in test[3]
    assert check["interval"] and check["timeout"] and check["retries"] >= 1


def test_compose_replicas_have_a_read_only_root_and_no_capabilities() -> None:
    for name in REPLICAS:
        replica = _services()[name]
        assert replica["read_only"] is True
        # The one place the server writes (the sampler processes' sockets).
        assert replica["tmpfs"] == ["/tmp"]
        assert replica["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in replica["security_opt"]


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


def test_envoy_retries_go_to_another_replica() -> None:
    (listener,) = _envoy()["static_resources"]["listeners"]
    config = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = [r for vh in config["route_config"]["virtual_hosts"] for r in vh["routes"]]
    for route in routes:
        policy = route["route"]["retry_policy"]
        (predicate,) = policy["retry_host_predicate"]
        assert predicate["name"] == "envoy.retry_host_predicates.previous_hosts"
        assert predicate["typed_config"]["@type"] == (
            "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
        )
        # Enough picks to find a replica not tried yet among the three.
        assert policy["host_selection_retry_max_attempts"] >= len(REPLICAS)


def test_envoy_ejects_a_failing_replica_but_never_most_of_them() -> None:
    detection = _cluster()["outlier_detection"]
    # UNAVAILABLE and DEADLINE_EXCEEDED count as gateway errors (503, 504), INTERNAL as a 5xx.
    assert detection["consecutive_gateway_failure"] >= 1
    assert detection["consecutive_5xx"] >= 1
    # Envoy's default for this one is 0: counted, never enforced.
    assert detection["enforcing_consecutive_gateway_failure"] > 0
    assert detection.get("enforcing_consecutive_5xx", 100) > 0
    # Envoy ejects one more while the share already out is below this: at most one replica,
    # so a Redis outage (every replica answers UNAVAILABLE) does not empty the cluster.
    assert 0 < detection["max_ejection_percent"] <= 100 / len(REPLICAS)
    assert detection["interval"] and detection["base_ejection_time"]


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
    assert stage[-1] == 'ENTRYPOINT ["node", "worker.js"]'
    assert (ROOT / "examples" / "node" / "package-lock.json").is_file()


def test_worker_image_copies_every_local_module_and_file_the_worker_loads() -> None:
    (stage,) = _stages("worker.Dockerfile")
    copied: set[str] = set()
    for line in stage:
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = line.split()[1:]
            copied.update(src.rstrip("/") for src in sources)
    node = ROOT / "examples" / "node"
    # Local modules reached from worker.js by require('./x'), transitively.
    todo, modules = ["worker.js"], set()
    while todo:
        name = todo.pop()
        if name in modules:
            continue
        modules.add(name)
        text = (node / name).read_text()
        todo += [
            f"{m}.js" if not m.endswith(".js") else m
            for m in re.findall(r"require\('\./([\w.-]+)'\)", text)
        ]
    assert "hyperdial.js" in modules
    for name in modules:
        assert f"examples/node/{name}" in copied, name
    # The google.rpc protos the client module decodes error details with.
    assert (node / "protos" / "google" / "rpc" / "error_details.proto").is_file()
    assert "examples/node/protos" in copied


def test_docker_readme_says_how_to_run_the_stack() -> None:
    text = (DOCKER / "README.md").read_text()
    assert "docker compose -f docker/compose.yaml up --build" in text
    for name in ("envoy", "redis", "worker", *REPLICAS):
        assert name in text
