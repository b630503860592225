"""parent_cart: the bridge. Kademlia DHT node, WebSocket relay, model distribution.

One module per idea:

    bridge.py     assembles one bridge (start/stop), used by `fedcart bridge` and by tests
    server.py     runs a bridge until SIGTERM/SIGINT, then shuts it down gracefully
    app.py        HTTP routes: /ws, / (status page), /health, /peers, /metrics, /models/latest(.json), /models/<sha256>, /pairing(.svg)
    status_page.py  the operator's status page at /: carts, links, the published model (server-rendered, no script)
    header_deadline.py  closes connections whose request headers do not arrive in time
    gate.py       swarm admission on /ws, hand-off to a cart session or a bridge link
    session.py    one cart's connection: heartbeats, directory, presence, pacing, routing
    relay.py      forwarding routed frames; Undeliverable to senders, with reasons
    peer.py       an admitted connection and its bounded, congestion-aware outbox
    ratelimit.py  per-cart token buckets (frames/s, bytes/s)
    links.py      mutually authenticated bridge-to-bridge links and their rosters
    directory.py  local carts and remote rosters; the swarm's live membership
    records.py    certified DHT entries (owner-signed record + swarm certificate) and the one rule for believing them
    dht.py        the kademlia node: verified storage, a routing table closed to strangers, the package's bugs worked around
    announce.py   publishing to the DHT; finding, trusting and linking other bridges
    models.py     the newest signed TFLite model for phones: verified (signature, certificate, LiteRT), stored atomically
    agreement.py  one model for all phones: the newest accepted model's signed entry in the DHT, fetched from a linked bridge
    metrics.py    Prometheus metrics of one bridge
    settings.py   BridgeSettings (flags > environment > .env > defaults)
"""
