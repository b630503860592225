"""deploy/kubernetes/, checked without a cluster (none runs on the development machines).

* Every overlay renders (tests/deploy/kustomize.py applies the Kustomize features the manifests use) and every
  object validates against the schemas of the pinned Kubernetes version (kubernetes-validate, strict: an
  unknown field is an error), and means the same to a YAML 1.1 reader (kubectl's) as to a YAML 1.2 one.
* Every fedcart container runs a real `fedcart` command whose environment, with each pod's name put in,
  validates as the settings of that command; probes, ports, headless Service and DHT bootstrap agree with
  those settings; a PodDisruptionBudget keeps a bridge up; nodes keep their state on persistent volumes.
* deploy/kubernetes/secrets.sh makes Secrets from which every bridge and cart pod, through its own volume
  mounts, gets a certificate for its own key and role, as the node checks it at start.
* The NetworkPolicies give the pods the isolation compose's networks give the containers (see
  tests/compose/test_compose_network.py): a cart reaches the bridges' relay, its database server and DNS,
  nothing else, and no pod reaches a cart; loosened policies fail that check.
"""

from __future__ import annotations

import base64
import copy
import inspect
import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import manifests as mf
import pytest
import typer
import yaml
from kustomize import KustomizeError, apply_json_patch, load_documents, pod_spec, render
from netpol import DNS, OUTSIDE, Cluster, cluster_of, selects

from cartnet.certificates import CertificateError, load_enrolment
from cartnet.identity import Identity
from child_cart.settings import CartSettings
from fedcart.bridge_cmd import names_self, without_self
from parent_cart.settings import BridgeSettings

KUBERNETES_VERSION = "1.34.0"
"""The Kubernetes release whose API schemas the manifests must satisfy (kubernetes-validate ships them)."""
OVERLAYS = mf.overlay_names()
SETTINGS = {"bridge": BridgeSettings, "node": CartSettings, "data": CartSettings}
HELPER_VARIABLES = {"POD_NAME"}
"""Variables the manifests set that are no setting: the downward API's pod name other values refer to."""
HEALTH = {"bridge": ("/health", "PORT", "relay"), "cart": ("/api/health", "UI_PORT", "ui")}


def validate(obj: dict) -> None:
    kubernetes_validate.validate(json.loads(json.dumps(obj)), KUBERNETES_VERSION, strict=True)


def settings_of(pod: mf.Pod):
    return mf.build_settings(SETTINGS[pod.container["args"][0]], pod.env())


def test_the_overlays():
    assert OVERLAYS == ["cluster", "cluster-mongodb", "public-bridges", "store"]


# --- rendering and schemas ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_pinned_kubernetes_version(overlay):
    objects = mf.rendered(overlay)
    assert objects
    for obj in objects:
        try:
            validate(obj)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {obj['kind']} {obj['metadata']['name']}: {exc}")


def test_the_schema_check_catches_broken_objects():
    """The schemas are really applied: a misspelt field, a wrong type and an unknown kind are refused."""
    bridge = mf.find(mf.rendered("cluster"), "StatefulSet", "bridge")
    broken = copy.deepcopy(bridge)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = copy.deepcopy(bridge)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate({"apiVersion": "v1", "kind": "Bridge", "metadata": {"name": "x"}})


def test_every_manifest_means_the_same_to_yaml_1_1():
    """kubectl reads YAML 1.1 (where 0440 is octal and `on` is true), these tests YAML 1.2: no file may differ."""
    files = sorted(mf.KUBE.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        assert load_documents(path) == [d for d in yaml.safe_load_all(path.read_text()) if d is not None], path


def kustomize_command() -> list[str] | None:
    """`kustomize build` or `kubectl kustomize` (kubectl 1.27+, whose Kustomize 5 knows components), if present."""
    for command in (["kustomize", "build"], ["kubectl", "kustomize"]):
        if shutil.which(command[0]) is None:
            continue
        try:
            probe = subprocess.run([*command, "--help"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_builds_what_kustomize_builds(overlay):
    """Where a real Kustomize is at hand, it builds exactly the objects the tests check."""
    command = kustomize_command()
    if command is None:
        pytest.skip("no kustomize or kubectl with Kustomize here: the renderer's reading is checked alone")
    done = subprocess.run(
        [*command, str(mf.OVERLAYS / overlay)], capture_output=True, text=True, timeout=120, cwd=mf.ROOT
    )
    if done.returncode != 0 and "components" in done.stderr:
        pytest.skip(f"{' '.join(command)} predates Kustomize components: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr

    def key(obj: dict) -> tuple[str, str, str]:
        return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]

    built = {key(o): o for o in yaml.safe_load_all(done.stdout) if o}
    ours = {key(o): o for o in mf.rendered(overlay)}
    assert set(built) == set(ours), set(built) ^ set(ours)
    for name, obj in ours.items():
        assert obj == built[name], f"{overlay}: {name} differs from {' '.join(command)}'s"


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path):
    """A kustomization field or patch form the renderer would not apply as Kustomize does is an error, not skipped."""
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap, name: c}\n    patch: |-\n      data: {a: b}\n"
    )
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    with pytest.raises(KustomizeError, match="JSON 6902"):
        render(tmp_path)
    outside = tmp_path / "overlay"
    outside.mkdir()
    (outside / "kustomization.yaml").write_text("resources: [../cm.yaml]\n")
    with pytest.raises(KustomizeError, match="load restrictor"):
        render(outside)
    with pytest.raises(KustomizeError, match="test failed"):
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])


