"""`fedcart authority init | show`, `fedcart enrol`, `fedcart revoke`: the operator's swarm authority.

The authority directory holds the swarm's private key: keep it on the operator's machine,
never on a node. `enrol` writes a node's certificate, the swarm's public key and the swarm's
TLS CA certificate into the node's data dir (creating the node's keys there if it has none
yet), and with `--tls-host` a TLS server certificate for those names (cartnet.tls); `revoke`
signs a new revocation list that bridges spread to each other.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cartnet.authority import DEFAULT_DAYS, Authority, AuthorityError, enrol, ensure_enrolled, store_revocations
from cartnet.certificates import REVOCATIONS_FILE, Role, utc_time
from cartnet.tls import CERT_FILE, TLSError, host_names

console = Console()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load(directory: Path) -> Authority:
    try:
        return Authority.load(directory)
    except AuthorityError as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add the `authority` group and the `enrol` and `revoke` commands to the CLI."""
    authority_app = typer.Typer(help="The swarm authority: who belongs to the swarm.", no_args_is_help=True)
    app.add_typer(authority_app, name="authority")
    authority_app.command("init")(authority_init)
    authority_app.command("show")(authority_show)
    app.command("enrol")(enrol_node)
    app.command("revoke")(revoke)


def authority_init(
    directory: Path = typer.Option(..., "--dir", help="Where the authority's key is kept (on the operator's machine)"),
    exist_ok: bool = typer.Option(False, "--exist-ok", help="Keep an authority already there instead of failing"),
) -> None:
    """Create a swarm authority: a new Ed25519 key and the swarm id derived from it."""
    try:
        authority = Authority.load_or_create(directory) if exist_ok else Authority.create(directory)
    except AuthorityError as exc:
        raise _fail(str(exc)) from None
    console.print(f"swarm [bold]{authority.swarm.swarm_id}[/bold]: authority in {directory} (keep it private)")
    console.print(
        f"next, for each node: fedcart enrol --authority {directory} --data-dir NODE_DATA_DIR --role cart|bridge"
    )


def authority_show(
    directory: Path = typer.Option(..., "--dir", help="The authority's directory"),
) -> None:
    """The swarm id, the revocation list and every certificate issued."""
    authority = _load(directory)
    revocations = authority.revocations()
    console.print(f"swarm {authority.swarm.swarm_id}")
    console.print(f"revocation list {revocations.serial}: {len(revocations.revoked)} revoked")
    for cert in authority.issued():
        state = "revoked" if revocations.names(cert.node_id) else f"until {utc_time(cert.not_after_ms)}"
        console.print(f"  {cert.role:6} {cert.node_id}  {state}", soft_wrap=True)


def enrol_node(
    authority_dir: Path = typer.Option(..., "--authority", help="The authority's directory"),
    data_dir: Path = typer.Option(..., "--data-dir", help="The node's data dir (its keys are created if missing)"),
    role: Role = typer.Option(..., "--role", help="What the node does: cart or bridge"),
    days: float = typer.Option(DEFAULT_DAYS, "--days", min=0.001, help="How long the certificate holds"),
    keep_valid: bool = typer.Option(
        False, "--keep-valid", help="Keep a certificate of this swarm and role with more than a day left (compose)"
    ),
    tls_hosts: list[str] | None = typer.Option(
        None,
        "--tls-host",
        help="Also issue a TLS server certificate (tls/cert.pem, key tls/key.pem) for this DNS name or IP "
        "address; repeat for several. A bridge with one serves HTTPS/WSS",
    ),
) -> None:
    """Issue a node its certificate and give it the swarm's public key and TLS CA certificate."""
    hosts = tls_hosts or []
    if hosts:
        try:
            host_names(hosts)
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
    authority = _load(authority_dir)
    try:
        if keep_valid:
            cert = ensure_enrolled(authority, data_dir, role, days, tls_hosts=hosts)
        else:
            cert = enrol(authority, data_dir, role, days, hosts)
    except TLSError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"enrolled {cert.role} [bold]{cert.node_id}[/bold] in swarm {cert.swarm_id[:8]} "
        f"until {utc_time(cert.not_after_ms)} ({data_dir})",
        soft_wrap=True,
    )
    if hosts:
        console.print(f"TLS certificate for {', '.join(hosts)}: {data_dir / CERT_FILE}", soft_wrap=True)


def revoke(
    node_ids: list[str] = typer.Argument(..., help="Node ids to remove from the swarm"),
    authority_dir: Path = typer.Option(..., "--authority", help="The authority's directory"),
    data_dirs: list[Path] | None = typer.Option(
        None, "--data-dir", help="Also drop the new list into this bridge's data dir (repeat for several)"
    ),
) -> None:
    """Sign a revocation list with these nodes added; bridges spread it and drop their sessions."""
    authority = _load(authority_dir)
    known = {cert.node_id for cert in authority.issued()}
    try:
        revocations = authority.revoke(node_ids)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    for node_id in node_ids:
        if node_id not in known:
            console.print(f"[yellow]note:[/yellow] {node_id} was not enrolled by this authority")
    for data_dir in data_dirs or []:
        store_revocations(data_dir, revocations)
    console.print(
        f"revocation list {revocations.serial} signed ({len(revocations.revoked)} revoked): "
        f"{authority_dir / REVOCATIONS_FILE}",
        soft_wrap=True,
    )
