"""The bridge's HTTP face: `/ws` for carts and bridges, a status page at `/` for operators, JSON for people and
phones (models, pairing), metrics for Prometheus."""

from __future__ import annotations

import base64
import io
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from cartnet.phone_models import pairing_uri
from parent_cart import status_page
from parent_cart.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from parent_cart.bridge import Bridge

log = logging.getLogger(__name__)


def build(bridge: Bridge) -> web.Application:
    """All routes of one bridge; a request that reaches them has met the bridge's header deadline."""
    app = web.Application(middlewares=[bridge.header_deadline.middleware])
    routes = _Routes(bridge)
    app.router.add_get("/ws", bridge.gate.handle)
    app.router.add_get("/", routes.status)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/peers", routes.peers)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/models/latest", routes.model)
    app.router.add_get("/models/latest.json", routes.model_meta)
    app.router.add_get("/models/{sha256:[0-9a-f]{64}}", routes.model_by_digest)
    app.router.add_get("/pairing", routes.pairing)
    app.router.add_get("/pairing.svg", routes.pairing_qr)
    return app


class _Routes:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def status(self, _request: web.Request) -> web.Response:
        """The status page: this bridge's carts, links and published model, for a browser (`status_page`)."""
        return web.Response(text=status_page.render(self.bridge), content_type="text/html", headers=status_page.HEADERS)

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response(self.bridge.health())

    async def peers(self, _request: web.Request) -> web.Response:
        """Every live cart of the swarm (`local` = attached to this bridge)."""
        members = self.bridge.directory.members()
        return web.json_response(
            {
                "bridge_id": self.bridge.node_id,
                "count": len(members),
                "peers": [member.as_json() for member in members],
            }
        )

    async def metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.bridge.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def model(self, _request: web.Request) -> web.StreamResponse:
        """The newest TFLite model, with its version and SHA-256 in headers."""
        meta = self.bridge.models.latest
        if meta is None:
            return _no_model()
        headers = {
            "X-Model-Version": str(meta.version),
            "X-Model-Sha256": meta.sha256,
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{meta.filename}"',
        }
        return web.FileResponse(self.bridge.models.path(meta), headers=headers)

    async def model_by_digest(self, request: web.Request) -> web.StreamResponse:
        """The served model's bytes by SHA-256, for bridges agreeing on the newest model (parent_cart.agreement);
        404 when this bridge does not serve that model (the fetcher checks the bytes against the signed digest)."""
        path = self.bridge.models.file_of(request.match_info["sha256"])
        if path is None:
            return web.json_response({"error": "no such model here"}, status=404)
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    async def model_meta(self, _request: web.Request) -> web.Response:
        """The newest model's signed manifest, signature and certificate, and its fields (cartnet.phone_models)."""
        meta = self.bridge.models.latest
        return _no_model() if meta is None else web.json_response(meta.model_dump(mode="json"))

    async def pairing(self, _request: web.Request) -> web.Response:
        """What a phone needs to trust this swarm: this bridge's URL and the swarm's public key (public facts)."""
        swarm = self.bridge.membership.swarm
        return web.json_response(
            {
                "bridge": self.bridge.url,
                "swarm_id": swarm.swarm_id,
                "public_key": base64.b64encode(swarm.public_key).decode(),
                "uri": pairing_uri(self.bridge.url, swarm),
            }
        )

    async def pairing_qr(self, _request: web.Request) -> web.Response:
        """The pairing URI as a QR code (SVG) for the app to scan; set PUBLIC_URL to an address phones can reach."""
        import segno

        code = segno.make(pairing_uri(self.bridge.url, self.bridge.membership.swarm), error="m")
        svg = io.BytesIO()  # a standalone document (with its xmlns), so browsers draw it as an image too
        code.save(svg, kind="svg", scale=6, xmldecl=False, svgclass=None, lineclass=None)
        return web.Response(body=svg.getvalue(), content_type="image/svg+xml")


def _no_model() -> web.Response:
    return web.json_response({"error": "no model published yet"}, status=404)
