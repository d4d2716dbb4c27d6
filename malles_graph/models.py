"""Domain models (pydantic v2) shared by every part of malles-graph.

Names follow the MALLES paper: X_obs (observed customer features), Z (hidden
factors reconstructed from history), rho (style parameters).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NONE_PRODUCT = "none"


class Frozen(BaseModel):
    # allow_inf_nan: an Infinity or NaN in a case file is refused by name, not fed to the models as a feature.
    # coerce_numbers_to_str: ids and codes exported from a panel often come as JSON numbers (product 1234,
    # area 115); they are read as the text they stand for rather than refusing the file.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, coerce_numbers_to_str=True)


class Product(Frozen):
    """A product as offered in a choice situation."""

    product_id: str = Field(min_length=1)
    subclass: str = Field(description="product subclass (category) id; a case's candidate may leave it out: the case's")
    price: float = Field(ge=0, description="current unit price")
    # a panel without list prices knows no discount: its regular price is the price offered
    regular_price: float = Field(
        default_factory=lambda data: data["price"],
        ge=0,
        description="usual unit price (reference for discounts); the price when absent or null",
    )
    popularity: float = Field(default=0.0, ge=0, description="share of subclass units in the reference period")
    label: str | None = Field(default=None, description="short label shown to the LLM instead of the long id")
    median_quantity: float | None = Field(
        default=None, ge=0, description="median units per purchase line in the reference period (population)"
    )
    attributes: dict[str, float | str] = Field(
        default_factory=dict,
        description="the data's own product attributes (display, feature, brand, size, ...): numbers or text; "
        "null is a missing value, as an absent key is",
        json_schema_extra=lambda schema: schema["additionalProperties"]["anyOf"].append({"type": "null"}),
    )

    @model_validator(mode="before")
    @classmethod
    def _null_regular_price_is_absent(cls, data: object) -> object:
        if isinstance(data, dict) and "regular_price" in data and data["regular_price"] is None:
            return {k: v for k, v in data.items() if k != "regular_price"}
        return data

    @field_validator("attributes", mode="before")
    @classmethod
    def _null_is_missing(cls, value: object) -> object:
        return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value

    @property
    def discount(self) -> float:
        """Fractional discount against the regular price (0.2 = 20% off)."""
        if self.regular_price <= 0:
            return 0.0
        return max(0.0, 1.0 - self.price / self.regular_price)


class Transaction(Frozen):
    """One purchase line (one product, one customer, one day)."""

    date: dt.date
    customer_id: str
    product_id: str
    subclass: str
    quantity: int = Field(ge=0)
    unit_price: float = Field(ge=0)
    regular_price: float | None = Field(default=None, ge=0)


class Customer(Frozen):
    """Observed customer features X_obs."""

    customer_id: str
    age_group: str = "Unknown"
    pin_code: str = "Unknown"
    n_baskets: int = Field(default=0, ge=0)
    mean_basket_value: float = Field(default=0.0, ge=0)
    mean_unit_price: float = Field(default=0.0, ge=0)
    mean_quantity: float = Field(default=0.0, ge=0)


class Factor(Frozen):
    """One hidden factor value in [0, 1] and where it came from."""

    value: float = Field(ge=0, le=1)
    provenance: str = Field(description="how the value was estimated, e.g. 'history: 5 baskets, weighted'")


class HiddenFactors(Frozen):
    """The paper's Z (X_hid): latent drivers reconstructed from history and neighbours."""

    budget_pressure: Factor
    stock_up_intent: Factor
    brand_attachment: Factor
    usual_quantity: float = Field(ge=0, description="similarity-weighted usual quantity per purchase")
    price_level: float = Field(ge=0, description="paid price relative to regular (1.0 = pays regular)")
    days_since_last: float | None = Field(default=None, ge=0, description="days since last purchase in subclass")

    def as_text(self) -> str:
        """The text the persona prompt receives."""
        since = "never bought here before" if self.days_since_last is None else f"{self.days_since_last:.0f} days ago"
        return (
            f"budget pressure {self.budget_pressure.value:.2f} ({self.budget_pressure.provenance}); "
            f"stock-up intent {self.stock_up_intent.value:.2f} ({self.stock_up_intent.provenance}); "
            f"brand attachment {self.brand_attachment.value:.2f} ({self.brand_attachment.provenance}); "
            f"usual quantity {self.usual_quantity:.1f}; pays {self.price_level:.2f}x regular price; "
            f"last bought in this category {since}"
        )


class StyleParams(Frozen):
    """The paper's rho: decision style parameters, each in a bounded range."""

    discount_sensitivity: float = Field(default=0.5, ge=0, le=1)
    loss_aversion: float = Field(default=2.0, ge=1, le=5, description="Kahneman-Tversky lambda")
    reference_anchoring: float = Field(default=0.5, ge=0, le=1, description="weight on reference price")
    brand_loyalty: float = Field(default=0.5, ge=0, le=1)
    quantity_propensity: float = Field(default=0.5, ge=0, le=1, description="tendency to buy more units")

    def as_text(self) -> str:
        return (
            f"discount sensitivity {self.discount_sensitivity:.2f}, loss aversion {self.loss_aversion:.1f}, "
            f"reference-price anchoring {self.reference_anchoring:.2f}, brand loyalty {self.brand_loyalty:.2f}, "
            f"quantity propensity {self.quantity_propensity:.2f}"
        )


