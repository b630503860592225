"""The part of Kustomize that deploy/kubernetes/ uses, for the tests (no kustomize or recent kubectl here).

What `kubectl apply -k <overlay>` would build, for the fields the manifests use: `resources` (files and
directories), `components`, `configMapGenerator` (with `generatorOptions.disableNameSuffixHash`), `patches`
as JSON 6902 operations on a kind and name, `namespace` and `images`. Anything else in a kustomization is an
error rather than silently ignored, so a manifest cannot rely on a feature this renderer does not apply. Like
Kustomize's default load restrictor, files must sit inside the kustomization that names them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

KUSTOMIZATION = "kustomization.yaml"
KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "components",
    "patches",
    "images",
    "configMapGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
}
POD_TEMPLATES = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    """A kustomization this renderer cannot build exactly as Kustomize would."""


def load_documents(path: Path) -> list[dict]:
    """The YAML documents of one file (empty documents skipped)."""
    return [doc for doc in YAML(typ="safe", pure=True).load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[dict]:
    """The objects `kubectl apply -k directory` would apply."""
    return _build(directory, [], "Kustomization")


def kustomization(directory: Path) -> dict:
    path = directory / KUSTOMIZATION
    if not path.is_file():
        raise KustomizeError(f"{directory} has no {KUSTOMIZATION}")
    spec = load_documents(path)[0]
    unknown = set(spec) - KEYS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not apply: {sorted(unknown)}")
    return spec


def _inside(directory: Path, name: str) -> Path:
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise KustomizeError(f"{directory}: {name} is outside the kustomization (Kustomize's load restrictor)")
    return path


def _build(directory: Path, objects: list[dict], kind: str) -> list[dict]:
    spec = kustomization(directory)
    if spec.get("kind", "Kustomization") != kind:
        raise KustomizeError(f"{directory}: a {spec.get('kind', 'Kustomization')} where a {kind} belongs")
    objects = list(objects)
    for entry in spec.get("resources") or []:
        target = directory / entry
        if target.is_dir():
            objects += _build(target, [], "Kustomization")
        else:
            objects += load_documents(_inside(directory, entry))
    for entry in spec.get("components") or []:
        objects = _build(directory / entry, objects, "Component")
    objects += _generated(directory, spec)
    for patch in spec.get("patches") or []:
        objects = _patched(directory, patch, objects)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images") or []:
        for obj in objects:
            _set_image(obj, image)
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"{directory}: {key} is defined twice")
        seen.add(key)
    return objects


def _generated(directory: Path, spec: dict) -> list[dict]:
    generators = spec.get("configMapGenerator") or []
    if generators and not (spec.get("generatorOptions") or {}).get("disableNameSuffixHash"):
        raise KustomizeError(
            f"{directory}: name suffix hashes (and the reference rewriting they need) are not implemented; "
            "set generatorOptions.disableNameSuffixHash"
        )
    made = []
    for generator in generators:
        extra = set(generator) - {"name", "files", "literals"}
        if extra:
            raise KustomizeError(f"{directory}: configMapGenerator fields not implemented: {sorted(extra)}")
        data = {}
        for entry in generator.get("files") or []:
            key, sep, name = str(entry).partition("=")
            name = name if sep else key
            data[Path(key).name] = _inside(directory, name).read_text()
        for entry in generator.get("literals") or []:
            key, _, value = str(entry).partition("=")
            data[key] = value
        made.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    return made


def _patched(directory: Path, patch: dict, objects: list[dict]) -> list[dict]:
    target = patch.get("target") or {}
    if set(target) - {"kind", "name"} or not {"kind", "name"} <= set(target):
        raise KustomizeError(f"{directory}: a patch target must be exactly a kind and a name: {target}")
    if "path" in patch:
        operations = load_documents(_inside(directory, patch["path"]))[0]
    else:
        operations = YAML(typ="safe", pure=True).load(patch["patch"])
    if not isinstance(operations, list):
        raise KustomizeError(f"{directory}: only JSON 6902 patches (a list of operations) are implemented")
    hits = 0
    result = []
    for obj in objects:
        if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]:
            obj = apply_json_patch(obj, operations)
            hits += 1
        result.append(obj)
    if not hits:
        raise KustomizeError(f"{directory}: the patch for {target} matches no object")
    return result


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise KustomizeError(f"JSON pointer {pointer!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def apply_json_patch(document: dict, operations: list[dict]) -> dict:
    """RFC 6902 add, remove, replace and test on a copy of `document` (KeyError/IndexError: a path that is not
    there; KustomizeError: a failed test or an operation not implemented)."""
    document = copy.deepcopy(document)
    for operation in operations:
        op, tokens = operation["op"], _tokens(operation["path"])
        parent, last = _parent(document, tokens), tokens[-1]
        if op == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent[last]
            if current != operation["value"]:
                raise KustomizeError(f"test failed at {operation['path']}: {current!r} != {operation['value']!r}")
        elif op == "add":
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                else:
                    parent.insert(int(last), value)
            else:
                parent[last] = value
        elif op == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(operation["value"])
            else:
                if last not in parent:
                    raise KeyError(operation["path"])
                parent[last] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise KustomizeError(f"JSON patch operation {op!r} is not implemented")
    return document


def pod_spec(obj: dict) -> dict | None:
    """The pod template's spec of a workload, None for other kinds."""
    if obj["kind"] not in POD_TEMPLATES:
        return None
    return obj["spec"]["template"]["spec"]


def _set_image(obj: dict, image: dict) -> None:
    extra = set(image) - {"name", "newName", "newTag"}
    if extra:
        raise KustomizeError(f"images fields not implemented: {sorted(extra)}")
    spec = pod_spec(obj)
    if spec is None:
        return
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        name, tag = split_image(container["image"])
        if name == image["name"]:
            tag = image.get("newTag", tag)
            container["image"] = image.get("newName", name) + (f":{tag}" if tag else "")


def split_image(image: str) -> tuple[str, str]:
    """("registry:5000/name", "tag") of "registry:5000/name:tag" ("" when untagged)."""
    colon = image.rfind(":")
    if colon > image.rfind("/"):
        return image[:colon], image[colon + 1 :]
    return image, ""
