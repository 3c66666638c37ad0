"""The HTTP API under `/api/v1`: one module per resource in `routes/`."""

from fastapi import APIRouter

from server.api.routes import (
    assignments,
    audit,
    auth,
    exceptions,
    floor,
    kpis,
    orders,
    pick_lines,
    receipts,
    recordings,
    rooms,
    skus,
    stock,
    transfers,
    users,
    warehouses,
    waves,
)
from server.problems import PROBLEM_RESPONSES

api_router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
for module in (
    auth,
    users,
    warehouses,
    skus,
    receipts,
    stock,
    transfers,
    orders,
    waves,
    assignments,
    pick_lines,
    exceptions,
    floor,
    kpis,
    rooms,
    recordings,
    audit,
):
    api_router.include_router(module.router)
