"""One MongoDB user per cart, allowed only on its own database: in docker-compose.yml and in Kubernetes.

No mongod runs on the development machines, so the proof runs the same rules another way:

1. create-users.js (the script both mongo deployments run at their first start) runs under Node with the
   environment and password files each deployment gives the mongo container; its createUser calls are
   recorded (tests/deploy/mongo_permissions.py).
2. Those users, with the roles the script gave them, go into a model of MongoDB's access control; every cart
   logs in with exactly what its configuration gives it (the user and database of its MONGO_URL, the password
   from its MONGO_PASSWORD_FILE, read by the store's own `read_password_file`), and the cart's real `Store`
   runs on a client that authorizes every operation against those roles first.
3. A cart reads and writes its own database, and is refused (Unauthorized) on every other cart's database and
   on admin; the seeder writes every cart's database and nothing else. A looser grant fails the same check.

What is not exercised here: mongod itself (its SCRAM handshake, the real role definitions), and the mongo
image's entrypoint running the script on a real first start.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import manifests as mf
import pymongo.errors
import pytest
from mongo_permissions import UNAUTHORIZED, ScriptFailed, Server, node, run_users_script

from child_cart.settings import CartSettings
from child_cart.store import open_store
from child_cart.store.client import read_password_file

COMPOSE_DIR = Path(__file__).resolve().parents[1] / "compose"
if str(COMPOSE_DIR) not in sys.path:
    sys.path.insert(0, str(COMPOSE_DIR))
import composefile as cf  # noqa: E402

pytestmark = pytest.mark.skipif(node() is None, reason="node (which runs create-users.js as mongosh would) is missing")


def settings_from(env: dict[str, str]) -> CartSettings:
    return mf.build_settings(CartSettings, env)


class Deployment:
    """What one deployment gives mongo's first start and each cart: environments and files by container path."""

    def __init__(self, mongo_env: dict[str, str], mongo_files: dict[str, Path], carts: dict[str, dict[str, str]]):
        self.mongo_env = mongo_env
        self.mongo_files = mongo_files  # container path in the mongo container -> host file
        self.carts = carts  # cart name -> its container environment
        self.cart_files: dict[str, dict[str, Path]] = {}  # cart -> container path -> host file
        self.seed_env: dict[str, str] = {}
        self.seed_files: dict[str, Path] = {}

    def script_env(self, folder: Path) -> dict[str, str]:
        """The mongo container's environment, its secrets directory copied to `folder` as mongo sees it."""
        secrets_dir = self.mongo_env["FEDCART_SECRETS_DIR"]
        for path, source in self.mongo_files.items():
            if path.startswith(secrets_dir + "/"):
                (folder / path[len(secrets_dir) + 1 :]).write_bytes(source.read_bytes())
        return {**self.mongo_env, "FEDCART_SECRETS_DIR": str(folder)}

    def root(self) -> tuple[str, str]:
        password = self.mongo_files[self.mongo_env["MONGO_INITDB_ROOT_PASSWORD_FILE"]].read_text()
        return self.mongo_env["MONGO_INITDB_ROOT_USERNAME"], password


def compose_deployment(tmp_path: Path) -> Deployment:
    """docker-compose.yml with its secrets made as `make up` makes them (scripts/compose_secrets.sh)."""
    import subprocess

    (tmp_path / "docker-compose.yml").write_text(cf.COMPOSE_FILE.read_text())
    subprocess.run(
        ["sh", str(cf.ROOT / "scripts" / "compose_secrets.sh"), str(tmp_path / "docker-compose.yml")],
        check=True,
        capture_output=True,
    )
    model = cf.resolved()

    def files(service: dict) -> dict[str, Path]:
        return {
            path: tmp_path / model["secrets"][name]["file"].removeprefix("./")
            for name, path in cf.secrets_of(service).items()
        }

    mongo = model["services"]["mongo"]
    carts = {name: cf.container_environment(s) for name, s in cf.services_of(model, "cart").items()}
    deployment = Deployment(cf.environment(mongo), files(mongo), carts)
    deployment.cart_files = {name: files(model["services"][name]) for name in carts}
    deployment.seed_env = cf.container_environment(model["services"]["seed"])
    deployment.seed_files = files(model["services"]["seed"])
    return deployment


