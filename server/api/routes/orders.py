from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from server import schemas
from server.api import views
from server.api.pagination import PageParams
from server.deps import (
    ClientAddress,
    DatabaseDep,
    Overseer,
    SettingsDep,
    Supervisor,
    WarehouseScope,
)
from server.services import allocation, audit, order_import, orders, shipping
from server.tables import OrderStatus

router = APIRouter(tags=["orders"])

AllocateNow = Annotated[bool, Query(description="Allocate right away with the configured rules.")]


@router.post("/orders", response_model=schemas.OrderOut, status_code=201)
async def create_order(
    body: schemas.OrderCreate, user: Supervisor, db: DatabaseDep, allocate: AllocateNow = False
) -> schemas.OrderOut:
    """Import one order (409 `duplicate_order` when the number exists)."""

    def work(session: Session) -> schemas.OrderOut:
        order = orders.create_order(session, body, actor=user.username)
        if allocate:
            allocation.allocate_order(session, order.number)
        return views.order_view(session, order)

    return await db.write(work)


@router.post("/orders/import", response_model=schemas.OrderImportOut, status_code=201)
async def import_orders(
    file: Annotated[UploadFile, File(description="CSV, one row per order line.")],
    user: Supervisor,
    db: DatabaseDep,
    settings: SettingsDep,
    allocate: AllocateNow = False,
) -> schemas.OrderImportOut:
    """Import orders from CSV, all or none. Columns: order, sku, quantity, country
    (required); channel, region, postcode, latitude, longitude, priority, ship_by, carrier,
    value_cents, currency, lot, min_expiry. Rows of one order share its number. A bad file
    is refused (422 `invalid_csv`) with every bad row in `errors`; so is one whose orders
    exist (409 `duplicate_order`), whose SKUs are unknown (404 `sku_not_found`) or that
    asks for a lot of a SKU without lots (422 `lot_not_allowed`): each error names the
    file's `row` (1 is the header), its `order` and, where it is about a line, its `sku`.
    A good file is created in batches, so other writers are not held up for the whole
    file."""

    parsed = await run_sync(order_import.parse_upload, file.file)
    created = await order_import.import_orders(
        db,
        parsed.orders,
        actor=user.username,
        allocate=allocate,
        batch_size=settings.import_batch_orders,
        rows=parsed.rows,
    )
    result = schemas.OrderImportOut(imported=len(created), orders=created)
    return await db.write(lambda _session: result)  # records the outcome (Idempotency-Key)


@router.get(
    "/orders/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV"}},
)
async def export_orders(
    _: Overseer, db: DatabaseDep, page: PageParams, status: OrderStatus | None = None
) -> PlainTextResponse:
    """Orders as CSV in the import's columns, one row per line. Cells that a spreadsheet
    would take for a formula (= + - @) are written with a leading apostrophe."""

    def work(session: Session) -> str:
        return orders.export_csv(session, status=status, limit=page.limit, offset=page.offset)

    return PlainTextResponse(await db.read(work), media_type="text/csv")


@router.get("/orders", response_model=schemas.Page[schemas.OrderOut])
async def list_orders(
    _: Overseer,
    db: DatabaseDep,
    page: PageParams,
    status: OrderStatus | None = None,
) -> schemas.Page[schemas.OrderOut]:
    def work(session: Session) -> schemas.Page[schemas.OrderOut]:
        found, total = orders.list_orders(
            session, status=status, limit=page.limit, offset=page.offset
        )
        return page.of([views.order_view(session, order) for order in found], total)

    return await db.read(work)


@router.get("/orders/{number}", response_model=schemas.OrderOut)
async def get_order(number: str, _: Overseer, db: DatabaseDep) -> schemas.OrderOut:
    def work(session: Session) -> schemas.OrderOut:
        return views.order_view(session, orders.get_order(session, number))

    return await db.read(work)


