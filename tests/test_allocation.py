"""Allocation across warehouses: each rule, split policies, FEFO/FIFO within a warehouse,
and concurrent orders for the last units — on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server import schemas
from server.api import views
from server.db import transaction
from server.problems import Conflict
from server.services import allocation, shipping
from server.services.allocation import Policy, Rule, Split
from server.tables import Allocation, OrderStatus, PickLine, Stock
from tests import factories as f
from tests.factories import FRANKFURT, LOS_ANGELES, SHENZHEN

TODAY = dt.date(2026, 11, 26)
NEAREST = Policy(rules=(Rule.nearest,))
STOCK_FIRST = Policy(rules=(Rule.stock_first, Rule.nearest))
COST_FIRST = Policy(rules=(Rule.cost_first,))


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Three warehouses (Shenzhen, Los Angeles, Frankfurt) and a few SKUs."""
    with transaction(sessions) as session:
        f.warehouse(session, "SZX", country="CN", at=SHENZHEN)
        f.warehouse(session, "LAX", country="US", at=LOS_ANGELES)
        f.warehouse(session, "FRA", country="DE", at=FRANKFURT)
        f.sku(session, "CASE")
        f.sku(session, "CABLE", weight_g=100)
        f.sku(session, "SERUM", lots=True, weight_g=50)
    return sessions


def allocate(
    sessions: sessionmaker[Session], number: str, policy: Policy | None = None
) -> allocation.AllocationResult:
    with transaction(sessions) as session:
        return allocation.allocate_order(session, number, policy=policy, today=TODAY)


def shipped_from(sessions: sessionmaker[Session], number: str) -> dict[str, int]:
    with transaction(sessions) as session:
        view = views.order_view(session, f.orders.get_order(session, number))
    result: dict[str, int] = {}
    for a in view.allocations:
        result[a.warehouse] = result.get(a.warehouse, 0) + a.quantity
    return result


def test_nearest_ships_from_the_closest_warehouse(world: sessionmaker[Session]) -> None:
    with transaction(world) as session:
        for code in ("SZX", "LAX", "FRA"):
            f.stock(session, code, "A-01-01", "CASE", 10)
        f.order(session, "US-1", [("CASE", 2)], country="US")
        f.order(session, "DE-1", [("CASE", 2)], country="DE")
        f.order(session, "CN-1", [("CASE", 2)], country="CN")
        # coordinates on the order beat the country's centroid: a US order to Berlin?
        f.order(session, "XX-1", [("CASE", 2)], country="US", latitude=52.5, longitude=13.4)

    result = allocate(world, "US-1", NEAREST)
    assert result.status == OrderStatus.allocated
    assert shipped_from(world, "US-1") == {"LAX": 2}
    assert [r["warehouse"] for r in result.explanation["ranking"]] == ["LAX", "FRA", "SZX"]
    assert result.explanation["destination"]["point_from"] == "country centroid"
    assert "LAX ranks first by nearest" in result.explanation["decision"]

    allocate(world, "DE-1", NEAREST)
    allocate(world, "CN-1", NEAREST)
    xx = allocate(world, "XX-1", NEAREST)
    assert shipped_from(world, "DE-1") == {"FRA": 2}
    assert shipped_from(world, "CN-1") == {"SZX": 2}
    assert shipped_from(world, "XX-1") == {"FRA": 2}
    assert xx.explanation["destination"]["point_from"] == "order coordinates"


def test_stock_first_prefers_the_warehouse_that_ships_the_whole_order(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 10)
        f.stock(session, "FRA", "A-01-01", "CASE", 10)
        f.stock(session, "FRA", "A-01-02", "CABLE", 10)  # only FRA has cables
        f.order(session, "US-2", [("CASE", 2), ("CABLE", 1)], country="US")
        f.order(session, "US-3", [("CASE", 2)], country="US")

    result = allocate(world, "US-2", STOCK_FIRST)
    assert shipped_from(world, "US-2") == {"FRA": 3}  # whole from FRA, though LAX is nearer
    ranking = result.explanation["ranking"]
    assert (ranking[0]["warehouse"], ranking[0]["can_ship_all"]) == ("FRA", True)
    assert next(r for r in ranking if r["warehouse"] == "LAX")["can_ship_all"] is False

    # both ship it all: the next rule (nearest) breaks the tie
    allocate(world, "US-3", STOCK_FIRST)
    assert shipped_from(world, "US-3") == {"LAX": 2}