def kubernetes_deployment(tmp_path: Path) -> Deployment:
    """The cluster-mongodb overlay with the Secrets deploy/kubernetes/secrets.sh makes, each pod's files taken
    through its own volume mounts."""
    done = mf.run_secrets_script(tmp_path / "authority", tmp_path / "out", "--mongodb")
    assert done.returncode == 0, done.stderr[-2000:]
    secrets = mf.load_secrets(tmp_path / "out")
    pods = {pod.name: pod for pod in mf.pods(mf.rendered("cluster-mongodb"))}

    def files(pod: mf.Pod) -> dict[str, Path]:
        found = {}
        for path, content in pod.mounted_files(secrets).items():
            host = tmp_path / "pods" / pod.name / path.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(content)
            found[path] = host
        return found

    mongo = pods["mongodb-0"]
    carts = {name: pod.env() for name, pod in pods.items() if pod.role == "cart"}
    deployment = Deployment(mongo.env(), files(mongo), carts)
    deployment.cart_files = {name: files(pods[name]) for name in carts}
    deployment.seed_env, deployment.seed_files = pods["seed"].env(), files(pods["seed"])
    return deployment


DEPLOYMENTS = {"compose": compose_deployment, "kubernetes": kubernetes_deployment}


@pytest.fixture(params=sorted(DEPLOYMENTS))
def deployment(request, tmp_path) -> Deployment:
    return DEPLOYMENTS[request.param](tmp_path)


def users_of(deployment: Deployment, folder: Path) -> list[dict]:
    folder.mkdir(exist_ok=True)
    return run_users_script(deployment.script_env(folder))


def check_one_user_per_cart(calls: list[dict], deployment: Deployment) -> None:
    """Exactly one user per cart, named as the cart's MONGO_URL names it, in the database its URL authenticates
    against, that database being its MONGO_DB, with readWrite there and nothing else; and the seeder alone beside."""
    from urllib.parse import urlsplit

    created = {(c["db"], c["user"]): c for c in calls if c["op"] == "createUser"}
    assert len(created) == len(calls), f"the script did more than create users: {calls}"
    wanted = set()
    for cart, env in deployment.carts.items():
        settings = settings_from(env)
        url = urlsplit(settings.mongo_url)
        database = url.path.lstrip("/")
        assert database == settings.mongo_db, f"{cart} authenticates against {database}, works in {settings.mongo_db}"
        mine = [c for c in calls if c["user"] == url.username]
        assert len(mine) == 1, f"{cart} must be exactly one user: {mine}"
        assert (mine[0]["db"], mine[0]["roles"]) == (database, [{"role": "readWrite", "db": database}]), (
            f"{cart}'s user has {mine[0]['roles']} in {mine[0]['db']}: readWrite on {database} alone"
        )
        wanted.add((database, url.username))
    if deployment.seed_env:  # the demo seeder: readWrite on every cart's database, nothing else
        seed = urlsplit(settings_from(deployment.seed_env).mongo_url)
        assert deployment.mongo_env.get("FEDCART_SEED_USER") == seed.username
        seed_key = (seed.path.lstrip("/"), seed.username)
        databases = sorted(settings_from(env).mongo_db for env in deployment.carts.values())
        assert sorted(r["db"] for r in created[seed_key]["roles"]) == databases, created[seed_key]
        assert all(r["role"] == "readWrite" for r in created[seed_key]["roles"])
        wanted.add(seed_key)
    else:
        assert not deployment.mongo_env.get("FEDCART_SEED_USER"), "a seeder's user with no seeder"
    assert set(created) == wanted, f"users beyond the carts' and the seeder's: {set(created) - wanted}"


def login(server: Server, env: dict[str, str], files: dict[str, Path]):
    """What the cart's store does with its settings: the URL, and the password from MONGO_PASSWORD_FILE (read by
    the store's own function), the file being the one this container has at that path."""
    settings = settings_from(env)
    password = read_password_file(str(files[settings.mongo_password_file]))
    return settings, server.client(server.login(settings.mongo_url, password))


def test_the_users_script_makes_one_user_per_cart_on_its_own_database(deployment, tmp_path):
    calls = users_of(deployment, tmp_path / "script")
    check_one_user_per_cart(calls, deployment)
    for call in calls:  # each user's password is the one the deployment gave mongo for it
        secrets = deployment.mongo_env["FEDCART_SECRETS_DIR"]
        assert call["pwd"] == deployment.mongo_files[f"{secrets}/mongodb-{call['user']}-password"].read_text()
    # Without the demo seeder (a real store's MongoDB), no user can write more than one cart's database.
    alone = run_users_script({**deployment.script_env(tmp_path / "script"), "FEDCART_SEED_USER": ""})
    assert alone == [c for c in calls if c["db"] != "admin"]