def test_no_secret_is_in_the_manifests_and_every_secret_they_use_is_made_by_secrets_sh():
    made = {"fedcart-bridges", "fedcart-carts", "fedcart-mongodb"}
    script = mf.SECRETS_SCRIPT.read_text()
    assert all(f"header {name}" in script for name in made)
    for overlay in OVERLAYS:
        objects = mf.rendered(overlay)
        assert not [o for o in objects if o["kind"] == "Secret"], f"{overlay} carries a Secret: keys belong in none"
        for obj in mf.workloads(objects):
            for volume in pod_spec(obj)["volumes"]:
                if "secret" in volume:
                    assert volume["secret"]["secretName"] in made, (overlay, volume)


# --- workloads and the settings they build ---------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_fedcart_command_with_its_settings(overlay):
    from fedcart.cli import app

    cli = typer.main.get_command(app)
    objects = mf.rendered(overlay)
    for obj in mf.workloads(objects):
        name = obj["metadata"]["name"]
        if not mf.runs_fedcart(obj):
            assert mf.container(obj)["image"] == "mongo:7", f"{name}: an image that is neither fedcart nor mongo:7"
            continue
        container = mf.container(obj)
        assert "command" not in container, f"{name}: the image's entrypoint is `fedcart`; give args only"
        words = container["args"]
        group = cli
        for word in words:
            if word.startswith("-"):
                break
            assert word in group.commands, f"{name}: `fedcart {' '.join(words)}`: no command {word!r}"
            group = group.commands[word]
        options = {opt for param in group.params for opt in param.opts}
        assert {w for w in words if w.startswith("--")} <= options, f"{name}: {words}"
        settings_class = SETTINGS[words[0]]
        fields = {field.upper() for field in settings_class.model_fields}
        unknown = {e["name"] for e in container.get("env") or []} - fields - HELPER_VARIABLES
        assert not unknown, f"{name} sets variables no {settings_class.__name__} field reads: {sorted(unknown)}"
    for pod in mf.pods(objects):
        if not mf.runs_fedcart(pod.workload):
            continue
        settings = settings_of(pod)
        assert "$(" not in json.dumps(pod.env()), f"{pod.name}: an unresolved $(VAR) in {pod.env()}"
        if pod.role == "bridge":
            assert settings.host == "0.0.0.0", pod.name
        if pod.role == "cart":
            assert settings.ui_host == "0.0.0.0", pod.name


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "store"])
def test_bridges_find_each_other_through_the_headless_service(overlay):
    """Each bridge pod's PUBLIC_URL is its own name under the headless Service at PORT; BRIDGE_BOOTSTRAP lists every
    bridge pod's name at DHT_PORT, and what `fedcart bridge` keeps of it in each pod is exactly the others."""
    objects = mf.rendered(overlay)
    bridge = mf.find(objects, "StatefulSet", "bridge")
    namespace = bridge["metadata"]["namespace"]
    service = mf.find(objects, "Service", bridge["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    labels = bridge["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": service["spec"]["selector"]}, labels)
    ports = {p["name"]: p for p in mf.container(bridge)["ports"]}
    bridges = [pod for pod in mf.pods(objects) if pod.workload is bridge]
    assert len(bridges) >= 2
    for pod in bridges:
        settings = settings_of(pod)
        assert (ports["relay"]["containerPort"], ports["relay"]["protocol"]) == (settings.port, "TCP")
        assert (ports["dht"]["containerPort"], ports["dht"]["protocol"]) == (settings.dht_port, "UDP")
        exposed = {(p["targetPort"], p["port"], p["protocol"]) for p in service["spec"]["ports"]}
        assert exposed == {("relay", settings.port, "TCP"), ("dht", settings.dht_port, "UDP")}, exposed
        host = f"{pod.name}.{service['metadata']['name']}"
        assert settings.public_url == f"http://{host}:{settings.port}", pod.name
        everyone = {(f"{p.name}.{service['metadata']['name']}", settings.dht_port) for p in bridges}
        assert set(settings.bootstrap_addresses()) == everyone, f"{pod.name} must list every bridge pod"
        fqdn = f"{host}.{namespace}.svc.cluster.local"
        kept = without_self(settings.bootstrap_addresses(), settings.dht_port, lambda p=pod, f=fqdn: {p.name, f})
        assert set(kept) == everyone - {(host, settings.dht_port)}, f"{pod.name} would bootstrap from itself"
    relay = mf.find(objects, "Service", "bridge")
    assert selects({"matchLabels": relay["spec"]["selector"]}, labels)
    assert [(p["port"], p["targetPort"]) for p in relay["spec"]["ports"]] == [
        (ports["relay"]["containerPort"], "relay")
    ]
    cart = mf.find(objects, "StatefulSet", "cart")
    if cart is not None:
        for pod in [p for p in mf.pods(objects) if p.workload is cart]:
            url = settings_of(pod).bridge_url
            assert url == f"http://{relay['metadata']['name']}:{relay['spec']['ports'][0]['port']}", url


def test_a_bridge_skips_only_the_bootstrap_entry_that_names_itself():
    names = {"bridge-1", "bridge-1.bridge-dht.fedcart.svc.cluster.local"}
    assert names_self("bridge-1.bridge-dht", names) and names_self("BRIDGE-1", names)
    assert not names_self("bridge-10.bridge-dht", names) and not names_self("bridge-1.other.example.com", names)
    peers = [("bridge-0.bridge-dht", 8468), ("bridge-1.bridge-dht", 8468), ("bridge-1.bridge-dht", 9000)]
    assert without_self(peers, 8468, lambda: names) == [peers[0], peers[2]]
    asked = []
    assert without_self([("bridge-0", 1)], 8468, lambda: asked.append(1) or names) == [("bridge-0", 1)]
    assert not asked, "the host's names are looked up only when an entry is at our own DHT port"


def test_fedcart_bridge_starts_with_the_others_of_a_shared_bootstrap_list(monkeypatch, tmp_path):
    """The command line applies it: given the StatefulSet's list, the bridge the server runs keeps the others."""
    import socket

    from typer.testing import CliRunner

    import cartnet.logs
    import parent_cart.server
    from fedcart.cli import app

    ran = []
    monkeypatch.setattr(parent_cart.server, "run", lambda settings, announce: ran.append(settings))
    monkeypatch.setattr(cartnet.logs, "configure", lambda **kwargs: None)  # keep pytest's logging as it is
    monkeypatch.chdir(tmp_path)
    me = socket.gethostname()
    env = {"BRIDGE_BOOTSTRAP": f"{me}:8468,bridge-9.bridge-dht:8468,{me}:8469", "DHT_PORT": "8468"}
    result = CliRunner().invoke(app, ["bridge", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert ran[0].bootstrap_addresses() == [("bridge-9.bridge-dht", 8468), (me, 8469)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_health_routes_on_the_settings_ports(overlay):
    import parent_cart.app

    assert 'add_get("/health"' in inspect.getsource(parent_cart.app), "the bridge's health route moved"
    objects = mf.rendered(overlay)
    for pod in mf.pods(objects):
        if pod.role not in HEALTH:
            continue
        path, variable, port_name = HEALTH[pod.role]
        ports = {p["name"]: p["containerPort"] for p in pod.container["ports"]}
        assert ports[port_name] == int(pod.env()[variable]), f"{pod.name}: port {port_name} is not {variable}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = pod.container[probe]["httpGet"]
            assert (get["path"], get["port"]) == (path, port_name), f"{pod.name} {probe}: {get}"


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "store"])
def test_a_disruption_budget_keeps_a_bridge_serving(overlay):
    objects = mf.rendered(overlay)
    bridge = mf.find(objects, "StatefulSet", "bridge")
    (budget,) = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert selects(budget["spec"]["selector"], bridge["spec"]["template"]["metadata"]["labels"])
    assert 1 <= budget["spec"]["minAvailable"] < bridge["spec"]["replicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_keep_their_state_on_volumes_and_run_locked_down(overlay):
    """Bridges, carts and MongoDB keep their data on a per-pod PersistentVolumeClaim at their data dir; every pod runs
    as a non-root user with no capabilities, no privilege escalation, a read-only root and no API token."""
    objects = mf.rendered(overlay)
    data_dirs = {"bridge": "/data", "cart": "/data", "mongodb": "/data/db"}
    for obj in mf.workloads(objects):
        spec, container = pod_spec(obj), mf.container(obj)
        name = obj["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False and spec["securityContext"]["runAsNonRoot"] is True, name
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        role = mf.component(obj)
        if role in data_dirs:
            assert obj["kind"] == "StatefulSet"
            claims = {c["metadata"]["name"] for c in obj["spec"]["volumeClaimTemplates"]}
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts[data_dirs[role]] in claims, f"{name}: {data_dirs[role]} is not on its volume claim"
    for pod in mf.pods(objects):
        if pod.role in {"bridge", "cart"}:
            assert str(settings_of(pod).data_dir) == "/data"


# --- enrolment Secrets ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secrets_folder(tmp_path_factory) -> Path:
    """What the operator runs: secrets.sh with the default 2 bridges and 3 carts, MongoDB passwords included."""
    folder = tmp_path_factory.mktemp("secrets")
    done = mf.run_secrets_script(folder / "authority", folder / "out", "--mongodb")
    assert done.returncode == 0, f"secrets.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return folder


def materialise(pod: mf.Pod, secrets: dict[str, dict], root: Path) -> Path:
    """The pod's container file system as far as its Secret mounts make it; returns its DATA_DIR."""
    try:
        files = pod.mounted_files(secrets)
    except KeyError as exc:
        pytest.fail(f"{pod.name} mounts {exc} that the Secrets lack: the pod would not start")
    for path, content in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root / pod.env().get("DATA_DIR", "/data").lstrip("/")


def test_secrets_sh_makes_valid_secrets_for_exactly_the_pods(secrets_folder):
    secrets = mf.load_secrets(secrets_folder / "out")
    assert set(secrets) == {"fedcart-bridges", "fedcart-carts", "fedcart-mongodb"}
    for secret in secrets.values():
        validate(secret)
        assert secret["metadata"]["namespace"] == "fedcart"
    bridges, carts = (set(secrets[name]["data"]) for name in ("fedcart-bridges", "fedcart-carts"))
    assert {key.split(".", 1)[0] for key in bridges} == {"bridge-0", "bridge-1", "swarm"}
    assert {key.split(".", 1)[0] for key in carts} == {"cart-0", "cart-1", "cart-2", "swarm"}
    assert (secrets_folder / "out").stat().st_mode & 0o077 == 0, "the folder holds private keys: owner only"
    before = {name: s["data"] for name, s in secrets.items()}
    again = mf.run_secrets_script(secrets_folder / "authority", secrets_folder / "out", "--mongodb")
    assert again.returncode == 0, again.stderr
    assert {name: s["data"] for name, s in mf.load_secrets(secrets_folder / "out").items()} == before, (
        "a second run must keep keys, certificates still valid and passwords"
    )


def test_every_pod_gets_its_own_membership_through_its_mounts(secrets_folder, tmp_path):
    """Through its volume mounts alone each bridge and cart pod finds its own keys and a certificate that passes the
    check the node runs at start (cartnet.certificates.load_enrolment) for its role; each cart finds its own MongoDB
    password; the seeder finds only its own."""
    secrets = mf.load_secrets(secrets_folder / "out")
    objects = mf.rendered("cluster-mongodb")
    node_ids = {}
    for pod in mf.pods(objects):
        if pod.role not in {"bridge", "cart", "seed"}:
            continue
        data_dir = materialise(pod, secrets, tmp_path / pod.name)
        if pod.role == "seed":
            files = pod.mounted_files(secrets)
            assert list(files) == [pod.env()["MONGO_PASSWORD_FILE"]]
            continue
        for key in ("node_ed25519.key", "node_x25519.key", "certificate.json", "swarm.json"):
            assert (data_dir / key).is_file(), f"{pod.name}: no {key} in its data dir"
        identity = Identity.load_or_create(data_dir)
        _, cert = load_enrolment(data_dir, identity.public_key, pod.role)
        node_ids[pod.name] = cert.node_id
        other = "cart" if pod.role == "bridge" else "bridge"
        with pytest.raises(CertificateError):
            load_enrolment(data_dir, identity.public_key, other)
        if pod.role == "cart":
            password = (tmp_path / pod.name / pod.env()["MONGO_PASSWORD_FILE"].lstrip("/")).read_bytes()
            mongodb = secrets["fedcart-mongodb"]["data"]
            assert password == base64.b64decode(mongodb[f"mongodb-{pod.name}-password"]), pod.name
    assert len(node_ids) == 5 and len(set(node_ids.values())) == 5, node_ids


def test_a_pod_the_secrets_do_not_cover_would_not_start(secrets_folder, tmp_path):
    """A fourth cart (replicas raised without enrolling it) finds no key of its own: kubelet refuses the mount."""
    secrets = mf.load_secrets(secrets_folder / "out")
    cart = mf.find(mf.rendered("cluster"), "StatefulSet", "cart")
    with pytest.raises(KeyError):
        mf.Pod("cart-3", "fedcart", cart).mounted_files(secrets)


# --- network policies ---------------------------------------------------------------------------------


def check_isolation(objects: list[dict]) -> None:
    """Assert compose's isolation on a rendered overlay (AssertionError naming what leaks).

    Both ends of every connection are checked on their own as well as together, so loosening one side's policy
    fails even where the other side would still hold the line (as a shared network in compose would)."""
    cluster: Cluster = cluster_of(objects)
    carts, bridges = cluster.pods(component="cart"), cluster.pods(component="bridge")
    mongodb, seed = cluster.pods(component="mongodb"), cluster.pods(component="seed")
    ours = carts + bridges + mongodb + seed
    assert carts or bridges, "no fedcart pods rendered"
    for pod in ours:
        for direction in ("Ingress", "Egress"):
            assert cluster.isolated(pod, direction), f"no NetworkPolicy isolates {pod.name} for {direction}"
    for policy in [o for o in objects if o["kind"] == "NetworkPolicy"]:
        for rule in policy["spec"].get("egress") or []:
            for peer in rule.get("to") or []:
                if "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"].endswith("/32"), (
                        f"{policy['metadata']['name']} lets pods dial {peer['ipBlock']['cidr']}: one address only"
                    )
    dns = {(DNS, 53, "UDP"), (DNS, 53, "TCP")}
    pods = {f"{pod.namespace}/{pod.name}": pod for pod in mf.pods(objects)}
    for cart in carts:
        settings = mf.build_settings(CartSettings, pods[cart.name].env())
        expected = set(dns)
        if settings.bridge_url.startswith("https://"):
            outside = [e for e in cluster.endpoints if e.namespace is None and e.name != OUTSIDE]
            assert len(outside) == 1, f"the store's carts need the public relay's address: {outside}"
            expected.add((outside[0].name, 443, "TCP"))
        else:
            expected |= {(bridge.name, int(settings.bridge_url.rsplit(":", 1)[1]), "TCP") for bridge in bridges}
        if settings.mongo_url:
            expected |= {(server.name, 27017, "TCP") for server in mongodb}
        for what, found in (("may dial", cluster.egress_allowed(cart)), ("reaches", cluster.reachable(cart))):
            assert found == expected, (
                f"{cart.name} {what} {sorted(found - expected)} beyond its bridge, database and DNS"
                f" (or misses {sorted(expected - found)})"
            )
        # Its UI is open (as compose publishes it), to no pod of the swarm: carts meet only through the relay.
        inside = cluster.reaching(cart) & {
            (pod.name, port, protocol) for pod in ours for port, protocol in cart.probes()
        }
        assert not inside, f"{cart.name} can be reached by the swarm's own pods: {sorted(inside)}"
        ports = {(port, protocol) for _, port, protocol in cluster.ingress_allowed(cart)}
        assert ports == {(settings.ui_port, "TCP")}, (
            f"{cart.name} takes connections on {sorted(ports)}, not just its UI"
        )
    for bridge in bridges:
        others = {b.name for b in bridges} - {bridge.name}
        wanted = {(o, port, proto) for o in others for port, proto in ((8470, "TCP"), (8468, "UDP"))} | dns
        for what, found in (("may dial", cluster.egress_allowed(bridge)), ("reaches", cluster.reachable(bridge))):
            assert found == wanted, (
                f"{bridge.name} {what} {sorted(found - wanted)} (or misses {sorted(wanted - found)})"
            )
        everyone = {e.name for e in cluster.endpoints} - {bridge.name}
        wanted = {(name, 8470, "TCP") for name in everyone} | {(name, 8468, "UDP") for name in others}
        found = cluster.ingress_allowed(bridge)
        assert found == wanted, f"{bridge.name} lets in {sorted(found - wanted)}: only the relay, and DHT from bridges"
    for server in mongodb:
        assert not cluster.egress_allowed(server), f"{server.name} may dial {cluster.egress_allowed(server)}"
        wanted = {(p.name, 27017, "TCP") for p in carts + seed}
        found = cluster.ingress_allowed(server)
        assert found == wanted, f"{server.name} lets in {sorted(found - wanted)}: only its carts and the seeder"
        assert cluster.reaching(server) == wanted
    for job in seed:
        wanted = {(server.name, 27017, "TCP") for server in mongodb} | dns
        assert cluster.egress_allowed(job) == wanted, f"{job.name} may dial {sorted(cluster.egress_allowed(job))}"
        assert not cluster.ingress_allowed(job), f"{job.name} takes connections from {cluster.ingress_allowed(job)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_cart_reaches_only_its_bridges_its_database_and_dns(overlay):
    check_isolation(mf.rendered(overlay))


def _policy(objects: list[dict], name: str) -> dict:
    return mf.find(objects, "NetworkPolicy", name)


def _widen_cart_egress(objects):
    _policy(objects, "cart")["spec"]["egress"][0] = {"to": [{"podSelector": {}}]}


def _cart_egress_to_every_named_relay(objects):
    """Harmless while only bridges name a port `relay`; the per-side check still wants the bridges alone."""
    _policy(objects, "cart")["spec"]["egress"][0]["to"] = [{"podSelector": {}}]
    _policy(objects, "cart")["spec"]["egress"][0]["ports"] = [{"port": 8470, "protocol": "TCP"}]


def _cart_egress_unlisted(objects):
    _policy(objects, "cart")["spec"]["policyTypes"] = ["Ingress"]
    del _policy(objects, "cart")["spec"]["egress"]


def _cart_egress_to_the_world(objects):
    _policy(objects, "cart")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})


def _cart_egress_to_another_address(objects):
    _policy(objects, "cart")["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "198.51.100.7/32"}}]})


def _cart_policy_gone(objects):
    objects.remove(_policy(objects, "cart"))


def _cart_policy_misses_its_pods(objects):
    _policy(objects, "cart")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "carts"


def _cart_egress_any_port_of_bridges(objects):
    del _policy(objects, "cart")["spec"]["egress"][0]["ports"]


def _dht_open_to_all(objects):
    del _policy(objects, "bridge")["spec"]["ingress"][1]["from"]


def _bridges_dial_anything(objects):
    _policy(objects, "bridge")["spec"]["egress"][0] = {"to": [{"namespaceSelector": {}}]}


def _mongodb_open_to_all(objects):
    del _policy(objects, "mongodb")["spec"]["ingress"][0]["from"]


def _cart_ui_from_carts_egress(objects):
    _policy(objects, "cart")["spec"]["egress"].append(
        {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "cart"}}}]}
    )


