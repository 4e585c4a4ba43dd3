"""A realistic demo fleet: people, business entities, an OpenBao full of NHIs
and CSV exports of SaaS keys and OAuth grants that no vault manages.

Most NHIs name their owner in their metadata, and about one in ten ends up
an orphan. The orphans are of each common kind. A few secret-ids, KV
entries, tokens and SaaS keys name no owner. The legacy CRM's NHIs lose
theirs when dana.departed leaves. OpenBao's root token and Steward's own
login have none.

Everything is generated from a fixed seed, so two runs build the same fleet.
The AppRole secret-ids the seeding creates are kept in memory only (never
written to disk), so that the console can show that a revoked one no longer
logs in.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac

SEED = 20261204
DOMAIN = "example.com"
SECURITY_EMAIL = f"security@{DOMAIN}"

# (email local part, display name, Slack user id, manager local part, zone)
PEOPLE = [
    ("security", "Sam Security", "U0ADMIN", None, "Europe/London"),
    ("cto", "Casey Chief", "U0CTO", None, "America/New_York"),
    ("olive.owner", "Olive Owner", "U0OWNER", "cto", "Europe/Paris"),
    ("raj.patel", "Raj Patel", "U0RAJ", "cto", "Asia/Kolkata"),
    ("mia.chen", "Mia Chen", "U0MIA", "olive.owner", "America/Los_Angeles"),
    ("tom.berg", "Tom Berg", "U0TOM", "olive.owner", "Europe/Berlin"),
    ("ana.silva", "Ana Silva", "U0ANA", "raj.patel", "America/Sao_Paulo"),
    ("li.wang", "Li Wang", "U0LI", "raj.patel", "Asia/Shanghai"),
    ("noah.smith", "Noah Smith", "U0NOAH", "cto", "America/Chicago"),
    ("emma.jones", "Emma Jones", "U0EMMA", "noah.smith", "Europe/Dublin"),
    ("dana.departed", "Dana Departed", "U0DANA", "noah.smith", "Europe/Madrid"),
    ("omar.haddad", "Omar Haddad", "U0OMAR", "noah.smith", "Asia/Dubai"),
]
DEPARTED = "dana.departed"
GUEST = ("gus.guest", "Gus Guest (contractor)", "U0GUEST")

# (key, name, owner local part, privileged, project, vendor)
APPLICATIONS = [
    ("billing", "Billing", "olive.owner", True, None, "paystream"),
    ("checkout", "Checkout", "mia.chen", False, "cloud-migration", "paystream"),
    ("search", "Search", "tom.berg", False, None, None),
    ("payroll", "Payroll", "raj.patel", True, None, None),
    ("data-warehouse", "Data warehouse", "li.wang", True, "ml-pilot", None),
    ("mobile-api", "Mobile API", "ana.silva", False, None, "acme-monitoring"),
    ("legacy-crm", "Legacy CRM", "dana.departed", False, None, None),
    ("ci", "Build and deploy", "omar.haddad", True, "cloud-migration", None),
]
PROJECTS = [
    ("ml-pilot", "Machine learning pilot", "li.wang"),
    ("cloud-migration", "Cloud migration", "noah.smith"),
    ("q3-hackathon", "Q3 hackathon", "emma.jones"),
]
VENDORS = [
    ("paystream", "PayStream payments", "olive.owner"),
    ("acme-monitoring", "Acme Monitoring", "emma.jones"),
]

KV_SECRETS = ["db-password", "api-key", "smtp", "signing-key", "webhook-secret"]
# The legacy CRM is small: it has fewer credentials than the other applications.
LEGACY_APPLICATION = "legacy-crm"
LEGACY_SECRET_IDS = 3
LEGACY_KV_SECRETS = ["db-password", "api-key"]
LEGACY_TOKENS = 2
# NHIs whose metadata names no owner, by application: the sixth secret-id,
# the webhook secret in KV and the fourth batch token.
UNLABELLED_SECRET_IDS = {"billing", "payroll"}
UNLABELLED_KV_SECRETS = {"checkout", "ci", "search"}
UNLABELLED_TOKENS = {"search"}
SAAS = [
    ("github_pat", "GitHub", "deploy token", True),
    ("stripe_restricted_key", "Stripe", "restricted key", True),
    ("salesforce_oauth_grant", "Salesforce", "connected app grant", False),
    ("datadog_api_key", "Datadog", "API key", False),
    ("google_oauth_grant", "Google Workspace", "OAuth grant", False),
]


def email(local: str) -> str:
    return f"{local}@{DOMAIN}"


@dataclass(frozen=True)
class DemoCredential:
    """An AppRole login the seeding created, kept only in memory."""

    role: str
    role_id: str
    secret_id: str
    accessor: str


@dataclass
class Fleet:
    """What the seeding created: CSV paths and the in-memory logins."""

    people_csv: Path
    departures_csv: Path
    entities_csv: Path
    saas_csv: Path
    credentials: dict[str, DemoCredential] = field(default_factory=dict)
    vault_identities: int = 0
    saas_identities: int = 0


def write_people(directory: Path) -> tuple[Path, Path]:
    """Write the HR export before and after one person left."""
    before = directory / "people.csv"
    after = directory / "people-after-departure.csv"
    for path, departed in ((before, False), (after, True)):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "email",
                    "display_name",
                    "slack_user_id",
                    "manager_email",
                    "active",
                    "time_zone",
                ]
            )
            for local, name, slack_id, manager, zone in PEOPLE:
                active = not (departed and local == DEPARTED)
                writer.writerow(
                    [
                        email(local),
                        name,
                        slack_id,
                        email(manager) if manager else "",
                        "yes" if active else "no",
                        zone,
                    ]
                )
            local, name, slack_id = GUEST
            writer.writerow([email(local), name, slack_id, "", "yes", "UTC"])
    return before, after


def write_entities(directory: Path) -> Path:
    path = directory / "entities.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["type", "key", "name", "status", "owner_email"])
        for key, name, owner, *_ in APPLICATIONS:
            writer.writerow(["application", key, name, "active", email(owner)])
        for key, name, owner in PROJECTS:
            writer.writerow(["project", key, name, "active", email(owner)])
        for key, name, owner in VENDORS:
            writer.writerow(["vendor", key, name, "active", email(owner)])
    return path


def write_saas(directory: Path, rng: random.Random, now: datetime) -> tuple[Path, int]:
    """Write an export of SaaS keys and OAuth grants; return its path and size."""
    path = directory / "saas-keys.csv"
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "kind",
                "external_id",
                "name",
                "description",
                "owner_email",
                "tier",
                "application",
                "project",
                "vendor",
                "created",
                "last_used",
                "managed",
                "metadata",
            ]
        )
        for number in range(48):
            kind, product, label, privileged = SAAS[number % len(SAAS)]
            app_key, _, app_owner, *_ = _saas_application(number)
            owner = "" if number % 16 == 3 else email(app_owner)
            age = rng.randint(30, 900)
            created = now - timedelta(days=age)
            never = number % 5 == 4
            last_used = (
                "never"
                if never
                else _stamp(now - timedelta(days=rng.randint(0, min(age, 200))))
            )
            project = "q3-hackathon" if number % 11 == 5 else ""
            writer.writerow(
                [
                    kind,
                    f"{product.lower().replace(' ', '-')}-{number:04d}",
                    f"{app_key} {product} {label}",
                    f"{product} {label} used by {app_key}",
                    owner,
                    "privileged" if privileged and number % 2 == 0 else "standard",
                    app_key,
                    project,
                    "",
                    _stamp(created),
                    last_used,
                    "no",
                    f"product={product};exported_by=it-asset-inventory",
                ]
            )
            rows += 1
    return path, rows


def _saas_application(
    number: int,
) -> tuple[str, str, str, bool, str | None, str | None]:
    """Return the application of SaaS row `number`: three rows are the legacy CRM's."""
    if number % 20 == 6:
        return next(app for app in APPLICATIONS if app[0] == LEGACY_APPLICATION)
    current = [app for app in APPLICATIONS if app[0] != LEGACY_APPLICATION]
    return current[number % len(current)]


