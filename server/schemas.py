"""Request and response bodies of the HTTP API (pydantic)."""

from __future__ import annotations

import datetime as dt
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.tables import LocationKind, MovementKind, Role, TransferStatus

T = TypeVar("T")

Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
Quantity = Field(gt=0, le=1_000_000)
Lot = Field(None, min_length=1, max_length=64)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: Role


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    password: str = Field(min_length=8, max_length=200)
    role: Role
    full_name: str = Field("", max_length=200)
    locale: Literal["en-US", "zh-CN"] = "en-US"
    timezone: str = Field("UTC", max_length=64)


class UserUpdate(BaseModel):
    password: str | None = Field(None, min_length=8, max_length=200)
    role: Role | None = None
    full_name: str | None = Field(None, max_length=200)
    active: bool | None = None
    locale: Literal["en-US", "zh-CN"] | None = None
    timezone: str | None = Field(None, max_length=64)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    full_name: str
    role: Role
    active: bool
    locale: str
    timezone: str


class WarehouseCreate(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
    timezone: str = Field(min_length=1, max_length=64)
    address: str = Field("", max_length=400)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class WarehouseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    country: str
    timezone: str
    address: str
    latitude: float | None
    longitude: float | None


class LocationCreate(BaseModel):
    code: str = Code
    zone: str = Field("A", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    aisle: str = Field("", max_length=16)
    slot: str = Field("", max_length=16)
    level: str = Field("", max_length=16)
    pick_sequence: int | None = Field(None, ge=0, le=10_000_000)
    check_digits: str | None = Field(None, pattern=r"^\d{2,3}$")
    kind: Literal[LocationKind.storage, LocationKind.staging] = LocationKind.storage


class LocationOut(BaseModel):
    code: str
    warehouse: str
    zone: str
    kind: LocationKind
    aisle: str
    slot: str
    level: str
    pick_sequence: int
    check_digits: str


class SkuCreate(BaseModel):
    sku: str = Code
    description: str = Field(min_length=1, max_length=400)
    barcode: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[0-9A-Za-z\-]+$")
    unit: str = Field("each", min_length=1, max_length=16)
    lot_controlled: bool = False
    serialized: bool = False
    length_mm: int | None = Field(None, gt=0, le=100_000)
    width_mm: int | None = Field(None, gt=0, le=100_000)
    height_mm: int | None = Field(None, gt=0, le=100_000)
    weight_g: int | None = Field(None, gt=0, le=10_000_000)


class SkuOut(BaseModel):
    sku: str
    description: str
    barcode: str | None
    unit: str
    lot_controlled: bool
    serialized: bool
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None
    weight_g: int | None


class ReceiptLineIn(BaseModel):
    sku: str = Code
    location: str = Code
    quantity: int = Field(ge=0, le=1_000_000, description="Good units put to `location`.")
    damaged: int = Field(0, ge=0, le=1_000_000, description="Units put to DAMAGED.")
    quarantined: int = Field(0, ge=0, le=1_000_000, description="Units put to QUARANTINE.")
    lot: str | None = Lot
    expiry: dt.date | None = None
    serials: list[str] = Field(default_factory=list, max_length=10_000)


class ReceiptCreate(BaseModel):
    warehouse: str = Code
    reference: str | None = Field(None, max_length=128)
    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=1000)


class ReceiptLineOut(BaseModel):
    sku: str
    location: str
    lot: str | None
    quantity: int
    damaged: int
    quarantined: int
    counted: int


class ReceiptOut(BaseModel):
    id: int
    warehouse: str
    reference: str | None
    received_by: str
    created_at: dt.datetime
    lines: list[ReceiptLineOut]


class MoveCreate(BaseModel):
    warehouse: str = Code
    sku: str = Code
    from_location: str = Code
    to_location: str = Code
    quantity: int = Quantity
    lot: str | None = Lot
    serials: list[str] = Field(default_factory=list, max_length=10_000)
    reason: str = Field("move", min_length=1, max_length=64)
    reference: str | None = Field(None, max_length=128)


AdjustmentReason = Literal["count_correction", "found", "lost", "damaged", "expired", "other"]


class AdjustmentCreate(BaseModel):
    warehouse: str = Code
    sku: str = Code
    location: str = Code
    quantity: int = Field(ge=-1_000_000, le=1_000_000, description="Signed change, not zero.")
    reason: AdjustmentReason
    lot: str | None = Lot
    serials: list[str] = Field(default_factory=list, max_length=10_000)
    reference: str | None = Field(None, max_length=128)

    @field_validator("quantity")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment changes stock: quantity must not be 0")
        return value


class MovementOut(BaseModel):
    id: int
    created_at: dt.datetime
    actor: str
    kind: MovementKind
    reason: str
    reference: str | None
    sku: str
    lot: str | None
    serials: list[str]
    warehouse: str
    from_location: str | None
    to_location: str | None
    to_warehouse: str | None
    quantity: int


class StockOut(BaseModel):
    warehouse: str
    location: str
    sku: str
    lot: str | None
    expiry: dt.date | None
    quantity: int
    reserved: int
    available: int


class Discrepancy(BaseModel):
    warehouse: str
    location: str
    sku: str
    lot: str | None
    ledger: int
    stock: int


class ReconcileOut(BaseModel):
    consistent: bool
    rows_checked: int
    discrepancies: list[Discrepancy]


class TransferLineIn(BaseModel):
    sku: str = Code
    from_location: str = Code
    quantity: int = Quantity
    lot: str | None = Lot
    serials: list[str] = Field(default_factory=list, max_length=10_000)


class TransferCreate(BaseModel):
    from_warehouse: str = Code
    to_warehouse: str = Code
    reference: str | None = Field(None, max_length=128)
    lines: list[TransferLineIn] = Field(min_length=1, max_length=1000)


class TransferReceiptLine(BaseModel):
    line: int = Field(ge=1, description="Transfer line number, 1-based, as listed.")
    to_location: str = Code
    quantity: int = Field(ge=0, le=1_000_000, description="Good units received.")
    damaged: int = Field(0, ge=0, le=1_000_000)


class TransferReceive(BaseModel):
    lines: list[TransferReceiptLine] = Field(min_length=1, max_length=1000)


class TransferLineOut(BaseModel):
    line: int
    sku: str
    lot: str | None
    from_location: str
    quantity_shipped: int
    to_location: str | None
    quantity_received: int | None
    quantity_damaged: int
    discrepancy: int | None


class TransferOut(BaseModel):
    id: int
    from_warehouse: str
    to_warehouse: str
    status: TransferStatus
    reference: str | None
    shipped_by: str
    shipped_at: dt.datetime
    received_by: str | None
    received_at: dt.datetime | None
    lines: list[TransferLineOut]
