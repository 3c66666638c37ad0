"""The app as `bench/ledger.py` serves it, plus two routes that do next to nothing, for the
baseline under its ratios: what a signed-in floor worker's POST costs with no database work
(`/bench/signed-in`), and with one empty transaction through the app's database layer
(`/bench/one-transaction`, `Database.write_brief` running `SELECT 1`). Every middleware,
the token check and the warehouse scope are those of a real move; only the work differs.
A move or a pick cannot cost less than the second, so if it reaches less than 0.3 of
pgbench on a machine, so does every write the app does there."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from server.app import create_app as create_wavepick_app
from server.deps import DatabaseDep, FloorWorker, WarehouseScope

SIGNED_IN = "/bench/signed-in"
ONE_TRANSACTION = "/bench/one-transaction"


async def signed_in(_: FloorWorker, __: WarehouseScope) -> dict[str, bool]:
    return {"ok": True}


async def one_transaction(_: FloorWorker, __: WarehouseScope, db: DatabaseDep) -> dict[str, bool]:
    def select_one(session: Session) -> bool:
        return session.execute(text("SELECT 1")).scalar() == 1

    return {"ok": await db.write_brief(select_one)}


def create_app() -> FastAPI:
    app = create_wavepick_app()
    for path, endpoint in ((SIGNED_IN, signed_in), (ONE_TRANSACTION, one_transaction)):
        app.router.add_api_route(path, endpoint, methods=["POST"], status_code=201)
        # tried first, as the busiest routes are: matching costs them nothing extra
        app.router.routes.insert(0, app.router.routes.pop())
    return app
