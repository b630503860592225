"""parent_cart: the bridge. Kademlia DHT node, WebSocket relay, model distribution."""
