"""docker-compose.yml as the tests read it: parsed, interpolated with .env.example, and sorted into roles.

No Docker engine is needed: the file is checked as data against the Compose
Specification schema (the copy vendored in the check-jsonschema package) and
against the settings classes the containers will build from their environment.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_SECTION = "# --- docker compose ---"

# ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and the $$ escape: the forms this file may use.
_TOKEN = re.compile(r"\$(?:(?P<escape>\$)|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>.*))?$", re.S)


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def compose_schema() -> dict:
    """The Compose Specification JSON schema exactly as check-jsonschema ships it (vendor.compose-spec)."""
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(resource.read_text())


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines the way compose reads an env file (comments and blanks skipped, one layer of quotes removed)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: line without '=': {line!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def compose_section_keys() -> list[str]:
    """The variables of .env.example's docker compose section."""
    text = ENV_EXAMPLE.read_text()
    assert COMPOSE_SECTION in text, f".env.example has no {COMPOSE_SECTION!r} section"
    section = text.split(COMPOSE_SECTION, 1)[1].split("\n# --- ", 1)[0]
    return [line.split("=", 1)[0] for line in section.splitlines() if line and not line.startswith("#") and "=" in line]


@dataclass(frozen=True)
class Reference:
    name: str
    default: str | None


def references(value: Any) -> list[Reference]:
    """Every variable a (nested) value interpolates, with the default it gives."""
    found: list[Reference] = []
    if isinstance(value, dict):
        for item in value.values():
            found += references(item)
    elif isinstance(value, list):
        for item in value:
            found += references(item)
    elif isinstance(value, str):
        for match in _TOKEN.finditer(value):
            if match["escape"]:
                continue
            if match["bare"]:
                found.append(Reference(match["bare"], None))
                continue
            braced = _BRACED.match(match["braced"])
            if braced is None:
                raise ValueError(f"unsupported interpolation ${{{match['braced']}}} in {value!r}")
            found.append(Reference(braced["name"], braced["default"]))
    return found


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ${VAR}, ${VAR:-d}, ${VAR-d}, $VAR and $$ over a parsed file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match["escape"]:
            return "$"
        if match["bare"]:
            return env.get(match["bare"], "")
        braced = _BRACED.match(match["braced"])
        if braced is None:
            raise ValueError(f"unsupported interpolation ${{{match['braced']}}}")
        name, op, default = braced["name"], braced["op"], braced["default"]
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return _TOKEN.sub(replace, value)


@cache
def raw() -> dict:
    return load_yaml(COMPOSE_FILE)


@cache
def resolved() -> dict:
    """The file as `docker compose` sees it with .env copied from .env.example (the `make up` default)."""
    return interpolate(raw(), read_env_file(ENV_EXAMPLE))


def command(service: dict) -> list[str]:
    value = service.get("command") or []
    return value.split() if isinstance(value, str) else list(value)


def role(service: dict) -> str:
    """bridge, cart, seed, authority, enrol or the image name of a service that does not run fedcart."""
    if "build" not in service:
        return service["image"]
    words = command(service)
    roles = {"bridge": "bridge", "node": "cart", "data": "seed", "authority": "authority", "enrol": "enrol"}
    return roles.get(words[0] if words else "", "fedcart?")


def option(words: list[str], name: str) -> str | None:
    """The value after `name` in a command line (None when absent)."""
    return words[words.index(name) + 1] if name in words[:-1] else None


def mounts(service: dict) -> dict[str, str]:
    """Container path -> volume (or host path) of a service's volumes, short or long form."""
    found = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            found[entry["target"]] = entry.get("source", "")
        else:
            source, _, rest = str(entry).partition(":")
            found[rest.split(":", 1)[0]] = source
    return found


def enrolment_commands(model: dict, authority_dir: Path, data_dirs: dict[str, Path]) -> list[list[str]]:
    """The `fedcart` command lines compose runs before the nodes start (the authority, then every node's
    enrolment), with the volumes' container paths replaced by host folders: /authority by `authority_dir`
    and each node's /data by `data_dirs[node service]`. Tests that run compose services as processes run these."""
    services = model["services"]
    volume_of = {mounts(services[name]).get("/data"): name for name in data_dirs}
    commands = []
    for _, service in sorted(services_of(model, "authority").items()):
        commands.append([w.replace("/authority", str(authority_dir)) for w in command(service)])
    for _, service in sorted(services_of(model, "enrol").items()):
        node = volume_of.get(mounts(service).get("/data"))
        if node is None:
            continue
        words = [w.replace("/authority", str(authority_dir)) for w in command(service)]
        commands.append([str(data_dirs[node]) if w == "/data" else w for w in words])
    return commands


def services_of(model: dict, wanted: str) -> dict[str, dict]:
    return {name: service for name, service in model["services"].items() if role(service) == wanted}


def environment(service: dict) -> dict[str, str]:
    """A service's `environment:` as a dict (both the map and the list forms)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def container_environment(service: dict) -> dict[str, str]:
    """What the container's process sees: env_file (.env from .env.example) under `environment:`."""
    env_files = service.get("env_file") or []
    env_files = [env_files] if isinstance(env_files, (str, dict)) else env_files
    merged: dict[str, str] = {}
    for entry in env_files:
        path = entry["path"] if isinstance(entry, dict) else entry
        assert path == ".env", f"unexpected env_file {path!r}: `make up` only creates .env"
        merged.update(read_env_file(ENV_EXAMPLE))
    return {**merged, **environment(service)}


@dataclass(frozen=True)
class Port:
    host_ip: str
    published: str
    target: int
    protocol: str


def ports(service: dict) -> list[Port]:
    """Published ports in short ("ip:host:container[/proto]") or long form."""
    found = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            found.append(
                Port(
                    entry.get("host_ip", ""),
                    str(entry.get("published", "")),
                    int(entry["target"]),
                    entry.get("protocol", "tcp"),
                )
            )
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.rsplit(":", 2)
        host_ip, published, target = ([""] * (3 - len(parts)) + parts) if len(parts) < 3 else parts
        found.append(Port(host_ip, published, int(target), protocol or "tcp"))
    return found


def secrets_of(service: dict) -> dict[str, str]:
    """Secret name -> the path it is mounted at in the container (short or long form; /run/secrets/<target>)."""
    found = {}
    for entry in service.get("secrets") or []:
        if isinstance(entry, dict):
            target = entry.get("target") or entry["source"]
            found[entry["source"]] = target if target.startswith("/") else f"/run/secrets/{target}"
        else:
            found[str(entry)] = f"/run/secrets/{entry}"
    return found


def networks_of(service: dict) -> list[str]:
    nets = service.get("networks") or []
    return list(nets) if isinstance(nets, (list, dict)) else []


def members(model: dict) -> dict[str, set[str]]:
    """Network name -> the services attached to it."""
    table: dict[str, set[str]] = {name: set() for name in model.get("networks") or {}}
    for name, service in model["services"].items():
        for net in networks_of(service):
            table.setdefault(net, set()).add(name)
    return table


def is_internal(model: dict, network: str) -> bool:
    return bool(((model.get("networks") or {}).get(network) or {}).get("internal", False))


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url!r} needs an explicit host and port"
    return parts.hostname, parts.port
