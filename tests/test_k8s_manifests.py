"""No Kubernetes cluster runs where the tests run, so the manifests of deploy/k8s are checked
statically: that kustomize takes every one of them, and that they agree with one another, with
the server image and with the server's code (its flags, variables, health service and stop)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hyperdial.v1 import tuning_service_pb2
from hyperdial_server import cli
from hyperdial_server.server import STOP_BOUND
from tests.test_docker_files import project, server_user

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
SERVER_CODE = ROOT / "server" / "hyperdial_server"
TUNING = tuning_service_pb2.DESCRIPTOR.services_by_name["TuningService"].full_name
IMAGE = "hyperdial"
QUANTITY = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict), path
                docs.append(doc)
    return docs


def _kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _all(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def _one(kind: str) -> dict[str, Any]:
    (doc,) = _all(kind)
    return doc


def _pod() -> dict[str, Any]:
    spec = _one("Deployment")["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _container() -> dict[str, Any]:
    (container,) = [c for c in _pod()["containers"] if c["name"] == "hyperdial"]
    assert isinstance(container, dict)
    return container


def _env() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container()["env"]}


def _container_port(name: str) -> int:
    (port,) = [p["containerPort"] for p in _container()["ports"] if p["name"] == name]
    assert isinstance(port, int)
    return port


def _selector() -> dict[str, str]:
    labels = _one("Deployment")["spec"]["selector"]["matchLabels"]
    assert isinstance(labels, dict) and labels
    return labels


def _bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]i?)?", quantity)
    assert match, quantity
    return int(match.group(1)) * QUANTITY[match.group(2) or ""]


def _version() -> str:
    version = project()["version"]
    assert isinstance(version, str)
    return version


# -- the set of manifests ------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _kustomization()
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    # A manifest left out would silently not be applied; one listed but missing fails kustomize.
    assert sorted(resources) == [p.name for p in _manifest_files()]
    for doc in _documents():
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
        # The namespace is chosen at apply time (kubectl -n, or an overlay's namespace:).
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]


def test_image_is_the_one_the_docs_build_at_the_project_version() -> None:
    assert _container()["image"] == IMAGE
    (image,) = _kustomization()["images"]
    assert image["name"] == IMAGE
    assert image["newTag"] == _version()
    build = f"docker build -f docker/Dockerfile -t {IMAGE}:{_version()} ."
    for readme in (K8S / "README.md", ROOT / "docker" / "README.md"):
        assert build in readme.read_text(), readme


# -- the Deployment, the Services and the PodDisruptionBudget agree -------------------------------


def test_ports_are_the_image_ports_and_the_services_target_them() -> None:
    env = _env()
    grpc_port = _container_port("grpc")
    metrics_port = _container_port("metrics")
    assert str(grpc_port) == env["HYPERDIAL_PORT"]["value"]
    assert str(metrics_port) == env["HYPERDIAL_METRICS_PORT"]["value"]
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M)
    assert exposed and set(exposed.group(1).split()) == {str(grpc_port), str(metrics_port)}
    for service in _all("Service"):
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert "grpc" in ports, service["metadata"]["name"]
        for name, port in ports.items():
            # By name: a container port renumbered in the Deployment follows.
            assert port["targetPort"] == name
            _container_port(name)
        assert ports["grpc"]["appProtocol"] == "grpc"


def test_services_select_the_replicas_one_headless() -> None:
    services = {s["metadata"]["name"]: s["spec"] for s in _all("Service")}
    template_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selector().items() <= template_labels.items()
    for spec in services.values():
        assert spec["selector"] == _selector()
    # One for clients that balance per call themselves (one DNS record per replica), one
    # virtual address for a mesh.
    headless = [name for name, spec in services.items() if spec.get("clusterIP") == "None"]
    virtual = [
        name
        for name, spec in services.items()
        if spec.get("type", "ClusterIP") == "ClusterIP" and spec.get("clusterIP") != "None"
    ]
    assert len(headless) == 1 and len(virtual) == 1
    assert not services[headless[0]].get("publishNotReadyAddresses", False)
    readme = (K8S / "README.md").read_text()
    assert f"dns:///{headless[0]}." in readme


def test_disruption_budget_keeps_replicas_serving_and_lets_drains_through() -> None:
    pdb = _one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"] == _selector()
    replicas = _one("Deployment")["spec"]["replicas"]
    assert replicas >= 2
    if "maxUnavailable" in pdb:
        assert 1 <= pdb["maxUnavailable"] < replicas
    else:
        assert 1 <= pdb["minAvailable"] < replicas
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    (spread,) = _pod()["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == _selector()


# -- probes and stopping -------------------------------------------------------------------------


def test_readiness_is_the_grpc_health_of_the_tuning_service() -> None:
    probe = _container()["readinessProbe"]
    assert set(probe) >= {"grpc", "periodSeconds", "failureThreshold"}
    # The kubelet's gRPC probe takes a port number only (no name).
    assert probe["grpc"] == {"port": _container_port("grpc"), "service": TUNING}


def _liveness_code() -> str:
    command = _container()["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"] and len(command) == 3
    code = command[2]
    assert isinstance(code, str)
    assert f"'127.0.0.1:{_container_port('grpc')}'" in code
    return code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert isinstance(port, int)
        return port


@pytest.fixture
def not_serving() -> Iterator[int]:
    """A gRPC health service reporting NOT_SERVING, as a replica does while Redis is away."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    for service in ("", TUNING):
        servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def _run_liveness(port: int) -> subprocess.CompletedProcess[str]:
    code = _liveness_code().replace(f"127.0.0.1:{_container_port('grpc')}", f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_liveness_passes_while_the_store_is_away(not_serving: int) -> None:
    # NOT_SERVING is an answer: the process is alive. Restarting every replica during a Redis
    # outage would only put them into crash-loop back-off when Redis is back.
    result = _run_liveness(not_serving)
    assert result.returncode == 0, result.stderr
    assert "grpc" not in _container()["livenessProbe"]


def test_liveness_fails_when_the_server_does_not_answer() -> None:
    result = _run_liveness(_free_port())
    assert result.returncode != 0


def test_termination_grace_covers_pre_stop_and_the_servers_stop() -> None:
    pod = _pod()
    pre_stop = _container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = float(_env()["HYPERDIAL_GRACE"]["value"])
    # The kubelet's clock runs from the start of preStop; after SIGTERM the server takes up
    # to HYPERDIAL_GRACE for calls and STOP_BOUND to close before it exits by itself.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + STOP_BOUND
    assert pre_stop >= 1


# -- security ------------------------------------------------------------------------------------


def test_pod_and_container_run_unprivileged_as_the_image_user() -> None:
    pod = _pod()
    uid, gid = server_user()
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container()["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert not container.get("privileged", False)
    assert "runAsUser" not in container or container["runAsUser"] == uid


def test_tmp_is_the_one_writable_directory() -> None:
    (mount,) = _container()["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    (volume,) = [v for v in _pod()["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume and volume["emptyDir"]["sizeLimit"]
    assert not mount.get("readOnly", False)


def test_no_service_account_token_and_no_service_links() -> None:
    pod = _pod()
    account = _one("ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    # A Service named "hyperdial" would otherwise set HYPERDIAL_PORT=tcp://...:50051 in the
    # container, which the server reads as its port.
    service_vars = {
        s["metadata"]["name"].upper().replace("-", "_") + "_PORT" for s in _all("Service")
    }
    assert "HYPERDIAL_PORT" in service_vars
    assert pod["enableServiceLinks"] is False


def test_resources_are_requested_and_memory_is_limited() -> None:
    resources = _container()["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert requests["cpu"] and requests["memory"]
    assert _bytes(limits["memory"]) >= _bytes(requests["memory"])
    # The sampler's default counts the node's cores, which a pod's memory limit does not.
    assert int(_env()["HYPERDIAL_SAMPLER_PROCESSES"]["value"]) >= 0


# -- Redis, and the server's own names -----------------------------------------------------------


def test_redis_url_comes_from_a_required_secret_the_readme_creates() -> None:
    source = _env()["HYPERDIAL_REDIS_URL"]["valueFrom"]
    assert set(source) == {"secretKeyRef"}  # a URL may carry a password: not a ConfigMap
    ref = source["secretKeyRef"]
    # Never started without it: an empty URL is the in-memory store, one per replica.
    assert ref["optional"] is False
    secrets = [s for s in _all("Secret") if s["metadata"]["name"] == ref["name"]]
    if secrets:
        (secret,) = secrets
        assert ref["key"] in {**secret.get("data", {}), **secret.get("stringData", {})}
    else:
        readme = (K8S / "README.md").read_text()
        assert f"create secret generic {ref['name']}" in readme
        assert f"--from-literal={ref['key']}=" in readme


def test_environment_names_are_the_servers_and_their_values_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = "\n".join(p.read_text() for p in SERVER_CODE.rglob("*.py"))
    values = {}
    for name, entry in _env().items():
        assert re.search(rf"[\"']{name}[\"']", code), f"{name}: the server reads no such variable"
        values[name] = entry.get("value", "redis://redis.example:6379/0")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    args = cli.build_parser().parse_args([])
    assert args.host == "0.0.0.0"
    assert args.port == _container_port("grpc")
    assert args.metrics_port == _container_port("metrics")
    assert args.grace == float(values["HYPERDIAL_GRACE"])
    assert args.redis == values["HYPERDIAL_REDIS_URL"]
    assert "args" not in _container() and "command" not in _container()  # the image's ENTRYPOINT


def test_readme_says_how_to_apply_and_what_to_change() -> None:
    text = (K8S / "README.md").read_text()
    assert "apply -k deploy/k8s" in text
    for topic in ("headless", "ClusterIP", "NetworkPolicy", "TLS", "digest"):
        assert topic in text, topic
