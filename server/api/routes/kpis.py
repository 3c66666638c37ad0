"""KPIs: the floor's numbers over a window, as JSON for the console's charts and as CSV
for a spreadsheet."""

import csv
import datetime as dt
import io
from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server import schemas
from server.deps import DatabaseDep, Overseer, WarehouseScope
from server.problems import Invalid
from server.services import kpis
from server.services.orders import csv_cell

router = APIRouter(prefix="/kpis", tags=["kpis"])

Row = TypeVar("Row", bound=BaseModel)

DEFAULT_WINDOW = dt.timedelta(hours=24)
LONGEST_WINDOW = dt.timedelta(days=92)

Time = Annotated[dt.datetime | None, Query(description="UTC when no offset is given.")]
Warehouse = Annotated[str | None, Query(max_length=64)]


class Table(StrEnum):
    pickers = "pickers"
    warehouses = "warehouses"
    recognition = "recognition"
    inventory_accuracy = "inventory_accuracy"
    hourly = "hourly"
    cycle_times = "cycle_times"
    slow_movers = "slow_movers"


@router.get("", response_model=schemas.KpisOut)
async def get_kpis(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    warehouse: Warehouse = None,
    since: Time = None,
    until: Time = None,
) -> schemas.KpisOut:
    """Picks per hour worked and pick accuracy per picker and per warehouse, recognition
    (right first time, re-prompts) per picker, inventory accuracy from recounts, lines per
    clock hour, order cycle time and slow movers, in the caller's warehouses. The window
    defaults to the last 24 hours; `since` is inclusive, `until` exclusive."""
    window = _window(scope.within(warehouse), since, until)
    return await db.read(_kpis, window)


@router.get(
    "/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV"}},
)
async def export_kpis(
    _: Overseer,
    scope: WarehouseScope,
    db: DatabaseDep,
    table: Table,
    warehouse: Warehouse = None,
    since: Time = None,
    until: Time = None,
) -> PlainTextResponse:
    """One of the KPI tables as CSV (the fields of `GET /kpis`, one row per item)."""
    window = _window(scope.within(warehouse), since, until)
    result = await db.read(_kpis, window)
    rows: list[BaseModel] = getattr(result, table.value)
    return PlainTextResponse(
        _csv(rows, fields=_fields(table)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="kpis-{table.value}.csv"'},
    )


def _kpis(session: Session, window: kpis.Window) -> schemas.KpisOut:
    return schemas.KpisOut(
        since=window.since,
        until=window.until,
        pickers=_rows(schemas.PickerKpi, kpis.picker_rates(session, window)),
        warehouses=_rows(schemas.WarehouseKpi, kpis.warehouse_rates(session, window)),
        recognition=_rows(schemas.RecognitionKpi, kpis.recognition_rates(session, window)),
        inventory_accuracy=_rows(
            schemas.InventoryAccuracyKpi, kpis.inventory_accuracy(session, window)
        ),
        hourly=_rows(schemas.HourlyLines, kpis.lines_by_hour(session, window)),
        cycle_times=_rows(schemas.CycleTimeKpi, kpis.cycle_times(session, window)),
        slow_movers=_rows(schemas.SlowMoverKpi, kpis.slow_movers(session, window)),
    )


def _rows(model: type[Row], items: Sequence[object]) -> list[Row]:
    return [model.model_validate(item, from_attributes=True) for item in items]


def _window(
    warehouse_ids: Collection[int] | None, since: dt.datetime | None, until: dt.datetime | None
) -> kpis.Window:
    end = _utc(until) or dt.datetime.now(dt.UTC)
    start = _utc(since) or end - DEFAULT_WINDOW
    if start >= end:
        raise Invalid("`since` must come before `until`", code="invalid_window")
    if end - start > LONGEST_WINDOW:
        raise Invalid("a KPI window spans at most 92 days", code="invalid_window")
    return kpis.Window(since=start, until=end, warehouse_ids=warehouse_ids)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


ROW_MODELS: dict[Table, type[BaseModel]] = {
    Table.pickers: schemas.PickerKpi,
    Table.warehouses: schemas.WarehouseKpi,
    Table.recognition: schemas.RecognitionKpi,
    Table.inventory_accuracy: schemas.InventoryAccuracyKpi,
    Table.hourly: schemas.HourlyLines,
    Table.cycle_times: schemas.CycleTimeKpi,
    Table.slow_movers: schemas.SlowMoverKpi,
}


def _fields(table: Table) -> list[str]:
    return list(ROW_MODELS[table].model_fields)


def _csv(rows: list[BaseModel], *, fields: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow([csv_cell(values[name]) for name in fields])
    return out.getvalue()
