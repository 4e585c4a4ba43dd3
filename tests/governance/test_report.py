"""The governance report: counts, shares, disagreements and the maturity stage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from click.testing import CliRunner, Result
from pydantic import ValidationError
from sqlalchemy.orm import Session

from governance.app import Steward
from governance.business_entity.models import BusinessEntity, EntityType
from governance.campaign.models import Campaign, Review, ReviewStatus
from governance.cli.main import cli
from governance.identity.models import Identity, OwnerOrigin, RiskTier
from governance.lifecycle import IdentityState
from governance.report.maturity import (
    CoverageCounts,
    assess_maturity,
    format_share,
    format_threshold,
    required_count,
)
from governance.report.service import GovernanceReport, GroupCount, build_report
from governance.settings import MaturitySettings, Settings, load_settings
from tests.factories import make_identity, make_person

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def maturity_settings(settings: Settings, **thresholds: float) -> Settings:
    return settings.model_copy(update={"maturity": MaturitySettings(**thresholds)})


def make_review(
    session: Session,
    campaign: Campaign,
    identity: Identity,
    *,
    status: ReviewStatus,
    due_at: datetime,
) -> None:
    pending = status is ReviewStatus.PENDING
    session.add(
        Review(
            campaign=campaign,
            identity=identity,
            open_identity_id=identity.id if pending else None,
            status=status,
            due_at=due_at,
        )
    )
    session.flush()


@pytest.fixture
def inventory(session: Session) -> dict[str, int]:
    """Ten identities, eight of them live, with every count worked out below.

    Live: v1 v2 v3 v4 (vault-main) and a1 a2 a3 a4 (aws-prod). Not live: g1
    (gone) and r1 (revoked). Active owner: v1 v2 v3 a2 a3. Certified: v1 a1 a3.
    Overdue: v2 (expired), v3, a2 and a4 (never certified, first cycle ended).
    Linked to an entity: v1 v2 a1 a3. Unmanaged: v4 a1 a2 a3 (and r1).
    Owner disagreements: v2 and a1.
    """
    alice = make_person(session, "alice@example.com")
    bob = make_person(session, "bob@example.com")
    carol = make_person(session, "carol@example.com", active=False)
    payments = BusinessEntity(type=EntityType.APPLICATION, key="payments")
    billing = BusinessEntity(type=EntityType.PROJECT, key="billing")
    session.add_all([payments, billing])

    vault = {"source": "vault-main", "kind": "approle_secret_id"}
    aws = {"source": "aws-prod", "kind": "access_key"}
    v1 = make_identity(
        session,
        name="v1",
        owner=alice,
        owner_origin=OwnerOrigin.SOURCE,
        managed=True,
        first_seen_at=NOW - 500 * DAY,
        certified_until=NOW + 30 * DAY,
        **vault,
    )
    v1.entities.append(payments)
    v2 = make_identity(
        session,
        name="v2",
        owner=alice,
        owner_origin=OwnerOrigin.ASSIGNED,
        source_owner_email="bob@example.com",
        managed=True,
        first_seen_at=NOW - 500 * DAY,
        certified_until=NOW - DAY,
        **vault,
    )
    v2.entities.append(payments)
    v3 = make_identity(
        session,
        name="v3",
        tier=RiskTier.PRIVILEGED,
        owner=bob,
        owner_origin=OwnerOrigin.CLAIMED,
        source_owner_email="BOB@example.com",
        managed=True,
        first_seen_at=NOW - 100 * DAY,
        **vault,
    )
    make_identity(
        session,
        name="v4",
        tier=RiskTier.PRIVILEGED,
        state=IdentityState.ORPHANED,
        first_seen_at=NOW - 10 * DAY,
        **vault,
    )
    a1 = make_identity(
        session,
        name="a1",
        owner=carol,
        owner_origin=OwnerOrigin.INHERITED,
        source_owner_email="dave@example.com",
        first_seen_at=NOW - 500 * DAY,
        certified_until=NOW + 100 * DAY,
        **aws,
    )
    a1.entities.append(billing)
    a2 = make_identity(
        session,
        name="a2",
        state=IdentityState.UNDER_REVIEW,
        owner=bob,
        owner_origin=OwnerOrigin.SOURCE,
        source_owner_email="alice@example.com",
        first_seen_at=NOW - 400 * DAY,
        **aws,
    )
    a3 = make_identity(
        session,
        name="a3",
        kind="iam_user",
        source="aws-prod",
        tier=RiskTier.PRIVILEGED,
        state=IdentityState.REVOCATION_PENDING,
        owner=alice,
        owner_origin=OwnerOrigin.ASSIGNED,
        first_seen_at=NOW - 500 * DAY,
        certified_until=NOW + 10 * DAY,
    )
    a3.entities.extend([payments, billing])
    # First seen exactly one standard cycle ago: due now, so overdue.
    make_identity(
        session,
        name="a4",
        state=IdentityState.DISCOVERED,
        managed=True,
        first_seen_at=NOW - 365 * DAY,
        **aws,
    )
    g1 = make_identity(
        session,
        name="g1",
        state=IdentityState.GONE,
        owner=alice,
        owner_origin=OwnerOrigin.ASSIGNED,
        source_owner_email="zed@example.com",
        managed=True,
        certified_until=NOW + 10 * DAY,
        **vault,
    )
    g1.entities.append(payments)
    make_identity(session, name="r1", state=IdentityState.REVOKED, **aws)

    campaign = Campaign(name="q2", opened_by="security@example.com", due_at=NOW)
    session.add(campaign)
    make_review(session, campaign, a2, status=ReviewStatus.PENDING, due_at=NOW - DAY)
    make_review(
        session, campaign, v1, status=ReviewStatus.PENDING, due_at=NOW + 5 * DAY
    )
    make_review(session, campaign, v3, status=ReviewStatus.DECIDED, due_at=NOW - DAY)
    make_review(session, campaign, g1, status=ReviewStatus.PENDING, due_at=NOW - DAY)
    session.commit()
    return {"v2": v2.id, "a1": a1.id}


def report_at(app: Steward, settings: Settings, **options: int) -> GovernanceReport:
    with app.session() as session:
        return build_report(session, settings, now=NOW, **options)


# Settings


def test_maturity_settings_defaults() -> None:
    maturity = Settings().maturity
    assert maturity.ownership_threshold == 0.95
    assert maturity.certification_threshold == 0.90
    assert maturity.lifecycle_threshold == 0.80


@pytest.mark.parametrize("value", [0.0, -0.1, 1.01])
def test_maturity_settings_reject_out_of_range(value: float) -> None:
    with pytest.raises(ValidationError):
        MaturitySettings(ownership_threshold=value)
    with pytest.raises(ValidationError):
        MaturitySettings(certification_threshold=value)
    with pytest.raises(ValidationError):
        MaturitySettings(lifecycle_threshold=value)


def test_maturity_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEWARD_MATURITY__OWNERSHIP_THRESHOLD", "1")
    monkeypatch.setenv("STEWARD_MATURITY__LIFECYCLE_THRESHOLD", "0.5")
    maturity = load_settings().maturity
    assert maturity.ownership_threshold == 1.0
    assert maturity.certification_threshold == 0.90
    assert maturity.lifecycle_threshold == 0.5


# Maturity, without a database


def test_required_count_uses_decimal_threshold() -> None:
    assert required_count(0.9, 100) == 90
    assert required_count(0.95, 1250) == 1188
    assert required_count(0.8, 5) == 4
    assert required_count(1.0, 7) == 7
    assert required_count(0.95, 0) == 0


def test_format_share_rounds_down() -> None:
    assert format_share(1140, 1250) == "91.2%"
    assert format_share(949, 1000) == "94.9%"
    assert format_share(9499, 10000) == "94.9%"
    assert format_share(1, 1) == "100.0%"
    assert format_share(0, 3) == "0.0%"
    assert format_share(0, 0) == "-"


def test_format_threshold_drops_zeros() -> None:
    assert format_threshold(0.95) == "95%"
    assert format_threshold(0.9) == "90%"
    assert format_threshold(0.925) == "92.5%"
    assert format_threshold(1.0) == "100%"


def test_maturity_missing_ownership_text() -> None:
    counts = CoverageCounts(
        live=1250, with_active_owner=1140, certified=1250, linked=1250
    )
    assessment = assess_maturity(counts, MaturitySettings())
    assert assessment.stage == 1
    assert assessment.stage_name == "discovery"
    assert assessment.next_stage == 2
    assert assessment.next_stage_name == "ownership"
    assert assessment.missing == (
        "ownership: 91.2% of 1,250 live identities have an active owner, "
        "95% needed: 48 more must get an owner"
    )


def test_maturity_threshold_boundary_counts() -> None:
    counts = CoverageCounts(live=20, with_active_owner=19, certified=18, linked=16)
    assessment = assess_maturity(counts, MaturitySettings())
    assert assessment.stage == 4
    assert assessment.next_stage is None
    assert assessment.missing is None
    assert [status.required for status in assessment.stages] == [None, 19, 18, 16]


def test_maturity_higher_stage_needs_lower() -> None:
    counts = CoverageCounts(live=10, with_active_owner=5, certified=10, linked=10)
    assessment = assess_maturity(counts, MaturitySettings())
    assert assessment.stage == 1
    assert [status.met for status in assessment.stages] == [True, False, True, True]
    assert [status.reached for status in assessment.stages] == [
        True,
        False,
        False,
        False,
    ]


def test_maturity_without_live_identities() -> None:
    counts = CoverageCounts(live=0, with_active_owner=0, certified=0, linked=0)
    assessment = assess_maturity(counts, MaturitySettings())
    assert assessment.stage == 0
    assert assessment.stage_name is None
    assert assessment.next_stage == 1
    assert assessment.missing == (
        "discovery: the inventory holds no live identities: "
        "run discovery on at least one source"
    )
    assert not any(status.met for status in assessment.stages)


# The report on both databases


def test_report_inventory_counts(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    report = report_at(app, settings)
    assert report.generated_at == NOW
    assert report.inventory.identities == 10
    assert report.inventory.live == 8

    def groups(rows: list[GroupCount]) -> list[tuple[str, int, int]]:
        return [(row.value, row.identities, row.live) for row in rows]

    assert groups(report.inventory.by_source) == [
        ("aws-prod", 5, 4),
        ("vault-main", 5, 4),
    ]
    assert groups(report.inventory.by_kind) == [
        ("access_key", 4, 3),
        ("approle_secret_id", 5, 4),
        ("iam_user", 1, 1),
    ]
    assert groups(report.inventory.by_tier) == [
        ("privileged", 3, 3),
        ("standard", 7, 5),
    ]
    assert groups(report.inventory.by_state) == [
        ("discovered", 1, 1),
        ("owned", 4, 4),
        ("orphaned", 1, 1),
        ("under_review", 1, 1),
        ("revocation_pending", 1, 1),
        ("revoked", 1, 0),
        ("gone", 1, 0),
    ]


def test_report_coverage_gap(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    gap = report_at(app, settings).coverage_gap
    assert gap.live == 8
    assert gap.unmanaged == 4
    assert gap.share == 0.5
    assert [(row.source, row.live, row.unmanaged) for row in gap.by_source] == [
        ("aws-prod", 4, 3),
        ("vault-main", 4, 1),
    ]
    assert [row.share for row in gap.by_source] == [0.75, 0.25]


def test_report_ownership_coverage(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    ownership = report_at(app, settings).ownership
    assert ownership.live == 8
    assert ownership.with_active_owner == 5
    assert ownership.orphans == 3
    assert ownership.share == 0.625
    assert ownership.disagreement_count == 2


def test_report_owner_disagreements(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    ownership = report_at(app, settings).ownership
    listed = [
        (row.id, row.source, row.name, row.owner, row.reported_owner)
        for row in ownership.disagreements
    ]
    assert listed == [
        (
            inventory["v2"],
            "vault-main",
            "v2",
            "alice@example.com",
            "bob@example.com",
        ),
        (
            inventory["a1"],
            "aws-prod",
            "a1",
            "carol@example.com",
            "dave@example.com",
        ),
    ]


def test_report_disagreement_limit(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    capped = report_at(app, settings, disagreement_limit=1).ownership
    assert capped.disagreement_count == 2
    assert [row.id for row in capped.disagreements] == [inventory["v2"]]

    hidden = report_at(app, settings, disagreement_limit=0).ownership
    assert hidden.disagreement_count == 2
    assert hidden.disagreements == []

    with pytest.raises(ValueError, match="disagreement_limit"):
        report_at(app, settings, disagreement_limit=-1)


def test_report_certification_coverage(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    certification = report_at(app, settings).certification
    assert certification.live == 8
    assert certification.certified == 3
    assert certification.overdue == 4
    assert certification.overdue_expired == 1
    assert certification.overdue_never_certified == 3
    assert certification.not_yet_due == 1
    assert certification.share == 0.375
    assert certification.pending_reviews == 2
    assert certification.pending_reviews_past_due == 1


def test_report_certification_follows_review_intervals(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    # Longer cycles: v3 (privileged, 100 days) and a2, a4 (standard, 400 and
    # 365 days) are no longer past their first cycle.
    longer = settings.model_copy(
        update={
            "review": settings.review.model_copy(
                update={"privileged_interval_days": 101, "standard_interval_days": 401}
            )
        }
    )
    certification = report_at(app, longer).certification
    assert certification.overdue_never_certified == 0
    assert certification.overdue_expired == 1
    assert certification.not_yet_due == 4


def test_report_certification_moves_with_time(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    # Eleven days on, a3's certification has expired and v4 is still not due.
    with app.session() as session:
        certification = build_report(
            session, settings, now=NOW + 11 * DAY
        ).certification
    assert certification.certified == 2
    assert certification.overdue_expired == 2
    assert certification.not_yet_due == 1


def test_report_lifecycle_coverage(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    lifecycle = report_at(app, settings).lifecycle
    assert lifecycle.live == 8
    assert lifecycle.linked == 4
    assert lifecycle.unlinked == 4
    assert lifecycle.share == 0.5


def test_report_stage_with_defaults(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    maturity = report_at(app, settings).maturity
    assert maturity.stage == 1
    assert maturity.stage_name == "discovery"
    assert maturity.next_stage == 2
    assert maturity.missing == (
        "ownership: 62.5% of 8 live identities have an active owner, "
        "95% needed: 3 more must get an owner"
    )


def test_report_stage_follows_thresholds(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    ownership_met = maturity_settings(settings, ownership_threshold=0.6)
    maturity = report_at(app, ownership_met).maturity
    assert maturity.stage == 2
    assert maturity.missing == (
        "certification: 37.5% of 8 live identities are certified within "
        "their cycle, 90% needed: 5 more must be certified"
    )

    certification_met = maturity_settings(
        settings, ownership_threshold=0.6, certification_threshold=0.35
    )
    maturity = report_at(app, certification_met).maturity
    assert maturity.stage == 3
    assert maturity.missing == (
        "lifecycle: 50.0% of 8 live identities are linked to a business "
        "entity, 80% needed: 3 more must be linked"
    )

    all_met = maturity_settings(
        settings,
        ownership_threshold=0.6,
        certification_threshold=0.35,
        lifecycle_threshold=0.5,
    )
    maturity = report_at(app, all_met).maturity
    assert maturity.stage == 4
    assert maturity.stage_name == "lifecycle"
    assert maturity.next_stage is None
    assert maturity.missing is None


def test_report_stage_needs_lower_stages(
    app: Steward, settings: Settings, inventory: dict[str, int]
) -> None:
    lower_missing = maturity_settings(
        settings, certification_threshold=0.35, lifecycle_threshold=0.5
    )
    maturity = report_at(app, lower_missing).maturity
    assert maturity.stage == 1
    assert [status.met for status in maturity.stages] == [True, False, True, True]
    assert [status.reached for status in maturity.stages] == [
        True,
        False,
        False,
        False,
    ]


def test_report_empty_inventory(app: Steward, settings: Settings) -> None:
    report = report_at(app, settings)
    assert report.inventory.identities == 0
    assert report.inventory.by_source == []
    assert report.coverage_gap.share is None
    assert report.ownership.share is None
    assert report.ownership.orphans == 0
    assert report.ownership.disagreements == []
    assert report.certification.share is None
    assert report.certification.not_yet_due == 0
    assert report.lifecycle.share is None
    assert report.maturity.stage == 0
    assert report.maturity.next_stage == 1


def test_report_only_dead_identities(
    app: Steward, settings: Settings, session: Session
) -> None:
    make_identity(session, state=IdentityState.GONE, managed=False)
    make_identity(session, state=IdentityState.REVOKED, managed=False)
    session.commit()
    report = report_at(app, settings)
    assert report.inventory.identities == 2
    assert report.inventory.live == 0
    assert report.coverage_gap.unmanaged == 0
    assert report.coverage_gap.by_source == []
    assert report.maturity.stage == 0


# The command line


def run(database_url: str, *arguments: str, **env: str) -> Result:
    runner = CliRunner()
    environment = {"STEWARD_DATABASE_URL": database_url, **env}
    with time_machine.travel(NOW, tick=False):
        return runner.invoke(
            cli, ["report", *arguments], env=environment, catch_exceptions=False
        )


def test_cli_report_json(database_url: str, inventory: dict[str, int]) -> None:
    result = run(database_url, "--json")
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert GovernanceReport.model_validate(document).generated_at == NOW
    assert document["inventory"]["identities"] == 10
    assert document["ownership"]["with_active_owner"] == 5
    assert document["certification"]["certified"] == 3
    assert document["lifecycle"]["linked"] == 4
    assert document["maturity"]["stage"] == 1
    assert len(document["ownership"]["disagreements"]) == 2


def test_cli_report_options_and_settings(
    database_url: str, inventory: dict[str, int]
) -> None:
    result = run(
        database_url,
        "--json",
        "--disagreement-limit",
        "1",
        STEWARD_MATURITY__OWNERSHIP_THRESHOLD="0.6",
    )
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["ownership"]["disagreement_count"] == 2
    assert len(document["ownership"]["disagreements"]) == 1
    assert document["maturity"]["stage"] == 2


def test_cli_report_table(database_url: str, inventory: dict[str, int]) -> None:
    result = run(database_url)
    assert result.exit_code == 0
    lines = result.output.splitlines()

    assert lines[0] == "Governance report, 2026-06-01 12:00 UTC"
    assert "Maturity stage: 1 of 4 (discovery)" in lines
    assert "Next stage: 2 (ownership)" in lines
    assert (
        "Missing: ownership: 62.5% of 8 live identities have an active owner, "
        "95% needed: 3 more must get an owner"
    ) in lines
    assert (
        "Coverage gap: 4 of 8 live identities (50.0%) are managed by no secrets manager"
    ) in lines

    source_rows = [line.split() for line in lines if line.startswith("aws-prod")]
    assert ["aws-prod", "5", "4", "3", "75.0%"] in source_rows

    headers = ["ID", "SOURCE", "NAME", "OWNER", "REPORTED", "OWNER"]
    header = next(
        number for number, line in enumerate(lines) if line.split() == headers
    )
    end = lines.index("", header)
    disagreement_rows = [line.split() for line in lines[header + 2 : end]]
    assert disagreement_rows == [
        [
            str(inventory["v2"]),
            "vault-main",
            "v2",
            "alice@example.com",
            "bob@example.com",
        ],
        [
            str(inventory["a1"]),
            "aws-prod",
            "a1",
            "carol@example.com",
            "dave@example.com",
        ],
    ]


def test_cli_report_table_capped_list(
    database_url: str, inventory: dict[str, int]
) -> None:
    result = run(database_url, "--disagreement-limit", "1")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert (
        "Owner disagreements: 2 identities whose source reports an owner other "
        "than the one set in Steward"
    ) in lines
    assert "  listing the first 1, raise --disagreement-limit to list more" in lines
    assert "dave@example.com" not in result.output


def test_cli_report_empty_inventory(database_url: str) -> None:
    result = run(database_url)
    assert result.exit_code == 0
    assert "Maturity stage: 0 of 4" in result.output.splitlines()
    assert "Inventory: 0 identities, 0 live" in result.output

    document = json.loads(run(database_url, "--json").output)
    assert document["maturity"]["stage"] == 0
    assert document["ownership"]["share"] is None


def test_cli_report_rejects_negative_limit(database_url: str) -> None:
    result = run(database_url, "--disagreement-limit", "-1")
    assert result.exit_code == 2
    assert "--disagreement-limit" in result.output