def test_cost_first_uses_the_cheapest_rate_for_destination_and_weight(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        for code in ("SZX", "LAX", "FRA"):
            f.stock(session, code, "A-01-01", "CASE", 20)
        for warehouse, destination, max_weight_g, cost in (
            ("LAX", "US", 2000, 900),
            ("LAX", "US", 10000, 2500),
            ("SZX", "*", 2000, 600),  # cheap for light parcels
            ("SZX", "*", 30000, 4000),
            ("FRA", "EU", 10000, 700),
            ("FRA", "*", 10000, 3000),
        ):
            shipping.set_shipping_rate(
                session,
                schemas.ShippingRateIn(
                    warehouse=warehouse,
                    destination=destination,
                    max_weight_g=max_weight_g,
                    cost_cents=cost,
                ),
            )
        f.order(session, "LIGHT", [("CASE", 2)], country="US")  # 1 kg
        f.order(session, "HEAVY", [("CASE", 10)], country="US")  # 5 kg
        f.order(session, "FR-1", [("CASE", 10)], country="FR")  # 5 kg to the EU

    light = allocate(world, "LIGHT", COST_FIRST)
    assert shipped_from(world, "LIGHT") == {"SZX": 2}
    assert light.explanation["ranking"][0]["shipping_cost_cents"] == 600
    heavy = allocate(world, "HEAVY", COST_FIRST)
    assert shipped_from(world, "HEAVY") == {"LAX": 10}
    assert heavy.explanation["weight_g"] == 5000
    costs = {r["warehouse"]: r["shipping_cost_cents"] for r in heavy.explanation["ranking"]}
    assert costs == {"LAX": 2500, "SZX": 4000, "FRA": 3000}
    eu = allocate(world, "FR-1", COST_FIRST)
    assert shipped_from(world, "FR-1") == {"FRA": 10}
    assert eu.explanation["ranking"][0]["rate_destination"] == "EU"


def test_split_allowed_takes_from_warehouses_in_rank_order(world: sessionmaker[Session]) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 3)
        f.stock(session, "FRA", "A-01-01", "CASE", 3)
        f.stock(session, "SZX", "A-01-01", "CASE", 3)
        f.order(session, "US-5", [("CASE", 5)], country="US")

    result = allocate(world, "US-5", Policy(rules=(Rule.nearest,), split=Split.allowed))
    assert result.status == OrderStatus.allocated
    assert shipped_from(world, "US-5") == {"LAX": 3, "FRA": 2}
    assert "split across LAX, FRA" in result.explanation["decision"]


def test_no_split_ships_whole_from_the_best_warehouse_that_can(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 3)
        f.stock(session, "SZX", "A-01-01", "CASE", 9)
        f.order(session, "US-6", [("CASE", 5)], country="US")
        f.order(session, "US-7", [("CASE", 10)], country="US")

    never = Policy(rules=(Rule.nearest,), split=Split.never)
    result = allocate(world, "US-6", never)
    assert shipped_from(world, "US-6") == {"SZX": 5}
    assert "splitting is not allowed" in result.explanation["decision"]

    # nobody can ship 10 whole: the order waits and reserves nothing
    result = allocate(world, "US-7", never)
    assert result.status == OrderStatus.backordered
    assert result.allocated == 0
    with transaction(world) as session:
        assert f.reserved(session, "CASE") == (12, 5)


def test_split_only_above_a_value(world: sessionmaker[Session]) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 3)
        f.stock(session, "FRA", "A-01-01", "CASE", 3)
        f.order(session, "CHEAP", [("CASE", 4)], country="US", value_cents=4_999)
        f.order(session, "DEAR", [("CASE", 2)], country="US", value_cents=5_000)
        f.order(session, "DEAR-2", [("CASE", 3)], country="US", value_cents=20_000)

    policy = Policy(rules=(Rule.nearest,), split=Split.above_value, split_min_value_cents=5_000)
    cheap = allocate(world, "CHEAP", policy)
    assert cheap.status == OrderStatus.backordered
    assert "below a value of 5000 cents" in cheap.explanation["decision"]
    allocate(world, "DEAR", policy)
    assert shipped_from(world, "DEAR") == {"LAX": 2}
    dear = allocate(world, "DEAR-2", policy)
    assert dear.explanation["split_allowed"] is True
    assert shipped_from(world, "DEAR-2") == {"LAX": 1, "FRA": 2}


