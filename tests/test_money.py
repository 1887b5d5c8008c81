"""Tests for ``syncd.money``: Decimal amounts with a currency, fees and their parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from syncd.money import FeeSpec, Money, parse_amount, parse_fee

# --- Money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("10.005", "10.01"), ("10.004", "10.00"), ("0.125", "0.13"), ("7", "7.00")],
)
def test_money_rounds_to_cents_half_up(amount: str, expected: str) -> None:
    """An amount is kept to cents, halves rounded up."""
    assert Money(Decimal(amount), "EUR").amount == Decimal(expected)


def test_money_amount_keeps_two_decimal_places() -> None:
    """A whole amount still carries two decimal places (100.00, not 100)."""
    assert str(Money(Decimal(100), "EUR").amount) == "100.00"


def test_adding_money_in_one_currency_sums_the_amounts() -> None:
    """Two amounts in the same currency add up."""
    total = Money(Decimal("10.50"), "EUR") + Money(Decimal("0.75"), "EUR")
    assert total == Money(Decimal("11.25"), "EUR")


def test_adding_money_in_different_currencies_raises() -> None:
    """EUR plus USD raises ValueError naming both currencies."""
    with pytest.raises(ValueError, match="cannot add USD to EUR"):
        _ = Money(Decimal(1), "EUR") + Money(Decimal(1), "USD")


def test_scaled_money_is_rounded_to_cents() -> None:
    """A third of 100 is 33.33."""
    assert Money(Decimal(100), "EUR").scaled(Decimal(1) / 3) == Money(Decimal("33.33"), "EUR")


def test_money_as_json_and_text() -> None:
    """Money shows as "60.00 EUR" and travels as strings in JSON."""
    money = Money(Decimal(60), "EUR")
    assert (str(money), money.to_json()) == (
        "60.00 EUR",
        {"amount": "60.00", "currency": "EUR"},
    )


# --- FeeSpec --------------------------------------------------------------------------------


def test_percent_fee_is_a_share_of_the_price() -> None:
    """50% of 120.50 is 60.25 in the price's currency."""
    price = Money(Decimal("120.50"), "CHF")
    assert FeeSpec(percent=Decimal(50)).of(price) == Money(Decimal("60.25"), "CHF")


def test_fractional_percent_fee_rounds_to_cents() -> None:
    """33.3% of 10 is 3.33."""
    assert FeeSpec(percent=Decimal("33.3")).of(Money(Decimal(10), "EUR")) == Money(
        Decimal("3.33"), "EUR"
    )


def test_flat_fee_ignores_the_price() -> None:
    """A flat fee is the same whatever the price."""
    fee = FeeSpec(flat=Money(Decimal(40), "EUR"))
    assert (fee.of(Money(Decimal(100), "EUR")), fee.of(Money(Decimal(10), "EUR"))) == (
        Money(Decimal(40), "EUR"),
        Money(Decimal(40), "EUR"),
    )


@pytest.mark.parametrize(
    ("fee", "expected"),
    [
        (FeeSpec(percent=Decimal(0)), True),
        (FeeSpec(flat=Money(Decimal(0), "EUR")), True),
        (FeeSpec(), True),
        (FeeSpec(percent=Decimal("0.5")), False),
        (FeeSpec(flat=Money(Decimal("0.01"), "EUR")), False),
    ],
)
def test_fee_is_zero_only_when_it_is_nothing(fee: FeeSpec, expected: bool) -> None:
    """is_zero is true for 0%, a zero amount or no fee at all, else false."""
    assert fee.is_zero is expected


# --- parse_amount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", Decimal("100.00")),
        ("40.5", Decimal("40.50")),
        ("40.50 EUR", Decimal("40.50")),
        ("  40eur ", Decimal("40.00")),
        ("0", Decimal("0.00")),
    ],
)
def test_parse_amount_reads_amounts_in_the_currency(text: str, expected: Decimal) -> None:
    """Amounts with or without the currency, in any case and spacing, become Money."""
    assert parse_amount(text, "EUR") == Money(expected, "EUR")


@pytest.mark.parametrize(
    "text", ["", "ten", "-5", "1,50", "1.505", "1e3", "40 EU", "€40", "1.", "NaN"]
)
def test_parse_amount_rejects_what_is_not_an_amount(text: str) -> None:
    """Negative, over-precise, exponent, comma and symbol forms are not amounts."""
    with pytest.raises(ValueError, match="is not an amount"):
        parse_amount(text, "EUR")


def test_parse_amount_in_another_currency_names_both() -> None:
    """An amount in USD when the currency is EUR is refused, naming both."""
    with pytest.raises(ValueError, match=r"'40 USD' is in USD, but \[pricing\] currency is EUR"):
        parse_amount("40 USD", "EUR")


def test_parse_amount_too_large_to_keep_in_cents_is_refused() -> None:
    """An amount with more digits than Decimal keeps is a ValueError, not InvalidOperation."""
    with pytest.raises(ValueError, match="is not an amount"):
        parse_amount("9" * 30, "EUR")


# --- parse_fee ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50%", FeeSpec(percent=Decimal(50))),
        (" 12.5 % ", FeeSpec(percent=Decimal("12.5"))),
        ("0%", FeeSpec(percent=Decimal(0))),
        ("100%", FeeSpec(percent=Decimal(100))),
        ("40", FeeSpec(flat=Money(Decimal(40), "EUR"))),
        ("40 EUR", FeeSpec(flat=Money(Decimal(40), "EUR"))),
    ],
)
def test_parse_fee_reads_shares_and_amounts(text: str, expected: FeeSpec) -> None:
    """A percentage becomes a share; anything else that is an amount becomes a flat fee."""
    assert parse_fee(text, "EUR") == expected


@pytest.mark.parametrize("text", ["150%", "100.01%"])
def test_parse_fee_refuses_more_than_the_whole_price(text: str) -> None:
    """A share above 100% is refused."""
    with pytest.raises(ValueError, match="more than 100%"):
        parse_fee(text, "EUR")


@pytest.mark.parametrize("text", ["50 %%", "%50", "-10%", "half", "", "50 percent"])
def test_parse_fee_rejects_what_is_neither_share_nor_amount(text: str) -> None:
    """Text that is neither a percentage nor an amount is refused with both forms shown."""
    with pytest.raises(ValueError, match="neither a share such as '50%' nor an amount"):
        parse_fee(text, "EUR")


def test_parse_fee_in_another_currency_names_both() -> None:
    """A flat fee in USD when the currency is EUR names USD and EUR, not a generic error."""
    with pytest.raises(ValueError, match=r"is in USD, but \[pricing\] currency is EUR"):
        parse_fee("40 USD", "EUR")
