"""Which endpoint may open a connection to which, under a set of Kubernetes NetworkPolicies.

The rules are those of the NetworkPolicy API (networking.k8s.io/v1), evaluated on the rendered manifests:

* a pod is isolated for ingress (egress) when a policy of its namespace selects it and lists Ingress (Egress)
  in `policyTypes` (default: Ingress, plus Egress when the policy has an `egress` section); an isolated pod
  allows only what some selecting policy's rules allow, the rules of all selecting policies adding up;
* a rule with no (or an empty) `from`/`to` matches every peer, with no (or empty) `ports` every port; a peer
  is a podSelector (pods of the policy's namespace), a namespaceSelector (every pod of the matching
  namespaces), both (the matching pods of the matching namespaces) or an ipBlock (addresses in the CIDR but
  not in its `except`; applied to pod addresses too, the stricter reading);
* a port is a number (up to `endPort` when given) or a container port's name on the destination pod, with
  `protocol` TCP unless said;
* a connection needs the source's egress and the destination's ingress to allow it. Endpoints outside the
  cluster have no policies: only the pod side of their traffic is checked.

Pods come from the workloads (one per replica, named and labelled as a StatefulSet names and labels them);
the cluster adds its DNS (kube-dns in kube-system) and the world outside adds an arbitrary address plus one
address inside every ipBlock a policy names, so an allowed block has someone to reach. Every endpoint is
probed on its own ports and on PROBE_PORTS, so a process listening on a port nobody declared is counted too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kustomize import pod_spec

PROBE_PORTS = (
    (22, "TCP"),
    (53, "UDP"),
    (53, "TCP"),
    (80, "TCP"),
    (443, "TCP"),
    (5000, "TCP"),
    (8080, "TCP"),
    (8468, "UDP"),
    (8470, "TCP"),
    (27017, "TCP"),
)
OUTSIDE = "outside"
DNS = "kube-system/kube-dns"


@dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: Mapping[str, str]
    ip: ipaddress.IPv4Address
    ports: tuple[tuple[str | None, int, str], ...] = ()  # (name, number, protocol) it listens on

    def probes(self) -> set[tuple[int, str]]:
        return {(number, protocol) for _, number, protocol in self.ports} | set(PROBE_PORTS)


@dataclass
class Cluster:
    endpoints: list[Endpoint]
    policies: list[dict]
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def named(self, name: str) -> Endpoint:
        return next(e for e in self.endpoints if e.name == name)

    def pods(self, **labels: str) -> list[Endpoint]:
        """The pods carrying these labels (keyword `component` stands for app.kubernetes.io/component)."""
        wanted = {("app.kubernetes.io/component" if k == "component" else k): v for k, v in labels.items()}
        return [e for e in self.endpoints if e.namespace and all(e.labels.get(k) == v for k, v in wanted.items())]

    # --- the rules ---------------------------------------------------------------------------------

    def _selecting(self, pod: Endpoint, direction: str) -> list[dict]:
        found = []
        for policy in self.policies:
            if policy["metadata"].get("namespace") != pod.namespace:
                continue
            spec = policy["spec"]
            types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
            if direction in types and selects(spec.get("podSelector") or {}, pod.labels):
                found.append(policy)
        return found

    def isolated(self, pod: Endpoint, direction: str) -> bool:
        return bool(self._selecting(pod, direction))

    def _side_allows(self, pod: Endpoint, peer: Endpoint, target: Endpoint, port: int, protocol: str, way: str) -> bool:
        """Whether `pod`'s policies let `peer` in (way "Ingress") or let `pod` out to `peer` (way "Egress"), on a
        port of `target` (the destination, whose names named ports refer to)."""
        if pod.namespace is None:
            return True
        selecting = self._selecting(pod, way)
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if way == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                if self._peers_match(rule.get(peers_key), peer, policy["metadata"].get("namespace")) and ports_match(
                    rule.get("ports"), target, port, protocol
                ):
                    return True
        return False

    def _peers_match(self, peers: list[dict] | None, peer: Endpoint, namespace: str | None) -> bool:
        if not peers:
            return True
        for entry in peers:
            if "ipBlock" in entry:
                block = entry["ipBlock"]
                if peer.ip in ipaddress.ip_network(block["cidr"]) and not any(
                    peer.ip in ipaddress.ip_network(cidr) for cidr in block.get("except") or []
                ):
                    return True
                continue
            if peer.namespace is None:
                continue
            if "namespaceSelector" in entry:
                in_namespace = selects(entry["namespaceSelector"], self.namespace_labels.get(peer.namespace, {}))
            else:
                in_namespace = peer.namespace == namespace
            if in_namespace and ("podSelector" not in entry or selects(entry["podSelector"], peer.labels)):
                return True
        return False

    def allowed(self, source: Endpoint, destination: Endpoint, port: int, protocol: str) -> bool:
        """May `source` open a connection (or send datagrams) to `destination` on port/protocol?"""
        if source is destination:
            return True
        return self._side_allows(source, destination, destination, port, protocol, "Egress") and self._side_allows(
            destination, source, destination, port, protocol, "Ingress"
        )

    def egress_allowed(self, source: Endpoint) -> set[tuple[str, int, str]]:
        """What `source`'s own policies let it send to, whatever the destinations' policies say."""
        return {
            (dest.name, port, protocol)
            for dest in self.endpoints
            if dest is not source
            for port, protocol in sorted(dest.probes())
            if self._side_allows(source, dest, dest, port, protocol, "Egress")
        }

    def ingress_allowed(self, destination: Endpoint) -> set[tuple[str, int, str]]:
        """Whom `destination`'s own policies let in, whatever the sources' policies say."""
        return {
            (source.name, port, protocol)
            for source in self.endpoints
            if source is not destination
            for port, protocol in sorted(destination.probes())
            if self._side_allows(destination, source, destination, port, protocol, "Ingress")
        }

    def reachable(self, source: Endpoint) -> set[tuple[str, int, str]]:
        """Every (endpoint, port, protocol) `source` can reach, itself excluded."""
        return {
            (dest.name, port, protocol)
            for dest in self.endpoints
            if dest is not source
            for port, protocol in sorted(dest.probes())
            if self.allowed(source, dest, port, protocol)
        }

    def reaching(self, destination: Endpoint) -> set[tuple[str, int, str]]:
        """Every (endpoint, port, protocol) from which `destination` can be reached."""
        return {
            (source.name, port, protocol)
            for source in self.endpoints
            if source is not destination
            for port, protocol in sorted(destination.probes())
            if self.allowed(source, destination, port, protocol)
        }


def selects(selector: Mapping, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set; the empty selector matches all."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"unknown selector operator {operator}")
    return True


def ports_match(ports: list[dict] | None, target: Endpoint, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, int):
            if wanted == port or (entry.get("endPort") and wanted <= port <= entry["endPort"]):
                return True
            continue
        if any(name == wanted and number == port and proto == protocol for name, number, proto in target.ports):
            return True
    return False


def _container_ports(spec: dict) -> tuple[tuple[str | None, int, str], ...]:
    return tuple(
        (p.get("name"), p["containerPort"], p.get("protocol", "TCP"))
        for container in spec["containers"]
        for p in container.get("ports") or []
    )


def cluster_of(objects: Iterable[dict]) -> Cluster:
    """The pods the workloads make, the cluster's DNS, the outside world, and the NetworkPolicies."""
    objects = list(objects)
    addresses = (ipaddress.IPv4Address("10.244.0.10") + i for i in range(10_000))
    endpoints: list[Endpoint] = []
    namespaces = {"kube-system": {"kubernetes.io/metadata.name": "kube-system"}}
    for obj in objects:
        if obj["kind"] == "Namespace":
            name = obj["metadata"]["name"]
            namespaces[name] = {**(obj["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        namespace = obj["metadata"].get("namespace", "default")
        namespaces.setdefault(namespace, {"kubernetes.io/metadata.name": namespace})
        labels = dict(obj["spec"]["template"]["metadata"].get("labels") or {})
        name = obj["metadata"]["name"]
        if obj["kind"] == "StatefulSet":
            for index in range(obj["spec"].get("replicas", 1)):
                pod = f"{name}-{index}"
                pod_labels = {
                    **labels,
                    "statefulset.kubernetes.io/pod-name": pod,
                    "apps.kubernetes.io/pod-index": str(index),
                }
                endpoints.append(
                    Endpoint(f"{namespace}/{pod}", namespace, pod_labels, next(addresses), _container_ports(spec))
                )
        elif obj["kind"] == "Job":
            endpoints.append(
                Endpoint(f"{namespace}/{name}", namespace, labels, next(addresses), _container_ports(spec))
            )
        else:
            for index in range(obj["spec"].get("replicas", 1)):
                endpoints.append(
                    Endpoint(f"{namespace}/{name}-{index}", namespace, labels, next(addresses), _container_ports(spec))
                )
    endpoints.append(
        Endpoint(
            DNS,
            "kube-system",
            {"k8s-app": "kube-dns"},
            ipaddress.IPv4Address("10.96.0.10"),
            (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")),
        )
    )
    endpoints.append(Endpoint(OUTSIDE, None, {}, ipaddress.IPv4Address("198.51.100.7")))
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    blocks = {
        peer["ipBlock"]["cidr"]
        for policy in policies
        for rule in [*(policy["spec"].get("ingress") or []), *(policy["spec"].get("egress") or [])]
        for peer in [*(rule.get("from") or []), *(rule.get("to") or [])]
        if "ipBlock" in peer
    }
    for cidr in sorted(blocks):
        network = ipaddress.ip_network(cidr)
        address = network.network_address if network.num_addresses == 1 else network.network_address + 1
        if not any(e.ip == address for e in endpoints):
            endpoints.append(Endpoint(f"address {address}", None, {}, ipaddress.IPv4Address(address)))
    return Cluster(endpoints, policies, namespaces)
