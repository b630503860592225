"""The bridge's own status page (`GET /`): its carts, its links, the published model, for an operator's browser.

Server-rendered HTML with no script at all: every value is escaped here, the page
reloads itself every REFRESH_SECONDS, and its Content-Security-Policy allows only
its own inline style (by hash) and this bridge's pairing image. It shows what
`/health`, `/peers` and `/models/latest.json` already tell anyone, laid out for people.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cartnet.phone_models import PublishedModel
    from parent_cart.bridge import Bridge
    from parent_cart.directory import Member

REFRESH_SECONDS = 10
SHORT_ID = 12

STYLE = """
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;background:#f4f6f8}
header{background:#0f172a;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;gap:4px 16px;align-items:baseline}
header strong{font-size:1.15rem}header span{color:#cbd5e1;font-size:.9rem}
main{max-width:1200px;margin:0 auto;padding:12px 16px}
h2{font-size:1.1rem;margin:0 0 8px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px;margin:0 0 12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.tile{border:1px solid #e2e8f0;border-radius:8px;padding:10px;text-align:center}
.tile b{display:block;font-size:1.6rem}.tile span{color:#64748b;font-size:.85rem}
.scroll{overflow-x:auto}table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:6px;border-bottom:1px solid #e2e8f0;white-space:nowrap}
th{font-size:.85rem;color:#64748b}.num{text-align:right}
code{font-family:ui-monospace,Menlo,monospace;font-size:.9em}
.muted{color:#64748b}.small{font-size:.85rem}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:.8rem;font-weight:600}
.good{background:#dcfce7;color:#15803d}.bad{background:#fee2e2;color:#b91c1c}.plain{background:#e2e8f0;color:#334155}
.pair{display:flex;flex-wrap:wrap;gap:16px;align-items:center}.pair img{width:180px;height:180px}
a{color:#2563eb}
""".strip()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(bridge: Bridge) -> str:
    """The whole page, as of now."""
    health = bridge.health()
    members = bridge.directory.members()
    here = [m for m in members if m.local]
    title = f"bridge {bridge.node_id[:8]}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>fedcart · {_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<header><strong>fedcart {_e(title)}</strong><span>{_e(bridge.url)}</span>",
        f"<span>swarm {_e(str(health['swarm_id'])[:SHORT_ID])}</span>",
        f'<span id="state">{_e(health["status"])}, up {_uptime(float(str(health["uptime_s"])))}</span></header>',
        "<main>",
        _summary(health, len(here), len(members)),
        _carts(bridge, members),
        _links(bridge),
        _models(bridge.models.latest),
        _pairing(),
        f'<p class="muted small">This page reloads every {REFRESH_SECONDS} s. As JSON: '
        '<a href="/health">/health</a>, <a href="/peers">/peers</a>, '
        '<a href="/models/latest.json">/models/latest.json</a>, <a href="/metrics">/metrics</a> (Prometheus).</p>',
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _summary(health: dict[str, object], attached: int, swarm: int) -> str:
    tiles = [
        ("carts-here", attached, "carts attached to this bridge (announced)"),
        ("carts-swarm", swarm, "carts in the swarm this bridge knows, its own included"),
        ("links", health["bridges_linked"], "other bridges linked to this one"),
        ("dht", health["dht_contacts"], "DHT contacts (bridges in its routing table)"),
    ]
    cells = "".join(
        f'<div class="tile"><b id="{key}">{_e(value)}</b><span>{_e(label)}</span></div>' for key, value, label in tiles
    )
    return f'<section aria-labelledby="summary-title"><h2 id="summary-title">Swarm at a glance</h2><div class="tiles">{cells}</div></section>'


def _carts(bridge: Bridge, members: list[Member]) -> str:
    head = (
        "<tr><th>Cart (node id)</th><th>Attached to</th><th>Task</th><th>Update on offer</th>"
        "<th>Connected since (UTC)</th></tr>"
    )
    rows = []
    for member in members:
        info, record = member.info, member.record
        if member.local:
            where = '<span class="badge good">this bridge</span>'
            peer = bridge.directory.local.get(info.node_id)
            since = _when(peer.connected_at) if peer is not None else "–"
        else:
            where = f'bridge <code title="{_e(info.bridge_id)}">{_e(info.bridge_id[:SHORT_ID])}</code>'
            where += f' <span class="muted small">{_e(info.bridge_url)}</span>' if info.bridge_url else ""
            since = '<span class="muted">on another bridge</span>'
        ready = '<span class="badge good">yes</span>' if record.ready else '<span class="badge plain">no</span>'
        rows.append(
            f'<tr data-node="{_e(info.node_id)}"><td><code title="{_e(info.node_id)}">{_e(info.node_id[:SHORT_ID])}</code></td>'
            f"<td>{where}</td><td>{_e(record.task or '–')}</td><td>{ready}</td><td>{since}</td></tr>"
        )
    waiting = len(bridge.directory.local) - sum(1 for m in members if m.local)
    note = (
        f'<p class="muted small">{waiting} more cart{"" if waiting == 1 else "s"} admitted here but not announced yet '
        "(listed once their signed presence arrives).</p>"
        if waiting > 0
        else ""
    )
    if not rows:
        return (
            '<section aria-labelledby="carts-title"><h2 id="carts-title">Carts</h2>'
            f'<p id="no-carts">No cart is known to this bridge yet.</p>{note}</section>'
        )
    return (
        '<section aria-labelledby="carts-title"><h2 id="carts-title">Carts</h2>'
        f'<div class="scroll"><table id="carts"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'
        f"{note}</section>"
    )


def _links(bridge: Bridge) -> str:
    rows = []
    for peer in sorted(bridge.links.peers(), key=lambda p: p.node_id):
        vouched = len(bridge.directory.remote.get(peer.node_id, {}))
        direction = "this bridge dialed" if peer.initiator else "it dialed this bridge"
        rows.append(
            f'<tr data-bridge="{_e(peer.node_id)}"><td><code title="{_e(peer.node_id)}">{_e(peer.node_id[:SHORT_ID])}</code></td>'
            f"<td>{_e(peer.url or '–')}</td><td>{_e(direction)}</td><td>{_when(peer.connected_at)}</td>"
            f'<td class="num">{vouched}</td></tr>'
        )
    if not rows:
        return (
            '<section aria-labelledby="links-title"><h2 id="links-title">Links to other bridges</h2>'
            '<p id="no-links">No other bridge is linked: this bridge is alone, or still finding the others.</p></section>'
        )
    head = (
        "<tr><th>Bridge (node id)</th><th>URL</th><th>Direction</th><th>Linked since (UTC)</th>"
        '<th class="num">Carts it vouches for</th></tr>'
    )
    return (
        '<section aria-labelledby="links-title"><h2 id="links-title">Links to other bridges</h2>'
        f'<div class="scroll"><table id="links-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div></section>'
    )


def _models(model: PublishedModel | None) -> str:
    title = '<h2 id="models-title">Published model for phones</h2>'
    if model is None:
        return (
            f'<section aria-labelledby="models-title">{title}'
            '<p id="no-model">No model published yet: carts publish one after an accepted round.</p></section>'
        )
    metrics = ", ".join(f"{_e(name)} {value:.3f}" for name, value in sorted(model.metrics.items())) or "–"
    facts = [
        ("Task", _e(model.task)),
        ("Version", _e(model.version)),
        (
            "From cart",
            f'<code title="{_e(model.publisher)}">{_e(model.publisher[:SHORT_ID])}</code>, its round {model.round}',
        ),
        ("Held-out metrics (the publisher's rows)", metrics),
        ("Created", _e(model.created)),
        ("Size", f"{model.size / 1024:.1f} KiB"),
        ("SHA-256", f'<code title="{_e(model.sha256)}">{_e(model.sha256[:16])}…</code>'),
    ]
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    return (
        f'<section aria-labelledby="models-title">{title}<table id="model">{rows}</table>'
        '<p class="small"><a href="/models/latest">Download the .tflite</a> · '
        '<a href="/models/latest.json">signed manifest (JSON)</a></p></section>'
    )


def _pairing() -> str:
    return (
        '<section aria-labelledby="pair-title"><h2 id="pair-title">Pair a phone</h2><div class="pair">'
        '<img src="/pairing.svg" alt="QR code that pairs the fedcart app with this swarm">'
        "<p class=\"small\">Scan with the phone's camera to open the fedcart app's settings with this bridge and the "
        'swarm\'s key filled in (<a href="/pairing">as JSON</a>). Set PUBLIC_URL to an address phones can reach first.</p>'
        "</div></section>"
    )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _uptime(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
