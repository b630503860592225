"""cartnet: the wire protocol both node kinds speak.

It depends on asyncio, aiohttp and the standard crypto/tensor libraries only;
`parent_cart` and `child_cart` import it, never the reverse.

    identity.py    a node's Ed25519 + X25519 keys; node id = SHA-1 of the public key
    admission.py   the challenge answer that proves a key and swarm membership
    handshake.py   joining a bridge on an open WebSocket (carts and bridges alike)
    messages.py    typed control messages, one pydantic class per type
    frames.py      binary frame layout: control, transfer chunk, routed
    transfer.py    chunked, signed, resumable transfers of large blobs
    weights.py     the weight codec: safetensors + zstd with an inflation cap
    e2e.py         end-to-end sealing of a blob for one receiver
    presence.py    self-certifying presence records (where a cart can be reached)
    client.py      BridgeClient: a cart's one long-lived connection to the swarm
    settings.py    settings every node kind shares
    logs.py        logging set-up for every entry point
"""
