"""The persistent domain: users, warehouses and their locations, SKUs with lots and serials,
stock per (location, SKU, lot), and the immutable movement ledger that stock is built from.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from server.db import Base

# SQLite only autoincrements INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Role(StrEnum):
    picker = "picker"
    supervisor = "supervisor"
    manager = "manager"
    admin = "admin"


class LocationKind(StrEnum):
    storage = "storage"
    staging = "staging"
    receiving = "receiving"
    quarantine = "quarantine"
    damaged = "damaged"
    transit = "transit"


class MovementKind(StrEnum):
    receipt = "receipt"
    move = "move"
    adjustment = "adjustment"
    transfer = "transfer"
    pick = "pick"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(16), default="en-US")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Carried in every token: raised when the password, role or status changes, which
    # revokes the tokens (and ends the sockets) issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # The warehouses this user works in (an admin works in all, member or not); loaded
    # with the user, since every request checks them.
    warehouses: Mapped[list[Warehouse]] = relationship(
        secondary="warehouse_members", lazy="selectin", order_by="Warehouse.code"
    )


class SocketTicket(Base):
    """A one-use ticket that opens one socket (`POST /api/v1/auth/ticket`): a browser
    cannot send a header with a WebSocket, and a bearer token in a URL ends up in logs.
    Only its SHA-256 is kept; it carries the token's user, version and expiry."""

    __tablename__ = "socket_tickets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    token_version: Mapped[int] = mapped_column(Integer)
    token_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class WarehouseMember(Base):
    """A user's membership of one warehouse: where they may act and what they see."""

    __tablename__ = "warehouse_members"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    warehouse_id: Mapped[int] = mapped_column(
        ForeignKey("warehouses.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Warehouse(Base):
    __tablename__ = "warehouses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(400), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    record_calls: Mapped[bool] = mapped_column(Boolean, default=False)  # video rooms' calls

    zones: Mapped[list[Zone]] = relationship(back_populates="warehouse")


class Zone(Base):
    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("warehouse_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")

    warehouse: Mapped[Warehouse] = relationship(back_populates="zones")


class Location(Base):
    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("warehouse_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[LocationKind] = mapped_column(String(16), default=LocationKind.storage)
    aisle: Mapped[str] = mapped_column(String(16), default="")
    slot: Mapped[str] = mapped_column(String(16), default="")
    level: Mapped[str] = mapped_column(String(16), default="")
    pick_sequence: Mapped[int] = mapped_column(Integer, default=0)
    check_digits: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    warehouse: Mapped[Warehouse] = relationship()
    zone: Mapped[Zone] = relationship()


class Sku(Base):
    __tablename__ = "skus"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(400))
    barcode: Mapped[str | None] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(16), default="each")
    length_mm: Mapped[int | None] = mapped_column(Integer)
    width_mm: Mapped[int | None] = mapped_column(Integer)
    height_mm: Mapped[int | None] = mapped_column(Integer)
    weight_g: Mapped[int | None] = mapped_column(Integer)
    lot_controlled: Mapped[bool] = mapped_column(Boolean, default=False)
    serialized: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("sku_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[dt.date | None] = mapped_column(Date)


class Serial(Base):
    """One serialised unit; `location_id` is where it is now (None once it left our books)."""

    __tablename__ = "serials"
    __table_args__ = (UniqueConstraint("sku_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    serial: Mapped[str] = mapped_column(String(128))
    lot: Mapped[str] = mapped_column(String(64), default="")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)

    sku: Mapped[Sku] = relationship()
    location: Mapped[Location | None] = relationship()


class Stock(Base):
    """Quantity of one SKU and lot at one location. `lot` is "" for SKUs without lots."""

    __tablename__ = "stock"
    __table_args__ = (
        UniqueConstraint("location_id", "sku_id", "lot"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= quantity", name="reserved_within_quantity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    lot: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    location: Mapped[Location] = relationship()
    sku: Mapped[Sku] = relationship()


class Movement(Base):
    """One immutable ledger entry. A missing `from` is stock entering the books (receipt,
    found); a missing `to` is stock leaving them (shipped, lost, written off)."""

    __tablename__ = "movements"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[MovementKind] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(128))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    lot: Mapped[str] = mapped_column(String(64), default="")
    serials: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)

    sku: Mapped[Sku] = relationship()
    from_location: Mapped[Location | None] = relationship(foreign_keys=[from_location_id])
    to_location: Mapped[Location | None] = relationship(foreign_keys=[to_location_id])


class Receipt(Base):
    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    reference: Mapped[str | None] = mapped_column(String(128))
    received_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    warehouse: Mapped[Warehouse] = relationship()
    lines: Mapped[list[ReceiptLine]] = relationship(
        back_populates="receipt", order_by="ReceiptLine.id"
    )


class ReceiptLine(Base):
    """What was counted on one inbound line, split by the inspection into good stock at
    `location`, damaged units and quarantined units (each put to its own location)."""

    __tablename__ = "receipt_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    lot: Mapped[str] = mapped_column(String(64), default="")
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    damaged: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)

    receipt: Mapped[Receipt] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()
    location: Mapped[Location] = relationship()


class TransferStatus(StrEnum):
    in_transit = "in_transit"
    received = "received"
    received_with_discrepancy = "received_with_discrepancy"


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    to_warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    status: Mapped[TransferStatus] = mapped_column(String(32), default=TransferStatus.in_transit)
    reference: Mapped[str | None] = mapped_column(String(128))
    shipped_by: Mapped[str] = mapped_column(String(64))
    shipped_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    from_warehouse: Mapped[Warehouse] = relationship(foreign_keys=[from_warehouse_id])
    to_warehouse: Mapped[Warehouse] = relationship(foreign_keys=[to_warehouse_id])
    lines: Mapped[list[TransferLine]] = relationship(
        back_populates="transfer", order_by="TransferLine.id"
    )


class TransferLine(Base):
    __tablename__ = "transfer_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    lot: Mapped[str] = mapped_column(String(64), default="")
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity_shipped: Mapped[int] = mapped_column(Integer)
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    quantity_received: Mapped[int | None] = mapped_column(Integer)
    quantity_damaged: Mapped[int] = mapped_column(Integer, default=0)

    transfer: Mapped[Transfer] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()
    from_location: Mapped[Location] = relationship(foreign_keys=[from_location_id])
    to_location: Mapped[Location | None] = relationship(foreign_keys=[to_location_id])


class IdempotencyRecord(Base):
    """The first answer to a mutation sent with an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(400))
    request_hash: Mapped[str] = mapped_column(String(64))
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Orders, allocation, waves and assignments -------------------------------------------


class OrderStatus(StrEnum):
    open = "open"
    allocated = "allocated"
    partially_allocated = "partially_allocated"
    backordered = "backordered"
    released = "released"
    picking = "picking"
    picked = "picked"
    short = "short"  # picking is done but units were missing: some lines are short
    shipped = "shipped"
    cancelled = "cancelled"


class Order(Base):
    """A customer order to ship. `priority` 1 is the most urgent; `value_cents` is in
    `currency` minor units and drives the "split only above a value" policy."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(64), default="")
    postcode: Mapped[str] = mapped_column(String(32), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    ship_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    carrier: Mapped[str] = mapped_column(String(64), default="")
    value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[OrderStatus] = mapped_column(String(32), default=OrderStatus.open, index=True)
    # Read only where an order is shown (`undefer`): the floor's writes load orders by the
    # line, and decoding a long order's explanation was a twentieth of a pick's CPU.
    allocation_explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    allocated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no"
    )


class OrderLine(Base):
    """One ordered SKU. `lot` asks for that lot only; `min_expiry` refuses lots that expire
    before that date (expired lots are never allocated either way). `quantity_short` are
    units a picker did not find and no other slot of the warehouse could give: they are no
    longer allocated, and a manager decides whether the order ships without them."""

    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_allocated >= 0 AND quantity_allocated <= quantity",
            name="allocated_within_quantity",
        ),
        CheckConstraint(
            "quantity_short >= 0 AND quantity_allocated + quantity_short <= quantity",
            name="short_within_quantity",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    lot: Mapped[str | None] = mapped_column(String(64))
    min_expiry: Mapped[dt.date | None] = mapped_column(Date)
    quantity_allocated: Mapped[int] = mapped_column(Integer, default=0)
    quantity_short: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    order: Mapped[Order] = relationship(back_populates="lines")
    sku: Mapped[Sku] = relationship()

    @property
    def unallocated(self) -> int:
        """Units still to allocate: neither reserved nor given up as short."""
        return self.quantity - self.quantity_allocated - self.quantity_short


class Allocation(Base):
    """Units of an order line reserved in one warehouse (the reservations themselves are
    the pick lines, one per stock row). A short that nothing else in the warehouse makes
    up lowers it, down to 0 when none of its units were found."""

    __tablename__ = "allocations"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    order_line: Mapped[OrderLine] = relationship()
    warehouse: Mapped[Warehouse] = relationship()


class WaveStatus(StrEnum):
    released = "released"
    completed = "completed"


class Wave(Base):
    """Orders released to the floor together; `criteria` records how they were chosen."""

    __tablename__ = "waves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    status: Mapped[WaveStatus] = mapped_column(String(16), default=WaveStatus.released)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    released_by: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    warehouse: Mapped[Warehouse] = relationship()
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="wave", order_by="Assignment.id"
    )


class AssignmentStatus(StrEnum):
    ready = "ready"
    in_progress = "in_progress"
    completed = "completed"


class Assignment(Base):
    """A picker's batch of pick lines in walking order, delivered to a staging location.
    Its `id` is the number spoken to the picker."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    status: Mapped[AssignmentStatus] = mapped_column(
        String(16), default=AssignmentStatus.ready, index=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=5)
    picker: Mapped[str | None] = mapped_column(String(64), index=True)
    staging_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    wave: Mapped[Wave] = relationship(back_populates="assignments")
    warehouse: Mapped[Warehouse] = relationship()
    staging_location: Mapped[Location] = relationship()
    lines: Mapped[list[PickLine]] = relationship(
        back_populates="assignment", order_by="PickLine.sequence"
    )


class PickLineStatus(StrEnum):
    open = "open"
    skipped = "skipped"  # passed over for now; offered again after the open lines
    picked = "picked"
    short = "short"


class PickLine(Base):
    """Units reserved on one stock row for an allocation, to be picked from its location.
    `confirmation` is the token of the answer that closed the line, so the same answer
    arriving twice is recognised and moves stock only once."""

    __tablename__ = "pick_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "quantity_picked >= 0 AND quantity_picked <= quantity", name="picked_within_quantity"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id"))
    lot: Mapped[str] = mapped_column(String(64), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_picked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[PickLineStatus] = mapped_column(String(16), default=PickLineStatus.open)
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("waves.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    confirmation: Mapped[str | None] = mapped_column(String(128))
    picked_by: Mapped[str | None] = mapped_column(String(64))
    picked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship()
    location: Mapped[Location] = relationship()
    sku: Mapped[Sku] = relationship()
    assignment: Mapped[Assignment | None] = relationship(back_populates="lines")


class ExceptionKind(StrEnum):
    short = "short"
    damage = "damage"
    wrong_item = "wrong_item"
    help = "help"
    recount = "recount"  # a manager asks for a slot to be counted again


class ExceptionOutcome(StrEnum):
    """What the manager who settled an exception did about it."""

    noted = "noted"  # a decision in words only: nothing else changed
    short_accepted = "short_accepted"  # the missing units were written off at the slot
    adjusted = "adjusted"  # stock was corrected at a location
    recount = "recount"  # a recount of the slot was sent (a `recount` exception)
    reassigned = "reassigned"  # the rest of the assignment was given to another picker


class ExceptionStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class PickException(Base):
    """Something on the floor that needs a manager: a short, damage, a wrong item, a call
    for help; a manager may settle it in a video call (`Room`)."""

    __tablename__ = "exceptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ExceptionKind] = mapped_column(String(16))
    status: Mapped[ExceptionStatus] = mapped_column(
        String(16), default=ExceptionStatus.open, index=True
    )
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"), index=True)
    pick_line_id: Mapped[int | None] = mapped_column(ForeignKey("pick_lines.id"), index=True)
    quantity: Mapped[int | None] = mapped_column(Integer)
    reported_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[ExceptionOutcome | None] = mapped_column(String(16))
    # the call it was decided in, and the ledger entry the decision wrote
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", use_alter=True, name="fk_exceptions_room_id_rooms")
    )
    movement_id: Mapped[int | None] = mapped_column(ForeignKey("movements.id"))

    warehouse: Mapped[Warehouse] = relationship()
    pick_line: Mapped[PickLine | None] = relationship()


class Room(Base):
    """A video call in one warehouse, usually about one exception (an exception has at most
    one open room). `closed_at` is set when the call is over; a closed room is not joined
    again."""

    __tablename__ = "rooms"
    __table_args__ = (
        Index(
            "uq_rooms_open_exception",
            "exception_id",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    exception_id: Mapped[int | None] = mapped_column(ForeignKey("exceptions.id"), index=True)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    warehouse: Mapped[Warehouse] = relationship()
    exception: Mapped[PickException | None] = relationship(foreign_keys=[exception_id])


class ShippingRate(Base):
    """What shipping a parcel of up to `max_weight_g` from a warehouse to a destination
    costs. `destination` is a country code, a zone of countries ("EU") or "*" (anywhere);
    the most specific match wins."""

    __tablename__ = "shipping_rates"
    __table_args__ = (UniqueConstraint("warehouse_id", "destination", "max_weight_g"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    destination: Mapped[str] = mapped_column(String(8))
    max_weight_g: Mapped[int] = mapped_column(Integer)
    cost_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")

    warehouse: Mapped[Warehouse] = relationship()


class AllocationPolicy(Base):
    """The configured allocation rules, in the order they rank warehouses, and the split
    policy ("allowed", "never", "above_value" with `split_min_value_cents`)."""

    __tablename__ = "allocation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    rules: Mapped[list[str]] = mapped_column(JSON)
    split: Mapped[str] = mapped_column(String(16), default="allowed")
    split_min_value_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """One security-relevant change or attempt: user administration, allocation-policy and
    shipping-rate changes (with the values before and after), failed logins. `actor` is
    the signed-in user who did it (None for a failed login or the command line), `subject`
    what it was done to (for a failed login: the name tried), `client` the client's
    address."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client: Mapped[str | None] = mapped_column(String(64))


class HeardAnswer(Base):
    """One answer a headset's dialog judged: what was heard, how sure, and whether the
    dialog took it. The floor's recognition figures (right first time, re-prompts) are
    counted from these; the audio itself is not kept."""

    __tablename__ = "heard_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    picker: Mapped[str] = mapped_column(String(64), index=True)
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    dialog_state: Mapped[str] = mapped_column(String(32))  # the prompt it answered
    source: Mapped[str] = mapped_column(String(8))  # speech, text
    text: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reprompts: Mapped[int] = mapped_column(Integer)  # answers refused at this prompt before it


class Recording(Base):
    """One participant's audio or video in a recorded call: a file under the recordings
    directory (`path` is relative to it), kept for `WAVEPICK_RECORDING_DAYS` days."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    participant: Mapped[str] = mapped_column(String(100))  # the name shown in the call
    kind: Mapped[str] = mapped_column(String(8))  # audio, video
    path: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    room: Mapped[Room] = relationship()
