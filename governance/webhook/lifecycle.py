"""`POST /events/lifecycle`: business events from the ITSM, as a WSGI application.

The request is checked in this order, and the first failing check sets the
response: method (405), a configured secret (503), body size (413),
authenticity (401), media type (415), body (400). Only then does the event reach
`receive_event`, with the rules of `steward event`: 404 for an unknown
entity, 409 for a known event id sent with another type or key, 202 for a
new event and 200, with the first outcome, for a replayed one. A rejected
request writes nothing.

The server decides the path: it routes `PATH` to this application, which
answers whatever path it is mounted at.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import sqlalchemy as sa

from governance.app import Steward
from governance.audit.service import Actor
from governance.business_event.models import EventStatus
from governance.business_event.service import EventOutcome, receive_event
from governance.clock import as_utc, utcnow
from governance.errors import ConflictError, InvalidInputError, NotFoundError
from governance.webhook.payload import LifecycleEventRequest, parse_event_request
from governance.webhook.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOKEN_HEADER,
    SignatureError,
    verify_request,
)
from governance.webhook.wsgi import (
    HttpError,
    check_json_media_type,
    header,
    json_response,
    read_body,
)

logger = logging.getLogger(__name__)

PATH = "/events/lifecycle"

_DISABLED_MESSAGE = (
    "the lifecycle webhook is disabled: set webhook.secret "
    "(STEWARD_WEBHOOK__SECRET) to enable it"
)


class LifecycleWebhook:
    """The WSGI application that receives lifecycle events from the ITSM.

    Safe to call from several server threads at once: each request opens its
    own session on the Steward's engine.
    """

    def __init__(self, app: Steward) -> None:
        self._app = app
        self._settings = app.settings.webhook
        if self._settings.secret is None:
            logger.warning("%s, so every request gets 503", _DISABLED_MESSAGE)
        else:
            logger.info(
                "lifecycle webhook enabled at %s in %s mode",
                PATH,
                self._settings.mode,
            )

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Handle one request and return its JSON response."""
        try:
            status, document = self._handle(environ)
        except HttpError as error:
            _log_rejection(environ, error)
            return json_response(
                start_response, error.status, {"error": error.message}, error.headers
            )
        except Exception:
            reference = uuid.uuid4().hex[:12]
            logger.exception(
                "lifecycle webhook: request from %s failed (reference %s)",
                _client(environ),
                reference,
            )
            return json_response(
                start_response,
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": f"internal error (reference {reference}): try again later"},
            )
        return json_response(start_response, status, document)

    def _handle(self, environ: WSGIEnvironment) -> tuple[HTTPStatus, dict[str, Any]]:
        if environ.get("REQUEST_METHOD") != "POST":
            raise HttpError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{PATH} accepts POST only",
                [("Allow", "POST")],
            )
        if self._settings.secret is None:
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, _DISABLED_MESSAGE)
        body = read_body(environ, self._settings.max_body_bytes)
        self._authenticate(environ, body)
        check_json_media_type(environ)
        try:
            request = parse_event_request(
                body,
                now=utcnow(),
                max_skew=timedelta(seconds=self._settings.max_clock_skew_seconds),
            )
        except InvalidInputError as error:
            raise HttpError(HTTPStatus.BAD_REQUEST, str(error)) from None
        return self._receive(request)

    def _authenticate(self, environ: WSGIEnvironment, body: bytes) -> None:
        headers = {
            name: header(environ, name)
            for name in (TIMESTAMP_HEADER, SIGNATURE_HEADER, TOKEN_HEADER)
        }
        try:
            verify_request(headers, body, self._settings, now=utcnow())
        except SignatureError as error:
            # The reason names headers and limits, never a header's value, so
            # the rejection's log line carries no secret.
            scheme = "Steward-Token" if self._settings.mode == "static" else "HMAC"
            raise HttpError(
                HTTPStatus.UNAUTHORIZED,
                f"{error} ({self._settings.mode} mode)",
                [("WWW-Authenticate", f'{scheme} realm="steward"')],
            ) from None

    def _receive(
        self, request: LifecycleEventRequest
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            return self._receive_once(request)
        except sa.exc.IntegrityError:
            # Two deliveries of one event id ran at once on PostgreSQL: the
            # later insert hit the unique event id once the first committed.
            # A second pass finds that event and returns its outcome.
            logger.info(
                "lifecycle webhook: event %s arrived twice at once, so the "
                "first outcome is returned",
                request.event_id,
            )
            return self._receive_once(request)

    def _receive_once(
        self, request: LifecycleEventRequest
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            with self._app.session() as session:
                outcome = receive_event(
                    session,
                    event_id=request.event_id,
                    event_type=request.type,
                    key=request.entity_key,
                    actor=Actor.person(request.actor),
                    settings=self._app.settings,
                    occurred_at=request.time,
                )
                document = _outcome_document(outcome)
        except NotFoundError as error:
            raise HttpError(
                HTTPStatus.NOT_FOUND,
                f"no {error.kind} with key {error.reference!r}",
            ) from None
        except ConflictError as error:
            raise HttpError(HTTPStatus.CONFLICT, str(error)) from None
        if outcome.duplicate:
            logger.info(
                "lifecycle webhook: event %s was delivered again, so the first "
                "outcome was returned",
                request.event_id,
            )
            return HTTPStatus.OK, document
        if outcome.already_closed:
            return HTTPStatus.OK, document
        return HTTPStatus.ACCEPTED, document


def _outcome_document(outcome: EventOutcome) -> dict[str, Any]:
    event = outcome.event
    document: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type.value,
        "entity_key": event.entity.key,
        "status": event.status.value,
        "revoke_count": event.revoke_count,
        "kept_count": event.kept_count,
        "duplicate": outcome.duplicate,
        "already_closed": outcome.already_closed,
        "received_at": as_utc(event.received_at).isoformat(),
    }
    if outcome.already_closed:
        document["message"] = (
            f"{event.entity.type.value} {event.entity.key} was already closed, "
            "so nothing was queued"
        )
    if event.status is EventStatus.AWAITING_APPROVAL:
        document["message"] = (
            "the revocations wait for a security admin: "
            f"steward event approve {event.event_id}"
        )
    return document


def _log_rejection(environ: WSGIEnvironment, error: HttpError) -> None:
    logger.warning(
        "lifecycle webhook: rejected request from %s with %s: %s",
        _client(environ),
        error.status.value,
        error.message,
    )


def _client(environ: WSGIEnvironment) -> str:
    return str(environ.get("REMOTE_ADDR") or "unknown address")
