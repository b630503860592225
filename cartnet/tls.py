"""TLS for relays and the connections to them: the swarm authority as a small X.509 CA, and SSL contexts.

The swarm authority (cartnet.authority) keeps, beside its Ed25519 key, an ECDSA P-256 CA key and
a self-signed CA certificate (`tls_ca.key`, 0600, and `tls_ca.pem`), made on first use. P-256
rather than Ed25519 because every TLS stack accepts it, browsers included.

Enrolling a node (`fedcart enrol`) writes that CA certificate into the node's data dir
(`tls/ca.pem`: whom the node trusts when it dials https:// or wss://) and, given
`--tls-host NAME` (repeatable; DNS names or IP addresses), a server certificate for exactly
those names (`tls/cert.pem`). Its private key (`tls/key.pem`, 0600) is made in the data dir
the first time and kept: like the node's Ed25519 key, only its public half is certified.

What nodes do with them:

* a bridge serves HTTPS/WSS when it has a certificate and a key: TLS_CERT and TLS_KEY (files
  the operator provides), else the data dir's `tls/cert.pem` and `tls/key.pem` (`server_files`,
  `server_context`); with neither it serves plain HTTP, as on 127.0.0.1 in `make run`;
* whoever dials (a cart its bridge, a bridge another bridge) verifies the server's certificate
  chain and host name against TLS_CA (a PEM file, or `system` for the system's trust store), else
  the swarm CA in its data dir, else the system's trust store (`dialing_context`);
* `explain` turns a failed TLS dial into a sentence that says what to fix.

The TLS layer protects the links between nodes (who reads or alters the bytes on the way); who
is a member is still decided by the swarm certificates at admission (cartnet.certificates).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cartnet.files import write_atomic

CA_KEY_FILE = "tls_ca.key"
"""The CA's private key, in the authority's directory (0600)."""
CA_CERT_FILE = "tls_ca.pem"
"""The CA's certificate, in the authority's directory."""
TLS_DIR = "tls"
CA_FILE = f"{TLS_DIR}/ca.pem"
"""In a node's data dir: the swarm's CA certificate, what the node trusts when it dials."""
CERT_FILE = f"{TLS_DIR}/cert.pem"
"""In a node's data dir: its server certificate (`fedcart enrol --tls-host`)."""
KEY_FILE = f"{TLS_DIR}/key.pem"
"""In a node's data dir: the private key of its server certificate (0600)."""
SYSTEM_TRUST = "system"
"""TLS_CA's value for the system's trust store (public CAs), whatever the data dir holds."""

CA_DAYS = 20 * 365
CA_RENEW_DAYS = 400
"""A CA certificate with less than this left is re-signed (same key and name, so every issued certificate still holds)."""
CLOCK_SKEW = datetime.timedelta(minutes=5)
"""A certificate holds from this long before it was issued, for nodes whose clock is a little behind."""
MIN_VERSION = ssl.TLSVersion.TLSv1_2

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class TLSError(RuntimeError):
    """TLS files are missing, damaged, expired or do not belong together; the message says what to do."""


# --- host names ------------------------------------------------------------------------------


