"""deploy/kubernetes/ as the tests read it: each overlay rendered (kustomize.py), its workloads, their pods and
what a pod's container sees (environment with $(VAR) expanded, files from Secrets through its volume mounts)."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kustomize import pod_spec, render, split_image

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = KUBE / "overlays"
SECRETS_SCRIPT = KUBE / "secrets.sh"
FEDCART_IMAGES = {"fedcart", "registry.example.com/fedcart"}
COMPONENT = "app.kubernetes.io/component"
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def overlay_names() -> list[str]:
    return sorted(path.name for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").is_file())


@cache
def _rendered(name: str) -> tuple[dict, ...]:
    return tuple(render(OVERLAYS / name))


def rendered(name: str) -> list[dict]:
    """A fresh copy of the overlay's objects (tests may change them)."""
    import copy

    return copy.deepcopy(list(_rendered(name)))


def find(objects: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if pod_spec(o) is not None]


def component(obj: dict) -> str:
    return obj["spec"]["template"]["metadata"]["labels"][COMPONENT]


def container(obj: dict) -> dict:
    containers = pod_spec(obj)["containers"]  # type: ignore[index]
    assert len(containers) == 1, f"{obj['metadata']['name']}: one container per pod expected"
    return containers[0]


def runs_fedcart(obj: dict) -> bool:
    return split_image(container(obj)["image"])[0] in FEDCART_IMAGES


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    workload: dict

    @property
    def role(self) -> str:
        return component(self.workload)

    @property
    def container(self) -> dict:
        return container(self.workload)

    def env(self) -> dict[str, str]:
        """The container's environment as Kubernetes builds it: values in order, `$(VAR)` replaced by an earlier
        variable's value (left as is when there is none), `$$(` kept literally, the pod name from the downward API."""
        found: dict[str, str] = {}
        for entry in self.container.get("env") or []:
            if "valueFrom" in entry:
                assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, (
                    f"{self.name}: {entry['name']} comes from {entry['valueFrom']}: only the pod name is modelled"
                )
                found[entry["name"]] = self.name
                continue
            found[entry["name"]] = expand(str(entry.get("value", "")), found)
        return found

    def mounted_files(self, secrets: dict[str, dict]) -> dict[str, bytes]:
        """Container path -> content of every file the pod's Secret volumes put into the container (KeyError when a
        Secret lacks a key the pod mounts: kubelet would not start the pod)."""
        volumes = {v["name"]: v for v in pod_spec(self.workload)["volumes"]}  # type: ignore[index]
        env = self.env()
        files: dict[str, bytes] = {}
        for mount in self.container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None or "secret" not in volume:
                continue
            source = volume["secret"]
            data = secrets[source["secretName"]]["data"]
            items = {i["path"]: i["key"] for i in source.get("items") or []} or {key: key for key in data}
            sub = mount.get("subPath") or expand(mount.get("subPathExpr", ""), env)
            if sub:
                files[mount["mountPath"]] = base64.b64decode(data[items[sub]])
            else:
                for path, key in items.items():
                    files[f"{mount['mountPath']}/{path}"] = base64.b64decode(data[key])
        return files


def expand(value: str, env: dict[str, str]) -> str:
    return _REFERENCE.sub(lambda m: env.get(m[1], m[0]), value.replace("$$(", "\0")).replace("\0", "$(")


def pods(objects: list[dict]) -> list[Pod]:
    """The pods the StatefulSets and Jobs make, named as Kubernetes names them (<statefulset>-<ordinal>)."""
    found = []
    for obj in workloads(objects):
        namespace = obj["metadata"].get("namespace", "default")
        name = obj["metadata"]["name"]
        if obj["kind"] == "StatefulSet":
            found += [Pod(f"{name}-{i}", namespace, obj) for i in range(obj["spec"].get("replicas", 1))]
        else:
            found.append(Pod(name, namespace, obj))
    return found


def load_secrets(folder: Path) -> dict[str, dict]:
    from kustomize import load_documents

    return {doc["metadata"]["name"]: doc for path in sorted(folder.glob("*.yaml")) for doc in load_documents(path)}


def build_settings(settings_class: type, env: dict[str, str]):
    """The settings a container builds from the environment `env` alone (no .env, none of ours)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return settings_class(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_secrets_script(authority: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """deploy/kubernetes/secrets.sh as the operator runs it, with this venv's `fedcart` and a bare PATH."""
    fedcart = Path(sys.executable).with_name("fedcart")
    assert fedcart.exists(), f"no fedcart command beside {sys.executable}"
    return subprocess.run(
        ["sh", str(SECRETS_SCRIPT), "--authority", str(authority), "--out", str(out), *args],
        env={"PATH": "/usr/bin:/bin", "FEDCART": str(fedcart), "HOME": str(out.parent), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
