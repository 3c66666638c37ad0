"""Request and response bodies of the HTTP API (pydantic)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.tables import ExceptionOutcome, LocationKind, MovementKind, Role, TransferStatus

T = TypeVar("T")

Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
Quantity = Field(gt=0, le=1_000_000)
Lot = Field(None, min_length=1, max_length=64)
WarehouseCode = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")
]


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


class TicketOut(BaseModel):
    ticket: str
    expires_in: int


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    password: str = Field(min_length=8, max_length=200)
    role: Role
    full_name: str = Field("", max_length=200)
    locale: Literal["en-US", "zh-CN"] = "en-US"
    timezone: str = Field("UTC", max_length=64)
    warehouses: list[WarehouseCode] = Field(
        default_factory=list,
        max_length=200,
        description="Codes of the warehouses the user works in (admins work in every one).",
    )


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
    warehouses: list[str] = Field(
        default_factory=list, description="Where the user works (admins: everywhere)."
    )

    @field_validator("warehouses", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        return [getattr(w, "code", w) for w in value]


class UserWarehouses(BaseModel):
    """The warehouses a user works in, replacing the ones before."""

    warehouses: list[WarehouseCode] = Field(max_length=200)


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor: str | None = Field(description="Who did it; null for a failed login or the CLI.")
    action: str
    subject: str | None = Field(
        description="What it was done to; for a failed login, the name tried."
    )
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    client: str | None = Field(description="The client's address.")


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
    record_calls: bool = Field(description="Video rooms' calls are recorded.")


class WarehouseUpdate(BaseModel):
    record_calls: bool = Field(
        description="Record the calls of this warehouse's video rooms (kept "
        "`WAVEPICK_RECORDING_DAYS` days, for its managers)."
    )


class RecordingOut(BaseModel):
    id: int
    room: int
    warehouse: str
    participant: str
    kind: str
    media_type: str
    bytes: int
    started_at: dt.datetime
    ended_at: dt.datetime
    file: str = Field(description="Where to download it (managers of the warehouse).")


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


class SerialOut(BaseModel):
    """A serialised unit on the books and where it is."""

    serial: str
    sku: str
    lot: str | None
    warehouse: str
    location: str


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


# --- Orders, allocation, waves, assignments ----------------------------------------------

Country = Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
AllocationRule = Literal["nearest", "stock_first", "cost_first"]
SplitPolicy = Literal["allowed", "never", "above_value"]


class OrderLineIn(BaseModel):
    sku: str = Code
    quantity: int = Quantity
    lot: str | None = Field(None, min_length=1, max_length=64, description="Only this lot.")
    min_expiry: dt.date | None = Field(
        None, description="Refuse lots expiring before this date (expired lots never ship)."
    )


class OrderCreate(BaseModel):
    number: str = Code
    channel: str = Field("", max_length=64)
    country: str = Country
    region: str = Field("", max_length=64)
    postcode: str = Field("", max_length=32)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    priority: int = Field(5, ge=1, le=9, description="1 is the most urgent.")
    ship_by: dt.datetime | None = Field(None, description="UTC, with an offset.")
    carrier: str = Field("", max_length=64)
    value_cents: int = Field(0, ge=0, le=10**12)
    currency: str = Field("USD", min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=1000)

    @field_validator("ship_by")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("ship_by needs a UTC offset, e.g. 2026-11-27T18:00:00Z")
        return value


class AllocationOut(BaseModel):
    line: int
    sku: str
    warehouse: str
    quantity: int


class OrderLineOut(BaseModel):
    line: int
    sku: str
    quantity: int
    quantity_allocated: int
    quantity_short: int = Field(
        description="Units a picker did not find and no other slot had; no longer allocated."
    )
    lot: str | None
    min_expiry: dt.date | None


class OrderOut(BaseModel):
    number: str
    channel: str
    country: str
    region: str
    postcode: str
    latitude: float | None
    longitude: float | None
    priority: int
    ship_by: dt.datetime | None
    carrier: str
    value_cents: int
    currency: str
    status: str
    created_by: str
    created_at: dt.datetime
    allocated_at: dt.datetime | None
    lines: list[OrderLineOut]
    allocations: list[AllocationOut]
    allocation_explanation: dict[str, object] | None


class OrderImportOut(BaseModel):
    imported: int
    orders: list[str]


class AllocationPolicyIn(BaseModel):
    rules: list[AllocationRule] = Field(min_length=1, max_length=3)
    split: SplitPolicy = "allowed"
    split_min_value_cents: int = Field(0, ge=0, le=10**12)

    @field_validator("rules")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each rule at most once")
        return value


class AllocateRequest(BaseModel):
    policy: AllocationPolicyIn | None = Field(
        None, description="Rules for this order only; the configured policy otherwise."
    )


class ShippingRateIn(BaseModel):
    warehouse: str = Code
    destination: str = Field(
        min_length=1,
        max_length=8,
        pattern=r"^([A-Z]{2}|[A-Z]{2,8}|\*)$",
        description='Country code, zone ("EU") or "*".',
    )
    max_weight_g: int = Field(gt=0, le=10_000_000)
    cost_cents: int = Field(ge=0, le=10**9)
    currency: str = Field("USD", min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")


class ShippingRateOut(ShippingRateIn):
    pass


class WaveCreate(BaseModel):
    warehouse: str = Code
    cutoff: dt.datetime | None = Field(
        None, description="Only orders to ship by this time (the carrier cut-off)."
    )
    carrier: str | None = Field(None, max_length=64)
    zone: str | None = Field(None, max_length=32, description="Only pick lines in this zone.")
    max_priority: int | None = Field(
        None, ge=1, le=9, description="Only orders at least this urgent (1 = most urgent)."
    )
    max_orders: int | None = Field(None, ge=1, le=10_000)
    lines_per_assignment: int = Field(20, ge=1, le=500)

    @field_validator("cutoff")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("cutoff needs a UTC offset")
        return value


class PickLineOut(BaseModel):
    id: int
    sequence: int
    order: str
    location: str
    aisle: str
    slot: str
    check_digits: str | None = Field(None, description="Shown to supervisors only.")
    sku: str
    description: str
    lot: str | None
    quantity: int
    quantity_picked: int
    status: str


class AssignmentOut(BaseModel):
    number: int
    wave: int
    warehouse: str
    status: str
    priority: int
    picker: str | None
    staging_location: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    lines: list[PickLineOut]


class AssignmentPicker(BaseModel):
    picker: str | None = Field(
        min_length=1,
        max_length=64,
        description="Username of the picker who gets it at their next sign-on; null puts "
        "it back in the pool.",
    )


class WaveOut(BaseModel):
    number: int
    warehouse: str
    status: str
    criteria: dict[str, object]
    released_by: str
    released_at: dt.datetime
    orders: int
    assignments: list[AssignmentOut]


class WaveSummary(BaseModel):
    """A wave in a list: its progress without its assignments' lines."""

    number: int
    warehouse: str
    status: str
    released_by: str
    released_at: dt.datetime
    priority: int  # of its most urgent assignment still to finish (1 = most urgent)
    assignments: int
    lines: int
    lines_closed: int


