"""Swarm certificates, revocation lists, the authority on disk and its commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cartnet import certificates
from cartnet.authority import AUTHORITY_KEY_FILE, CLOCK_SKEW_MS, Authority, AuthorityError, enrol, ensure_enrolled
from cartnet.certificates import (
    CERTIFICATE_FILE,
    REVOCATIONS_FILE,
    SWARM_FILE,
    CertificateError,
    decode_certificate,
    encode,
    load_enrolment,
    verify,
)
from cartnet.identity import SIGNING_KEY_FILE, Identity

NOW = 1_750_000_000_000
DAY = 24 * 3600 * 1000


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority") / "auth")


@pytest.fixture(scope="module")
def other_authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("other") / "auth")


NODE = Identity.generate()


def test_good_certificate_verifies(authority: Authority) -> None:
    cert = authority.issue(NODE.public_key, "cart", days=30, now=NOW)
    assert verify(cert, authority.public_key, "cart", NOW, public_key=NODE.public_key) is cert
    assert cert.node_id == NODE.node_id and cert.swarm_id == authority.swarm.swarm_id
    assert cert.not_before_ms == NOW - CLOCK_SKEW_MS and cert.not_after_ms == NOW + 30 * DAY
    assert decode_certificate(encode(cert)) == cert


def _resign(authority: Authority, **update: object) -> certificates.Certificate:
    """A certificate with fields changed and then properly signed by `authority`."""
    unsigned = authority.issue(NODE.public_key, "cart", now=NOW).model_copy(update=update)
    return unsigned.model_copy(
        update={"signature": authority.signing_key.sign(certificates.certificate_bytes(unsigned))}
    )


REFUSALS = {
    "wrong swarm": (
        lambda a, o: (o.issue(NODE.public_key, "cart", now=NOW), {}),
        "wrong_swarm",
        "certificate is for swarm .*, not this swarm",
    ),
    "bad signature": (
        lambda a, o: (
            a.issue(NODE.public_key, "cart", now=NOW).model_copy(update={"not_after_ms": NOW + 99 * DAY}),
            {},
        ),
        "bad_signature",
        "bad certificate signature",
    ),
    "forged by another key for this swarm id": (
        lambda a, o: (
            o.issue(NODE.public_key, "cart", now=NOW).model_copy(update={"swarm_id": a.swarm.swarm_id}),
            {},
        ),
        "bad_signature",
        "not issued by this swarm's authority",
    ),
    "node id not of its key": (
        lambda a, o: (_resign(a, node_id=Identity.generate().node_id), {}),
        "key_mismatch",
        "node id is not the SHA-1 of its public key",
    ),
    "someone else's certificate": (
        lambda a, o: (a.issue(NODE.public_key, "cart", now=NOW), {"public_key": Identity.generate().public_key}),
        "key_mismatch",
        "certificate is for node .*, not for this key",
    ),
    "cart certificate acting as a bridge": (
        lambda a, o: (a.issue(NODE.public_key, "cart", now=NOW), {"role": "bridge"}),
        "wrong_role",
        "certificate is for a cart, not a bridge",
    ),
    "bridge certificate acting as a cart": (
        lambda a, o: (a.issue(NODE.public_key, "bridge", now=NOW), {"role": "cart"}),
        "wrong_role",
        "certificate is for a bridge, not a cart",
    ),
    "not yet valid": (
        lambda a, o: (a.issue(NODE.public_key, "cart", now=NOW + DAY), {}),
        "not_yet_valid",
        "certificate is not valid before",
    ),
    "expired": (
        lambda a, o: (a.issue(NODE.public_key, "cart", days=1, now=NOW - 2 * DAY), {}),
        "expired",
        "certificate expired at",
    ),
    "revoked": (
        lambda a, o: (a.issue(NODE.public_key, "cart", now=NOW), {"revocations": a.revoke([NODE.node_id], now=NOW)}),
        "revoked",
        f"node {NODE.node_id[:8]} is revoked",
    ),
}


@pytest.mark.parametrize(("make", "code", "reason"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusal_names_what_is_wrong(authority: Authority, other_authority: Authority, make, code, reason) -> None:
    cert, overrides = make(authority, other_authority)
    kwargs = {"role": "cart", "public_key": NODE.public_key, **overrides}
    role = kwargs.pop("role")
    with pytest.raises(CertificateError, match=reason) as caught:
        verify(cert, authority.public_key, role, NOW, **kwargs)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda doc: {**doc, "role": "lorry"}, "role: Input should be 'bridge' or 'cart'"),
        (lambda doc: {**doc, "extra": 1}, "extra: Extra inputs are not permitted"),
        (lambda doc: {k: v for k, v in doc.items() if k != "not_after_ms"}, "not_after_ms: Field required"),
        (lambda doc: {**doc, "signature": doc["signature"][:-4]}, "signature: "),
        (lambda doc: {**doc, "public_key": doc["public_key"][:-2] + "B="}, "public_key: Value error, not canonical"),
    ],
    ids=["unknown role", "extra field", "missing expiry", "short signature", "non-canonical base64"],
)
def test_malformed_certificate_refused(authority: Authority, mangle, reason) -> None:
    doc = json.loads(encode(authority.issue(NODE.public_key, "cart", now=NOW)))
    with pytest.raises(CertificateError, match=reason) as caught:
        decode_certificate(json.dumps(mangle(doc)))
    assert caught.value.code == "malformed"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_tamper_fails(authority: Authority, data: st.DataObject) -> None:
    raw = encode(authority.issue(NODE.public_key, "cart", days=30, now=NOW)).rstrip(b"\n")
    index = data.draw(st.integers(0, len(raw) - 1), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]), label="byte")
    tampered = raw[:index] + bytes([value]) + raw[index + 1 :]
    with pytest.raises(CertificateError):
        verify(decode_certificate(tampered), authority.public_key, "cart", NOW, public_key=NODE.public_key)


# --- revocation lists ---------------------------------------------------------------------


def test_revocation_lists_grow_and_newer_serial_wins(tmp_path: Path) -> None:
    authority = Authority.create(tmp_path / "auth")
    first = authority.revocations()
    assert first.serial == 0 and first.revoked == []
    a, b = Identity.generate().node_id, Identity.generate().node_id
    second = authority.revoke([a])
    third = authority.revoke([b, a])
    assert (second.serial, third.serial) == (1, 2)
    assert third.revoked == [a, b]
    for rl in (first, second, third):
        assert certificates.check_revocations(rl, authority.public_key) is rl
    assert certificates.newer(third, second) and not certificates.newer(second, third)
    assert not certificates.newer(third, third) and certificates.newer(first, None)
    assert Authority.load(tmp_path / "auth").revocations() == third


def test_revocation_list_refusals(authority: Authority, other_authority: Authority) -> None:
    good = authority.revoke([Identity.generate().node_id])
    with pytest.raises(CertificateError, match="revocation list is for swarm") as caught:
        certificates.check_revocations(other_authority.revocations(), authority.public_key)
    assert caught.value.code == "wrong_swarm"
    rolled_back = good.model_copy(update={"serial": good.serial + 10, "revoked": []})
    with pytest.raises(CertificateError, match="bad revocation list signature") as caught:
        certificates.check_revocations(rolled_back, authority.public_key)
    assert caught.value.code == "bad_signature"
    with pytest.raises(ValueError, match="is not a node id"):
        authority.revoke(["not-a-node-id"])


# --- the authority and the node's data dir -------------------------------------------------


def test_authority_files_are_private_and_not_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "auth"
    authority = Authority.create(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / AUTHORITY_KEY_FILE).stat().st_mode) == 0o600
    with pytest.raises(AuthorityError, match="already holds a swarm authority"):
        Authority.create(folder)
    assert Authority.load(folder).public_key == authority.public_key
    assert Authority.load_or_create(folder).public_key == authority.public_key
    assert certificates.read_swarm_key(folder) == authority.swarm
    with pytest.raises(AuthorityError, match=f"create one with: fedcart authority init --dir {tmp_path / 'none'}"):
        Authority.load(tmp_path / "none")


def test_enrol_writes_what_the_node_needs(tmp_path: Path, authority: Authority) -> None:
    node_dir = tmp_path / "cart-0"
    cert = enrol(authority, node_dir, "cart", days=10)
    identity = Identity.load_or_create(node_dir)
    assert cert.public_key == identity.public_key
    assert stat.S_IMODE((node_dir / SIGNING_KEY_FILE).stat().st_mode) == 0o600
    swarm, loaded = load_enrolment(node_dir, identity.public_key, "cart")
    assert swarm == authority.swarm and loaded == cert
    assert certificates.read_revocations(node_dir) == authority.revocations()
    assert ensure_enrolled(authority, node_dir, "cart") == cert, "a valid certificate is kept"
    assert ensure_enrolled(authority, node_dir, "bridge").role == "bridge", "a wrong role is reissued"


def _other_swarm(authority: Authority, other: Authority, node_dir: Path) -> None:
    """The node trusts `authority` but holds a certificate from another swarm."""
    enrol(other, node_dir, "cart")
    (node_dir / SWARM_FILE).write_bytes(encode(authority.swarm))


@pytest.mark.parametrize(
    ("prepare", "code", "reason"),
    [
        (lambda a, o, d: None, "not_enrolled", "not enrolled in a swarm .*swarm.json"),
        (
            lambda a, o, d: enrol(a, d, "cart") and (d / CERTIFICATE_FILE).unlink(),
            "not_enrolled",
            "not enrolled in a swarm .*certificate.json",
        ),
        (
            lambda a, o, d: enrol(a, d, "cart") and (d / CERTIFICATE_FILE).write_text("{}"),
            "malformed",
            "malformed certificate",
        ),
        (_other_swarm, "wrong_swarm", "not this swarm"),
        (lambda a, o, d: enrol(a, d, "bridge"), "wrong_role", "certificate is for a bridge, not a cart"),
        (lambda a, o, d: enrol(a, d, "cart", days=0.001), "expired", "certificate expired"),
    ],
    ids=["nothing", "no certificate", "damaged certificate", "other swarm", "wrong role", "expired"],
)
def test_node_without_valid_enrolment_is_told_the_command(
    tmp_path: Path, authority: Authority, other_authority: Authority, prepare, code, reason
) -> None:
    node_dir = tmp_path / "node"
    identity = Identity.load_or_create(node_dir)
    prepare(authority, other_authority, node_dir)
    with pytest.raises(CertificateError, match=reason) as caught:
        load_enrolment(node_dir, identity.public_key, "cart", now=certificates.now_ms() + DAY)
    assert caught.value.code == code
    assert f"fedcart enrol --authority AUTHORITY_DIR --data-dir {node_dir} --role cart" in str(caught.value)


# --- the commands -----------------------------------------------------------------------------


def test_authority_enrol_revoke_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fedcart.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    assert "swarm " in run("authority", "init", "--dir", "auth")
    assert "already holds a swarm authority" in run("authority", "init", "--dir", "auth", code=1)
    run("enrol", "--authority", "auth", "--data-dir", "bridge-0", "--role", "bridge")
    run("enrol", "--authority", "auth", "--data-dir", "cart-0", "--role", "cart", "--days", "7")
    assert "'lorry' is not one of" in run("enrol", "--authority", "auth", "--data-dir", "x", "--role", "lorry", code=2)
    assert "fedcart authority init --dir nowhere" in run(
        "enrol", "--authority", "nowhere", "--data-dir", "x", "--role", "cart", code=1
    )
    authority = Authority.load(tmp_path / "auth")
    cart = Identity.load_or_create(tmp_path / "cart-0")
    swarm, cert = load_enrolment(tmp_path / "cart-0", cart.public_key, "cart")
    assert swarm == authority.swarm and cert.not_after_ms - cert.not_before_ms == 7 * DAY + CLOCK_SKEW_MS
    load_enrolment(tmp_path / "bridge-0", Identity.load_or_create(tmp_path / "bridge-0").public_key, "bridge")

    assert "revocation list 1 signed (1 revoked)" in run(
        "revoke", cart.node_id, "--authority", "auth", "--data-dir", "bridge-0"
    )
    for folder in ("auth", "bridge-0"):
        revoked = certificates.decode_revocations((tmp_path / folder / REVOCATIONS_FILE).read_bytes())
        assert revoked.serial == 1 and revoked.revoked == [cart.node_id]
    shown = run("authority", "show", "--dir", "auth")
    assert f"{cart.node_id}  revoked" in shown and "revocation list 1: 1 revoked" in shown
