"""MongoDB's access control for the users create-users.js makes, as a model the tests can run (no mongod here).

* `run_users_script` runs deploy/kubernetes/components/mongodb/create-users.js itself under Node (mongosh is
  Node with a `db` object), with a `db` that records every createUser/updateUser call instead of a server.
* `Server` keeps those users (and the image's root user) and authenticates a login as MongoDB does: a user
  belongs to one database (its authentication database, the URL's path or authSource) and holds roles, each
  a built-in role on one database.
* `Server.client(user)` is a pymongo-style client over mongomock whose databases and collections check every
  operation against the user's roles first, the way mongod's authorization does: an operation the roles do
  not grant fails with OperationFailure code 13 (Unauthorized) before it touches data. The cart's real
  `Store` runs on it, so the test goes through the same calls the cart makes.

Modelled: the built-in roles read, readWrite (on one database), readAnyDatabase, readWriteAnyDatabase and root,
with the actions the store uses. A role outside that list is an error, not a silent grant or denial.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mongomock
import pymongo.errors
from pymongo import uri_parser

USERS_SCRIPT = Path(__file__).resolve().parents[2] / "deploy/kubernetes/components/mongodb/create-users.js"
UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
READ = frozenset({"find", "listCollections", "listIndexes", "collStats", "dbStats"})
READ_WRITE = READ | {"insert", "update", "remove", "createCollection", "createIndex", "dropIndex", "dropCollection"}
ROLE_ACTIONS = {"read": READ, "readWrite": READ_WRITE}
ANY_DATABASE = {"readAnyDatabase": READ, "readWriteAnyDatabase": READ_WRITE}
NOT_ANY = {"local", "config"}  # the *AnyDatabase roles do not reach these

_HARNESS = r"""
const vm = require('vm');
const fs = require('fs');
const [script, existing] = process.argv.slice(1);
const users = JSON.parse(existing);
const calls = [];
function database(name) {
  return {
    getUser(user) { return users[`${name}.${user}`] || null; },
    createUser(doc) {
      if (users[`${name}.${doc.user}`]) { throw new Error(`user ${doc.user}@${name} already exists`); }
      users[`${name}.${doc.user}`] = doc;
      calls.push({ op: 'createUser', db: name, user: doc.user, pwd: doc.pwd, roles: doc.roles });
    },
    updateUser(user, doc) {
      if (!users[`${name}.${user}`]) { throw new Error(`user ${user}@${name} not found`); }
      calls.push({ op: 'updateUser', db: name, user: user, pwd: doc.pwd, roles: doc.roles });
    },
  };
}
const context = {
  db: { getSiblingDB: database },
  print: (...args) => process.stderr.write(args.join(' ') + '\n'),
  require: require,
  process: process,
};
vm.runInNewContext(fs.readFileSync(script, 'utf8'), context, { filename: script });
process.stdout.write(JSON.stringify(calls));
"""


class ScriptFailed(RuntimeError):
    """create-users.js threw: mongo's first start would stop with this message."""


def node() -> str | None:
    return shutil.which("node") or shutil.which("nodejs")


