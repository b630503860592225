"""One model for all phones: the bridges agree, through the DHT, on the newest accepted model and serve its bytes.

When this bridge accepts a model (an upload that passed `ModelStore`'s checks) it stores,
under the task's key `fedcart/model/<task>` (parent_cart.records), the publisher-signed
manifest, the publisher's signature and certificate: a few KB, believed by every bridge's
DHT only when a certified cart of the swarm signed it and its version is not from the
future, and kept only when it is the highest (version, sha256) of the task, so concurrent
publications settle on the same model everywhere.

Every `refresh_interval` (`sync`) the bridge reads the entries of the tasks it watches
(every built-in task, and any task it has served) and, when one names a model that beats
the one served by (version, sha256), fetches its bytes from a linked bridge (`GET
/models/<sha256>` on the peer's relay URL, at most the signed size) and serves them once
`ModelStore.adopt` has checked them like an upload: the signed hash and size, LiteRT's
view of the tensors. A peer that answers with other bytes is skipped for the next one. The
served model's own entry is stored again when the DHT does not hold it (a restart, a lost
value), so the agreement survives any one bridge.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable, Iterable

import aiohttp

from cartnet.phone_models import ModelManifest, PublishedModel
from parent_cart import records
from parent_cart.dht import Dht
from parent_cart.links import Links
from parent_cart.models import ModelError, ModelStore
from parent_cart.records import relay_url_problem

log = logging.getLogger(__name__)

WATCHED_TASKS = ("recommend", "iot-anomaly", "iot-intrusion", "iot-intrusion-forest")
"""Tasks whose agreed model every bridge reads, whether or not a cart published one to it."""

PeerUrls = Callable[[], Iterable[str]]


class ModelAgreement:
    """Publishes accepted models in the DHT and adopts the newest agreed model from a linked bridge."""

    def __init__(
        self,
        store: ModelStore,
        dht: Dht,
        links: Links,
        peer_urls: PeerUrls,
        timeout: float,
        tasks: Iterable[str] = WATCHED_TASKS,
    ) -> None:
        self.store = store
        self.dht = dht
        self.links = links
        self.peer_urls = peer_urls
        self.timeout = timeout
        self.tasks = set(tasks)
        self.adopted = 0
        """Models fetched from another bridge and served here."""
        self.fetch_failures = 0
        """Peers that did not give the agreed model's bytes (absent, unreachable, or other bytes)."""
        self._lock = asyncio.Lock()

    async def publish(self, meta: PublishedModel) -> bool:
        """Store the accepted model's signed entry under its task's key; True when another node took it."""
        self.tasks.add(meta.task)
        try:
            value = records.encode(records.model_entry(meta.signed, meta.certificate))
            return await self.dht.put(records.model_key(meta.task), value)
        except (OSError, ValueError) as exc:
            log.warning("could not publish model v%d of task %s in the DHT: %s", meta.version, meta.task, exc)
            return False

    async def sync(self) -> PublishedModel | None:
        """One round: serve the newest agreed model of the watched tasks if it beats ours; returns what was adopted."""
        async with self._lock:
            served = self.store.latest
            if served is not None:
                self.tasks.add(served.task)
            newest: records.Believed | None = None
            for task in sorted(self.tasks):
                found = await self.dht.believed(records.model_key(task))
                if found is not None and found.model is not None and (newest is None or found.fresher_than(newest)):
                    newest = found
                if served is not None and served.task == task and _loses(found, served):
                    await self.publish(served)
            if newest is None or newest.model is None or not isinstance(newest.entry, records.ModelEntry):
                return None
            model = newest.model
            if not self.store.older_than(model.version, model.sha256):
                return None
            return await self._fetch(newest.entry, model)

    async def _fetch(self, entry: records.ModelEntry, model: ModelManifest) -> PublishedModel | None:
        urls = [url for url in dict.fromkeys(self.peer_urls()) if url and relay_url_problem(url) is None]
        if not urls:
            log.info("agreed model v%d (%s) is newer, but no linked bridge to fetch it from", model.version, model.task)
            return None
        timeout = aiohttp.ClientTimeout(total=self.timeout + model.size / (1024 * 1024))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for url in urls:
                data = await self._get(session, url, model)
                if data is None:
                    self.fetch_failures += 1
                    continue
                try:
                    adopted = await self.store.adopt(entry.signed, data)
                except ModelError as exc:
                    self.fetch_failures += 1
                    log.warning("bridge at %s gave bytes that are not agreed model v%d: %s", url, model.version, exc)
                    continue
                if adopted is not None:
                    self.adopted += 1
                return adopted
        return None

    async def _get(self, session: aiohttp.ClientSession, url: str, model: ModelManifest) -> bytes | None:
        target = f"{_http_base(url)}/models/{model.sha256}"
        ssl = self.links.ssl_context if self.links.ssl_context is not None else True
        try:
            async with session.get(target, ssl=ssl if target.startswith("https") else False) as response:
                if response.status != 200:
                    return None
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > model.size:
                        log.warning("bridge at %s sent more than the %d bytes agreed model needs", url, model.size)
                        return None
                return bytes(data)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("could not fetch agreed model v%d from %s: %s", model.version, url, exc or type(exc).__name__)
            return None


def _loses(found: records.Believed | None, served: PublishedModel) -> bool:
    """True when the DHT does not hold the served model or anything that beats it (so ours is stored again)."""
    if found is None or found.model is None:
        return True
    return (found.model.version, found.model.sha256) < (served.version, served.sha256)


def _http_base(relay_url: str) -> str:
    """The HTTP(S) origin and path of a relay URL (ws -> http, wss -> https)."""
    parts = urllib.parse.urlsplit(relay_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
