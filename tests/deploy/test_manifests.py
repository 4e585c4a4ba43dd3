"""The example deployments agree with the image, the settings and each other.

deploy/compose and deploy/kubernetes describe one production layout: one
PostgreSQL database, a one-shot `steward db upgrade`, several `steward serve`
replicas and exactly one `steward worker`. These tests read every file and
check what would otherwise break only on a real cluster. They cover the image
and its commands, the probes and ports and the user. They also check that
every variable is a setting that loads and every secret is a placeholder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from governance.settings import ENV_PREFIX, Settings, load_settings
from tests.support.dockerfile import Dockerfile, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
KUBERNETES = DEPLOY / "kubernetes"
# How every example marks a value the operator fills in: <lower-case-words>.
PLACEHOLDER = re.compile(r"<[a-z0-9-]+>")
# Names of settings that carry credentials even where no SecretStr declares
# them, such as connector options (STEWARD_CONNECTORS__VAULT__SECRET_ID).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY")
# Shapes of real credentials that must never appear in a committed file.
CREDENTIAL_SHAPES = re.compile(
    r"xox[abpre]-[0-9A-Za-z-]{6,}|xapp-[0-9A-Za-z-]{6,}|AKIA[0-9A-Z]{16}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|hvs\.[0-9A-Za-z_-]{20,}"
)
CONFIG_MOUNT = "/etc/steward"
# The containers' temporary directory, writable although the root is not.
CONTAINER_TMP = "/tmp"  # noqa: S108 - a path inside the container
MIGRATE = ["db", "upgrade"]


def _secret_variables(model: type[BaseModel], prefix: str) -> set[str]:
    """Return the environment names of every SecretStr setting in `model`."""
    names = set()
    for name, field in model.model_fields.items():
        variable = prefix + name.upper()
        members = get_args(field.annotation) or (field.annotation,)
        if SecretStr in members:
            names.add(variable)
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                names |= _secret_variables(member, variable + "__")
    return names


SECRET_VARIABLES = _secret_variables(Settings, ENV_PREFIX)


def _is_secret(variable: str) -> bool:
    return variable in SECRET_VARIABLES or bool(SECRET_NAME.search(variable))


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}:{number}: expected KEY=VALUE"
        values[key.strip()] = value.strip()
    return values


def _load_with_environment(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> Settings:
    """Load Settings exactly as a container would with `variables` set."""
    with monkeypatch.context() as patch:
        for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
            patch.delenv(name)
        for name, value in variables.items():
            patch.setenv(name, value)
        return load_settings()


@pytest.fixture(scope="module")
def image() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return f"steward:{project['project']['version']}"


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def exposed_port(dockerfile: Dockerfile) -> int:
    return int(dockerfile.final.one("EXPOSE").arguments)


def test_every_yaml_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(files) >= 7
    for path in files:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert documents, f"{path} is empty"
        assert all(isinstance(document, dict) for document in documents), path


def test_no_credential_committed() -> None:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            found = CREDENTIAL_SHAPES.search(text)
            assert found is None, f"{path} contains a credential: {found.group()[:8]}…"


def test_secret_variables_found() -> None:
    # The secret checks below rely on this list, and an empty one passes them.
    assert "STEWARD_DATABASE_PASSWORD" in SECRET_VARIABLES
    assert "STEWARD_SLACK__BOT_TOKEN" in SECRET_VARIABLES
    assert "STEWARD_SLACK__SIGNING_SECRET" in SECRET_VARIABLES
    assert "STEWARD_WEBHOOK__SECRET" in SECRET_VARIABLES


# --- Docker Compose -----------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


def _steward_services(compose: dict[str, Any], image: str) -> dict[str, Any]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == image
    }


def test_compose_services_and_commands(compose: dict[str, Any], image: str) -> None:
    services = _steward_services(compose, image)
    assert sorted(services) == ["migrate", "serve", "worker"]
    assert services["migrate"]["command"] == MIGRATE
    assert services["serve"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 1
    assert services["serve"]["deploy"]["replicas"] >= 2
    assert services["migrate"]["restart"] == "no"
    for name, service in services.items():
        assert service["env_file"] == "steward.env", name
        assert service["read_only"] is True, name
        assert CONTAINER_TMP in service["tmpfs"], name


def test_compose_migrates_before_start(compose: dict[str, Any], image: str) -> None:
    services = _steward_services(compose, image)
    migrate_waits = services["migrate"]["depends_on"]
    assert migrate_waits == {"postgres": {"condition": "service_healthy"}}
    for name in ("serve", "worker"):
        waits = services[name]["depends_on"]
        assert waits == {"migrate": {"condition": "service_completed_successfully"}}
    assert "healthcheck" in compose["services"]["postgres"]


def test_compose_healthcheck_only_on_serve(
    compose: dict[str, Any], image: str, exposed_port: int
) -> None:
    services = _steward_services(compose, image)
    # The image's HEALTHCHECK probes HTTP, which migrate and worker never serve.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert "healthcheck" not in services["serve"]
    for mapping in services["serve"]["ports"]:
        host, _, container = mapping.rpartition(":")
        assert int(container) == exposed_port
        assert host.startswith("127.0.0.1:"), mapping


def test_compose_settings_load(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = _read_env_file(COMPOSE / "steward.env.example")
    assert all(name.startswith(ENV_PREFIX) for name in variables)

    settings = _load_with_environment(monkeypatch, variables)

    database = compose["services"]["postgres"]["environment"]
    expected = (
        f"postgresql+psycopg://{database['POSTGRES_USER']}@postgres:5432/"
        f"{database['POSTGRES_DB']}"
    )
    assert settings.database_url == expected
    assert settings.database_password is not None
    assert settings.slack.configured
    assert settings.slack.security_channel is not None
    assert settings.slack.orphan_channel is not None
    assert settings.webhook.secret is not None


def test_compose_secrets_are_placeholders() -> None:
    steward = _read_env_file(COMPOSE / "steward.env.example")
    postgres = _read_env_file(COMPOSE / "postgres.env.example")
    secrets = {name: value for name, value in steward.items() if _is_secret(name)}
    assert set(secrets) >= {
        "STEWARD_DATABASE_PASSWORD",
        "STEWARD_SLACK__BOT_TOKEN",
        "STEWARD_SLACK__SIGNING_SECRET",
        "STEWARD_WEBHOOK__SECRET",
    }
    for name, value in [*secrets.items(), *postgres.items()]:
        assert PLACEHOLDER.fullmatch(value), f"{name} has a value, not a placeholder"
    assert postgres["POSTGRES_PASSWORD"] == steward["STEWARD_DATABASE_PASSWORD"]


def test_compose_env_files_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/deploy/compose/steward.env" in ignored
    assert "/deploy/compose/postgres.env" in ignored


# --- Kubernetes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = document
    return found


def _pod(resource: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def _container(resource: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(resource)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


@pytest.fixture(scope="module")
def workloads(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    return {
        "migrate": resources[("Job", "steward-db-upgrade")],
        "serve": resources[("Deployment", "steward-serve")],
        "worker": resources[("Deployment", "steward-worker")],
    }


def test_kubernetes_namespace(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert ("Namespace", "steward") in resources
    for (kind, name), resource in resources.items():
        if kind != "Namespace":
            assert resource["metadata"]["namespace"] == "steward", (kind, name)


def test_kubernetes_commands(workloads: dict[str, dict[str, Any]], image: str) -> None:
    assert _container(workloads["migrate"])["args"] == MIGRATE
    assert _container(workloads["serve"])["args"] == ["serve"]
    assert _container(workloads["worker"])["args"] == ["worker"]
    for name, workload in workloads.items():
        container = _container(workload)
        assert container["image"] == image, name
        # `command` would replace the image's `steward` entry point.
        assert "command" not in container, name


def test_kubernetes_replicas(workloads: dict[str, dict[str, Any]]) -> None:
    worker = workloads["worker"]["spec"]
    assert worker["replicas"] == 1
    assert worker["strategy"] == {"type": "Recreate"}
    assert workloads["serve"]["spec"]["replicas"] >= 2
    assert _pod(workloads["migrate"])["restartPolicy"] == "Never"


def test_kubernetes_selectors_match_templates(
    workloads: dict[str, dict[str, Any]],
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    serve_labels = workloads["serve"]["spec"]["template"]["metadata"]["labels"]
    worker_labels = workloads["worker"]["spec"]["template"]["metadata"]["labels"]
    for name in ("serve", "worker"):
        spec = workloads[name]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
    service = resources[("Service", "steward")]["spec"]
    budget = resources[("PodDisruptionBudget", "steward-serve")]["spec"]
    for selector in (service["selector"], budget["selector"]["matchLabels"]):
        assert selector.items() <= serve_labels.items()
        assert not selector.items() <= worker_labels.items()
    assert budget["minAvailable"] < workloads["serve"]["spec"]["replicas"]


def test_kubernetes_probes_and_port(
    workloads: dict[str, dict[str, Any]],
    resources: dict[tuple[str, str], dict[str, Any]],
    exposed_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = _container(workloads["serve"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": exposed_port}
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert ports[liveness["port"]] == exposed_port
    assert ports[readiness["port"]] == exposed_port
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    service_port = resources[("Service", "steward")]["spec"]["ports"][0]
    assert ports[service_port["targetPort"]] == exposed_port
    settings = _kubernetes_settings(resources, tmp_path, monkeypatch)
    assert settings.server.port == exposed_port
    for name in ("migrate", "worker"):
        worker = _container(workloads[name])
        assert "livenessProbe" not in worker, name
        assert "ports" not in worker, name


def test_kubernetes_security_context(
    workloads: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> None:
    uid, _, gid = dockerfile.final.one("USER").arguments.partition(":")
    for name, workload in workloads.items():
        pod = _pod(workload)["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == int(uid), name
        assert pod["runAsGroup"] == int(gid), name
        container = _container(workload)
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        mounts = {
            mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]
        }
        volumes = {volume["name"]: volume for volume in _pod(workload)["volumes"]}
        # A read-only root file system needs a writable /tmp for temp files.
        assert "emptyDir" in volumes[mounts[CONTAINER_TMP]], name
        assert volumes[mounts[CONFIG_MOUNT]]["configMap"]["name"] == "steward-config"
        resources = container["resources"]
        assert resources["requests"]["cpu"], name
        assert resources["requests"]["memory"], name
        assert resources["limits"]["memory"], name


def _kubernetes_settings(
    resources: dict[tuple[str, str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """Load the settings a serve pod gets: the mounted file and the Secret."""
    config = tmp_path / "steward.toml"
    config.write_text(
        resources[("ConfigMap", "steward-config")]["data"]["steward.toml"],
        encoding="utf-8",
    )
    serve = _container(resources[("Deployment", "steward-serve")])
    variables = {item["name"]: item["value"] for item in serve["env"]}
    assert variables["STEWARD_CONFIG_FILE"] == f"{CONFIG_MOUNT}/steward.toml"
    variables["STEWARD_CONFIG_FILE"] = str(config)
    variables.update(resources[("Secret", "steward-secrets")]["stringData"])
    return _load_with_environment(monkeypatch, variables)


def test_kubernetes_settings_load(
    resources: dict[tuple[str, str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _kubernetes_settings(resources, tmp_path, monkeypatch)

    assert settings.database_url.startswith("postgresql+psycopg://steward@")
    assert settings.database_password is not None
    # The file and the Secret both set parts of [slack] and must merge.
    assert settings.slack.configured
    assert settings.slack.security_channel == "<security-channel-id>"
    assert settings.slack.orphan_channel == "<orphan-channel-id>"
    assert settings.webhook.secret is not None
    assert settings.log_format == "json"


def test_kubernetes_secrets_are_placeholders(
    resources: dict[tuple[str, str], dict[str, Any]],
    workloads: dict[str, dict[str, Any]],
) -> None:
    secret = resources[("Secret", "steward-secrets")]
    assert secret["stringData"]
    for name, value in secret["stringData"].items():
        assert _is_secret(name), f"{name} is no secret: move it to the ConfigMap"
        assert PLACEHOLDER.fullmatch(value), f"{name} has a value, not a placeholder"
    for name, workload in workloads.items():
        container = _container(workload)
        refs = [source["secretRef"]["name"] for source in container["envFrom"]]
        assert refs == ["steward-secrets"], name
        for item in container["env"]:
            assert not _is_secret(item["name"]), f"{name} sets {item['name']} inline"


def test_kubernetes_config_holds_no_secret(
    resources: dict[tuple[str, str], dict[str, Any]],
) -> None:
    text = resources[("ConfigMap", "steward-config")]["data"]["steward.toml"]

    def variables(table: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, value in table.items():
            name = prefix + key.upper()
            if isinstance(value, dict):
                yield from variables(value, name + "__")
            else:
                yield name

    names = list(variables(tomllib.loads(text), ENV_PREFIX))
    assert "STEWARD_SERVER__PORT" in names
    for name in names:
        assert not _is_secret(name), f"{name} belongs in the Secret"
