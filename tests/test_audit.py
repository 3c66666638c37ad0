"""The audit trail over a real server process (SQLite and PostgreSQL): user administration,
allocation-policy and shipping-rate changes keep old and new values, actor, time and the
client's address; failed logins keep the name tried and the address; admins read it at
`GET /api/v1/audit`, filtered and paginated, and nobody can change it afterwards."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from server.db import transaction
from server.services import audit
from tests.conftest import ServerProcess
from tests.factories import PASSWORD, auth, make_warehouse


def events(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/api/v1/audit", params=params, headers=auth(http, "admin"))
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_user_administration_is_audited_with_old_and_new_values(
    server_process: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        make_warehouse(http, "LAX")
        admin = auth(http, "admin")
        started = dt.datetime.now(dt.UTC)
        created = http.post(
            "/api/v1/users",
            json={"username": "ops1", "password": "first-password", "role": "picker"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        for change in (
            {"role": "supervisor"},
            {"active": False},
            {"password": "second-password", "full_name": "Ops One"},
        ):
            response = http.patch("/api/v1/users/ops1", json=change, headers=admin)
            assert response.status_code == 200, response.text
        moved = http.put(
            "/api/v1/users/ops1/warehouses", json={"warehouses": ["LAX"]}, headers=admin
        )
        assert moved.status_code == 200 and moved.json()["warehouses"] == ["LAX"]

        page = events(http, subject="ops1")
        trail = [(e["action"], e["old"], e["new"]) for e in reversed(page["items"])]
        assert trail == [
            (
                "user.create",
                None,
                {
                    "role": "picker",
                    "active": True,
                    "full_name": "",
                    "locale": "en-US",
                    "timezone": "UTC",
                    "warehouses": [],
                },
            ),
            ("user.role", {"role": "picker"}, {"role": "supervisor"}),
            ("user.disable", {"active": True}, {"active": False}),
            ("user.update", {"full_name": ""}, {"full_name": "Ops One"}),
            ("user.password_reset", None, None),
            ("user.warehouses", {"warehouses": []}, {"warehouses": ["LAX"]}),
        ]
        assert page["total"] == 6
        for event in page["items"]:
            assert event["actor"] == "admin"
            assert event["client"] == "127.0.0.1"
            at = dt.datetime.fromisoformat(event["at"])
            assert started - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.UTC)
        assert "password" not in str(page).replace("password_reset", "")


def test_allocation_policy_and_shipping_rate_changes_keep_old_and_new(
    server_process: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        make_warehouse(http, "LAX")
        supervisor = auth(http, "supervisor")
        policy = {"rules": ["cost_first", "nearest"], "split": "never"}
        response = http.put("/api/v1/allocation-policy", json=policy, headers=supervisor)
        assert response.status_code == 200, response.text
        rate = {"warehouse": "LAX", "destination": "US", "max_weight_g": 5000, "cost_cents": 800}
        for cost in (800, 950):
            response = http.put(
                "/api/v1/shipping-rates", json={**rate, "cost_cents": cost}, headers=supervisor
            )
            assert response.status_code == 200, response.text

        (changed,) = events(http, action="allocation_policy.update")["items"]
        assert changed["actor"] == "supervisor" and changed["client"] == "127.0.0.1"
        assert changed["old"]["rules"] != ["cost_first", "nearest"]
        assert changed["new"] == {
            "rules": ["cost_first", "nearest"],
            "split": "never",
            "split_min_value_cents": 0,
        }
        rates = events(http, action="shipping_rate.set")["items"]
        assert [(e["subject"], e["old"], e["new"]) for e in rates] == [
            (
                "shipping-rate:LAX/US/5000",
                {"cost_cents": 800, "currency": "USD"},
                {"cost_cents": 950, "currency": "USD"},
            ),
            ("shipping-rate:LAX/US/5000", None, {"cost_cents": 800, "currency": "USD"}),
        ]


def test_failed_logins_keep_the_name_tried_and_the_address(
    server_process: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        for username, password in (
            ("admin", "not-the-password"),
            ("nobody-here", "whatever-it-is"),
            ("picker", PASSWORD),  # a success is not a failure
        ):
            http.post("/api/v1/auth/token", data={"username": username, "password": password})
        page = events(http, action="auth.login_failed")
        assert [(e["subject"], e["actor"], e["client"]) for e in page["items"]] == [
            ("nobody-here", None, "127.0.0.1"),
            ("admin", None, "127.0.0.1"),
        ]
        assert "not-the-password" not in str(page)


def test_the_audit_is_filtered_paginated_and_for_admins_only(
    server_process: ServerProcess,
) -> None:
    with httpx.Client(base_url=server_process.url) as http:
        admin = auth(http, "admin")
        for n in range(5):
            http.post(
                "/api/v1/users",
                json={"username": f"temp{n}", "password": "long-password", "role": "picker"},
                headers=admin,
            )
        http.post("/api/v1/auth/token", data={"username": "temp0", "password": "wrong-one!"})
        everything = events(http, limit=500)
        assert everything["total"] == 6

        first = events(http, action="user.create", limit=2)
        second = events(http, action="user.create", limit=2, offset=2)
        assert first["total"] == second["total"] == 5
        assert [e["subject"] for e in first["items"] + second["items"]] == [
            "temp4",
            "temp3",
            "temp2",
            "temp1",
        ]
        assert events(http, action="user.")["total"] == 5  # every action under `user.`
        assert events(http, actor="admin")["total"] == 5
        assert events(http, actor="supervisor")["total"] == 0

        newest = dt.datetime.fromisoformat(everything["items"][0]["at"])
        assert events(http, since=newest.isoformat())["total"] >= 1
        assert events(http, until=newest.isoformat())["total"] < 6
        later = newest + dt.timedelta(seconds=1)
        assert events(http, since=later.isoformat())["total"] == 0
        assert events(http, until=later.isoformat())["total"] == 6
        naive_utc = later.replace(tzinfo=None).isoformat()  # times are UTC in the API
        assert events(http, until=naive_utc)["total"] == 6

        for role in ("picker", "supervisor", "manager"):
            refused = http.get("/api/v1/audit", headers=auth(http, role))
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"


def test_the_database_refuses_to_change_the_audit(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        audit.record(session, "user.role", actor="admin", client="10.0.0.1", subject="x")
    for statement in ("UPDATE audit_events SET actor = 'someone'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError), transaction(sessions) as session:
            session.execute(text(statement))
    with transaction(sessions) as session:
        assert session.execute(text("SELECT actor FROM audit_events")).scalars().all() == ["admin"]
