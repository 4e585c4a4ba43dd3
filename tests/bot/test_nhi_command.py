"""The /nhi command through signed HTTP requests to the running server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from bot.blocks import check_blocks
from bot.inventory_blocks import text_of
from bot.local_api import SlackApi
from bot.nhi.parsing import MAX_TEXT_LENGTH
from governance.app import Steward
from governance.audit.models import AuditEvent
from governance.audit.service import Actor
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.models import Campaign, CampaignStatus, Review
from governance.campaign.service import start_campaign
from governance.claim.service import claim_identity
from governance.cli.main import cli
from governance.clock import utcnow
from governance.identity.models import Identity, RiskTier
from governance.lifecycle import IdentityState
from governance.person.models import Person
from governance.remediation.models import Remediation
from governance.remediation.service import queue_revocation
from governance.textsafety import first_control_character
from tests.bot.conftest import ADMIN_ID, OWNER_ID, STRANGER_ID, RunningServer
from tests.bot.helpers import (
    buttons,
    check_everything_sent,
    click,
    row_counts,
    run_command,
    run_slow_command,
    texts,
    wait_until,
)
from tests.factories import make_identity, make_person

ADMIN = Actor.person("security@example.com")
OWNER = Actor.person("owner@example.com")


def _people(session: Session) -> dict[str, Person]:
    return {
        "owner": make_person(session, "owner@example.com", display_name="Olive"),
        "admin": make_person(session, "security@example.com"),
        "bob": make_person(session, "bob@example.com"),
    }


@pytest.fixture
def people(steward: Steward) -> dict[str, int]:
    with steward.session() as session:
        return {name: person.id for name, person in _people(session).items()}


def _identity_id(steward: Steward, **fields: Any) -> int:
    with steward.session() as session:
        owner_email = fields.pop("owner_email", None)
        owner = (
            session.scalars(sa.select(Person).where(Person.email == owner_email)).one()
            if owner_email
            else None
        )
        return make_identity(session, owner=owner, **fields).id


def test_help_lists_every_subcommand(
    server: RunningServer, slack_api: SlackApi
) -> None:
    for text in ("help", "", "  HELP  "):
        answer = run_command(server, slack_api, text, OWNER_ID)
        shown = texts(answer["blocks"])
        for usage in (
            "/nhi help",
            "/nhi status",
            "/nhi whois",
            "/nhi mine",
            "/nhi orphans",
            "/nhi campaign start [--tier privileged|standard]",
            "/nhi campaign status ID",
            "/nhi campaign close ID",
            "/nhi report",
        ):
            assert usage in shown
        assert answer["response_type"] == "ephemeral"


MALFORMED = [
    ("frobnicate", "Unknown subcommand `frobnicate`"),
    ("status", "`status` needs something to look up"),
    ("whois   ", "`whois` needs something to look up"),
    ("mine everything", "`mine` takes no arguments"),
    ("report now", "`report` takes no arguments"),
    ("campaign", "`campaign` needs"),
    ("campaign restart", "Unknown campaign action `restart`"),
    ("campaign start --tier gold", "Invalid tier `gold`"),
    ("campaign start --tier", "Option `--tier` needs a value"),
    ("campaign start --due -1", "Invalid --due `-1`"),
    ("campaign start --due 3651", "Invalid --due `3651`"),
    ("campaign start --due \uff15", "Invalid --due"),
    ("campaign start --name x", "Unknown option `--name`"),
    ("campaign start now", "Unexpected argument `now`"),
    ("campaign start --due 1 --due=2", "Option `--due` is given twice"),
    ("campaign start --source Bad/Name", "invalid source name"),
    ("campaign status", "takes exactly one campaign id"),
    ("campaign close 1 2", "takes exactly one campaign id"),
    ("campaign close abc", "Invalid campaign id `abc`"),
    ("campaign close 0", "Invalid campaign id `0`"),
    ("campaign status 99999999999999999999999", "Invalid campaign id `9999"),
    ("status " + "x" * MAX_TEXT_LENGTH, "at most 1,000 are accepted"),
    ("<!channel> <@U1>", "Unknown subcommand `&lt;!channel&gt;`"),
]


def test_malformed_input_changes_nothing(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    _identity_id(steward, state=IdentityState.ORPHANED, review_due_at=utcnow())
    with steward.session() as session:
        start_campaign(session, actor=ADMIN, settings=steward.settings)
    before = row_counts(steward)
    for text, problem in MALFORMED:
        # The admin could change things with well-formed input.
        answer = run_command(server, slack_api, text, ADMIN_ID)
        shown = texts(answer["blocks"])
        assert problem in shown, text
        assert "/nhi campaign close ID" in shown, text
        check_blocks(answer["blocks"])
    assert row_counts(steward) == before
    assert slack_api.responses == []
    with steward.session() as session:
        assert session.scalars(sa.select(Campaign.status)).all() == [
            CampaignStatus.OPEN
        ]


def test_admin_subcommands_refused_to_others(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    _identity_id(
        steward, owner_email="bob@example.com", review_due_at=utcnow() - timedelta(1)
    )
    with steward.session() as session:
        campaign = start_campaign(session, actor=ADMIN, settings=steward.settings)
    _identity_id(
        steward, owner_email="bob@example.com", review_due_at=utcnow() - timedelta(1)
    )
    before = row_counts(steward)
    for text, action in (
        ("orphans", "list the orphans"),
        ("campaign start", "start campaigns"),
        ("campaign start --tier privileged --due 30", "start campaigns"),
        (f"campaign status {campaign.id}", "follow campaigns"),
        (f"campaign close {campaign.id}", "close campaigns"),
        ("report", "see the governance report"),
    ):
        answer = run_command(server, slack_api, text, OWNER_ID)
        assert texts(answer["blocks"]).startswith(f"Only security admins may {action}")
    assert row_counts(steward) == before
    assert slack_api.responses == []
    with steward.session() as session:
        assert session.get_one(Campaign, campaign.id).status is CampaignStatus.OPEN


def test_unknown_user_told_to_be_imported(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    before = row_counts(steward)
    for text in ("mine", "status 1", "campaign start", "whois abc"):
        answer = run_command(server, slack_api, text, STRANGER_ID)
        assert "stranger@example.com" in answer["text"]
        assert "not in Steward's people directory" in answer["text"]
    assert row_counts(steward) == before
    assert slack_api.responses == []


def test_user_missing_from_slack_told(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    before = row_counts(steward)
    # The stand-in returns user_not_found from users.info for this id.
    answer = run_command(server, slack_api, "mine", "U0MISSING")
    assert "not in Steward's people directory" in answer["text"]
    assert "Something went wrong" not in answer["text"]
    assert row_counts(steward) == before


@pytest.fixture
def described(steward: Steward, people: dict[str, int]) -> int:
    """An identity with every fact that status shows, owned by the owner."""
    with steward.session() as session:
        owner = session.get_one(Person, people["owner"])
        bob = session.get_one(Person, people["bob"])
        crm = BusinessEntity(type=EntityType.APPLICATION, key="crm", name="CRM <main>")
        session.add(crm)
        identity = make_identity(
            session,
            owner=owner,
            name="payments-deployer",
            source="vault-main",
            external_id="acc-payments",
            kind="approle_secret_id",
            tier=RiskTier.PRIVILEGED,
            tier_reason="policy root grants sudo",
            description="Deploys *payments* & <friends>",
            created_at=datetime(2030, 1, 15, 23, 30, tzinfo=UTC),
            never_used=True,
            certified_until=datetime(2030, 6, 30, 22, 15, tzinfo=UTC),
            review_due_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        identity.entities.append(crm)
        identity.backup_owners.append(bob)
        session.flush()
        start_campaign(session, actor=ADMIN, settings=steward.settings)
        return identity.id


def test_status_shows_everything_to_owner(
    server: RunningServer, slack_api: SlackApi, steward: Steward, described: int
) -> None:
    answer = run_command(server, slack_api, f"status {described}", OWNER_ID)
    shown = texts(answer["blocks"])
    assert answer["blocks"][0]["text"]["text"] == "payments-deployer"
    assert f"Identity {described}: vault-main:acc-payments" in shown
    assert "*Kind*\napprole_secret_id" in shown
    assert "*State*\nunder review" in shown
    assert "*Tier*\nprivileged: policy root grants sudo" in shown
    assert "*Owner*\nowner@example.com" in shown
    assert "*Backup owners*\nbob@example.com" in shown
    assert "*Linked to*\napplication crm (CRM &lt;main&gt;)" in shown
    # Times in the owner's zone, Europe/Paris: UTC+1 in winter, UTC+2 in summer.
    assert "*Created*\n2030-01-16 00:30 CET" in shown
    assert "*Certified until*\n2030-07-01 00:15 CEST" in shown
    assert "*Last used*\nnever used" in shown
    assert "Deploys *payments* &amp; &lt;friends&gt;" in shown
    with steward.session() as session:
        review = session.scalars(sa.select(Review)).one()
    assert f"Review {review.id} in campaign {review.campaign_id}" in shown
    assert "by owner@example.com" in shown
    assert "Times are in Europe/Paris." in shown


def test_status_lists_open_claim_and_remediation(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    orphan_id = _identity_id(
        steward, state=IdentityState.ORPHANED, tier=RiskTier.PRIVILEGED, name="old"
    )
    revoked_id = _identity_id(steward, owner_email="owner@example.com", name="gone")
    with steward.session() as session:
        claim = claim_identity(
            session, session.get_one(Identity, orphan_id), actor=OWNER
        )
        remediation = queue_revocation(
            session,
            session.get_one(Identity, revoked_id),
            actor=ADMIN,
            action="revocation.requested",
            reason="test",
            dedupe_key="test-revoke",
        )
    answer = run_command(server, slack_api, f"status {orphan_id}", ADMIN_ID)
    shown = texts(answer["blocks"])
    assert f"Claim {claim.id} by owner@example.com" in shown
    assert "*Owner*\nnone: an orphan" in shown
    answer = run_command(server, slack_api, f"status {revoked_id}", OWNER_ID)
    shown = texts(answer["blocks"])
    assert f"Remediation {remediation.id}: revoke, pending" in shown
    assert "*State*\nrevocation pending" in shown


def test_status_finds_by_reference_and_name(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    first = _identity_id(
        steward, owner_email="owner@example.com", name="shared", external_id="k:1"
    )
    second = _identity_id(steward, owner_email="owner@example.com", name="shared")
    unique = _identity_id(steward, owner_email="owner@example.com", name="Unique Name")
    numeric = _identity_id(steward, owner_email="owner@example.com", name="12345678")

    answer = run_command(server, slack_api, "status vault-main:k:1", OWNER_ID)
    assert f"Identity {first}:" in texts(answer["blocks"])
    answer = run_command(server, slack_api, "status unique name", OWNER_ID)
    assert f"Identity {unique}:" in texts(answer["blocks"])
    # Digits name an id first and a name when no identity has that id.
    answer = run_command(server, slack_api, "status 12345678", OWNER_ID)
    assert f"Identity {numeric}:" in texts(answer["blocks"])

    answer = run_command(server, slack_api, "status shared", OWNER_ID)
    shown = texts(answer["blocks"])
    assert "2 identities are named “shared”" in shown
    assert f"(id {first})" in shown
    assert f"(id {second})" in shown
    assert "/nhi status ID" in shown

    for reference in ("nothing-like-it", "99999999999999999999999", "²"):
        answer = run_command(server, slack_api, f"status {reference}", OWNER_ID)
        assert "No identity has the id, SOURCE:EXTERNAL_ID or name" in answer["text"]


def test_status_of_others_identity_refused(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    bobs = _identity_id(steward, owner_email="bob@example.com", name="bobs-key")
    answer = run_command(server, slack_api, f"status {bobs}", OWNER_ID)
    assert answer["text"].startswith(f"Identity {bobs} is not yours")
    assert "bob@example.com" not in answer["text"]
    answer = run_command(server, slack_api, f"status {bobs}", ADMIN_ID)
    assert "*Owner*\nbob@example.com" in texts(answer["blocks"])


def test_whois_exact_before_prefix(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    arn = "arn:aws:iam::111111111111:user/deployer"
    key = _identity_id(
        steward,
        owner_email="bob@example.com",
        source="aws-main",
        kind="access_key",
        external_id="AKIAEXAMPLE1",
        name="deployer/AKIAEXAMPLE1",
        attributes={"user_arn": arn},
    )
    second_key = _identity_id(
        steward,
        source="aws-main",
        kind="access_key",
        external_id="AKIAEXAMPLE2",
        name="deployer/AKIAEXAMPLE2",
        attributes={"user_arn": arn},
        state=IdentityState.ORPHANED,
    )
    _identity_id(steward, name="unrelated", external_id="zzz")

    answer = run_slow_command(server, slack_api, "whois AKIAEXAMPLE1", OWNER_ID)
    shown = texts(answer["blocks"])
    assert "identities matching exactly" in shown
    assert f"(id {key})" in shown
    assert "owner: bob@example.com" in shown
    assert "aws-main:AKIAEXAMPLE1" in shown
    assert f"(id {second_key})" not in shown
    assert answer["response_type"] == "ephemeral"

    answer = run_slow_command(server, slack_api, f"whois {arn}", OWNER_ID)
    shown = texts(answer["blocks"])
    assert f"(id {key})" in shown
    assert f"(id {second_key})" in shown
    assert "owner: no owner (orphan)" in shown

    answer = run_slow_command(server, slack_api, "whois akiaexample", OWNER_ID)
    shown = texts(answer["blocks"])
    assert "identities starting with it" in shown
    assert "Showing 1 to 2 of 2 identities." in shown
    assert "unrelated" not in shown

    answer = run_slow_command(server, slack_api, "whois AK", OWNER_ID)
    assert "A prefix search needs at least 3 characters." in answer["text"]


def test_mine_lists_identities_reviews_and_claims(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    owned = _identity_id(
        steward,
        owner_email="owner@example.com",
        name="owned",
        review_due_at=utcnow() - timedelta(days=1),
    )
    backed = _identity_id(steward, owner_email="bob@example.com", name="backed")
    bobs = _identity_id(steward, owner_email="bob@example.com", name="bobs-only")
    revoked = _identity_id(
        steward,
        owner_email="owner@example.com",
        name="revoked",
        state=IdentityState.REVOKED,
    )
    orphan = _identity_id(
        steward, state=IdentityState.ORPHANED, tier=RiskTier.PRIVILEGED, name="lost"
    )
    with steward.session() as session:
        identity = session.get_one(Identity, backed)
        identity.backup_owners.append(session.get_one(Person, people["owner"]))
        campaign = start_campaign(session, actor=ADMIN, settings=steward.settings)
        campaign.due_at = datetime(2030, 3, 1, 12, tzinfo=UTC)
        session.execute(
            sa.update(Review).values(due_at=datetime(2030, 3, 1, 12, tzinfo=UTC))
        )
        claim = claim_identity(session, session.get_one(Identity, orphan), actor=OWNER)

    answer = run_slow_command(server, slack_api, "mine", OWNER_ID)
    shown = texts(answer["blocks"])
    assert "Showing 1 to 2 of 2 live identities you own or back up." in shown
    assert f"(id {owned})" in shown
    assert f"(id {backed})" in shown
    assert f"(id {bobs})" not in shown
    assert f"(id {revoked})" not in shown
    assert "*Reviews waiting for you: 1*" in shown
    assert f"campaign {campaign.id} · due 2030-03-01 13:00 CET" in shown
    assert "*Your claims waiting for approval: 1*" in shown
    assert f"claim {claim.id} requested" in shown
    assert "Times are in Europe/Paris." in shown
    assert "nhi_page_next" not in buttons(answer["blocks"])


def test_orphans_show_deadline_in_viewer_zone(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    slack_api.add_user(ADMIN_ID, "security@example.com", tz="America/New_York")
    late = _identity_id(
        steward,
        state=IdentityState.ORPHANED,
        name="late",
        claim_deadline=datetime(2030, 2, 1, 3, 0, tzinfo=UTC),
    )
    soon = _identity_id(
        steward,
        state=IdentityState.ORPHANED,
        name="soon",
        claim_deadline=datetime(2030, 1, 1, 3, 0, tzinfo=UTC),
    )
    _identity_id(steward, owner_email="owner@example.com", name="owned")

    answer = run_slow_command(server, slack_api, "orphans", ADMIN_ID)
    shown = texts(answer["blocks"])
    assert "Showing 1 to 2 of 2 orphaned identities." in shown
    assert "claim deadline: 2029-12-31 22:00 EST" in shown
    assert "claim deadline: 2030-01-31 22:00 EST" in shown
    assert shown.index(f"(id {soon})") < shown.index(f"(id {late})")
    assert "owned" not in shown


def _walk_pages(
    server: RunningServer, slack_api: SlackApi, first: dict[str, Any], user_id: str
) -> list[dict[str, Any]]:
    """Follow Next page from `first` to the last page; return every page."""
    pages = [first]
    while "nhi_page_next" in buttons(pages[-1]["blocks"]):
        sent = len(slack_api.responses)
        click(server, slack_api, user_id, buttons(pages[-1]["blocks"])["nhi_page_next"])
        wait_until(lambda: len(slack_api.responses) > sent, "the next page")  # noqa: B023
        pages.append(slack_api.responses[sent])
    return pages


def _ids_on(page: dict[str, Any], ids: set[int]) -> list[int]:
    shown = texts(page["blocks"])
    return [identity_id for identity_id in ids if f"(id {identity_id})" in shown]


def test_paging_through_300_long_identities(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    with steward.session() as session:
        owner = session.get_one(Person, people["owner"])
        ids = {
            make_identity(
                session,
                owner=owner,
                name=f"{number:03d}-" + "n<&>" * 127,
                external_id=f"AKIALONG{number:03d}-" + "x" * 490,
                description="d" * 20_000,
                tier_reason="r" * 5000,
            ).id
            for number in range(300)
        }
    acks = []
    first = run_slow_command(server, slack_api, "mine", OWNER_ID)
    pages = _walk_pages(server, slack_api, first, OWNER_ID)
    assert len(pages) == 15
    seen = [identity_id for page in pages for identity_id in _ids_on(page, ids)]
    assert sorted(seen) == sorted(ids)
    for page in pages[1:]:
        assert page["replace_original"] is True
        assert "nhi_page_previous" in buttons(page["blocks"])
    assert "Showing 281 to 300 of 300" in texts(pages[-1]["blocks"])

    # Previous page goes back by one page.
    sent = len(slack_api.responses)
    previous = buttons(pages[-1]["blocks"])["nhi_page_previous"]
    assert json.loads(previous["value"]) == {"text": "mine", "offset": 260}
    click(server, slack_api, OWNER_ID, previous)
    wait_until(lambda: len(slack_api.responses) > sent, "the previous page")
    assert "Showing 261 to 280 of 300" in texts(slack_api.responses[sent]["blocks"])

    whois = run_slow_command(server, slack_api, "whois akialong", OWNER_ID)
    assert len(_walk_pages(server, slack_api, whois, OWNER_ID)) == 15
    acks.append(run_command(server, slack_api, f"status {min(ids)}", OWNER_ID))
    assert "…" in texts(acks[-1]["blocks"])
    check_everything_sent(slack_api, acks)


def test_paging_button_checks_permission_again(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    for _ in range(25):
        _identity_id(steward, state=IdentityState.ORPHANED)
    answer = run_slow_command(server, slack_api, "orphans", ADMIN_ID)
    next_page = buttons(answer["blocks"])["nhi_page_next"]

    sent = len(slack_api.responses)
    click(server, slack_api, OWNER_ID, next_page)
    wait_until(lambda: len(slack_api.responses) > sent, "the refusal")
    refused = slack_api.responses[sent]
    assert refused["text"].startswith("Only security admins may list the orphans")

    for value in ("not json", '{"text": "report", "offset": 0}', '{"text": 1}'):
        sent = len(slack_api.responses)
        click(server, slack_api, ADMIN_ID, {**next_page, "value": value})
        wait_until(lambda: len(slack_api.responses) > sent, "the error")  # noqa: B023
        assert slack_api.responses[sent]["text"] == (
            "This button is not one Steward made."
        )


def _arrange_due(steward: Steward, source: str) -> None:
    past = utcnow() - timedelta(days=1)
    _identity_id(
        steward, owner_email="owner@example.com", source=source, review_due_at=past
    )
    _identity_id(
        steward,
        owner_email="bob@example.com",
        source=source,
        review_due_at=utcnow() + timedelta(days=10),
    )
    _identity_id(
        steward,
        state=IdentityState.ORPHANED,
        source=source,
        review_due_at=past,
    )
    _identity_id(
        steward,
        owner_email="owner@example.com",
        source=source,
        tier=RiskTier.PRIVILEGED,
        review_due_at=past,
    )


def _campaign_rows(steward: Steward, campaign_id: int) -> dict[str, Any]:
    """Return what a campaign wrote, without ids, names and times."""
    with steward.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        reviews = session.scalars(
            sa.select(Review).where(Review.campaign_id == campaign_id)
        ).all()
        identity_ids = {str(review.identity_id) for review in reviews}
        events = session.scalars(
            sa.select(AuditEvent).where(
                sa.or_(
                    AuditEvent.object_id.in_(identity_ids),
                    sa.and_(
                        AuditEvent.object_type == "campaign",
                        AuditEvent.object_id == str(campaign_id),
                    ),
                ),
                AuditEvent.action.in_(["campaign.opened", "review.opened"]),
            )
        ).all()
        notifications = session.scalars(
            sa.select(Remediation).where(
                Remediation.dedupe_key.like(f"campaign:{campaign_id}:%")
            )
        ).all()
        return {
            "campaign": (
                campaign.status,
                campaign.tier,
                campaign.opened_by,
                campaign.due_at - campaign.opened_at,
            ),
            "reviews": sorted(
                (
                    review.status.value,
                    review.reviewer_id or 0,
                    session.get_one(Identity, review.identity_id).state.value,
                    review.identity.tier.value,
                )
                for review in reviews
            ),
            "events": sorted((event.action, event.actor) for event in events),
            "notifications": sorted(
                (row.kind.value, row.status.value, row.payload["template"])
                for row in notifications
            ),
        }


def test_campaign_start_matches_cli(
    server: RunningServer,
    slack_api: SlackApi,
    steward: Steward,
    database_url: str,
    people: dict[str, int],
) -> None:
    _arrange_due(steward, "slack-source")
    _arrange_due(steward, "cli-source")

    answer = run_slow_command(
        server,
        slack_api,
        "campaign start --tier standard --source slack-source --due 0",
        ADMIN_ID,
    )
    with steward.session() as session:
        slack_campaign = session.scalars(
            sa.select(Campaign).where(Campaign.source == "slack-source")
        ).one()
    assert answer["text"].startswith(
        f"Campaign {slack_campaign.id} ({slack_campaign.name}) opened: 2 reviews, "
        "1 orphans sent to the claim flow"
    )
    result = CliRunner().invoke(
        cli,
        [
            "campaign",
            "start",
            "--tier",
            "standard",
            "--source",
            "cli-source",
            "--due",
            "0",
            "--actor",
            "security@example.com",
        ],
        env={
            "STEWARD_DATABASE_URL": database_url,
            "STEWARD_SECURITY__ADMINS": "security@example.com",
        },
    )
    assert result.exit_code == 0, result.output
    with steward.session() as session:
        cli_campaign = session.scalars(
            sa.select(Campaign).where(Campaign.source == "cli-source")
        ).one()
    slack_rows = _campaign_rows(steward, slack_campaign.id)
    assert slack_rows == _campaign_rows(steward, cli_campaign.id)
    assert len(slack_rows["reviews"]) == 2
    assert slack_rows["campaign"][2] == "security@example.com"


def test_campaign_status_and_close(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    _arrange_due(steward, "vault-main")
    answer = run_slow_command(server, slack_api, "campaign start", ADMIN_ID)
    with steward.session() as session:
        campaign_id = session.scalars(sa.select(Campaign.id)).one()
    assert answer["text"].startswith(f"Campaign {campaign_id} ")

    status = run_command(server, slack_api, f"campaign status {campaign_id}", ADMIN_ID)
    shown = texts(status["blocks"])
    assert "*Status*\nopen" in shown
    assert "*Decided*\n0 of 3" in shown
    assert "*Pending*\n3 (0 overdue)" in shown
    assert "*Orphans*\n1" in shown

    closed = run_slow_command(
        server, slack_api, f"campaign close {campaign_id}", ADMIN_ID
    )
    assert closed["text"] == (
        f"Campaign {campaign_id} closed: 3 unanswered reviews expired and were "
        "escalated."
    )
    with steward.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert campaign.status is CampaignStatus.CLOSED
        assert campaign.closed_by == "security@example.com"
    before = row_counts(steward)
    again = run_slow_command(
        server, slack_api, f"campaign close {campaign_id}", ADMIN_ID
    )
    assert again["text"] == (
        f"campaign {campaign_id} was already closed by security@example.com"
    )
    missing = run_command(server, slack_api, "campaign status 999", ADMIN_ID)
    assert missing == {}
    wait_until(lambda: len(slack_api.responses) == 4, "the not-found answer")
    assert slack_api.responses[-1]["text"] == "campaign not found: '999'"
    assert row_counts(steward) == before


def test_report_summary_for_admins(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    _identity_id(steward, owner_email="owner@example.com")
    _identity_id(steward, owner_email="owner@example.com", managed=True)
    _identity_id(steward, state=IdentityState.ORPHANED)
    _identity_id(steward, state=IdentityState.GONE)

    answer = run_slow_command(server, slack_api, "report", ADMIN_ID)
    shown = texts(answer["blocks"])
    assert "*Maturity stage 1 of 4* (discovery)" in shown
    assert "*Inventory*\n4 identities, 3 live" in shown
    assert "*Managed by no secrets manager*\n2 of 3 (66.6%)" in shown
    assert "*With an active owner*\n2 of 3 (66.6%)" in shown
    assert "*Orphans*\n1" in shown
    check_blocks(answer["blocks"])


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_control_characters_not_echoed(
    server: RunningServer, slack_api: SlackApi, steward: Steward, people: dict[str, int]
) -> None:
    typed = "\x00\x07\x1b[31m"
    commands = (f"status {typed}", f"whois {typed}", f"{typed}x", f"campaign {typed}")
    answers = [run_command(server, slack_api, text, OWNER_ID) for text in commands]
    for answer in answers:
        shown = _strings(answer)
        for value in shown:
            assert first_control_character(value, allow_whitespace=True) is None
        assert "control character U+0000" in "".join(shown)
    assert slack_api.responses == []


def test_reply_text_escapes_control_characters() -> None:
    assert text_of("a\x1b[31m") == "a\\x1b[31m"
