"""Order import: JSON bodies and CSV files, one row per order line."""

from __future__ import annotations

import datetime as dt

import pytest

from server.problems import Invalid
from server.services import orders

CSV = (
    "\ufefforder,country,region,postcode,priority,ship_by,carrier,value_cents,sku,quantity,"
    "lot,min_expiry\n"
    "A-1,us,CA,90001,1,2026-11-26T17:00:00Z,UPS,12000,CASE,2,,\n"
    "A-1,us,CA,90001,1,2026-11-26T17:00:00Z,UPS,12000,SERUM,1,L7,2027-01-01\n"
    "B-1,DE,,60311,,,,,CASE,1,,\n"
)


def test_csv_rows_of_one_order_become_its_lines() -> None:
    parsed = orders.parse_csv(CSV)
    assert [o.number for o in parsed] == ["A-1", "B-1"]
    first = parsed[0]
    assert (first.country, first.priority, first.carrier, first.value_cents) == (
        "us",
        1,
        "UPS",
        12000,
    )
    assert first.ship_by == dt.datetime(2026, 11, 26, 17, tzinfo=dt.UTC)
    assert [(line.sku, line.quantity, line.lot, line.min_expiry) for line in first.lines] == [
        ("CASE", 2, None, None),
        ("SERUM", 1, "L7", dt.date(2027, 1, 1)),
    ]
    assert (parsed[1].priority, parsed[1].ship_by) == (5, None)  # defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("order,sku,quantity\nA,CASE,1\n", "lacks columns: country"),
        ("order,sku,quantity,country\n,CASE,1,US\n", "row 2: order number is empty"),
        ("order,sku,quantity,country\nA,CASE,-1,US\n", "order A (from row 2): lines.0.quantity"),
        ("order,sku,quantity,country,ship_by\nA,CASE,1,US,2026-11-26T17:00\n", "UTC offset"),
        ("order,sku,quantity,country\n", "no orders"),
    ],
)
def test_bad_csv_is_refused_with_the_row(text: str, message: str) -> None:
    with pytest.raises(Invalid) as refused:
        orders.parse_csv(text)
    assert refused.value.code == "invalid_csv"
    assert message in refused.value.detail
