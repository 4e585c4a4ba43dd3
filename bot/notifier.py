"""Sending queued notifications to Slack, each page posted once.

The worker takes `notify` rows from the outbox the way the revocation worker
takes revocations: in a short transaction, locked with an expiry, released
before Slack is called. Each page of a notification is posted with message
metadata naming the outbox row and the page, and a `sent_message` row is
written as soon as Slack returns `ok`. A page counts as sent only then.

A call whose outcome is unknown (a timeout, a dropped connection, a 5xx
response, or a worker that died while posting) may have posted the message.
Before posting such a page again the worker reads the conversation's recent
history for a message carrying the same metadata, and records that message
instead of posting a second one.

Before a direct message the recipient is read from Slack again, because
Slack accepts messages to deactivated users. A recipient without a Slack
user, a deactivated one, and a channel that is missing, archived or does not
have the bot are reported to the security channel and the log, and the row
stays visible as `needs_human` with the reason.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot import blocks
from bot.directory import DEACTIVATED, Directory
from bot.messages import Destination, Page, RenderRequest, spec_for
from bot.messages.catalog import render_fallback
from governance.app import Steward
from governance.audit.service import Actor, record
from governance.clock import as_utc, utcnow
from governance.delivery.models import SentMessage
from governance.faults import failpoint
from governance.person.models import Person
from governance.remediation.models import (
    Remediation,
    RemediationKind,
    RemediationStatus,
)
from governance.remediation.notifications import Template, obsolete_reason
from governance.remediation.operations import is_paused
from governance.remediation.service import queue_notification
from governance.remediation.worker import RetryPolicy, WorkerStats

logger = logging.getLogger(__name__)

S = RemediationStatus
METADATA_EVENT = "steward_notification"
# Stages of a row while it is being sent.
STAGE_POSTING = "posting"
STAGE_UNKNOWN = "outcome_unknown"

# Errors that will not go away by retrying: a person must fix the channel,
# the invitation or the recipient.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "restricted_action",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "invalid_metadata_format",
    }
)


class Undeliverable(Exception):
    """A notification that cannot be delivered until a person fixes something."""


class OutcomeUnknown(Exception):
    """A call that may or may not have taken effect."""


class Obsolete(Exception):
    """A notification that no longer needs sending (its review was decided)."""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:g} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Job:
    remediation_id: int
    template: str
    recipient: str | None
    context: dict[str, Any]
    stage: str | None
    attempts: int
    created_at: datetime


class SlackNotifier:
    """Delivers the outbox's notifications to Slack."""

    def __init__(
        self,
        steward: Steward,
        client: WebClient,
        directory: Directory,
        *,
        worker_id: str,
        batch_size: int = 20,
        lock_period: timedelta = timedelta(minutes=2),
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.steward = steward
        # A rate-limited post is rescheduled through the outbox instead of
        # blocking the worker, so this client retries nothing by itself.
        self.client = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            retry_handlers=[],
        )
        self.directory = directory
        self.worker_id = worker_id
        self.batch_size = batch_size
        self.lock_period = lock_period
        self.retry = retry or RetryPolicy(base_delay=timedelta(seconds=10))
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.actor = Actor.system("slack-notifier")
        self.slack = steward.settings.slack

    # Taking rows

    def _claim(self) -> list[_Job]:
        now = utcnow()
        with self.steward.session() as session:
            if is_paused(session):
                return []
            due = sa.or_(
                sa.and_(
                    Remediation.status == S.PENDING,
                    Remediation.next_attempt_at <= now,
                ),
                sa.and_(
                    Remediation.status == S.IN_PROGRESS,
                    Remediation.locked_until < now,
                ),
            )
            rows = session.scalars(
                sa.select(Remediation)
                .where(Remediation.kind == RemediationKind.NOTIFY, due)
                .order_by(Remediation.next_attempt_at, Remediation.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            jobs = []
            for row in rows:
                # A row left in progress by a worker that stopped may have
                # posted before it stopped.
                stage = row.stage
                if row.status is S.IN_PROGRESS and stage == STAGE_POSTING:
                    stage = STAGE_UNKNOWN
                row.status = S.IN_PROGRESS
                row.locked_by = self.worker_id
                row.locked_until = now + self.lock_period
                row.attempts += 1
                row.stage = STAGE_POSTING if stage is None else stage
                payload = row.payload or {}
                jobs.append(
                    _Job(
                        remediation_id=row.id,
                        template=str(payload.get("template", "")),
                        recipient=payload.get("recipient"),
                        context=dict(payload.get("context") or {}),
                        stage=stage,
                        attempts=row.attempts,
                        created_at=as_utc(row.created_at),
                    )
                )
        return jobs

    def run_once(self) -> WorkerStats:
        """Send the due notifications; return how many were taken and how each ended."""
        stats = WorkerStats()
        jobs = self._claim()
        stats.taken = len(jobs)
        for job in jobs:
            stats.count(self._deliver(job))
        return stats

    # Delivering one row

    def _deliver(self, job: _Job) -> str:
        try:
            channel, pages = self._prepare(job)
            for number, page in enumerate(pages):
                self._post_page(job, channel, number, page)
        except RateLimited as error:
            self._reschedule(job, str(error), delay=error.retry_after, unknown=False)
            return "rate_limited"
        except OutcomeUnknown as error:
            self._reschedule(job, str(error), delay=None, unknown=True)
            return "retry"
        except Undeliverable as error:
            self._give_up(job, str(error))
            return "undeliverable"
        except Obsolete as error:
            self._cancel(job, str(error))
            return "obsolete"
        except SlackApiError as error:
            code = str(error.response.get("error"))
            self._reschedule(job, f"Slack error {code}", delay=None, unknown=False)
            return "retry"
        self._succeed(job)
        return "sent"

    def _prepare(self, job: _Job) -> tuple[str, list[Page]]:
        self._check_relevant(job)
        spec = spec_for(job.template)
        destination = spec.destination if spec else Destination.RECIPIENT
        direct = destination is Destination.RECIPIENT and job.recipient is not None
        channel = self._direct_channel(job) if direct else ""
        if destination is Destination.ORPHANS:
            channel = self._channel("orphan_channel") or self._channel(
                "security_channel", required=True
            )
        elif not direct:
            channel = self._channel("security_channel", required=True)
        with self.steward.session() as session:
            recipient = (
                session.scalars(
                    sa.select(Person).where(Person.email == job.recipient)
                ).one_or_none()
                if direct
                else None
            )
            request = RenderRequest(
                remediation_id=job.remediation_id,
                template=job.template,
                context=job.context,
                recipient=recipient,
                time_zone=recipient.time_zone if recipient else None,
            )
            pages = spec.render(session, request) if spec else render_fallback(request)
        for page in pages:
            blocks.check_blocks(page.blocks)
        return channel, pages

    def _check_relevant(self, job: _Job) -> None:
        """Raise Obsolete when the notification no longer needs sending.

        Checked right before each attempt, so a decision committed a moment
        earlier suppresses a reminder about it.
        """
        with self.steward.session() as session:
            row = session.get_one(Remediation, job.remediation_id)
            reason = obsolete_reason(session, row)
        if reason is not None:
            raise Obsolete(reason)

    def _channel(self, name: str, *, required: bool = False) -> str:
        value: str | None = getattr(self.slack, name)
        if value is None and required:
            raise Undeliverable(
                f"slack.{name} (STEWARD_SLACK__{name.upper()}) is not set"
            )
        return value or ""

    def _direct_channel(self, job: _Job) -> str:
        """Return the recipient's Slack user id, read fresh from Slack.

        The person's chat status is committed even when the message
        cannot be sent, so a missing or deactivated user stays on record.
        """
        failure: Exception | None = None
        user = None
        with self.steward.session() as session:
            person = session.scalars(
                sa.select(Person).where(Person.email == job.recipient)
            ).one_or_none()
            if person is None:
                raise Undeliverable(f"{job.recipient} is not a known person")
            try:
                user = self.directory.slack_user_for(session, person)
            except SlackApiError as error:
                failure = _classify(error, "users.info")
            except OSError as error:
                failure = OutcomeUnknown(f"reading the Slack user failed: {error}")
        if failure is not None:
            raise failure
        if user is None:
            raise Undeliverable(f"no Slack user has the email {job.recipient}")
        if user.status == DEACTIVATED:
            raise Undeliverable(
                f"the Slack user {user.user_id} of {job.recipient} is deactivated"
            )
        return user.user_id

    def _post_page(self, job: _Job, channel: str, number: int, page: Page) -> None:
        key = page.key or f"notify:{job.remediation_id}:{number}"
        with self.steward.session() as session:
            existing = session.scalars(
                sa.select(SentMessage).where(SentMessage.key == key)
            ).one_or_none()
        if existing is not None and existing.remediation_id == job.remediation_id:
            return
        if existing is not None:
            # The same thing was shown before: edit that message instead.
            self._update(existing.channel, existing.message_ref, page)
            self._remember(job, key, existing.channel, existing.message_ref, page)
            return
        if job.stage == STAGE_UNKNOWN:
            found = self._find_posted(job, channel, number)
            if found is not None:
                logger.info(
                    "notification %s page %s was posted before; not posting again",
                    job.remediation_id,
                    number,
                )
                self._remember(job, key, found[0], found[1], page)
                return
        metadata = {
            "event_type": METADATA_EVENT,
            "event_payload": {"outbox_id": job.remediation_id, "page": number},
        }
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=blocks.cut(page.text, blocks.MAX_FALLBACK_TEXT),
                blocks=page.blocks,
                metadata=metadata,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as error:
            raise _classify(error, "chat.postMessage") from error
        except OSError as error:
            raise OutcomeUnknown(f"posting timed out or failed: {error}") from error
        failpoint("notify.posted")
        self._remember(job, key, str(response["channel"]), str(response["ts"]), page)

    def _find_posted(
        self, job: _Job, channel: str, number: int
    ) -> tuple[str, str] | None:
        """Return the channel and ts of a message posted for this page, if any."""
        target = channel
        if channel.startswith(("U", "W")):
            try:
                opened = self.client.conversations_open(users=channel)
            except SlackApiError as error:
                raise _classify(error, "conversations.open") from error
            target = str(opened["channel"]["id"])
        oldest = f"{job.created_at.timestamp() - 1:.6f}"
        cursor: str | None = None
        while True:
            try:
                response = self.client.conversations_history(
                    channel=target,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            except SlackApiError as error:
                raise _classify(error, "conversations.history") from error
            except OSError as error:
                raise OutcomeUnknown(f"reading history failed: {error}") from error
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == METADATA_EVENT
                    and payload.get("outbox_id") == job.remediation_id
                    and payload.get("page") == number
                ):
                    return target, str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def _update(self, channel: str, ts: str, page: Page) -> None:
        try:
            self.client.chat_update(
                channel=channel,
                ts=ts,
                text=blocks.cut(page.text, blocks.MAX_FALLBACK_TEXT),
                blocks=page.blocks,
            )
        except SlackApiError as error:
            raise _classify(error, "chat.update") from error
        except OSError as error:
            raise OutcomeUnknown(f"editing the message failed: {error}") from error

    def _remember(self, job: _Job, key: str, channel: str, ts: str, page: Page) -> None:
        with self.steward.session() as session:
            message = session.scalars(
                sa.select(SentMessage).where(SentMessage.key == key)
            ).one_or_none()
            if message is None:
                session.add(
                    SentMessage(
                        key=key,
                        template=job.template,
                        channel=channel,
                        message_ref=ts,
                        items=dict(page.items),
                        remediation_id=job.remediation_id,
                    )
                )
            else:
                message.remediation_id = job.remediation_id
                message.items = dict(page.items)

    # Recording the outcome

    def _locked_row(self, session: Session, job: _Job) -> Remediation | None:
        row = session.scalars(
            sa.select(Remediation)
            .where(Remediation.id == job.remediation_id)
            .with_for_update()
        ).one()
        if row.status is not S.IN_PROGRESS or row.locked_by != self.worker_id:
            logger.warning(
                "notification %s was taken over by %s; outcome dropped",
                job.remediation_id,
                row.locked_by,
            )
            return None
        row.locked_by = None
        row.locked_until = None
        return row

    def _succeed(self, job: _Job) -> None:
        with self.steward.session() as session:
            row = self._locked_row(session, job)
            if row is None:
                return
            row.status = S.SUCCEEDED
            row.stage = None
            row.last_error = None
            row.completed_at = utcnow()

    def _reschedule(
        self, job: _Job, error: str, *, delay: float | None, unknown: bool
    ) -> None:
        with self.steward.session() as session:
            row = self._locked_row(session, job)
            if row is None:
                return
            row.last_error = error
            if unknown:
                row.stage = STAGE_UNKNOWN
            elif row.stage == STAGE_POSTING:
                row.stage = None
            if delay is None and job.attempts >= self.retry.max_attempts:
                self._mark_undelivered(session, row, job, f"gave up: {error}")
                return
            wait = (
                timedelta(seconds=delay)
                if delay is not None
                else self.retry.delay(job.attempts, self.rng)
            )
            row.status = S.PENDING
            row.next_attempt_at = utcnow() + wait
            logger.warning(
                "notification %s (%s) not sent: %s; next attempt in %.0f s",
                job.remediation_id,
                job.template,
                error,
                wait.total_seconds(),
            )

    def _cancel(self, job: _Job, reason: str) -> None:
        with self.steward.session() as session:
            row = self._locked_row(session, job)
            if row is None:
                return
            row.status = S.CANCELLED
            row.stage = None
            row.outcome = f"not sent: {reason}"
            row.completed_at = utcnow()
        logger.info(
            "notification %s (%s) not sent: %s",
            job.remediation_id,
            job.template,
            reason,
        )

    def _give_up(self, job: _Job, error: str) -> None:
        with self.steward.session() as session:
            row = self._locked_row(session, job)
            if row is None:
                return
            self._mark_undelivered(session, row, job, error)

    def _mark_undelivered(
        self, session: Session, row: Remediation, job: _Job, error: str
    ) -> None:
        row.status = S.NEEDS_HUMAN
        row.stage = None
        row.last_error = error
        logger.error(
            "notification %s (%s to %s) is undeliverable: %s",
            job.remediation_id,
            job.template,
            job.recipient or "security",
            error,
        )
        record(
            session,
            actor=self.actor,
            action="notification.undelivered",
            object_type="remediation",
            object_id=str(row.id),
            before_state=S.IN_PROGRESS.value,
            after_state=S.NEEDS_HUMAN.value,
            reason=error,
            details={"template": job.template, "recipient": job.recipient},
        )
        if job.template == Template.DELIVERY_FAILED.value or job.recipient is None:
            # Reporting a failure to reach security to security would loop.
            return
        queue_notification(
            session,
            actor=self.actor,
            dedupe_key=f"notify:{row.id}:undelivered",
            recipient=None,
            template=Template.DELIVERY_FAILED.value,
            context={
                "remediation_id": row.id,
                "error": error,
                "template": job.template,
                "recipient": job.recipient,
            },
            identity_id=row.identity_id,
        )


def _classify(error: SlackApiError, method: str) -> Exception:
    """Turn a Web API error into what the worker does next."""
    response = error.response
    status = getattr(response, "status_code", 200)
    code = str(response.get("error") or f"HTTP {status}")
    if status == 429:
        header = (response.headers or {}).get("Retry-After") or (
            response.headers or {}
        ).get("retry-after")
        return RateLimited(float(header) if header else 30.0)
    if code in PERMANENT_ERRORS:
        return Undeliverable(f"{method} failed: {code}")
    if status >= 500 or code in {"internal_error", "fatal_error", "request_timeout"}:
        return OutcomeUnknown(f"{method} failed: {code}")
    return error