def host_name(host: str) -> x509.GeneralName:
    """A `--tls-host` value as a certificate name: an IP address, or a DNS name (lower-cased); ValueError if neither."""
    text = host.strip().rstrip(".").lower()
    try:
        return x509.IPAddress(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValueError(f"TLS host {host!r} is neither a DNS name (letters, digits, hyphens, dots) nor an IP address")
    if labels[-1].isdigit():
        raise ValueError(f"TLS host {host!r} looks like a number, not a DNS name or an IP address")
    return x509.DNSName(text)


def host_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """`host_name` of each, in order, without repeats; ValueError when there is none."""
    names = list(dict.fromkeys(host_name(host) for host in hosts))
    if not names:
        raise ValueError("a server certificate needs at least one host name or IP address")
    return names


def hosts_of(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate is for (its subject alternative names)."""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in names if isinstance(name, (x509.DNSName, x509.IPAddress))]


# --- the authority's CA ----------------------------------------------------------------------


@dataclass(frozen=True)
class SwarmCA:
    """The authority's X.509 CA: issues server certificates for the nodes' host names."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def load_or_create(cls, directory: Path, swarm_id: str, now: datetime.datetime | None = None) -> SwarmCA:
        """The CA kept in `directory` (the authority's), its key made on first use and its certificate
        (re-)signed when missing, for another key, near its end or not yet valid. Safe when processes race: the key is
        created once, and any certificate of that key and name verifies what the others issued."""
        at = now or _now()
        key_path = directory / CA_KEY_FILE
        if not key_path.exists():
            write_atomic(key_path, _private_pem(ec.generate_private_key(ec.SECP256R1())), private=True, exclusive=True)
        key = _load_private_key(key_path)
        cert_path = directory / CA_CERT_FILE
        cert = _read_certificate(cert_path) if cert_path.exists() else None
        if (
            cert is None
            or cert.public_key() != key.public_key()
            or cert.not_valid_after_utc < at + datetime.timedelta(days=CA_RENEW_DAYS)
            or cert.not_valid_before_utc > at
        ):
            cert = _ca_certificate(key, swarm_id, at)
            write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        hosts: Sequence[str],
        days: float,
        note: str = "",
        now: datetime.datetime | None = None,
    ) -> x509.Certificate:
        """A server certificate for `public_key`, valid for `hosts` (DNS names or IPs) for `days` from `now`
        (never past the CA's own end); `note` (such as the node's role and id) goes into its subject."""
        if days <= 0:
            raise ValueError(f"a certificate must be valid for some time, not {days} days")
        names = host_names(hosts)
        at = now or _now()
        until = min(at + datetime.timedelta(days=days), self.certificate.not_valid_after_utc)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, str(names[0].value)[:64])]
        if note:
            subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, note[:64]))
        authority_key = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - CLOCK_SKEW)
            .not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_key), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issued(self, cert: x509.Certificate) -> bool:
        """True when this CA signed `cert` (the signature, not only the issuer's name)."""
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def _ca_certificate(key: ec.EllipticCurvePrivateKey, swarm_id: str, at: datetime.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedcart"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"fedcart swarm {swarm_id[:16]} TLS CA"),
        ]
    )
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - CLOCK_SKEW)
        .not_valid_after(at + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- a node's files --------------------------------------------------------------------------


def store_ca(data_dir: Path, ca: SwarmCA) -> None:
    """Give the node in `data_dir` the swarm's CA certificate (what it trusts when it dials)."""
    path = data_dir / CA_FILE
    if not path.exists() or path.read_bytes() != ca.pem:
        write_atomic(path, ca.pem)


def node_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The private key of the node's server certificate, made (0600) the first time and kept."""
    path = data_dir / KEY_FILE
    if not path.exists():
        write_atomic(path, _private_pem(ec.generate_private_key(ec.SECP256R1())), private=True, exclusive=True)
    return _load_private_key(path)


def issue_server_certificate(
    ca: SwarmCA, data_dir: Path, hosts: Sequence[str], days: float, note: str = ""
) -> x509.Certificate:
    """Certify the node's TLS key (made if missing) for `hosts` and keep the certificate in its data dir."""
    cert = ca.issue(node_key(data_dir).public_key(), hosts, days, note)
    write_atomic(data_dir / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return cert


def server_certificate_holds(
    ca: SwarmCA, data_dir: Path, hosts: Sequence[str], until: datetime.datetime
) -> x509.Certificate | None:
    """The node's server certificate when it is this CA's, for its key, for exactly `hosts`, and valid
    through `until`; None when it must be issued (anew)."""
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if not cert_path.exists() or not key_path.exists():
        return None
    try:
        cert = _read_certificate(cert_path)
        key = _load_private_key(key_path)
    except TLSError:
        return None
    wanted = {str(name.value) for name in host_names(hosts)}
    if (
        not ca.issued(cert)
        or cert.public_key() != key.public_key()
        or set(hosts_of(cert)) != wanted
        or cert.not_valid_after_utc < until
        or cert.not_valid_before_utc > _now()
    ):
        return None
    return cert


def read_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file; TLSError when it is missing or damaged."""
    return _read_certificate(path)


# --- serving ---------------------------------------------------------------------------------


def server_files(data_dir: Path, cert: str = "", key: str = "") -> tuple[Path, Path] | None:
    """The certificate and key a server should use: `cert` and `key` (TLS_CERT, TLS_KEY) when set, else the
    data dir's `tls/cert.pem` and `tls/key.pem` when both are there, else None (serve plain HTTP)."""
    if cert or key:
        if not (cert and key):
            raise TLSError(
                "TLS_CERT and TLS_KEY go together: set both (a PEM certificate chain and its key) or neither"
            )
        paths = Path(cert), Path(key)
        for name, path in zip(("TLS_CERT", "TLS_KEY"), paths):
            if not path.is_file():
                raise TLSError(f"{name} is {str(path)!r}, which is not a file")
        return paths
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_path.exists() != key_path.exists():
        missing = key_path if cert_path.exists() else cert_path
        raise TLSError(
            f"{missing} is missing (a server certificate needs its key); issue both again: "
            f"fedcart enrol --authority AUTHORITY_DIR --data-dir {data_dir} --role ROLE --tls-host HOST"
        )
    return (cert_path, key_path) if cert_path.exists() else None


def server_context(cert: Path, key: Path, now: datetime.datetime | None = None) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 at least) serving `cert` (a PEM chain, leaf first) with `key`;
    TLSError when they do not load, do not match, or the certificate is not valid now."""
    leaf = _read_certificate(cert)
    at = now or _now()
    if leaf.not_valid_after_utc < at:
        raise TLSError(
            f"the TLS certificate {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
            "issue a new one (fedcart enrol ... --tls-host HOST) or point TLS_CERT at a current one"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_VERSION
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise TLSError(f"cannot serve TLS with {cert} and {key}: {exc}") from None
    return context


# --- dialing ---------------------------------------------------------------------------------


def trust_file(data_dir: Path, tls_ca: str = "") -> Path | None:
    """The CA file a node trusts when it dials: TLS_CA when set (None for `system`), else the swarm CA in
    the data dir when enrolment put one there, else None (the system's trust store)."""
    if tls_ca == SYSTEM_TRUST:
        return None
    if tls_ca:
        path = Path(tls_ca)
        if not path.is_file():
            raise TLSError(f"TLS_CA is {tls_ca!r}, which is not a file (a PEM bundle of CA certificates, or 'system')")
        return path
    path = data_dir / CA_FILE
    return path if path.exists() else None


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A context for dialing (TLS 1.2 at least, certificate chain and host name checked) that trusts the CAs
    in `ca_file` alone, or the system's trust store when None."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"cannot read the CA certificates in {ca_file}: {exc}") from None
    context.minimum_version = MIN_VERSION
    return context


def dialing_context(data_dir: Path, tls_ca: str = "") -> ssl.SSLContext:
    """`client_context` of `trust_file`: what a node with this data dir and TLS_CA verifies servers against."""
    return client_context(trust_file(data_dir, tls_ca))


def explain(exc: BaseException, url: str) -> str | None:
    """A sentence for a dial of `url` that failed in TLS (the server's certificate not trusted, or no TLS
    there at all), or None when `exc` is no TLS failure."""
    error = _ssl_error(exc)
    if error is None:
        return None
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"{url}: the server's TLS certificate is not trusted ({getattr(error, 'verify_message', '') or error}); "
            "it must be issued for this host name by a CA this node trusts: TLS_CA, else the swarm CA "
            "(DATA_DIR/tls/ca.pem, written by fedcart enrol), else the system's"
        )
    return f"{url}: TLS handshake failed ({getattr(error, 'reason', '') or error}); does the server speak TLS on that port?"


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError behind `exc` (aiohttp wraps it), if any."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        # aiohttp's connector errors subclass ssl's own and carry the real one inside: look there first
        inner = getattr(seen, "certificate_error", None) or getattr(seen, "os_error", None)
        if isinstance(inner, BaseException):
            seen = inner
        elif isinstance(seen, ssl.SSLError):
            return seen
        else:
            seen = seen.__cause__ or seen.__context__
    return None


# --- helpers ---------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TLSError(f"{path} is not a readable PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{path} holds a {type(key).__name__}, not an ECDSA key")
    return key


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TLSError(f"{path} is not a readable PEM certificate: {exc}") from None