def test_a_carts_credentials_cannot_read_another_carts_database(deployment, tmp_path):
    server = Server(root=deployment.root())
    server.apply(users_of(deployment, tmp_path / "script"))
    carts = sorted(deployment.carts)
    assert len(carts) >= 3
    clients = {}
    for cart in carts:
        settings, client = login(server, deployment.carts[cart], deployment.cart_files[cart])
        clients[cart] = (settings, client)
        store = open_store(tmp_path / cart, mongo_db=settings.mongo_db, client=client)
        store.put("purchases", {"_id": f"{cart}-row", "cart": cart})
        assert [d["cart"] for d in store.purchases.find({})] == [cart]
        store.close()
    for cart in carts:
        settings, client = clients[cart]
        for other in carts:
            if other == cart:
                continue
            other_db = clients[other][0].mongo_db
            with pytest.raises(pymongo.errors.OperationFailure) as refused:
                list(client[other_db]["purchases"].find({}))
            assert refused.value.code == UNAUTHORIZED, refused.value
            with pytest.raises(pymongo.errors.OperationFailure):
                open_store(tmp_path / cart, mongo_db=other_db, client=client)
            with pytest.raises(pymongo.errors.OperationFailure):
                client[other_db]["purchases"].insert_one({"_id": "planted"})
        with pytest.raises(pymongo.errors.OperationFailure):
            client["admin"]["system.users"].find_one({})
    # Someone else's password under a cart's name, or no password, logs nobody in.
    first, second = carts[0], carts[1]
    second_password = read_password_file(
        str(deployment.cart_files[second][settings_from(deployment.carts[second]).mongo_password_file])
    )
    with pytest.raises(pymongo.errors.OperationFailure, match="Authentication failed"):
        server.login(settings_from(deployment.carts[first]).mongo_url, second_password)
    # The seeder writes every cart's database (the rows each cart then reads) and nothing else.
    _, seeder = login(server, deployment.seed_env, deployment.seed_files)
    for cart in carts:
        database = clients[cart][0].mongo_db
        store = open_store(tmp_path / "seed", mongo_db=database, client=seeder)
        store.put("purchases", {"_id": "seeded", "cart": "seed"})
        store.close()
        assert {d["_id"] for d in clients[cart][1][database]["purchases"].find({})} == {f"{cart}-row", "seeded"}
    with pytest.raises(pymongo.errors.OperationFailure):
        seeder["admin"]["system.users"].find_one({})


LOOSER = {
    "any database": lambda calls: calls[0].update(roles=[{"role": "readWriteAnyDatabase", "db": "admin"}]),
    "a neighbour's database too": lambda calls: calls[0]["roles"].append({"role": "read", "db": calls[1]["db"]}),
    "a second user for a cart": lambda calls: calls.append({**calls[0], "db": "admin"}),
}


@pytest.mark.parametrize("change", sorted(LOOSER))
def test_the_check_and_the_permissions_catch_a_looser_grant(change, tmp_path):
    """A script that granted more would fail the user check, and its cart would read a neighbour's database."""
    deployment = compose_deployment(tmp_path)
    calls = users_of(deployment, tmp_path / "script")
    loose = copy.deepcopy(calls)
    LOOSER[change](loose)
    with pytest.raises(AssertionError):
        check_one_user_per_cart(loose, deployment)
    if change != "a second user for a cart":
        server = Server()
        server.apply(loose)
        user = next(u for u in server.users.values() if u.name == loose[0]["user"])
        assert server.client(user)[loose[1]["db"]]["purchases"].find_one({}) is None  # no longer refused


def test_the_users_script_refuses_what_would_leave_a_cart_open(deployment, tmp_path):
    """No password file, a short password, a cart named twice or a reserved name: the script stops (and with it
    mongo's first start) instead of making a user without the protection."""
    folder = tmp_path / "script"
    folder.mkdir()
    env = deployment.script_env(folder)
    first = env["FEDCART_CARTS"].split()[0]
    (folder / f"mongodb-{first}-password").unlink()
    with pytest.raises(ScriptFailed, match="cannot read"):
        run_users_script(env)
    (folder / f"mongodb-{first}-password").write_text("short")
    with pytest.raises(ScriptFailed, match="fewer than 16"):
        run_users_script(env)
    (folder / f"mongodb-{first}-password").write_text("x" * 32)
    with pytest.raises(ScriptFailed, match="twice"):
        run_users_script({**env, "FEDCART_CARTS": f"{first} {first}"})
    with pytest.raises(ScriptFailed, match="cannot be a cart"):
        run_users_script({**env, "FEDCART_CARTS": "seed"})
    with pytest.raises(ScriptFailed, match="FEDCART_CARTS is not set"):
        run_users_script({**env, "FEDCART_CARTS": ""})
    with pytest.raises(ScriptFailed, match="seeder's user name"):
        run_users_script({**env, "FEDCART_SEED_USER": first})


def test_running_the_script_again_updates_the_users_it_made(deployment, tmp_path):
    """Run by hand after a password change: the same users, updated, none created twice."""
    calls = users_of(deployment, tmp_path / "script")
    again = run_users_script(
        deployment.script_env(tmp_path / "script"), existing={f"{c['db']}.{c['user']}" for c in calls}
    )
    assert [c["op"] for c in again] == ["updateUser"] * len(calls)
    assert [(c["db"], c["user"], c["roles"]) for c in again] == [(c["db"], c["user"], c["roles"]) for c in calls]
