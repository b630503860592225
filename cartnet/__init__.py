"""cartnet: the wire protocol both node kinds speak.

Identity, typed control messages, chunked transfers, the weight codec and
end-to-end encryption. It depends on asyncio and the standard crypto/tensor
libraries only; `parent_cart` and `child_cart` import it, never the reverse.
"""