def test_partial_allocation_is_completed_when_stock_arrives(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 2)
        f.order(session, "US-8", [("CASE", 5)], country="US")

    first = allocate(world, "US-8", NEAREST)
    assert (first.status, first.allocated, first.requested) == (
        OrderStatus.partially_allocated,
        2,
        5,
    )
    assert "3 units backordered" in first.explanation["decision"]
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-02", "CASE", 10)
    second = allocate(world, "US-8", NEAREST)
    assert (second.status, second.allocated, second.requested) == (OrderStatus.allocated, 3, 3)
    with transaction(world) as session:
        assert f.reserved(session, "CASE") == (12, 5)
    with pytest.raises(Conflict) as refused:
        allocate(world, "US-8", NEAREST)
    assert refused.value.code == "order_not_allocatable"


def test_fefo_takes_the_earliest_expiry_and_never_an_expired_lot(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        day = dt.timedelta(days=1)
        f.stock(session, "LAX", "A-01-01", "SERUM", 50, lot="OLD", expiry=TODAY - day)
        f.stock(session, "LAX", "A-01-02", "SERUM", 5, lot="LATE", expiry=TODAY + 90 * day)
        f.stock(session, "LAX", "A-01-03", "SERUM", 5, lot="SOON", expiry=TODAY + 10 * day)
        f.stock(session, "LAX", "A-01-04", "SERUM", 5, lot="TODAY", expiry=TODAY)
        f.order(session, "FEFO", [("SERUM", 12)], country="US")
        f.order(
            session,
            "FRESH",
            [schemas.OrderLineIn(sku="SERUM", quantity=3, min_expiry=TODAY + 30 * day)],
            country="US",
        )
        f.order(
            session,
            "EXPIRED",
            [schemas.OrderLineIn(sku="SERUM", quantity=1, lot="OLD")],
            country="US",
        )

    fefo = allocate(world, "FEFO", NEAREST)
    taken = [(x["lot"], x["quantity"]) for x in fefo.explanation["shipments"][0]["lines"]]
    assert taken == [("TODAY", 5), ("SOON", 5), ("LATE", 2)]
    # a minimum remaining shelf life skips the lots that expire too soon
    fresh = allocate(world, "FRESH", NEAREST)
    assert [(x["lot"], x["quantity"]) for x in fresh.explanation["shipments"][0]["lines"]] == [
        ("LATE", 3)
    ]
    # asking for the expired lot by name still does not ship it
    expired = allocate(world, "EXPIRED", NEAREST)
    assert expired.status == OrderStatus.backordered
    with transaction(world) as session:
        old = session.scalar(select(Stock).where(Stock.lot == "OLD"))
        assert old is not None and old.reserved == 0


def test_fifo_takes_the_first_received_slot_first(world: sessionmaker[Session]) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-05", "CABLE", 4)  # received first, though later in the walk
        f.stock(session, "LAX", "A-01-01", "CABLE", 4)
        f.stock(session, "LAX", "A-01-05", "CABLE", 4)  # topping up keeps the slot's age
        f.order(session, "FIFO", [("CABLE", 10)], country="US")

    allocate(world, "FIFO", NEAREST)
    with transaction(world) as session:
        rows = session.execute(
            select(PickLine.quantity, f.catalog.Location.code)
            .join(f.catalog.Location, f.catalog.Location.id == PickLine.location_id)
            .order_by(PickLine.id)
        ).all()
    assert [(code, q) for q, code in rows] == [("A-01-05", 8), ("A-01-01", 2)]


def test_a_hundred_concurrent_orders_never_over_reserve(world: sessionmaker[Session]) -> None:
    """100 orders race for 37 units spread over five rows in two warehouses; each thread
    has its own session and transaction. Exactly the 37 units end up reserved, every one
    of them by exactly one pick line."""
    rng = random.Random(100)
    with transaction(world) as session:
        f.sku(session, "LAST")
        for code, location, quantity in (
            ("LAX", "A-01-01", 9),
            ("LAX", "A-01-02", 8),
            ("LAX", "A-01-03", 5),
            ("FRA", "A-01-01", 7),
            ("FRA", "A-01-04", 8),
        ):
            f.stock(session, code, location, "LAST", quantity)
        for n in range(100):
            lines = [("LAST", rng.randint(1, 3))]
            if n % 3 == 0:  # some orders also want a second SKU, touching more rows
                lines.append(("CASE", 1))
            f.order(session, f"RACE-{n:03d}", lines, country=rng.choice(["US", "DE", "FR"]))
        f.stock(session, "LAX", "A-01-06", "CASE", 20)
        f.stock(session, "FRA", "A-01-06", "CASE", 20)

    barrier = threading.Barrier(100)
    failures: list[BaseException] = []

    def place(number: str) -> None:
        try:
            barrier.wait()
            with transaction(world) as session:
                allocation.allocate_order(session, number, policy=NEAREST, today=TODAY)
        except BaseException as exc:  # reported below, with the order that failed
            failures.append(exc)

    threads = [threading.Thread(target=place, args=(f"RACE-{n:03d}",)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

    with transaction(world) as session:
        assert f.reserved(session, "LAST") == (37, 37)
        rows = session.execute(select(Stock.quantity, Stock.reserved)).all()
        assert all(reserved <= quantity for quantity, reserved in rows)
        picked_for = session.scalar(
            select(func.sum(PickLine.quantity))
            .join(f.catalog.Sku)
            .where(f.catalog.Sku.code == "LAST")
        )
        assert picked_for == 37
        allocated = session.scalar(select(func.sum(Allocation.quantity))) or 0
        assert allocated == session.scalar(select(func.sum(PickLine.quantity)))
        assert allocated == sum(r for _, r in rows)
        statuses = set(
            session.scalars(select(f.orders.Order.status).distinct())  # every order decided
        )
        assert statuses <= {
            OrderStatus.allocated,
            OrderStatus.partially_allocated,
            OrderStatus.backordered,
        }


def test_cancelling_gives_the_reserved_units_back(world: sessionmaker[Session]) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 4)
        f.order(session, "FIRST", [("CASE", 4)], country="US")
        f.order(session, "SECOND", [("CASE", 4)], country="US")
    allocate(world, "FIRST", NEAREST)
    assert allocate(world, "SECOND", NEAREST).status == OrderStatus.backordered
    with transaction(world) as session:
        cancelled = allocation.cancel_order(session, "FIRST")
        assert cancelled.status == OrderStatus.cancelled
        assert f.reserved(session, "CASE") == (4, 0)
        assert session.scalar(select(func.count(PickLine.id))) == 0
    assert allocate(world, "SECOND", NEAREST).status == OrderStatus.allocated
    assert shipped_from(world, "FIRST") == {}
    with transaction(world) as session:
        with pytest.raises(Conflict) as refused:
            allocation.allocate_order(session, "FIRST", policy=NEAREST, today=TODAY)
        assert refused.value.code == "order_not_allocatable"


def test_a_named_lot_is_taken_even_when_another_expires_first(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        day = dt.timedelta(days=1)
        f.stock(session, "LAX", "A-01-01", "SERUM", 5, lot="SOON", expiry=TODAY + 5 * day)
        f.stock(session, "LAX", "A-01-02", "SERUM", 5, lot="WANTED", expiry=TODAY + 50 * day)
        f.order(
            session,
            "LOT",
            [schemas.OrderLineIn(sku="SERUM", quantity=2, lot="WANTED")],
            country="US",
        )
    result = allocate(world, "LOT", NEAREST)
    lines = result.explanation["shipments"][0]["lines"]
    assert [(x["lot"], x["quantity"]) for x in lines] == [("WANTED", 2)]


def test_two_lines_of_one_sku_never_count_the_same_units_twice(
    world: sessionmaker[Session],
) -> None:
    with transaction(world) as session:
        f.stock(session, "LAX", "A-01-01", "CASE", 3)
        f.stock(session, "FRA", "A-01-01", "CASE", 5)
        f.order(session, "TWICE", [("CASE", 2), ("CASE", 2)], country="US")
    result = allocate(world, "TWICE", STOCK_FIRST)
    # LAX holds 3, not the 4 the two lines need together: FRA ships it whole
    assert shipped_from(world, "TWICE") == {"FRA": 4}
    ranking = {r["warehouse"]: r for r in result.explanation["ranking"]}
    assert (ranking["LAX"]["can_ship_all"], ranking["LAX"]["units_available"]) == (False, 3)
    with transaction(world) as session:
        f.order(session, "TWICE-2", [("CASE", 2), ("CASE", 2)], country="US")
    split = allocate(world, "TWICE-2", NEAREST)
    assert split.status == OrderStatus.allocated
    assert shipped_from(world, "TWICE-2") == {"LAX": 3, "FRA": 1}