def role_owners() -> dict[str, str]:
    """Return the owner's email of each AppRole role the seeding creates.

    AppRole roles carry no metadata, so no source reports their owners: the
    quickstart assigns them in Steward, as a platform team would.
    """
    return {f"{key}-service": email(owner) for key, _, owner, *_ in APPLICATIONS}


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_openbao(
    client: hvac.Client, rng: random.Random
) -> tuple[int, dict[str, DemoCredential]]:
    """Create policies, AppRoles with secret-ids, tokens and KV entries.

    Returns the number of identities created and the AppRole logins by
    secret-id accessor.
    """
    client.sys.enable_auth_method("approle", path="approle")
    client.sys.create_or_update_acl_policy(
        "platform-admin", 'path "sys/*" { capabilities = ["read", "list", "sudo"] }'
    )
    client.sys.create_or_update_acl_policy(
        "ci-deployer",
        'path "auth/approle/role/*" { capabilities = ["create", "update", "read"] }',
    )
    created = 0
    credentials: dict[str, DemoCredential] = {}
    for key, _, owner, privileged, project, vendor in APPLICATIONS:
        policy = f"{key}-read"
        client.sys.create_or_update_acl_policy(
            policy, f'path "secret/data/{key}/*" {{ capabilities = ["read"] }}'
        )
        policies = [policy, "platform-admin"] if privileged else [policy]
        role = f"{key}-service"
        client.auth.approle.create_or_update_approle(
            role,
            token_policies=policies,
            token_ttl="1h",  # noqa: S106 - a duration, not a password
        )
        created += 1
        role_id = client.auth.approle.read_role_id(role)["data"]["role_id"]
        legacy = key == LEGACY_APPLICATION
        secret_ids = LEGACY_SECRET_IDS if legacy else rng.randint(7, 10)
        for number in range(secret_ids):
            metadata = {"application": key, "purpose": f"instance-{number}"}
            if not (number == 5 and key in UNLABELLED_SECRET_IDS):
                metadata["owner"] = email(owner)
            if project and number % 2 == 0:
                metadata["project"] = project
            if vendor and number == 0:
                metadata["vendor"] = vendor
            if key == "search" and number < 3:
                metadata["project"] = "q3-hackathon"
            response = client.auth.approle.generate_secret_id(role, metadata=metadata)
            data = response["data"]
            credentials[data["secret_id_accessor"]] = DemoCredential(
                role=role,
                role_id=role_id,
                secret_id=data["secret_id"],
                accessor=data["secret_id_accessor"],
            )
            created += 1
            if number % 3 == 0:
                # A login marks the secret-id as used.
                client.auth.approle.login(role_id, data["secret_id"], use_token=False)
        for name in LEGACY_KV_SECRETS if legacy else KV_SECRETS:
            custom = {"application": key}
            if not (name == "webhook-secret" and key in UNLABELLED_KV_SECRETS):
                custom["owner"] = email(owner)
            client.secrets.kv.v2.create_or_update_secret(
                path=f"{key}/{name}",
                secret={"value": f"demo-{rng.getrandbits(64):016x}"},
            )
            client.secrets.kv.v2.update_metadata(
                path=f"{key}/{name}", custom_metadata=custom
            )
            created += 1
        for number in range(LEGACY_TOKENS if legacy else 4):
            meta = {"application": key, "owner": email(owner)}
            if number == 3 and key in UNLABELLED_TOKENS:
                meta.pop("owner")
            client.auth.token.create(
                policies=policies if number == 0 else [policy],
                meta=meta,
                no_parent=True,
                ttl="720h",
                display_name=f"{key}-batch-{number}",
            )
            created += 1
    return created, credentials


def build_fleet(directory: Path, client: hvac.Client) -> Fleet:
    """Seed the dev server and write the CSV exports into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)  # noqa: S311 - demo data, not a secret
    now = datetime.now(UTC)
    people, departures = write_people(directory)
    entities = write_entities(directory)
    saas, saas_rows = write_saas(directory, rng, now)
    vault_count, credentials = seed_openbao(client, rng)
    return Fleet(
        people_csv=people,
        departures_csv=departures,
        entities_csv=entities,
        saas_csv=saas,
        credentials=credentials,
        vault_identities=vault_count,
        saas_identities=saas_rows,
    )
