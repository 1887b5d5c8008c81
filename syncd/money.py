"""Money and fee specifications: ``Decimal`` amounts with a currency, never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["FeeSpec", "Money", "parse_amount", "parse_fee"]

_CENTS = Decimal("0.01")
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d{1,2})?)\s*([A-Za-z]{3})?\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency, rounded to cents."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", self.amount.quantize(_CENTS, ROUND_HALF_UP))

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def scaled(self, share: Decimal) -> Money:
        """This amount times ``share`` (0.5 for half)."""
        return Money(self.amount * share, self.currency)

    def to_json(self) -> dict[str, str]:
        """``{"amount": "60.00", "currency": "EUR"}``, as the audit log carries money."""
        return {"amount": f"{self.amount:.2f}", "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"


@dataclass(frozen=True, slots=True)
class FeeSpec:
    """A fee or deposit: a share of the price (``"50%"``) or a flat amount (``"40 EUR"``)."""

    percent: Decimal | None = None
    flat: Money | None = None

    @property
    def is_zero(self) -> bool:
        """True when the fee is nothing at all."""
        if self.flat is not None:
            return self.flat.amount == 0
        return not self.percent

    def of(self, price: Money) -> Money:
        """The fee for an appointment of ``price``."""
        if self.flat is not None:
            return self.flat
        return price.scaled((self.percent or Decimal(0)) / 100)


def parse_amount(text: str, currency: str) -> Money:
    """Parse ``"100"`` or ``"40 EUR"``; a named currency must equal ``currency``."""
    match = _AMOUNT.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an amount such as '100' or '40.50 {currency}'")
    named = (match.group(2) or currency).upper()
    if named != currency:
        raise ValueError(f"{text!r} is in {named}, but [pricing] currency is {currency}")
    try:
        return Money(Decimal(match.group(1)), currency)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None


def parse_fee(text: str, currency: str) -> FeeSpec:
    """Parse ``"50%"`` (of the price, 0 to 100) or an amount (``"40 EUR"``)."""
    percent = _PERCENT.match(text)
    if percent:
        value = Decimal(percent.group(1))
        if value > 100:
            raise ValueError(f"{text!r} is more than 100%")
        return FeeSpec(percent=value)
    if not _AMOUNT.match(text):
        raise ValueError(
            f"{text!r} is neither a share such as '50%' nor an amount such as '40 {currency}'"
        )
    # parse_amount's own error names both currencies when the fee is in another one.
    return FeeSpec(flat=parse_amount(text, currency))