class WavePriority(BaseModel):
    priority: int = Field(ge=1, le=9, description="1 is the most urgent.")


class PickerKpi(BaseModel):
    warehouse: str
    picker: str
    lines: int
    units: int
    confirmed: int
    short: int
    hours_worked: int
    lines_per_hour: float
    accuracy: float


class WarehouseKpi(BaseModel):
    warehouse: str
    lines: int
    units: int
    hours_worked: int
    lines_per_hour: float


class RecognitionKpi(BaseModel):
    warehouse: str
    picker: str
    answers: int
    refused: int
    first_answers: int
    right_first_time: int
    right_first_time_rate: float
    reprompt_rate: float


class InventoryAccuracyKpi(BaseModel):
    warehouse: str
    recounts: int
    matched: int
    corrected: int
    accuracy: float


class HourlyLines(BaseModel):
    hour: dt.datetime
    warehouse: str
    lines: int


class CycleTimeKpi(BaseModel):
    warehouse: str
    orders: int
    p50_hours: float
    p90_hours: float


class SlowMoverKpi(BaseModel):
    warehouse: str
    sku: str
    on_hand: int
    units_picked: int
    turnover: float


class KpisOut(BaseModel):
    """The floor's numbers for a window (UTC, `since` inclusive, `until` exclusive)."""

    since: dt.datetime
    until: dt.datetime
    pickers: list[PickerKpi]
    warehouses: list[WarehouseKpi]
    recognition: list[RecognitionKpi]
    inventory_accuracy: list[InventoryAccuracyKpi]
    hourly: list[HourlyLines]
    cycle_times: list[CycleTimeKpi]
    slow_movers: list[SlowMoverKpi]