class Persona(Frozen):
    """A customer persona: demographics, style parameters and a free-text description."""

    name: str
    age_group: str = "Unknown"
    pin_code: str = "Unknown"
    household: str | None = None
    style: StyleParams = StyleParams()
    description: str = ""


class Decision(BaseModel):
    """A validated customer decision. Use :meth:`check_against` for the candidate set."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(description=f"one of the offered candidate ids, or '{NONE_PRODUCT}'")
    quantity: int = Field(ge=0, le=1000, description="units to buy (0 only with 'none')")
    rationale: str = Field(default="", max_length=2000)
    confidence: float = Field(default=0.5, ge=0, le=1)

    @field_validator("product_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.product_id == NONE_PRODUCT and self.quantity != 0:
            raise ValueError("quantity must be 0 when product_id is 'none'")
        if self.product_id != NONE_PRODUCT and self.quantity == 0:
            raise ValueError("quantity must be at least 1 when a product is chosen")
        return self

    def check_against(self, candidates: list[str], max_quantity: int = 100) -> list[str]:
        """Problems of this decision in a choice situation (empty when valid)."""
        problems = []
        if self.product_id != NONE_PRODUCT and self.product_id not in candidates:
            problems.append(f"product_id {self.product_id!r} is not among the candidates {candidates} or 'none'")
        if self.quantity > max_quantity:
            problems.append(f"quantity {self.quantity} is above the limit {max_quantity}")
        return problems


Role = Literal["product_specialist", "price_analyst", "persona", "decide", "single_agent", "system"]


class BasketItem(Frozen):
    product_id: str
    subclass: str
    quantity: int = Field(ge=0)
    unit_price: float = Field(ge=0)


class Basket(Frozen):
    """One shopping trip (all lines of one customer on one day)."""

    date: dt.date
    items: list[BasketItem]


class CandidateHistory(Frozen):
    """The customer's own past with one candidate product (before the decision date)."""

    times_bought: int = Field(default=0, ge=0)
    total_quantity: int = Field(default=0, ge=0)
    last_date: dt.date | None = None
    mean_price_paid: float | None = Field(default=None, ge=0)


class MarketSignal(Frozen):
    """What the mean-field tells an agent about the population (per product)."""

    popularity: dict[str, float] = Field(default_factory=dict, description="share of population demand")
    scarcity: dict[str, float] = Field(default_factory=dict, description="0 plenty .. 1 sold out")


def _product_subclass(product: object) -> tuple[str, object]:
    """(product id, subclass) of a candidate given as a dict or a Product (ids may be JSON numbers)."""
    if isinstance(product, dict):
        return str(product.get("product_id")), product.get("subclass")
    return str(getattr(product, "product_id", None)), getattr(product, "subclass", None)


def _with_item_subclasses(basket: object, known: dict[str, object]) -> object:
    """A basket (as read) whose items without a subclass get their candidate's, where they are candidates."""
    if not (isinstance(basket, dict) and isinstance(basket.get("items"), list)):
        return basket
    items = [
        {"subclass": known[str(i.get("product_id"))], **i}
        if isinstance(i, dict) and "subclass" not in i and str(i.get("product_id")) in known
        else i
        for i in basket["items"]
    ]
    return {**basket, "items": items}


class ChoiceSituation(Frozen):
    """Everything a decision sees: who decides, when, what is offered. Input of the decision graph."""

    situation_id: str
    date: dt.date
    customer: Customer
    subclass: str
    candidates: list[Product] = Field(min_length=1)
    recent_baskets: list[Basket] = Field(default_factory=list, description="most recent first, before `date`")
    own_history: dict[str, CandidateHistory] = Field(
        default_factory=dict, description="keyed by candidate product_id; before `date`"
    )
    style: StyleParams | None = Field(default=None, description="rho; a persona preset or default when empty")
    persona_text: str | None = None
    market: MarketSignal | None = None

    @model_validator(mode="before")
    @classmethod
    def _subclasses_from_the_choice(cls, data: object) -> object:
        # A household panel often names the category once, for the choice: a candidate without a subclass of its
        # own is offered in the situation's, and a past purchase of a candidate without one was made in the
        # candidate's. Other products' purchases still need theirs (nothing here says which it is).
        if not (
            isinstance(data, dict) and isinstance(data.get("candidates"), list) and data.get("subclass") is not None
        ):
            return data
        candidates = [{"subclass": data["subclass"], **c} if isinstance(c, dict) else c for c in data["candidates"]]
        data = {**data, "candidates": candidates}
        if isinstance(data.get("recent_baskets"), list):
            known = dict(_product_subclass(c) for c in candidates)
            data["recent_baskets"] = [_with_item_subclasses(b, known) for b in data["recent_baskets"]]
        return data

    @model_validator(mode="after")
    def _unique_candidates(self) -> ChoiceSituation:
        ids = [c.product_id for c in self.candidates]
        if len(set(ids)) != len(ids):
            raise ValueError(f"candidate product ids must be unique, got {ids}")
        if NONE_PRODUCT in ids:
            raise ValueError(f"'{NONE_PRODUCT}' is reserved and cannot be a candidate id")
        return self

    @property
    def candidate_ids(self) -> list[str]:
        return [c.product_id for c in self.candidates]
