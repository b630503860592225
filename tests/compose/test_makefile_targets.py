"""The Makefile: every target is documented in `make help`, and up/down/logs wrap `docker compose`."""

from __future__ import annotations

import re
import shutil
import subprocess

import composefile as cf
import pytest

MAKEFILE = cf.ROOT / "Makefile"
TARGET = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)(.*)$")


def targets() -> dict[str, str]:
    """Target name -> the rest of its rule line (prerequisites and `## help`)."""
    found = {}
    for line in MAKEFILE.read_text().splitlines():
        match = TARGET.match(line)
        if match and match[1] not in {".PHONY"}:
            found[match[1]] = match[2]
    return found


def test_every_target_but_file_targets_is_documented():
    phony = set(re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.M)[1].split())
    rules = targets()
    for name, rest in rules.items():
        if name.startswith("."):  # file targets such as .env
            assert name not in phony
            continue
        assert name in phony, f"target {name} is not .PHONY"
        assert "## " in rest, f"target {name} has no `## help` text"
    assert {"up", "down", "logs"} <= set(rules)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_help_lists_every_target_and_compose_targets_wrap_docker_compose():
    shown = subprocess.run(["make", "-s", "help"], cwd=cf.ROOT, capture_output=True, text=True, check=True).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.strip().startswith("make ")}
    assert listed == {name for name in targets() if not name.startswith(".")}, shown
    for target, verb in {"up": "up --detach --build", "down": "down", "logs": "logs --follow"}.items():
        dry = subprocess.run(
            ["make", "-n", target, "COMPOSE=docker compose"], cwd=cf.ROOT, capture_output=True, text=True, check=True
        )
        assert f"docker compose {verb}" in dry.stdout, f"make {target} runs:\n{dry.stdout}"
    dry = subprocess.run(["make", "-n", "logs", "S=cart-0"], cwd=cf.ROOT, capture_output=True, text=True, check=True)
    assert "docker compose logs --follow cart-0" in dry.stdout