@router.post("/orders/{number}/allocate", response_model=schemas.OrderOut)
async def allocate_order(
    number: str,
    _: Supervisor,
    db: DatabaseDep,
    body: schemas.AllocateRequest | None = None,
) -> schemas.OrderOut:
    """Reserve stock for what the order still needs, by the configured rules (or the ones
    given), and explain the choice in `allocation_explanation`."""

    def work(session: Session) -> schemas.OrderOut:
        policy = allocation.Policy.from_schema(body.policy) if body and body.policy else None
        result = allocation.allocate_order(session, number, policy=policy)
        return views.order_view(session, result.order)

    return await db.write(work)


@router.post("/orders/{number}/cancel", response_model=schemas.OrderOut)
async def cancel_order(number: str, _: Supervisor, db: DatabaseDep) -> schemas.OrderOut:
    """Cancel an order not yet released to the floor; its reserved units become available."""

    def work(session: Session) -> schemas.OrderOut:
        return views.order_view(session, allocation.cancel_order(session, number))

    return await db.write(work)


@router.get("/allocation-policy", response_model=schemas.AllocationPolicyIn)
async def get_policy(_: Overseer, db: DatabaseDep) -> schemas.AllocationPolicyIn:
    def work(session: Session) -> schemas.AllocationPolicyIn:
        return _policy_out(allocation.get_policy(session))

    return await db.read(work)


@router.put("/allocation-policy", response_model=schemas.AllocationPolicyIn)
async def set_policy(
    body: schemas.AllocationPolicyIn, user: Supervisor, client: ClientAddress, db: DatabaseDep
) -> schemas.AllocationPolicyIn:
    """Rules in the order they rank warehouses, and the split policy (audited)."""

    def work(session: Session) -> schemas.AllocationPolicyIn:
        before = _policy_out(allocation.get_policy(session))
        policy = allocation.Policy.from_schema(body)
        after = _policy_out(allocation.set_policy(session, policy, actor=user.username))
        audit.record(
            session,
            "allocation_policy.update",
            actor=user.username,
            client=client,
            subject="allocation-policy",
            old=before.model_dump(),
            new=after.model_dump(),
        )
        return after

    return await db.write(work)


def _policy_out(policy: allocation.Policy) -> schemas.AllocationPolicyIn:
    return schemas.AllocationPolicyIn.model_validate(
        {
            "rules": [str(r) for r in policy.rules],
            "split": str(policy.split),
            "split_min_value_cents": policy.split_min_value_cents,
        }
    )


@router.get("/shipping-rates", response_model=list[schemas.ShippingRateOut])
async def list_rates(
    _: Overseer, scope: WarehouseScope, db: DatabaseDep
) -> list[schemas.ShippingRateOut]:
    """The rates of the caller's warehouses."""

    def work(session: Session) -> list[schemas.ShippingRateOut]:
        rates = shipping.list_shipping_rates(session, within=scope.ids)
        return [views.shipping_rate_view(rate) for rate in rates]

    return await db.read(work)


@router.put("/shipping-rates", response_model=schemas.ShippingRateOut)
async def set_rate(
    body: schemas.ShippingRateIn,
    user: Supervisor,
    scope: WarehouseScope,
    client: ClientAddress,
    db: DatabaseDep,
) -> schemas.ShippingRateOut:
    """Add a rate or change the cost of the one with the same warehouse, destination and
    weight limit, for a warehouse the caller works in (audited)."""
    scope.require(body.warehouse)

    def work(session: Session) -> schemas.ShippingRateOut:
        before = shipping.find_shipping_rate(session, body)
        old = None if before is None else shipping.rate_terms(before)
        after = shipping.rate_terms(shipping.set_shipping_rate(session, body))
        subject = f"shipping-rate:{body.warehouse}/{body.destination}/{body.max_weight_g}"
        audit.record(
            session,
            "shipping_rate.set",
            actor=user.username,
            client=client,
            subject=subject,
            old=old,
            new=after,
        )
        return schemas.ShippingRateOut(**body.model_dump())

    return await db.write(work)