Token_ = Field(
    min_length=1,
    max_length=128,
    description="Identifies this answer: the same token again is a replay that changes nothing.",
)


class SignOn(BaseModel):
    warehouse: str | None = Field(None, min_length=1, max_length=64)


class PickConfirm(BaseModel):
    quantity: int = Quantity
    token: str = Token_
    serials: list[str] = Field(default_factory=list, max_length=10_000)


class PickShort(BaseModel):
    picked: int = Field(ge=0, le=1_000_000, description="Units actually picked (fewer).")
    token: str = Token_
    note: str = Field("", max_length=2000)
    serials: list[str] = Field(default_factory=list, max_length=10_000)


class ExceptionCreate(BaseModel):
    kind: Literal["damage", "wrong_item", "help"]
    note: str = Field("", max_length=2000)


class ExceptionOut(BaseModel):
    id: int
    kind: str
    status: str
    warehouse: str
    assignment: int | None
    pick_line: int | None
    quantity: int | None
    reported_by: str
    note: str
    created_at: dt.datetime
    sku: str | None = None  # of its pick line, when it has one
    location: str | None = None  # the pick line's slot
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolution: str | None = None
    outcome: str | None = None
    room: int | None = None  # the call it was decided in
    movement: int | None = None  # the ledger entry the decision wrote


class PickResultOut(BaseModel):
    line: PickLineOut
    replayed: bool
    remaining: int
    exception: ExceptionOut | None = None
    substitutes: list[PickLineOut] = Field(
        default_factory=list,
        description="After a short: new lines of the assignment for the missing units, "
        "at other slots.",
    )


class AssignmentCompletionOut(BaseModel):
    number: int
    staging_location: str


class FloorPickerOut(BaseModel):
    """A picker with an assignment in progress, as a floor board shows them."""

    picker: str
    assignment: int
    warehouse: str
    lines: int
    lines_done: int = Field(description="Lines of the assignment picked or short.")
    started_at: dt.datetime | None
    last_pick_at: dt.datetime | None = Field(
        description="When they last closed a line of the assignment."
    )
    picks_last_hour: int = Field(description="Lines they closed in the warehouse in the last hour.")


class ExceptionResolve(BaseModel):
    """What was decided. Without `outcome` (or with `noted`) nothing else changes; see
    `POST /exceptions/{id}/resolve` for the others."""

    resolution: str = Field(min_length=1, max_length=2000)
    outcome: ExceptionOutcome = ExceptionOutcome.noted
    location: str | None = Field(
        None, max_length=64, description="`adjusted`: where (default: the line's slot)."
    )
    quantity: int | None = Field(
        None, ge=-1_000_000, le=1_000_000, description="`adjusted`: the signed change."
    )
    reason: AdjustmentReason = "count_correction"
    picker: str | None = Field(
        None, min_length=1, max_length=64, description="`reassigned`: who takes the work over."
    )


class RoomCreate(BaseModel):
    warehouse: str = Code
    exception_id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="The exception the call is about: it has one open room, and opening "
        "again answers that room.",
    )


class RoomParticipantOut(BaseModel):
    id: str = Field(
        description="The participant's id; its forwarded tracks are in the MediaStream of that id."
    )
    user: str
    display_name: str
    role: str
    joined_at: dt.datetime


class RoomOut(BaseModel):
    id: int
    warehouse: str
    exception_id: int | None
    opened_by: str
    opened_at: dt.datetime
    closed_by: str | None = None
    closed_at: dt.datetime | None = None
    socket: str = Field(description="Where to join: WebSocket, Room signaling v1.")
    participants: list[RoomParticipantOut] = Field(
        default_factory=list, description="Who is in the call now (on this server process)."
    )