def _store_relay_block_widened(objects):
    _policy(objects, "cart")["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "203.0.113.0/24"


MUTATIONS = [
    ("cluster", _widen_cart_egress),
    ("cluster", _cart_egress_to_every_named_relay),
    ("cluster", _cart_egress_unlisted),
    ("cluster", _cart_egress_to_the_world),
    ("cluster", _cart_egress_to_another_address),
    ("cluster", _cart_policy_gone),
    ("cluster", _cart_policy_misses_its_pods),
    ("cluster", _cart_egress_any_port_of_bridges),
    ("cluster", _dht_open_to_all),
    ("cluster", _bridges_dial_anything),
    ("cluster", _cart_ui_from_carts_egress),
    ("cluster-mongodb", _mongodb_open_to_all),
    ("cluster-mongodb", _widen_cart_egress),
    ("store", _store_relay_block_widened),
    ("store", _cart_egress_to_the_world),
    ("store", _cart_egress_to_another_address),
]


@pytest.mark.parametrize(("overlay", "mutation"), MUTATIONS, ids=[f"{o}:{m.__name__[1:]}" for o, m in MUTATIONS])
def test_the_isolation_check_catches_a_loosened_policy(overlay, mutation):
    objects = mf.rendered(overlay)
    check_isolation(objects)
    mutation(objects)
    with pytest.raises(AssertionError):
        check_isolation(objects)
