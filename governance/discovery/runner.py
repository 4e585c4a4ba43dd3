"""Running discovery for the configured connectors, one source at a time.

Each source's listing is read completely into memory before the Reconciler
reads it, because the Reconciler reads its snapshot twice. A listing that
fails part-way records a FAILED run and changes nothing else, so no identity
is marked gone on the strength of a partial listing. One failing source does
not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import DiscoveredIdentity
from connectors.errors import ConnectorError
from connectors.registry import Connector, build_connectors
from governance.app import Steward
from governance.audit.service import Actor
from governance.discovery.models import RunStatus
from governance.discovery.service import Reconciler, ReconcileResult
from governance.errors import ConfirmationRequiredError, InvalidInputError, StewardError
from governance.metrics import record_connector_error
from governance.settings import Settings

logger = logging.getLogger(__name__)

CONNECTOR_METHOD = "connector"


@dataclass(frozen=True)
class SourceOutcome:
    """The result of discovering one source: its run record and counts."""

    source: str
    status: RunStatus
    run_id: int
    result: ReconcileResult | None = None
    error: str | None = None


def selected_instances(
    settings: Settings, names: Sequence[str] = ()
) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Return name -> (type, options) of the enabled connectors, or of `names`.

    Raises InvalidInputError for a name that is not configured or is disabled.
    """
    configured = settings.connectors
    unknown = sorted(set(names) - set(configured))
    if unknown:
        known = ", ".join(sorted(configured)) or "none"
        raise InvalidInputError(
            f"connector not configured: {', '.join(unknown)} (configured: {known})"
        )
    disabled = sorted(name for name in names if not configured[name].enabled)
    if disabled:
        raise InvalidInputError(
            f"connector disabled: {', '.join(disabled)}; set enabled = true to "
            "discover it"
        )
    chosen = names or [name for name, item in configured.items() if item.enabled]
    return {
        name: (configured[name].type, configured[name].options())
        for name in sorted(set(chosen))
    }


def discover_source(
    app: Steward,
    name: str,
    connector: Connector,
    *,
    actor: Actor,
    confirm: bool = False,
) -> SourceOutcome:
    """Read one connector's complete listing and reconcile it with the inventory."""
    reconciler = Reconciler(
        app, name, method=CONNECTOR_METHOD, actor=actor, confirm=confirm
    )
    run_id = reconciler.start_run()
    logger.info("discovery run %s of %s started", run_id, name)
    try:
        records: list[DiscoveredIdentity] = list(connector.discover())
    except ConnectorError as error:
        record_connector_error(name)
        message = f"listing failed: {error}"
        reconciler.finish_run(run_id, RunStatus.FAILED, error=message)
        logger.error("discovery run %s of %s failed: %s", run_id, name, message)
        return SourceOutcome(name, RunStatus.FAILED, run_id, error=message)
    except Exception as error:
        # An unexpected response shape is a failed listing too. Its run record
        # is marked failed, and the other sources still run.
        record_connector_error(name)
        message = f"listing failed: {type(error).__name__}: {error}"
        reconciler.finish_run(run_id, RunStatus.FAILED, error=message)
        logger.exception("discovery run %s of %s failed", run_id, name)
        return SourceOutcome(name, RunStatus.FAILED, run_id, error=message)

    def snapshot() -> Iterable[DiscoveredIdentity]:
        return records

    try:
        result = reconciler.run(snapshot, run_id=run_id)
    except ConfirmationRequiredError as error:
        return SourceOutcome(name, RunStatus.BLOCKED, run_id, error=str(error))
    except StewardError as error:
        # The Reconciler has already recorded the run as FAILED.
        return SourceOutcome(name, RunStatus.FAILED, run_id, error=str(error))
    return SourceOutcome(name, RunStatus.SUCCEEDED, run_id, result=result)


def discover_sources(
    app: Steward,
    names: Sequence[str] = (),
    *,
    actor: Actor,
    confirm: bool = False,
) -> list[SourceOutcome]:
    """Discover every enabled connector (or the named ones), in name order.

    Raises ConnectorConfigError, before any run starts, when an instance
    cannot start with its options.
    """
    connectors = build_connectors(selected_instances(app.settings, names))
    outcomes = []
    try:
        for name, connector in sorted(connectors.items()):
            outcomes.append(
                discover_source(app, name, connector, actor=actor, confirm=confirm)
            )
    finally:
        for connector in connectors.values():
            connector.close()
    return outcomes
