"""The lifecycle webhook served by waitress, called over real HTTP.

Signatures are computed here from the documented signed strings, not with
Steward's own code, so a change to what Steward signs fails these tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from sqlalchemy.orm import Session

from governance.app import Steward, create_app
from governance.audit.export import verify_database
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityStatus, EntityType
from governance.business_event.models import BusinessEvent, EventStatus
from governance.business_event.service import decide_event, find_event
from governance.identity.models import Identity
from governance.lifecycle import IdentityState
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.settings import Settings
from governance.webhook.lifecycle import PATH, LifecycleWebhook
from tests.factories import make_identity, make_person
from tests.support.wsgi_server import HttpResponse, send, serve_wsgi

SECRET = "5f0c2a9e8d7b6a5f4e3d2c1b0a9f8e7d"
WRONG_SECRET = "00000000000000000000000000000000"
ADMIN = Actor.person("security@example.com")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
JSON = {"Content-Type": "application/json"}
BODY_LIMIT = 1024


def event_body(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "event_id": "CHG0042",
        "type": "project.closed",
        "entity_key": "apollo",
        "time": "2026-03-02T09:00:00Z",
        "actor": "Change.Manager@Example.com",
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def timestamp_headers(
    body: bytes, *, secret: str = SECRET, at: datetime = NOW
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signed = b"v1:" + timestamp.encode() + b":" + body
    return {
        **JSON,
        "X-Steward-Timestamp": timestamp,
        "X-Steward-Signature": "v1=" + hmac_hex(secret, signed),
    }


def body_headers(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    return {**JSON, "X-Steward-Signature": "sha256=" + hmac_hex(secret, body)}


def token_headers(_body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    return {**JSON, "X-Steward-Token": secret}


SIGNERS: dict[str, Callable[..., dict[str, str]]] = {
    "timestamp": timestamp_headers,
    "body": body_headers,
    "static": token_headers,
}


def add_entity(session: Session, entity_type: EntityType, key: str) -> BusinessEntity:
    entity = BusinessEntity(type=entity_type, key=key, name=key.title())
    session.add(entity)
    session.flush()
    return entity


def arrange_project(app: Steward) -> None:
    """Project apollo with three identities of its own, one shared with an
    active application, and one already gone."""
    with app.session() as session:
        owner = make_person(session, "owner@example.com")
        apollo = add_entity(session, EntityType.PROJECT, "apollo")
        crm = add_entity(session, EntityType.APPLICATION, "crm")
        for number in range(3):
            identity = make_identity(session, owner=owner, name=f"apollo-{number}")
            identity.entities.append(apollo)
        shared = make_identity(session, owner=owner, name="shared")
        shared.entities.extend([apollo, crm])
        retired = make_identity(session, state=IdentityState.GONE, name="old")
        retired.entities.append(apollo)


def snapshot(app: Steward) -> dict[str, Any]:
    """Everything a request could change, in comparable form."""
    with app.session() as session:

        def count(model: Any) -> int:
            return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0

        return {
            "business_events": count(BusinessEvent),
            "audit_events": count(AuditEvent),
            "remediations": count(Remediation),
            "identities": dict(
                session.execute(sa.select(Identity.name, Identity.state)).all()
            ),
            "entities": dict(
                session.execute(
                    sa.select(BusinessEntity.key, BusinessEntity.status)
                ).all()
            ),
        }


def audit_actions(app: Steward) -> dict[str, int]:
    with app.session() as session:
        rows = session.execute(
            sa.select(AuditEvent.action, sa.func.count()).group_by(AuditEvent.action)
        )
        return dict(rows.all())


def identity_states(app: Steward) -> dict[str, IdentityState]:
    with app.session() as session:
        return dict(session.execute(sa.select(Identity.name, Identity.state)).all())


def revocation_statuses(app: Steward) -> list[RemediationStatus]:
    with app.session() as session:
        return list(
            session.scalars(
                sa.select(Remediation.status).where(
                    Remediation.kind == RemediationKind.REVOKE
                )
            )
        )


class Webhook:
    """A Steward with the webhook served over HTTP."""

    def __init__(self, app: Steward, url: str) -> None:
        self.app = app
        self.url = url + PATH

    def post(self, body: bytes, headers: dict[str, str]) -> HttpResponse:
        return send(self.url, body, headers)

    def post_signed(self, body: bytes) -> HttpResponse:
        return self.post(body, SIGNERS[self.app.settings.webhook.mode](body))


@pytest.fixture
def clock() -> Iterator[None]:
    # Stopped, so that timestamps at the edge of the window are exact.
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def serve(database_url: str, clock: None) -> Iterator[Callable[..., Webhook]]:
    """Start the webhook with the given mode and guard settings."""
    with ExitStack() as stack:

        def start(mode: str = "timestamp", **guards: Any) -> Webhook:
            settings = Settings(
                database_url=database_url,
                security={"admins": [ADMIN.name]},  # type: ignore[arg-type]
                webhook={  # type: ignore[arg-type]
                    "secret": SECRET,
                    "mode": mode,
                    "max_body_bytes": BODY_LIMIT,
                },
                guards=guards,  # type: ignore[arg-type]
            )
            app = create_app(settings)
            stack.callback(app.close)
            arrange_project(app)
            url = stack.enter_context(serve_wsgi(LifecycleWebhook(app)))
            return Webhook(app, url)

        yield start


def test_signed_event_deprovisions(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    response = webhook.post_signed(event_body())

    assert response.status == 202, response.document
    assert response.document == {
        "event_id": "CHG0042",
        "type": "project.closed",
        "entity_key": "apollo",
        "status": "applied",
        "revoke_count": 3,
        "kept_count": 1,
        "duplicate": False,
        "already_closed": False,
        "received_at": NOW.isoformat(),
    }
    states = identity_states(webhook.app)
    assert [states[f"apollo-{n}"] for n in range(3)] == [
        IdentityState.REVOCATION_PENDING
    ] * 3
    assert states["shared"] is IdentityState.OWNED
    assert states["old"] is IdentityState.GONE
    assert revocation_statuses(webhook.app) == [RemediationStatus.PENDING] * 3
    with webhook.app.session() as session:
        event = find_event(session, "CHG0042")
        assert event.actor == "change.manager@example.com"
        assert event.occurred_at.replace(tzinfo=UTC) == datetime(
            2026, 3, 2, 9, 0, tzinfo=UTC
        )
        entity = session.scalars(
            sa.select(BusinessEntity).where(BusinessEntity.key == "apollo")
        ).one()
        assert entity.status is EntityStatus.CLOSED
        assert verify_database(session).ok
        actors = set(session.scalars(sa.select(AuditEvent.actor)))
        assert actors == {"change.manager@example.com"}
    actions = audit_actions(webhook.app)
    assert actions["event.received"] == 1
    assert actions["entity.closed"] == 1
    assert actions["lifecycle.deprovision"] == 3
    assert actions["lifecycle.kept_shared"] == 1


def _forged(body: bytes) -> dict[str, str]:
    headers = timestamp_headers(body)
    headers["X-Steward-Signature"] = "v1=" + hmac_hex(SECRET, b"v1:0:" + body)
    return headers


def _without(name: str) -> Callable[[bytes], dict[str, str]]:
    def headers(body: bytes) -> dict[str, str]:
        signed = timestamp_headers(body)
        del signed[name]
        return signed

    return headers


UNAUTHENTICATED: dict[str, tuple[Callable[[bytes], dict[str, str]], str]] = {
    "forged": (_forged, "invalid X-Steward-Signature"),
    "wrong_secret": (
        lambda body: timestamp_headers(body, secret=WRONG_SECRET),
        "invalid X-Steward-Signature",
    ),
    "other_body": (
        lambda body: timestamp_headers(event_body(entity_key="hermes")),
        "invalid X-Steward-Signature",
    ),
    "body_scheme": (
        lambda body: {
            **timestamp_headers(body),
            "X-Steward-Signature": "sha256=" + hmac_hex(SECRET, body),
        },
        "invalid X-Steward-Signature",
    ),
    "stale": (
        lambda body: timestamp_headers(body, at=NOW - timedelta(seconds=301)),
        "301 seconds old",
    ),
    "future": (
        lambda body: timestamp_headers(body, at=NOW + timedelta(seconds=301)),
        "301 seconds in the future",
    ),
    "no_signature": (
        _without("X-Steward-Signature"),
        "missing X-Steward-Signature header",
    ),
    "no_timestamp": (
        _without("X-Steward-Timestamp"),
        "missing X-Steward-Timestamp header",
    ),
    "no_headers": (lambda body: dict(JSON), "missing X-Steward-Timestamp header"),
    "bad_timestamp": (
        lambda body: {
            **timestamp_headers(body),
            "X-Steward-Timestamp": f"{int(NOW.timestamp())}.5",
        },
        "invalid X-Steward-Timestamp",
    ),
}


def test_unauthenticated_rejected(
    serve: Callable[..., Webhook], caplog: pytest.LogCaptureFixture
) -> None:
    # One server for every case: each case changes nothing, which is checked.
    webhook = serve()
    before = snapshot(webhook.app)
    body = event_body()

    for case, (sign, reason) in UNAUTHENTICATED.items():
        headers = sign(body)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="governance.webhook"):
            response = webhook.post(body, headers)

        assert response.status == 401, case
        assert reason in response.document["error"], case
        assert response.headers["WWW-Authenticate"] == 'HMAC realm="steward"', case
        assert snapshot(webhook.app) == before, case
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, case
        assert reason in warnings[0].getMessage(), case
        assert SECRET not in caplog.text, case
        signature = headers.get("X-Steward-Signature", "=").split("=", 1)[1]
        if signature:
            assert signature not in caplog.text, case


def test_timestamp_window_edges(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    with webhook.app.session() as session:
        add_entity(session, EntityType.PROJECT, "hermes")
    first = event_body(event_id="E1")
    second = event_body(event_id="E2", entity_key="hermes")
    oldest = webhook.post(
        first, timestamp_headers(first, at=NOW - timedelta(seconds=300))
    )
    newest = webhook.post(
        second, timestamp_headers(second, at=NOW + timedelta(seconds=300))
    )
    assert oldest.status == 202, oldest.document
    assert newest.status == 202, newest.document


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "malformed": (b'{"event_id": "CHG1",', "malformed JSON"),
    "not_utf8": (b'{"event_id": "\xff"}', "expected UTF-8"),
    "not_object": (b'["project.closed"]', "expected a JSON object"),
    "empty": (b"", "malformed JSON"),
    "missing_field": (event_body(entity_key=None), "missing field 'entity_key'"),
    "unknown_type": (
        event_body(type="team.closed"),
        "invalid field 'type': unknown event type 'team.closed'",
    ),
    "unknown_field": (event_body(priority="high"), "unknown field 'priority'"),
    "number_key": (event_body(entity_key=7), "invalid field 'entity_key'"),
    "blank_id": (event_body(event_id="  "), "invalid field 'event_id'"),
    "long_id": (event_body(event_id="x" * 161), "invalid field 'event_id'"),
    "control": (event_body(entity_key="apo\u001bllo"), "control character U+001B"),
    "bad_time": (event_body(time="yesterday"), "invalid field 'time'"),
    "future_time": (
        event_body(time="2026-03-02T09:36:00Z"),
        "invalid field 'time': 2026-03-02T09:36:00Z is in the future",
    ),
    "bad_actor_email": (event_body(actor="a@b"), "invalid field 'actor'"),
    "duplicate_key": (
        event_body().replace(
            b'"event_id": "CHG0042"', b'"event_id": "X", "event_id": "Y"'
        ),
        "the key 'event_id' appears more than once",
    ),
    "nested_duplicate_key": (
        event_body(actor={"a": 1, "b": 2}).replace(b'"b"', b'"a"'),
        "the key 'a' appears more than once",
    ),
    "ancient_time": (
        event_body(time="1900-01-01"),
        "invalid field 'time': 1900-01-01 is more than 365 days ago",
    ),
    "year_old_time": (
        event_body(time="2025-03-01T09:00:00Z"),
        "is more than 365 days ago",
    ),
}


def test_invalid_body_rejected(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    before = snapshot(webhook.app)

    for case, (body, message) in BAD_BODIES.items():
        response = webhook.post_signed(body)

        assert response.status == 400, case
        assert message in response.document["error"], case
        assert snapshot(webhook.app) == before, case


def test_unknown_entity_not_found(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    before = snapshot(webhook.app)

    unknown = webhook.post_signed(event_body(entity_key="hermes"))
    wrong_type = webhook.post_signed(event_body(type="vendor.offboarded"))

    assert unknown.status == 404
    assert unknown.document == {"error": "no project with key 'hermes'"}
    assert wrong_type.status == 404
    assert wrong_type.document == {"error": "no vendor with key 'apollo'"}
    assert snapshot(webhook.app) == before


def test_body_size_limit(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    before = snapshot(webhook.app)
    # Padding inside the JSON keeps the body valid, so only its size differs.
    base = event_body(padding="")
    over = event_body(padding="x" * (BODY_LIMIT + 1 - len(base)))
    at_limit = event_body(padding="x" * (BODY_LIMIT - len(base)))
    assert len(over) == BODY_LIMIT + 1
    assert len(at_limit) == BODY_LIMIT

    too_large = webhook.post_signed(over)
    within = webhook.post_signed(at_limit)
    chunked = send(
        webhook.url, iter([over[:100], over[100:]]), SIGNERS["timestamp"](over)
    )

    assert too_large.status == 413
    assert chunked.status == 413
    assert f"exceeds the limit of {BODY_LIMIT} bytes" in too_large.document["error"]
    # Within the limit the body is read and judged: padding is no known field.
    assert within.status == 400
    assert "unknown field 'padding'" in within.document["error"]
    assert snapshot(webhook.app) == before


def test_other_methods_and_media_types(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    before = snapshot(webhook.app)
    body = event_body()

    get = send(webhook.url, method="GET")
    put = send(webhook.url, body, timestamp_headers(body), method="PUT")
    text = webhook.post(body, {**timestamp_headers(body), "Content-Type": "text/plain"})
    latin = webhook.post(
        body,
        {
            **timestamp_headers(body),
            "Content-Type": "application/json; charset=iso-8859-1",
        },
    )

    assert (get.status, put.status) == (405, 405)
    assert get.headers["Allow"] == "POST"
    assert text.status == 415
    assert "expected Content-Type application/json" in text.document["error"]
    assert latin.status == 415
    assert snapshot(webhook.app) == before


def test_same_event_twice_deprovisions_once(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    first = webhook.post_signed(event_body())
    after_first = snapshot(webhook.app)

    second = webhook.post_signed(event_body())

    assert (first.status, second.status) == (202, 200)
    assert second.document == {**first.document, "duplicate": True}
    assert snapshot(webhook.app) == after_first
    assert len(revocation_statuses(webhook.app)) == 3


def test_second_close_queues_nothing(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    first = webhook.post_signed(event_body())
    after_first = snapshot(webhook.app)

    second = webhook.post_signed(event_body(event_id="CHG0043"))
    after_second = snapshot(webhook.app)
    replay = webhook.post_signed(event_body(event_id="CHG0043"))

    assert first.status == 202
    assert first.document["already_closed"] is False
    assert second.status == 200, second.document
    assert second.document["already_closed"] is True
    assert second.document["duplicate"] is False
    assert (second.document["revoke_count"], second.document["kept_count"]) == (0, 0)
    assert "project apollo was already closed" in second.document["message"]
    assert after_second["remediations"] == after_first["remediations"]
    assert after_second["identities"] == after_first["identities"]
    assert after_second["business_events"] == after_first["business_events"] + 1
    assert after_second["audit_events"] == after_first["audit_events"] + 1
    assert replay.status == 200
    assert replay.document == {**second.document, "duplicate": True}
    assert snapshot(webhook.app) == after_second


def test_reused_event_id_conflicts(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    with webhook.app.session() as session:
        add_entity(session, EntityType.PROJECT, "hermes")
    first = webhook.post_signed(event_body())
    after_first = snapshot(webhook.app)

    reused = webhook.post_signed(event_body(entity_key="hermes"))

    assert first.status == 202
    assert reused.status == 409
    assert "already used for project.closed 'apollo'" in reused.document["error"]
    assert snapshot(webhook.app) == after_first


def test_concurrent_deliveries_deprovision_once(
    serve: Callable[..., Webhook], backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = serve()
    body = event_body()
    headers = timestamp_headers(body)
    if backend == "postgresql":
        # Hold both requests at their insert of the event until both got
        # there, so that both passed the check for a known event id.
        inserts = threading.Barrier(2)

        @sa.event.listens_for(webhook.app.engine, "before_cursor_execute")
        def _meet(*args: Any) -> None:
            if args[2].startswith("INSERT INTO business_event"):
                inserts.wait(timeout=30)

    start = threading.Barrier(2)
    results: list[HttpResponse] = []

    def deliver() -> None:
        start.wait(timeout=30)
        results.append(webhook.post(body, headers))

    with caplog.at_level(logging.INFO, logger="governance.webhook"):
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert sorted(result.status for result in results) == [200, 202]
    assert [result.document["duplicate"] for result in results].count(True) == 1
    assert revocation_statuses(webhook.app) == [RemediationStatus.PENDING] * 3
    actions = audit_actions(webhook.app)
    assert actions["event.received"] == 1
    assert actions["lifecycle.deprovision"] == 3
    assert actions["remediation.queued"] == 3
    with webhook.app.session() as session:
        assert verify_database(session).ok
    if backend == "postgresql":
        assert "arrived twice at once" in caplog.text


@pytest.mark.parametrize("mode", ["timestamp", "body", "static"])
def test_each_mode_accepts_and_replays(
    serve: Callable[..., Webhook], mode: str
) -> None:
    webhook = serve(mode)
    body = event_body()
    headers = SIGNERS[mode](body)

    first = webhook.post(body, headers)
    after_first = snapshot(webhook.app)
    replay = webhook.post(body, headers)

    assert first.status == 202, first.document
    assert first.document["revoke_count"] == 3
    assert replay.status == 200
    assert replay.document == {**first.document, "duplicate": True}
    assert snapshot(webhook.app) == after_first


MODE_REJECTIONS: dict[str, list[tuple[Callable[[bytes], dict[str, str]], str]]] = {
    "body": [
        (lambda body: body_headers(body, secret=WRONG_SECRET), "invalid"),
        (lambda body: body_headers(event_body(event_id="other")), "invalid"),
        (timestamp_headers, "invalid X-Steward-Signature"),
        (lambda body: dict(JSON), "missing X-Steward-Signature header"),
    ],
    "static": [
        (lambda body: token_headers(body, secret=WRONG_SECRET), "invalid"),
        (lambda body: token_headers(body, secret=SECRET[:-1]), "invalid"),
        (lambda body: token_headers(body, secret=SECRET + "0"), "invalid"),
        (body_headers, "missing X-Steward-Token header"),
        (lambda body: dict(JSON), "missing X-Steward-Token header"),
    ],
}


@pytest.mark.parametrize("mode", list(MODE_REJECTIONS))
def test_each_mode_rejects_forgeries(serve: Callable[..., Webhook], mode: str) -> None:
    webhook = serve(mode)
    before = snapshot(webhook.app)
    body = event_body()

    for sign, reason in MODE_REJECTIONS[mode]:
        response = webhook.post(body, sign(body))
        assert response.status == 401, (reason, response.document)
        assert reason in response.document["error"]
        assert f"({mode} mode)" in response.document["error"]
    assert snapshot(webhook.app) == before


def test_large_event_waits_for_approval(serve: Callable[..., Webhook]) -> None:
    webhook = serve(lifecycle_approval_threshold=2)

    response = webhook.post_signed(event_body())

    assert response.status == 202
    assert response.document["status"] == "awaiting_approval"
    assert "steward event approve CHG0042" in response.document["message"]
    states = identity_states(webhook.app)
    assert {states[f"apollo-{n}"] for n in range(3)} == {
        IdentityState.REVOCATION_APPROVAL
    }
    assert revocation_statuses(webhook.app) == [RemediationStatus.AWAITING_APPROVAL] * 3

    with webhook.app.session() as session:
        event = find_event(session, "CHG0042")
        decide_event(
            session, event, approve=True, actor=ADMIN, settings=webhook.app.settings
        )
    replay = webhook.post_signed(event_body())
    assert replay.status == 200
    assert replay.document["status"] == EventStatus.APPLIED.value
    assert revocation_statuses(webhook.app) == [RemediationStatus.PENDING] * 3


def test_disabled_without_secret(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=database_url))
    try:
        with caplog.at_level(logging.WARNING, logger="governance.webhook"):
            webhook = LifecycleWebhook(app)
        assert "lifecycle webhook is disabled" in caplog.text
        before = snapshot(app)
        body = event_body()
        with serve_wsgi(webhook) as url:
            response = send(url + PATH, body, token_headers(body))
        assert response.status == 503
        assert "set webhook.secret" in response.document["error"]
        assert snapshot(app) == before
    finally:
        app.close()


def test_longest_event_id_accepted(serve: Callable[..., Webhook]) -> None:
    webhook = serve()
    longest = "x" * 160

    response = webhook.post_signed(event_body(event_id=longest))

    assert response.status == 202, response.document
    assert response.document["event_id"] == longest
    assert revocation_statuses(webhook.app) == [RemediationStatus.PENDING] * 3


def test_unexpected_error_has_reference(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without Steward's tables makes every query fail.
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'empty.db'}",
            webhook={"secret": SECRET, "mode": "static"},  # type: ignore[arg-type]
        )
    )
    try:
        # Today at midnight: neither in the future nor too old on the real clock.
        body = event_body(time=datetime.now(UTC).date().isoformat())
        with (
            caplog.at_level(logging.INFO, logger="governance.webhook"),
            serve_wsgi(LifecycleWebhook(app)) as url,
        ):
            response = send(url + PATH, body, token_headers(body))
        assert "lifecycle webhook enabled at /events/lifecycle in static mode" in (
            caplog.text
        )
    finally:
        app.close()

    assert response.status == 500
    reference = response.document["error"].split("reference ")[1].split(")")[0]
    assert len(reference) == 12
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert reference in errors[0].getMessage()
    assert "no such table" not in response.document["error"]
