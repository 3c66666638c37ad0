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
    Integer,
    String,
    Text,
    UniqueConstraint,
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
