"""The Dockerfile and its build context, checked without building: what the image needs is in it.

* Python 3.11 slim base, a non-root user, libzbar0 without recommends, npm ci.
* Python packages from requirements.lock with hashes, then `pip install --no-deps .`; the locks pin what
  pyproject.toml declares (runtime in requirements.lock, runtime + dev in requirements-dev.lock, same versions).
* The web assets the UI serves land where UI_WEB_DIR (image and compose) points.
* .dockerignore lets in every file a COPY needs and keeps .venv/, .git/, data and node_modules out.
* A regular (non-editable) install carries every package file: built as a wheel from the tracked files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import composefile as cf
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from processes import free_port, wait_for_line

PACKAGES = ("cartnet", "parent_cart", "child_cart", "fedcart")
PROJECT_INSTALL = re.compile(r"pip install (--[\w-]+ )*\.(\s|$)")  # `pip install [--options] .`


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in cf.DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), rest.strip()))
        current = ""
    return lines


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        found[-1].append((keyword, rest))
    return found


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in rest.split()))
    return env


def runtime() -> list[tuple[str, str]]:
    return stages()[-1]


def test_runtime_base_is_slim_python_311_that_pyproject_allows():
    base = runtime()[0][1].split()[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), f"runtime base {base!r} is not a slim Python 3.11"
    requires = tomllib.loads((cf.ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.13" in requires, f"base Python 3.11 vs requires-python {requires}"


def test_runs_as_a_non_root_user():
    users = [rest for keyword, rest in runtime() if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, f"the image must end as a non-root user: {users}"
    run = " ".join(rest for keyword, rest in runtime() if keyword == "RUN")
    assert "useradd" in run and users[-1].split(":")[0] in run, "the user must be created in the image"


def test_system_packages_and_python_install():
    run = [rest for keyword, rest in runtime() if keyword == "RUN"]
    apt = [r for r in run if "apt-get install" in r]
    assert apt and all("--no-install-recommends" in r for r in apt), (
        "apt-get install without --no-install-recommends pulls ImageMagick"
    )
    assert any("libzbar0" in r for r in apt), "pyzbar needs libzbar0"
    assert any("rm -rf /var/lib/apt/lists" in r for r in apt), "apt lists left in the layer"
    assert any(PROJECT_INSTALL.search(r) for r in run), "the repo must be installed with `pip install .`"
    assert not any("pip install -e" in r for r in run), "an editable install would not be what users get"
    pip = [r for r in run if "pip install" in r]
    assert any(re.search(r"pip install --require-hashes -r requirements\.lock(\s|$)", r) for r in pip), (
        "dependencies must come from the runtime lock with hashes checked"
    )
    for install in pip:
        if PROJECT_INSTALL.search(install):
            assert "--no-deps" in install, "`pip install .` without --no-deps may pull packages the lock does not pin"
        else:
            assert "--require-hashes" in install, f"an install that bypasses the lock: {install}"
    entrypoint = [rest for keyword, rest in runtime() if keyword == "ENTRYPOINT"]
    assert entrypoint and '"fedcart"' in entrypoint[-1], (
        "compose commands are fedcart subcommands: ENTRYPOINT must be fedcart"
    )


def test_web_assets_land_where_ui_web_dir_points():
    from child_cart.ui import assets

    web_stage = next(s for s in stages() if any(k == "RUN" and "npm ci" in r for k, r in s))
    name = web_stage[0][1].split()[-1]
    workdir = next(rest for keyword, rest in web_stage if keyword == "WORKDIR")
    copied = [rest.split()[-1] for keyword, rest in web_stage if keyword == "COPY"]
    for folder in assets.SERVED_FOLDERS:
        assert any(PurePosixPath(workdir, dest) == PurePosixPath(workdir, folder) for dest in copied), (
            f"web/{folder} is not copied"
        )
    assert assets.CHART_LIBRARY.parts[0] == "node_modules", "the chart library is expected from npm ci"
    target = next(
        rest.split()[-1]
        for keyword, rest in runtime()
        if keyword == "COPY" and rest.startswith(f"--from={name} {workdir}")
    )
    assert env_of(runtime()).get("UI_WEB_DIR") == target, (
        f"UI_WEB_DIR must point at {target}, where the assets are copied"
    )
    for service_name, service in cf.services_of(cf.resolved(), "cart").items():
        assert cf.environment(service).get("UI_WEB_DIR") == target, (
            f"{service_name} sets UI_WEB_DIR to {cf.environment(service).get('UI_WEB_DIR')!r}; the assets are at {target} "
            "(it must be set in compose too: env_file's empty UI_WEB_DIR would hide the image's)"
        )


def test_exposed_ports_are_the_ones_compose_uses():
    exposed = set(" ".join(rest for keyword, rest in runtime() if keyword == "EXPOSE").split())
    model = cf.resolved()
    wanted = set()
    for service in cf.services_of(model, "bridge").values():
        env = cf.environment(service)
        wanted |= {env["PORT"], f"{env['DHT_PORT']}/udp"}
    for service in cf.services_of(model, "cart").values():
        wanted.add(cf.environment(service)["UI_PORT"])
    assert exposed == wanted, f"EXPOSE {sorted(exposed)} but compose uses {sorted(wanted)}"


# --- lock files ------------------------------------------------------------------------------------

LOCK = cf.ROOT / "requirements.lock"
DEV_LOCK = cf.ROOT / "requirements-dev.lock"


def pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """Name -> (pinned version, hashes) of a lock written by `make lock` (uv pip compile --generate-hashes)."""
    found = {}
    for line in lock.read_text().replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *hashes = (part.strip() for part in line.split("--hash="))
        req = Requirement(requirement)
        assert not req.url and len(req.specifier) == 1, f"{lock.name}: not an exact pin: {requirement}"
        (spec,) = req.specifier
        assert spec.operator == "==", f"{lock.name}: not an exact pin: {requirement}"
        found[canonicalize_name(req.name)] = (spec.version, hashes)
    return found


def declared(*extras: str) -> list[Requirement]:
    """What pyproject.toml asks for: the build backend, the dependencies and the given extras (an extra that
    names the project's own extras, `fedcart[ray]`, stands for theirs)."""
    meta = tomllib.loads((cf.ROOT / "pyproject.toml").read_text())
    project = canonicalize_name(meta["project"]["name"])
    wanted = [Requirement(r) for r in meta["build-system"]["requires"] + meta["project"]["dependencies"]]
    pending = list(extras)
    while pending:
        for req in map(Requirement, meta["project"]["optional-dependencies"][pending.pop()]):
            if canonicalize_name(req.name) == project:
                pending.extend(req.extras)
            else:
                wanted.append(req)
    return wanted


@pytest.mark.parametrize(("lock", "extras"), [(LOCK, ()), (DEV_LOCK, ("dev",))], ids=["runtime", "dev"])
def test_lock_pins_with_hashes_everything_pyproject_declares(lock, extras):
    locked = pins(lock)
    unhashed = [name for name, (_, hashes) in locked.items() if not hashes]
    assert not unhashed, f"{lock.name}: pins without hashes (pip --require-hashes refuses them): {unhashed}"
    for req in declared(*extras):
        if req.marker and not req.marker.evaluate({"python_version": "3.11", "sys_platform": "linux"}):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"{lock.name} lacks {req} from pyproject.toml: run `make lock`"
        assert req.specifier.contains(locked[name][0], prereleases=True), (
            f"{lock.name} pins {name}=={locked[name][0]}, outside pyproject.toml's {req}: run `make lock`"
        )


def test_image_and_dev_machines_get_the_same_versions():
    runtime_pins, dev_pins = pins(LOCK), pins(DEV_LOCK)
    differ = {
        name: (version, dev_pins.get(name, ("missing",))[0])
        for name, (version, hashes) in runtime_pins.items()
        if name not in dev_pins or dev_pins[name] != (version, hashes)
    }
    assert not differ, f"requirements.lock vs requirements-dev.lock (run `make lock`): {differ}"
    assert {"ruff", "mypy"} <= set(dev_pins), "the gates `make test` runs must be locked too"


# --- build context ---------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus **), matching a path or any of its parent folders."""
    pattern = pattern.strip().strip("/")
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(f"^{regex}(?:/.*)?$")


def in_context(path: str) -> bool:
    """Whether the build context keeps `path`: the last matching .dockerignore line decides."""
    kept = True
    for line in cf.DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if _pattern(line.lstrip("!")).match(path):
            kept = exception
    return kept


def tracked(*paths: str) -> list[str]:
    return subprocess.run(
        ["git", "ls-files", "--", *paths], cwd=cf.ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def test_build_context_has_what_copy_needs_and_nothing_heavy():
    sources = []
    for stage in stages():
        for keyword, rest in stage:
            if keyword == "COPY" and not rest.startswith("--from"):
                sources += rest.split()[:-1]
    assert sources, "no COPY found"
    for source in sources:
        files = tracked(source)
        assert files, f"COPY {source}: nothing tracked there"
        left_out = [f for f in files if not in_context(f)]
        assert not left_out, f".dockerignore drops files COPY {source} needs: {left_out[:5]}"
    for heavy in (
        ".venv/bin/python",
        ".git/HEAD",
        "data/cart-0/store",
        "web/node_modules/chart.js/package.json",
        ".env",
        "artifacts/pytest.log",
        "tests/conftest.py",
        "mobile_app/build.gradle",
        "child_cart/__pycache__/node.cpython-311.pyc",
    ):
        assert not in_context(heavy), f".dockerignore lets {heavy} into the build context"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` in the image would install, built from the tracked files only."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "src"
    for name in tracked("pyproject.toml", "README.md", *PACKAGES):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cf.ROOT / name, source / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-cache-dir",
            "-q",
            "-w",
            str(folder / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "No module named pip" in result.stderr:
        pytest.skip("this interpreter has no pip to build a wheel with")
    assert result.returncode == 0, result.stderr[-3000:]
    return next((folder / "dist").glob("fedcart-*.whl"))


def test_a_regular_install_carries_every_package_file(wheel):
    """`pip install .` in the image is not editable: package data must be declared, or it is missing there."""
    inside = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in tracked(*PACKAGES) if f not in inside]
    assert not missing, f"a non-editable install would lack {missing} (pyproject.toml package-data / packages.find)"


def _web_dir_as_the_image_has_it(target: Path) -> Path:
    """The web stage's result: the COPY'd folders plus what `npm ci` installs (taken from the checkout's npm ci)."""
    web_stage = next(s for s in stages() if any(k == "RUN" and "npm ci" in r for k, r in s))
    for keyword, rest in web_stage:
        if keyword == "COPY":
            *sources, _ = rest.split()
            for src in sources:
                if (cf.ROOT / src).is_dir():
                    shutil.copytree(cf.ROOT / src, target / PurePosixPath(src).name)
    modules = cf.ROOT / "web" / "node_modules"
    if not modules.is_dir():
        pytest.skip("web/node_modules is missing (run `make setup`): cannot assemble the image's web folder")
    shutil.copytree(modules, target / "node_modules")
    return target


def test_the_image_layout_serves_the_cart_ui(wheel, tmp_path):
    """Runs the compose cart service from the wheel alone (no checkout on sys.path), with UI_WEB_DIR pointing at a
    web folder laid out as the Dockerfile lays it out, next to a bridge, both enrolled by compose's own one-shot
    commands: the cart's compose health check passes and
    its pages, scripts and chart library are served."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    web = _web_dir_as_the_image_has_it(tmp_path / "web")
    model = cf.resolved()
    cart_name = sorted(cf.services_of(model, "cart"))[0]
    cart_service = model["services"][cart_name]
    bridge_name = cf.url_host_port(cf.environment(cart_service)["BRIDGE_URLS"].split(",")[0])[0]  # its primary
    bridge_service = model["services"][bridge_name]
    relay, ui = free_port(), free_port()
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    base |= {"PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    where = subprocess.run(
        [sys.executable, "-c", "import child_cart, parent_cart; print(child_cart.__file__, parent_cart.__file__)"],
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(cf.ROOT) not in where and str(site) in where, f"the packages do not come from the wheel: {where}"
    # Loopback instead of 0.0.0.0 and free ports instead of the compose ones: this runs on the host itself.
    bridge_env = {
        **base,
        **cf.container_environment(bridge_service),
        "HOST": "127.0.0.1",
        "PORT": str(relay),
        "DHT_PORT": "0",
        "BRIDGE_BOOTSTRAP": "",
        "PUBLIC_URL": "",
        "DATA_DIR": str(tmp_path / "bridge"),
    }
    cart_env = {
        **base,
        **cf.container_environment(cart_service),
        "UI_HOST": "127.0.0.1",
        "UI_PORT": str(ui),
        "BRIDGE_URLS": f"https://localhost:{relay}",  # TLS, verified against the swarm CA its enrolment wrote
        "MONGO_URL": "",
        "UI_WEB_DIR": str(web),
        "DATA_DIR": str(tmp_path / "cart"),
    }
    folders = {bridge_name: tmp_path / "bridge", cart_name: tmp_path / "cart"}
    for words in cf.enrolment_commands(model, tmp_path / "authority", folders):
        done = subprocess.run(
            [sys.executable, "-m", "fedcart", *words], env=base, cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, f"`fedcart {' '.join(words)}` from the wheel failed: {done.stderr[-2000:]}"
    processes = []
    try:
        for service, env, ready in (
            (bridge_service, bridge_env, f"relay https://127.0.0.1:{relay}"),
            (cart_service, cart_env, "running (bridge"),
        ):
            process = subprocess.Popen(
                [sys.executable, "-m", "fedcart", *cf.command(service)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            line, transcript = wait_for_line(process.stdout, ready, 120)
            assert line, f"`fedcart {' '.join(cf.command(service))}` never said {ready!r}:\n{transcript[-3000:]}"
        check = subprocess.run(
            [sys.executable, *cart_service["healthcheck"]["test"][2:]],
            env=cart_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, f"the cart's compose health check failed: {check.stderr[-2000:]}"
        for path in ("/", "/admin/login", "/static/css/app.css", "/static/js/common.js", "/static/vendor/chart.js"):
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}{path}", timeout=10) as response:
                assert response.status == 200, f"{path}: HTTP {response.status}"
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
