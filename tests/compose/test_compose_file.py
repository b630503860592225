"""docker-compose.yml, checked without a Docker engine.

* It is valid against the Compose Specification schema (the copy check-jsonschema vendors).
* Every service runs a real `fedcart` command; every variable it sets is a field of the settings
  class that service builds, and the whole container environment (.env from .env.example plus
  `environment:`) validates as those settings.
* Ports, URLs, DHT bootstrap entries, database names and health checks agree with those settings
  and with each other; only bridges and carts publish ports.
* Every node is enrolled before it starts, in its role, by a one-shot service that alone (with the
  one that creates the authority) mounts the authority's volume; the bridge's health check test
  runs those very commands before it starts the bridge.
* Carts and bridges speak TLS: every URL between them is https://, and each bridge's enrolment issues
  it a certificate for exactly the names those URLs and its health check dial it by; the health check
  test checks the bridge really serves HTTPS with it and the check verifies it against the swarm CA.
* Every variable the file interpolates is documented in .env.example's compose section, with the
  same default, and that section names nothing the file does not use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import PurePosixPath

import composefile as cf
import jsonschema
import pytest
import typer
from processes import free_port, wait_for_line

from cartnet.settings import NodeSettings
from child_cart.settings import CartSettings
from parent_cart.settings import BridgeSettings

SETTINGS = {
    "bridge": BridgeSettings,
    "cart": CartSettings,
    "seed": CartSettings,
    "authority": NodeSettings,
    "enrol": NodeSettings,
}
ONE_SHOT = {"seed", "authority", "enrol"}
MODEL = cf.resolved()


def field_names(settings_class: type) -> set[str]:
    """Environment names of a settings class: its field names, upper-cased (pydantic-settings, no prefix)."""
    assert not settings_class.model_config.get("env_prefix"), "settings grew an env prefix: update this test"
    return {name.upper() for name in settings_class.model_fields}


def build_settings(settings_class: type, env: dict[str, str]):
    """The settings a container builds from the environment `env` alone (no .env of the checkout, none of ours)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return settings_class(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fedcart_services() -> dict[str, tuple[str, dict]]:
    return {name: (cf.role(s), s) for name, s in MODEL["services"].items() if "build" in s}


# --- schema ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["as written", "interpolated with .env.example"])
def test_valid_against_the_compose_specification(stage):
    schema = cf.compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    document = cf.raw() if stage == "as written" else MODEL
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file():
    """The schema is really applied: a misspelt key and a wrong type are caught."""
    schema = cf.compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = {"services": {"cart-0": {"image": "x", "helthcheck": {}}, "mongo": {"image": "mongo:7", "ports": 27017}}}
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("helthcheck" in m for m in messages) and any("27017" in m for m in messages), messages


# --- services and the settings they build --------------------------------------------------------


def test_the_swarm_services_are_there():
    assert MODEL["services"]["mongo"]["image"] == "mongo:7"
    assert len(cf.services_of(MODEL, "bridge")) == 2
    assert len(cf.services_of(MODEL, "cart")) >= 3
    assert set(cf.services_of(MODEL, "seed")) == {"seed"}
    assert set(cf.services_of(MODEL, "authority")) == {"authority"}
    unknown = {
        name: cf.role(s)
        for name, s in MODEL["services"].items()
        if cf.role(s) not in {"bridge", "cart", "seed", "authority", "enrol", "mongo:7"}
    }
    assert not unknown, f"services that are neither bridge, cart, seed, authority, enrol nor mongo: {unknown}"


def test_every_command_is_a_fedcart_command():
    from fedcart.cli import app

    cli = typer.main.get_command(app)
    for name, (_, service) in fedcart_services().items():
        words = cf.command(service)
        group = cli
        for word in words:
            if word.startswith("-"):
                break
            assert word in group.commands, f"{name}: `fedcart {' '.join(words)}`: no command {word!r}"
            group = group.commands[word]
        options = {opt for param in group.params for opt in param.opts}
        for word in words:
            if word.startswith("--"):
                assert word in options, f"{name}: `fedcart ... {word}` is not an option of that command"


def test_every_variable_set_is_a_setting_of_that_service():
    for name, (kind, service) in fedcart_services().items():
        unknown = set(cf.environment(service)) - field_names(SETTINGS[kind])
        assert not unknown, (
            f"{name} ({kind}) sets variables no {SETTINGS[kind].__name__} field reads: {sorted(unknown)}"
        )


def test_each_container_environment_validates_as_its_settings():
    for kind, service in fedcart_services().values():
        build_settings(SETTINGS[kind], cf.container_environment(service))


def test_nodes_listen_on_every_interface_of_their_container():
    for name, service in cf.services_of(MODEL, "bridge").items():
        assert build_settings(BridgeSettings, cf.container_environment(service)).host == "0.0.0.0", name
    for name, service in cf.services_of(MODEL, "cart").items():
        assert build_settings(CartSettings, cf.container_environment(service)).ui_host == "0.0.0.0", name


def test_only_bridges_and_carts_publish_and_they_publish_their_configured_ports():
    env_example = cf.read_env_file(cf.ENV_EXAMPLE)
    published = []
    for name, service in MODEL["services"].items():
        kind, ports = cf.role(service), cf.ports(service)
        if kind not in {"bridge", "cart"}:
            assert not ports, f"{name} publishes {ports}: only bridges and carts may"
            continue
        settings = build_settings(SETTINGS[kind], cf.container_environment(service))
        wanted = settings.port if kind == "bridge" else settings.ui_port
        assert [(p.target, p.protocol) for p in ports] == [(wanted, "tcp")], (
            f"{name} must publish exactly its {'PORT' if kind == 'bridge' else 'UI_PORT'} {wanted}/tcp, publishes {ports}"
        )
        assert ports[0].host_ip == env_example["PUBLISH_HOST"], f"{name} ignores PUBLISH_HOST"
        published.append(ports[0].published)
    assert len(published) == len(set(published)), f"two services publish the same host port: {published}"


def test_urls_and_bootstrap_entries_name_real_services_and_their_ports():
    bridges = {
        name: build_settings(BridgeSettings, cf.container_environment(s))
        for name, s in cf.services_of(MODEL, "bridge").items()
    }
    nets = cf.members(MODEL)

    def share_a_network(a: str, b: str) -> bool:
        return any(a in group and b in group for group in nets.values())

    for name, settings in bridges.items():
        assert cf.url_host_port(settings.public_url) == (name, settings.port), (
            f"{name}: PUBLIC_URL must be its own name and PORT"
        )
        peers = settings.bootstrap_addresses()
        assert {host for host, _ in peers} == set(bridges) - {name}, (
            f"{name} must bootstrap from every other bridge: {peers}"
        )
        for host, port in peers:
            assert port == bridges[host].dht_port, (
                f"{name} bootstraps from {host}:{port}, but {host}'s DHT_PORT is {bridges[host].dht_port}"
            )
            assert share_a_network(name, host), f"{name} cannot reach {host}: no common network"
    databases = {}
    for name, service in cf.services_of(MODEL, "cart").items():
        settings = build_settings(CartSettings, cf.container_environment(service))
        for url in settings.bridge_urls:
            host, port = cf.url_host_port(url)
            assert host in bridges and port == bridges[host].port, f"{name}: BRIDGE_URLS names {url}, not a relay"
            assert share_a_network(name, host), f"{name} cannot reach its bridge {host}"
        named = [cf.url_host_port(url)[0] for url in settings.bridge_urls]
        assert sorted(named) == sorted(bridges), f"{name} must know every bridge to fail over to: {named}"
        assert cf.url_host_port(settings.mongo_url) == ("mongo", 27017), (
            f"{name}: MONGO_URL {settings.mongo_url} is not the mongo service"
        )
        assert share_a_network(name, "mongo"), f"{name} cannot reach mongo"
        databases[name] = settings.mongo_db
    assert len(set(databases.values())) == len(databases), f"carts share a database: {databases}"
    assert set(cf.services_of(MODEL, "bridge")) == {
        cf.url_host_port(build_settings(CartSettings, cf.container_environment(s)).bridge_url)[0]
        for s in cf.services_of(MODEL, "cart").values()
    }, "a bridge is no cart's primary"


def test_the_seeder_fills_exactly_the_carts_databases():
    """`fedcart data synth` with MONGO_URL writes data dir `d` to database `<MONGO_DB>-<d's name>` (see its --help)."""
    from fedcart import data_cmd

    assert "<MONGO_DB>-<d>" in (data_cmd.synth.__doc__ or ""), "the synth naming rule changed: update this test"
    seed = MODEL["services"]["seed"]
    settings = build_settings(CartSettings, cf.container_environment(seed))
    words = cf.command(seed)
    seeded_dirs = [words[i + 1] for i, word in enumerate(words) if word == "--data-dir"]
    seeded = {f"{settings.mongo_db}-{PurePosixPath(d).name}" for d in seeded_dirs}
    carts = {
        build_settings(CartSettings, cf.container_environment(s)).mongo_db
        for s in cf.services_of(MODEL, "cart").values()
    }
    assert seeded == carts, f"the seeder writes {sorted(seeded)}, the carts read {sorted(carts)}"
    assert settings.mongo_url == "mongodb://seed@mongo:27017/admin", "the seeder logs in as its own user"


# --- MongoDB users and their passwords ------------------------------------------------------------

USERS_SCRIPT = "deploy/kubernetes/components/mongodb/create-users.js"


def test_mongo_runs_with_authentication_and_the_users_script():
    """Root from a secret file (so mongo starts with --auth), the users script at its first start, and the script's
    settings naming exactly the carts, the database prefix their MONGO_DB has, the seeder's user and where the
    passwords are."""
    from urllib.parse import urlsplit

    mongo = MODEL["services"]["mongo"]
    env = cf.environment(mongo)
    assert env["MONGO_INITDB_ROOT_USERNAME"] == "root"
    assert env["MONGO_INITDB_ROOT_PASSWORD_FILE"] in cf.secrets_of(mongo).values(), "root's password is no secret"
    assert "MONGO_INITDB_ROOT_PASSWORD" not in env, "root's password must not sit in the compose file"
    assert cf.mounts(mongo)["/docker-entrypoint-initdb.d/create-users.js"] == f"./{USERS_SCRIPT}"
    assert (cf.ROOT / USERS_SCRIPT).is_file()
    carts = cf.services_of(MODEL, "cart")
    assert env["FEDCART_CARTS"].split() == sorted(carts), "the users script must make a user for every cart"
    for name, service in carts.items():
        settings = build_settings(CartSettings, cf.container_environment(service))
        assert settings.mongo_db == f"{env['FEDCART_DB_PREFIX']}-{name}", (
            f"{name}: MONGO_DB {settings.mongo_db} is not the database the users script gives it"
        )
    seeder = urlsplit(build_settings(CartSettings, cf.container_environment(MODEL["services"]["seed"])).mongo_url)
    assert env["FEDCART_SEED_USER"] == seeder.username, "the users script must make the seeder's user"
    for name in [env["FEDCART_SEED_USER"], *carts]:
        wanted = f"{env['FEDCART_SECRETS_DIR']}/mongodb-{name}-password"
        assert wanted in cf.secrets_of(mongo).values(), f"mongo does not mount {wanted}, the script reads it"


def test_each_cart_logs_in_as_itself_to_its_own_database_with_only_its_own_password():
    """MONGO_URL names the cart's user and its database (its authentication database) and no password; the password
    file is the one secret the cart mounts, the same one mongo's users script reads for that cart. No other
    container gets a cart's password, only mongo gets root's, and bridges and one-shots get no secret at all."""
    from urllib.parse import urlsplit

    mongo = cf.secrets_of(MODEL["services"]["mongo"])
    holders: dict[str, set[str]] = {}
    for name, service in MODEL["services"].items():
        for secret in cf.secrets_of(service):
            holders.setdefault(secret, set()).add(name)
    for name, service in cf.services_of(MODEL, "cart").items():
        settings = build_settings(CartSettings, cf.container_environment(service))
        url = urlsplit(settings.mongo_url)
        assert url.username == name and url.password is None, f"{name}: MONGO_URL must name user {name}, no password"
        assert url.path == f"/{settings.mongo_db}", f"{name}: MONGO_URL must authenticate against its own database"
        secret = f"mongodb-{name}-password"
        assert cf.secrets_of(service) == {secret: settings.mongo_password_file}, (
            f"{name} must mount exactly its own password as MONGO_PASSWORD_FILE: {cf.secrets_of(service)}"
        )
        assert holders[secret] == {name, "mongo"}, f"{secret} is mounted by {holders[secret]}"
        assert mongo[secret].endswith(f"/{secret}")
    seed = MODEL["services"]["seed"]
    assert cf.secrets_of(seed) == {"mongodb-seed-password": "/run/secrets/mongodb-seed-password"}
    assert build_settings(CartSettings, cf.container_environment(seed)).mongo_password_file == (
        "/run/secrets/mongodb-seed-password"
    )
    assert holders["mongodb-root-password"] == {"mongo"}
    for name, service in MODEL["services"].items():
        if cf.role(service) in {"bridge", "authority", "enrol"}:
            assert not cf.secrets_of(service), f"{name} needs no database password"


def test_the_password_files_are_made_by_make_up_and_kept_out_of_git_and_the_image(tmp_path):
    """Every secret is a file under .secrets/, which scripts/compose_secrets.sh fills (once) and .gitignore and the
    .dockerignore allow-list keep out; the files differ from each other and survive a second run unchanged."""
    declared = MODEL.get("secrets") or {}
    used = {secret for service in MODEL["services"].values() for secret in cf.secrets_of(service)}
    assert set(declared) == used, f"declared but unused or used but undeclared secrets: {set(declared) ^ used}"
    for name, secret in declared.items():
        assert secret["file"] == f"./.secrets/{name}", f"secret {name} must be the file ./.secrets/{name}"
    assert ".secrets/" in (cf.ROOT / ".gitignore").read_text().split()
    assert ".secrets" not in cf.DOCKERIGNORE.read_text(), ".dockerignore allow-lists: .secrets must stay out"
    (tmp_path / "docker-compose.yml").write_text(cf.COMPOSE_FILE.read_text())
    script = cf.ROOT / "scripts" / "compose_secrets.sh"
    subprocess.run(["sh", str(script), str(tmp_path / "docker-compose.yml")], check=True, capture_output=True)
    made = {name: (tmp_path / ".secrets" / name).read_text() for name in declared}
    assert all(len(value) >= 32 for value in made.values()) and len(set(made.values())) == len(made), made
    assert (tmp_path / ".secrets").stat().st_mode & 0o077 == 0, ".secrets/ must be private to its owner"
    subprocess.run(["sh", str(script), str(tmp_path / "docker-compose.yml")], check=True, capture_output=True)
    assert {name: (tmp_path / ".secrets" / name).read_text() for name in declared} == made, "a re-run changed them"
    dry = subprocess.run(["make", "-n", "up"], cwd=cf.ROOT, capture_output=True, text=True)
    if dry.returncode == 0:
        assert "scripts/compose_secrets.sh" in dry.stdout.split("up --detach")[0], "make up must make them first"


def test_carts_start_after_their_bridge_the_database_and_the_seeder():
    for name, service in cf.services_of(MODEL, "cart").items():
        bridge = cf.url_host_port(build_settings(CartSettings, cf.container_environment(service)).bridge_url)[0]
        depends = service.get("depends_on") or {}
        assert depends.get(bridge, {}).get("condition") == "service_healthy", f"{name} should wait for {bridge}"
        assert depends.get("mongo", {}).get("condition") == "service_healthy", f"{name} should wait for mongo"
        assert depends.get("seed", {}).get("condition") == "service_completed_successfully", (
            f"{name} should wait for the seeder"
        )


def test_every_node_is_enrolled_in_its_role_before_it_starts():
    """One `enrol` service per node writes into the node's own volume with the node's role; the node waits for it,
    it waits for the authority; only these one-shots mount the authority's volume, and they have no network."""
    services = MODEL["services"]
    (authority_name,) = cf.services_of(MODEL, "authority")
    authority_volume = cf.mounts(services[authority_name])["/authority"]
    enrolments = cf.services_of(MODEL, "enrol")
    for kind in ("bridge", "cart"):
        for name, node in cf.services_of(MODEL, kind).items():
            volume = cf.mounts(node)["/data"]
            assert build_settings(SETTINGS[kind], cf.container_environment(node)).data_dir.as_posix() == "/data"
            mine = [e for e, service in enrolments.items() if cf.mounts(service).get("/data") == volume]
            assert len(mine) == 1, f"{name}'s volume {volume} must be enrolled by exactly one service: {mine}"
            words = cf.command(services[mine[0]])
            assert cf.option(words, "--data-dir") == "/data" and cf.option(words, "--role") == kind, (
                f"{mine[0]} must enrol /data as a {kind}: {words}"
            )
            assert cf.option(words, "--authority") == "/authority", words
            assert cf.mounts(services[mine[0]])["/authority"] == authority_volume
            depends = node.get("depends_on") or {}
            assert depends.get(mine[0], {}).get("condition") == "service_completed_successfully", (
                f"{name} must start only after {mine[0]} succeeded"
            )
    for name, service in enrolments.items():
        depends = service.get("depends_on") or {}
        assert depends.get(authority_name, {}).get("condition") == "service_completed_successfully", name
    init = cf.command(services[authority_name])
    assert init[:2] == ["authority", "init"] and "--exist-ok" in init, (
        f"the authority must be kept across `up`s: {init}"
    )
    holders = {name for name, service in services.items() if authority_volume in cf.mounts(service).values()}
    assert holders == {authority_name, *enrolments}, f"only the one-shots may mount the authority's key: {holders}"
    for name in holders:
        assert services[name].get("network_mode") == "none", f"{name} holds the authority's key: no network for it"
        assert services[name].get("restart") == "no", f"{name} is a one-shot"


def test_carts_and_bridges_speak_tls_with_certificates_for_the_names_they_are_dialed_by():
    """Every BRIDGE_URL and PUBLIC_URL is https://; the bridge's enrol service issues its TLS certificate
    (`--tls-host`) for its service name and localhost (its health check), and nobody points TLS files elsewhere."""
    services = MODEL["services"]
    enrolments = cf.services_of(MODEL, "enrol")
    dialed: dict[str, set[str]] = {name: {"localhost"} for name in cf.services_of(MODEL, "bridge")}
    for name, service in cf.services_of(MODEL, "bridge").items():
        settings = build_settings(BridgeSettings, cf.container_environment(service))
        assert settings.public_url.startswith("https://"), f"{name}: PUBLIC_URL {settings.public_url} is not TLS"
        assert not settings.tls_cert and not settings.tls_key, f"{name}: TLS files come from its enrolment"
        dialed[name].add(cf.url_host_port(settings.public_url)[0])
    for name, service in cf.services_of(MODEL, "cart").items():
        settings = build_settings(CartSettings, cf.container_environment(service))
        assert settings.bridge_url.startswith("https://"), f"{name}: BRIDGE_URL {settings.bridge_url} is not TLS"
        assert not settings.tls_ca, f"{name} must trust the swarm CA its enrolment writes, not another"
        dialed[cf.url_host_port(settings.bridge_url)[0]].add(cf.url_host_port(settings.bridge_url)[0])
    for name, node in cf.services_of(MODEL, "bridge").items():
        volume = cf.mounts(node)["/data"]
        (enrolment,) = [e for e, s in enrolments.items() if cf.mounts(s).get("/data") == volume]
        words = cf.command(services[enrolment])
        hosts = {words[i + 1] for i, word in enumerate(words[:-1]) if word == "--tls-host"}
        assert hosts == dialed[name], f"{enrolment} must issue {name} a TLS certificate for {dialed[name]}: {words}"
    for name, service in cf.services_of(MODEL, "cart").items():
        volume = cf.mounts(service)["/data"]
        (enrolment,) = [e for e, s in enrolments.items() if cf.mounts(s).get("/data") == volume]
        assert "--tls-host" not in cf.command(services[enrolment]), f"{name}'s UI serves no TLS: no certificate"


# --- health checks --------------------------------------------------------------------------------

HEALTH = {"bridge": ("/health", "PORT"), "cart": ("/api/health", "UI_PORT")}


def test_health_checks_use_python_urllib_on_the_settings_port():
    for name, (kind, service) in fedcart_services().items():
        if kind in ONE_SHOT:
            assert "healthcheck" not in service, f"the one-shot {name} needs no health check"
            continue
        test = service["healthcheck"]["test"]
        path, variable = HEALTH[kind]
        assert test[:3] == ["CMD", "python", "-c"], (
            f"{name}: health check must be `python -c` (the image has no curl): {test}"
        )
        code = test[3]
        assert "urllib.request" in code and f"{path}'" in code and f"os.environ['{variable}']" in code, (
            f"{name}: health check must GET {path} on {variable}: {code}"
        )
    mongo = " ".join(MODEL["services"]["mongo"]["healthcheck"]["test"])
    assert "mongosh" in mongo and "ping" in mongo


def test_the_cart_health_route_exists():
    from flask import Flask

    from child_cart.ui.api_shop import api_shop

    app = Flask(__name__)
    app.register_blueprint(api_shop)
    assert HEALTH["cart"][0] in {rule.rule for rule in app.url_map.iter_rules()}


def _health_check(service: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    test = service["healthcheck"]["test"]
    return subprocess.run(
        [sys.executable, *test[2:]], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )


def test_the_bridge_health_check_passes_on_a_running_bridge_and_fails_without_one(tmp_path):
    """Runs the compose health check command itself against a real `fedcart bridge` process, enrolled by
    compose's own commands: it serves HTTPS, and the check verifies its certificate against the swarm CA."""
    service = MODEL["services"]["bridge-0"]
    port = free_port()
    check_env = {"PORT": str(port), "DATA_DIR": str(tmp_path / "bridge")}
    assert _health_check(service, check_env).returncode != 0, "health check passed with no bridge running"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    for words in cf.enrolment_commands(MODEL, tmp_path / "authority", {"bridge-0": tmp_path / "bridge"}):
        done = subprocess.run([sys.executable, "-m", "fedcart", *words], env=env, cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, f"`fedcart {' '.join(words)}` failed: {done.stderr.decode()[-2000:]}"
    bridge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedcart",
            "bridge",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dht-port",
            "0",
            "--data-dir",
            str(tmp_path / "bridge"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        # `fedcart bridge` prints "bridge <id> relay <url> ..." once it serves.
        ready, transcript = wait_for_line(bridge.stdout, f"relay https://127.0.0.1:{port}", 60)
        assert ready, f"the bridge never announced itself on HTTPS within 60 s:\n{transcript[-3000:]}"
        result = _health_check(service, check_env)
        assert result.returncode == 0, f"health check failed on a running bridge: {result.stderr[-2000:]}"
        plain = subprocess.run(
            [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health')"],
            capture_output=True,
            timeout=30,
        )
        assert plain.returncode != 0, "the bridge answered plain HTTP on its TLS port"
    finally:
        bridge.terminate()
        try:
            bridge.wait(20)
        except subprocess.TimeoutExpired:
            bridge.kill()
            bridge.wait()


# --- .env.example ---------------------------------------------------------------------------------


def test_every_interpolated_variable_is_documented_with_the_same_default():
    documented = cf.read_env_file(cf.ENV_EXAMPLE)
    section = set(cf.compose_section_keys())
    used = {}
    for ref in cf.references(cf.raw()):
        assert ref.default is not None, f"${{{ref.name}}} has no default: an older .env without it would break `up`"
        used.setdefault(ref.name, set()).add(ref.default)
    for name, defaults in used.items():
        assert name in section, f"{name} is used by docker-compose.yml but not in .env.example's compose section"
        assert defaults == {documented[name]}, (
            f"{name}: defaults {defaults} in docker-compose.yml, {documented[name]!r} in .env.example"
        )
    unused = section - set(used) - {"COMPOSE_PROJECT_NAME"}
    assert not unused, (
        f".env.example's compose section documents variables docker-compose.yml never uses: {sorted(unused)}"
    )
