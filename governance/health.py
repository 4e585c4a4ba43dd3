"""Health checks: the database, its schema, each connector and its last run."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import HealthState
from connectors.errors import ConnectorError
from connectors.registry import factory_for
from governance.app import Steward
from governance.clock import as_utc, utcnow
from governance.database import migrate
from governance.discovery.models import DiscoveryRun, RunStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One health check: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_database(app: Steward) -> list[Check]:
    """Check that the database is reachable and migrated to the newest schema."""
    try:
        with app.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as error:
        detail = str(error).splitlines()[0]
        return [
            Check("database", False, f"not reachable: {detail}"),
            Check("migrations", False, "not checked: the database is not reachable"),
        ]
    database = Check("database", True, f"reachable ({app.engine.dialect.name})")
    try:
        current = migrate.current_revision(app.engine)
        head = migrate.head_revision()
    except SQLAlchemyError as error:
        return [database, Check("migrations", False, str(error).splitlines()[0])]
    if current == head:
        return [database, Check("migrations", True, f"current ({current})")]
    detail = f"at {current or 'no revision'}, newest is {head}; run steward db upgrade"
    return [database, Check("migrations", False, detail)]


def check_connector(
    name: str, type_name: str, options: dict[str, Any], *, contact: bool = True
) -> Check:
    """Start one connector instance and check that it reaches and authenticates.

    With `contact=False` the check only starts the instance from its options
    (the readiness of `steward serve`, which must not fail while a source
    is down) and never calls the external system.
    """
    label = f"connector {name}"
    try:
        connector = factory_for(type_name)(name, options)
    except ConnectorError as error:
        return Check(label, False, f"cannot start: {error}")
    except ImportError as error:
        return Check(label, False, f"cannot start: {type_name} connector: {error}")
    if not contact:
        connector.close()
        return Check(label, True, f"{type_name} connector loaded")
    try:
        status = connector.check_health()
    finally:
        connector.close()
    return Check(label, status.state is HealthState.OK, status.detail)


def check_last_run(app: Steward, source: str, interval_minutes: int) -> Check:
    """Check the latest discovery run of `source`: its outcome and its age.

    A run older than twice the source's discovery interval is reported stale.
    """
    label = f"discovery {source}"
    try:
        with app.session() as session:
            run = session.scalars(
                sa.select(DiscoveryRun)
                .where(DiscoveryRun.source == source)
                .order_by(DiscoveryRun.started_at.desc(), DiscoveryRun.id.desc())
                .limit(1)
            ).first()
    except SQLAlchemyError as error:
        return Check(label, False, str(error).splitlines()[0])
    if run is None:
        return Check(label, False, "no discovery run yet; run steward discover")
    started = as_utc(run.started_at)
    summary = f"run {run.id} {run.status.value} at {started.isoformat()}"
    if run.status is RunStatus.SUCCEEDED:
        summary += (
            f": {run.seen_count} seen, {run.new_count} new, "
            f"{run.changed_count} changed, {run.gone_count} gone"
        )
    elif run.error:
        summary += f": {run.error}"
    if run.status in {RunStatus.FAILED, RunStatus.BLOCKED}:
        return Check(label, False, summary)
    if utcnow() - started > timedelta(minutes=2 * interval_minutes):
        return Check(label, False, f"stale, {summary}")
    return Check(label, True, summary)


def run_checks(app: Steward) -> list[Check]:
    """Run every check; connectors and runs are checked for enabled instances."""
    checks = check_database(app)
    database_ok = checks[0].ok
    for name, instance in sorted(app.settings.connectors.items()):
        if not instance.enabled:
            continue
        checks.append(check_connector(name, instance.type, instance.options()))
        if database_ok:
            checks.append(
                check_last_run(app, name, instance.discovery_interval_minutes)
            )
    return checks