def run_users_script(env: dict[str, str], existing: set[str] = frozenset(), script: Path = USERS_SCRIPT) -> list[dict]:
    """The createUser/updateUser calls create-users.js makes with this environment; `existing` are users
    ("db.user") already there. ScriptFailed with the script's message when it throws."""
    executable = node()
    assert executable, "node is needed to run create-users.js"
    done = subprocess.run(
        [executable, "-e", _HARNESS, str(script), json.dumps({key: {"user": key} for key in existing})],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        thrown = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        raise ScriptFailed(thrown[0] if thrown else done.stderr.strip() or f"exit {done.returncode}")
    return json.loads(done.stdout)


@dataclass(frozen=True)
class User:
    db: str
    name: str
    password: str
    roles: tuple[tuple[str, str], ...]  # (role, database)

    def may(self, action: str, database: str) -> bool:
        """MongoDB's rule: some role grants `action` on `database`."""
        for role, role_db in self.roles:
            if role == "root":
                return True
            if role in ANY_DATABASE:
                if database not in NOT_ANY and action in ANY_DATABASE[role]:
                    return True
                continue
            if role not in ROLE_ACTIONS:
                raise ValueError(f"role {role!r} of {self.name}@{self.db} is not modelled")
            if role_db == database and action in ROLE_ACTIONS[role]:
                return True
        return False


@dataclass
class Server:
    """A MongoDB server's users and data (mongomock), with the image's root user when given."""

    root: tuple[str, str] | None = None  # MONGO_INITDB_ROOT_USERNAME and its password
    users: dict[tuple[str, str], User] = field(default_factory=dict)
    data: Any = field(default_factory=mongomock.MongoClient)

    def __post_init__(self) -> None:
        if self.root is not None:
            self.users[("admin", self.root[0])] = User("admin", self.root[0], self.root[1], (("root", "admin"),))

    def apply(self, calls: list[dict]) -> None:
        """What mongod does with the script's calls."""
        for call in calls:
            roles = tuple((r, call["db"]) if isinstance(r, str) else (r["role"], r["db"]) for r in call["roles"])
            key = (call["db"], call["user"])
            if call["op"] == "createUser" and key in self.users:
                raise ValueError(f"createUser: {key} exists (MongoDB error 51003)")
            if call["op"] == "updateUser" and key not in self.users:
                raise ValueError(f"updateUser: {key} not found (MongoDB error 11)")
            self.users[key] = User(call["db"], call["user"], call["pwd"], roles)

    def login(self, url: str, password: str | None) -> User:
        """Authenticate as pymongo would for `url` (user from its userinfo, authentication database from
        authSource, else its path, else admin) with `password`; OperationFailure 18 when that fails."""
        parsed = uri_parser.parse_uri(url)
        name = parsed["username"]
        source = parsed["options"].get("authsource") or parsed["database"] or "admin"
        user = self.users.get((source, name))
        if user is None or password is None or user.password != password:
            raise pymongo.errors.OperationFailure("Authentication failed.", code=AUTHENTICATION_FAILED)
        return user

    def client(self, user: User) -> PermittedClient:
        return PermittedClient(self.data, user)


def _deny(user: User, action: str, database: str, collection: str = "") -> None:
    if not user.may(action, database):
        raise pymongo.errors.OperationFailure(
            f"not authorized on {database} to execute command {{ {action}: {collection!r} }} as {user.name}@{user.db}",
            code=UNAUTHORIZED,
        )


class PermittedClient:
    """The subset of pymongo.MongoClient the store uses, checked against one user's roles."""

    def __init__(self, data: Any, user: User) -> None:
        self._data, self.user = data, user

    def __getitem__(self, name: str) -> PermittedDatabase:
        return PermittedDatabase(self._data[name], self.user, name)

    @property
    def admin(self) -> PermittedDatabase:
        return self["admin"]

    def close(self) -> None:
        pass


class PermittedDatabase:
    def __init__(self, data: Any, user: User, name: str) -> None:
        self._data, self.user, self.name = data, user, name

    def __getitem__(self, name: str) -> PermittedCollection:
        return PermittedCollection(self._data[name], self.user, self.name, name)

    def command(self, name: str, *args: Any, **kwargs: Any) -> dict:
        if name != "ping":  # ping needs no privilege
            raise NotImplementedError(f"command {name!r} is not modelled")
        return {"ok": 1.0}

    def list_collection_names(self) -> list[str]:
        _deny(self.user, "listCollections", self.name)
        return self._data.list_collection_names()

    def create_collection(self, name: str) -> Any:
        _deny(self.user, "createCollection", self.name, name)
        return self._data.create_collection(name)


_ACTIONS = {
    "find": "find",
    "find_one": "find",
    "count_documents": "find",
    "distinct": "find",
    "aggregate": "find",
    "list_indexes": "listIndexes",
    "index_information": "listIndexes",
    "insert_one": "insert",
    "insert_many": "insert",
    "replace_one": "update",
    "update_one": "update",
    "update_many": "update",
    "delete_one": "remove",
    "delete_many": "remove",
    "create_index": "createIndex",
    "drop": "dropCollection",
}


class PermittedCollection:
    """Each operation is authorized (its MongoDB action on this database) before mongomock runs it; an upsert
    needs insert too. An operation not in the table is an AttributeError: nothing passes unchecked."""

    def __init__(self, data: Any, user: User, database: str, name: str) -> None:
        self._data, self.user, self.database, self.name = data, user, database, name

    def __getattr__(self, method: str) -> Any:
        if method not in _ACTIONS:
            raise AttributeError(f"collection method {method!r} is not modelled")
        target = getattr(self._data, method)

        def checked(*args: Any, **kwargs: Any) -> Any:
            _deny(self.user, _ACTIONS[method], self.database, self.name)
            if kwargs.get("upsert"):
                _deny(self.user, "insert", self.database, self.name)
            return target(*args, **kwargs)

        return checked
