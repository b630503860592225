"""cartnet: the wire protocol both node kinds speak.

It depends on asyncio, aiohttp and the standard crypto/tensor libraries only;
`parent_cart` and `child_cart` import it, never the reverse.

    identity.py    a node's Ed25519 + X25519 keys; node id = SHA-1 of the public key
    admission.py   the challenge answer that proves a key and swarm membership
    certificates.py swarm certificates and revocation lists: who is a member, as what
    authority.py   the operator's swarm authority: issues certificates, signs revocations
    tls.py         the authority's X.509 CA for TLS server certificates; SSL contexts for serving and dialing
    handshake.py   joining a bridge on an open WebSocket (carts and bridges alike)
    messages.py    typed control messages, one pydantic class per type
    compact.py     a control message's bytes on the wire: MessagePack, names by number, ids and keys as bytes
    frames.py      binary frame layout: control, transfer chunk, routed
    wsock.py       a client's WebSocket send without aiohttp's two copies for masking
    boundary.py    one frame's handling: whatever it raises becomes a counted refusal, never a dead session
    transfer.py    chunked, resumable transfers: streamed (each chunk signed or sealed as made, checked on arrival)
    payloads.py    typed transfer metadata, one pydantic model per purpose (model, update)
    phone_models.py signed phone models: the manifest a cart signs, what bridges and phones check, pairing URIs
    weights.py     the weight codec: safetensors + zstd with an inflation cap
    e2e.py         end-to-end sealing for one receiver: a whole blob, or a stream segment by segment
    secagg.py      masked secure aggregation: fixed point, pairwise + self masks, dropout recovery (no round uses it yet)
    presence.py    self-certifying presence records (where a cart can be reached)
    peers.py       peers verified end to end: a listed cart's keys against its own signature and certificate; signed requests
    client.py      BridgeClient: a cart's one long-lived connection to the swarm
    settings.py    settings every node kind shares
    logs.py        logging set-up for every entry point
    files.py       atomic (optionally owner-only, create-once) file writes; the SHA-256 helper
"""
