"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

This machine has the Docker client but no engine, so the compose file is
validated against the Compose Specification's JSON schema (the one
``check-jsonschema`` vendors), and the rest of the deployment shape
(docs/design.md, "Deployment shape") is asserted on the parsed YAML.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
RELAY_SERVICES = {"web", "worker", "beat", "flower"}
DEMO_SERVICES = {"fake-intercom", "sample-producer"}

#: ${NAME}, ${NAME:-default}, ${NAME:?message} in the compose file.
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deployment_shape(services: dict) -> None:
    assert set(services) == {"redis"} | RELAY_SERVICES | DEMO_SERVICES
    for name in DEMO_SERVICES:
        assert services[name]["profiles"] == ["demo"], name
    for name in {"redis"} | RELAY_SERVICES:
        assert "profiles" not in services[name], f"{name} must run without a profile"


def test_redis_persists_append_only_on_a_named_volume(compose: dict, services: dict) -> None:
    redis = services["redis"]
    assert redis["image"].split(":")[0] == "redis" and redis["image"].split(":")[1].startswith("7")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_every_relay_service_is_built_from_the_one_dockerfile(services: dict) -> None:
    for name in RELAY_SERVICES | DEMO_SERVICES:
        build = services[name]["build"]
        assert build == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert services[name]["restart"] == ("no" if name == "sample-producer" else "unless-stopped"), name


def test_relay_services_wait_for_a_healthy_redis(services: dict) -> None:
    for name in RELAY_SERVICES:
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    assert services["sample-producer"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_commands(services: dict) -> None:
    assert services["web"]["command"][:2] == ["intercom-relay", "serve"]
    assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "worker", "worker"] and "-E" in worker, "task events must be on for Flower"
    assert services["beat"]["command"][:4] == ["celery", "-A", "worker", "beat"]
    # The launcher checks FLOWER_BASIC_AUTH, then becomes `celery -A worker flower --port=5555` (tests/test_secrets.py).
    assert services["flower"]["command"] == ["intercom-relay", "flower", "--port=5555"]
    assert services["fake-intercom"]["command"][:2] == ["intercom-relay", "fake-intercom"]
    assert services["sample-producer"]["command"][:2] == ["intercom-relay", "demo"]


def test_flower_requires_basic_auth_from_the_environment(services: dict) -> None:
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def test_no_secret_is_written_in_the_compose_file(services: dict) -> None:
    """Credentials are ${VARIABLES} from .env; a literal would end up in git."""
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"TOKEN|KEY|AUTH|PASSWORD|SECRET", key):
                assert VARIABLE.fullmatch(str(value)), f"{name}: {key} must come from .env, not be written here"
    assert "redis://:" not in COMPOSE.read_text(), "no Redis password in the file"


def test_env_example_names_every_variable_and_holds_only_placeholders() -> None:
    example = (ROOT / ".env.example").read_text()
    lines = [line for line in example.splitlines() if line.strip() and not line.startswith("#")]
    assigned = dict(line.split("=", 1) for line in lines)
    commented = set(re.findall(r"^# ?([A-Z0-9_]+)=", example, re.M))
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    assert used <= set(assigned) | commented, f"not in .env.example: {sorted(used - set(assigned) - commented)}"
    for key, value in assigned.items():
        if re.search(r"TOKEN|KEY|AUTH|PASSWORD|SECRET", key):
            assert "replace-with" in value, f"{key} in .env.example must be a placeholder"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_dockerfile_runs_as_a_non_root_user_with_the_monitor_extra() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    assert 'pip install -c constraints.txt ".[monitor]"' in dockerfile, "the image installs the versions the suite passed with"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".git" in ignored, "no secrets or history in the build context"


def test_the_image_holds_every_package_the_project_installs() -> None:
    """The demo profile runs the fake Intercom from the same image: every package must be in it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (pattern.rstrip("*") for pattern in patterns):
        assert f"COPY {package} ./{package}" in dockerfile, f"the Dockerfile does not copy {package}/"


def test_ports_are_published_on_a_chosen_address_and_redis_has_a_memory_limit() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith(("${PUBLISH_ADDRESS:-127.0.0.1}:", "127.0.0.1:")), f"{name} publishes {port} on every interface"
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] and command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_every_setting_reaches_the_relay_services(services: dict) -> None:
    """A setting in .env that compose does not pass on would be silently ignored."""
    read = set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', (ROOT / "worker" / "settings.py").read_text()))
    passed = set(services["worker"]["environment"]) | set(services["web"]["environment"])
    assert read - passed == set(), f"worker/settings.py reads these, docker-compose.yml does not pass them: {sorted(read - passed)}"
