"""The store's catalogue: products, categories and shopper profiles, read from one JSON file.

The same file seeds the `products` collection, fixes the order of the
recommend model's one-hot profiles, basket multi-hot and output categories,
and gives the synthetic shoppers their tastes and shopping missions, so these
can never drift apart.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

PACKAGED_CATALOGUE = Path(__file__).resolve().parent.parent / "catalogue.json"


class Category(BaseModel):
    """A product category and how strongly its sales swing with the seasons."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    peak_month: int = Field(ge=1, le=12)
    season: float = Field(ge=0.0)
    label: str = Field("", max_length=40)
    """What shoppers read; empty = the name with spaces for underscores, capitalised."""

    @property
    def title(self) -> str:
        """The category as the cart screen names it."""
        return self.label or self.name.replace("_", " ").capitalize()


class Profile(BaseModel):
    """A kind of shopper: its share of all shoppers and its log-odds per category."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    share: float = Field(gt=0.0)
    likes: dict[str, float] = Field(default_factory=dict)


class Mission(BaseModel):
    """Why a basket is bought (breakfast, barbecue, ...): which categories go into it and who shops it when.

    `categories` are log-weights of the categories such a basket holds; every
    category not listed gets `other`. `profiles` are log-odds a shopper profile
    adds to choosing this mission, and `peak_month`/`season` its seasonal swing.
    `share` is its weight in an average store; each store draws its own mix.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    share: float = Field(gt=0.0)
    peak_month: int = Field(default=1, ge=1, le=12)
    season: float = Field(default=0.0, ge=0.0)
    categories: dict[str, float] = Field(min_length=1)
    other: float = -3.0
    profiles: dict[str, float] = Field(default_factory=dict)


class Product(BaseModel):
    """One sellable product; `price` is in the store's currency, two decimals."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    price: float = Field(ge=0.0, le=100_000.0)
    category: str = Field(min_length=1)

    @property
    def price_cents(self) -> int:
        """Money is kept in integer cents so bill totals never pick up float error."""
        return round(self.price * 100)

    def to_doc(self) -> dict:
        """The `products` collection document (`_id` is the product id)."""
        return {"_id": self.id, "name": self.name, "price_cents": self.price_cents, "category": self.category}

    @classmethod
    def from_doc(cls, doc: dict) -> Product:
        """Inverse of `to_doc`."""
        return cls(id=doc["_id"], name=doc["name"], price=doc["price_cents"] / 100, category=doc["category"])


class Catalogue(BaseModel):
    """The whole seed file, checked for consistency when loaded."""

    model_config = ConfigDict(frozen=True)

    categories: tuple[Category, ...] = Field(min_length=1)
    profiles: tuple[Profile, ...] = Field(min_length=1)
    products: tuple[Product, ...] = Field(min_length=1)
    missions: tuple[Mission, ...] = ()
    """Empty: baskets follow the profiles' tastes alone (catalogues written before missions existed)."""

    @property
    def category_names(self) -> list[str]:
        """Category names in model output order."""
        return [c.name for c in self.categories]

    @property
    def profile_names(self) -> list[str]:
        """Profile names in one-hot order."""
        return [p.name for p in self.profiles]

    @property
    def mission_names(self) -> list[str]:
        """Mission names in the catalogue's order."""
        return [m.name for m in self.missions]

    def product(self, product_id: str) -> Product | None:
        """The product with this id, if the catalogue has it."""
        return next((p for p in self.products if p.id == product_id), None)

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        categories = set(self.category_names)
        _unique("category", self.category_names)
        _unique("profile", self.profile_names)
        _unique("product id", [p.id for p in self.products])
        for product in self.products:
            if product.category not in categories:
                raise ValueError(f"product {product.id} has unknown category {product.category!r}")
        empty = categories - {p.category for p in self.products}
        if empty:
            raise ValueError(f"categories without products: {sorted(empty)}")
        for profile in self.profiles:
            unknown = set(profile.likes) - categories
            if unknown:
                raise ValueError(f"profile {profile.name} likes unknown categories {sorted(unknown)}")
        _unique("mission", self.mission_names)
        profiles = set(self.profile_names)
        for mission in self.missions:
            unknown = set(mission.categories) - categories
            if unknown:
                raise ValueError(f"mission {mission.name} buys unknown categories {sorted(unknown)}")
            unknown = set(mission.profiles) - profiles
            if unknown:
                raise ValueError(f"mission {mission.name} names unknown profiles {sorted(unknown)}")
        return self


def _unique(what: str, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate {what} names: {duplicates}")


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """Read and validate a catalogue file; no path (or "") means the packaged one."""
    resolved = Path(path).resolve() if path else PACKAGED_CATALOGUE
    return _load(resolved)


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Catalogue:
    log.debug("loading catalogue %s", path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("about", None)
    return Catalogue.model_validate(raw)
