"""The cart's data: one document store (MongoDB or embedded) and the catalogue that seeds it."""

from child_cart.store.catalogue import (
    Catalogue,
    Category,
    Mission,
    Product,
    Profile,
    load_catalogue,
)
from child_cart.store.client import (
    COLLECTIONS,
    Store,
    StoreUnavailable,
    open_cart_store,
    open_store,
)

__all__ = [
    "COLLECTIONS",
    "Catalogue",
    "Category",
    "Mission",
    "Product",
    "Profile",
    "Store",
    "StoreUnavailable",
    "load_catalogue",
    "open_cart_store",
    "open_store",
]
