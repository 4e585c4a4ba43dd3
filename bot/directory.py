"""The directory: Slack users matched to Steward's people, and the admins among them.

A person imported by email is looked up in Slack once (`users.lookupByEmail`)
and the user id is stored on the person. Before a direct message is sent the
user is read again (`users.info`), because Slack accepts messages to a
deactivated user without an error.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.audit.service import Actor
from governance.clock import utcnow
from governance.person.models import Person

logger = logging.getLogger(__name__)

ACTIVE = "active"
RESTRICTED = "restricted"
DEACTIVATED = "deactivated"
MISSING = "missing"


class UnknownUserError(Exception):
    """A Slack user who is not one of Steward's people."""

    def __init__(self, user_id: str, email: str | None) -> None:
        known_as = f" ({email})" if email else ""
        super().__init__(
            f"Your Slack account{known_as} is not in Steward's people directory. "
            "Ask the security team to import you."
        )
        self.user_id = user_id
        self.email = email


@dataclass(frozen=True)
class SlackUser:
    """The fields Steward reads from a Slack user."""

    user_id: str
    email: str | None
    status: str
    tz: str | None


def user_status(user: dict[str, Any]) -> str:
    """Return `active`, `restricted` (a guest) or `deactivated` for a Slack user."""
    if user.get("deleted"):
        return DEACTIVATED
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return RESTRICTED
    return ACTIVE


def _slack_user(user: dict[str, Any]) -> SlackUser:
    profile = user.get("profile") or {}
    email = profile.get("email")
    return SlackUser(
        user_id=str(user["id"]),
        email=str(email).strip().lower() if email else None,
        status=user_status(user),
        tz=user.get("tz"),
    )


class Directory:
    """Resolves Slack users and people in both directions, with a short cache."""

    def __init__(self, steward: Steward, client: WebClient) -> None:
        self.steward = steward
        self.client = client
        self.settings = steward.settings.slack
        self._ttl = self.settings.directory_cache_minutes * 60
        self._lock = threading.Lock()
        self._group_members: tuple[float, frozenset[str]] | None = None

    # Slack user -> person

    def user_info(self, user_id: str) -> SlackUser:
        """Read a Slack user (`users.info`); raise SlackApiError on failure."""
        response = self.client.users_info(user=user_id)
        return _slack_user(response["user"])

    def known_user_info(self, user_id: str) -> SlackUser:
        """Read a Slack user as `user_info` does.

        Raises UnknownUserError when Slack has no such user, and
        SlackApiError for any other failure.
        """
        try:
            return self.user_info(user_id)
        except SlackApiError as error:
            if error.response.get("error") == "user_not_found":
                raise UnknownUserError(user_id, None) from None
            raise

    def person_for(self, session: Session, user_id: str) -> Person:
        """Return the person behind a Slack user, linking them on first sight.

        Raises UnknownUserError when Slack has no such user, or the user has
        no email, or the email matches no person.
        """
        person = session.scalars(
            sa.select(Person).where(Person.slack_user_id == user_id)
        ).one_or_none()
        if person is not None:
            return person
        user = self.known_user_info(user_id)
        if user.email is None:
            raise UnknownUserError(user_id, None)
        person = session.scalars(
            sa.select(Person).where(Person.email == user.email)
        ).one_or_none()
        if person is None:
            raise UnknownUserError(user_id, user.email)
        self._remember(person, user)
        return person

    def actor_for(self, session: Session, user_id: str) -> Actor:
        """Return the actor for a Slack user, marked admin by Slack user id or group."""
        person = self.person_for(session, user_id)
        return Actor.person(person.email, security_admin=self.is_admin(user_id))

    def is_admin(self, user_id: str) -> bool:
        """Return whether a Slack user is a security admin by user id or group.

        Admins named by email in `security.admins` are recognised by the core
        once the user is matched to a person.
        """
        if user_id in self.settings.admin_user_ids:
            return True
        group = self.settings.admin_usergroup_id
        if group is None:
            return False
        return user_id in self._admin_group_members(group)

    def _admin_group_members(self, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._group_members
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group)
            members = frozenset(str(user) for user in response.get("users") or [])
        except SlackApiError as error:
            logger.error(
                "reading the admin user group %s failed: %s",
                group,
                error.response.get("error"),
            )
            # Without the group, no user is an admin by group membership.
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._group_members = (time.monotonic(), members)
        return members

    # Person -> Slack user

    def slack_user_for(self, session: Session, person: Person) -> SlackUser | None:
        """Return the person's Slack user, read fresh; None when Slack has none.

        The user id is looked up by email once and stored. The user itself is
        read on every call, so a deactivation is never missed. The person's
        chat status and check time are updated either way.
        """
        user: SlackUser | None = None
        if person.slack_user_id:
            try:
                user = self.user_info(person.slack_user_id)
            except SlackApiError as error:
                if error.response.get("error") != "user_not_found":
                    raise
        if user is None:
            try:
                response = self.client.users_lookupByEmail(email=person.email)
                user = _slack_user(response["user"])
            except SlackApiError as error:
                if error.response.get("error") != "users_not_found":
                    raise
        if user is None:
            person.chat_status = MISSING
            person.chat_checked_at = utcnow()
            return None
        self._remember(person, user)
        return user

    def _remember(self, person: Person, user: SlackUser) -> None:
        if person.slack_user_id != user.user_id:
            logger.info("linked %s to Slack user %s", person.email, user.user_id)
            person.slack_user_id = user.user_id
        person.chat_status = user.status
        person.chat_checked_at = utcnow()
        if user.tz and person.time_zone != user.tz:
            person.time_zone = user.tz

    def is_fresh(self, person: Person) -> bool:
        """Return whether the stored chat status is recent enough to reuse."""
        checked = person.chat_checked_at
        return checked is not None and utcnow() - checked < timedelta(seconds=self._ttl)
