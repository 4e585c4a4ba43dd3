"""Connector implementations by type name, loaded only when configured.

The core names a connector type ("vault", "aws") and passes the instance's
options; the implementation module is imported here on first use, so the
core never imports a vendor SDK and an unconfigured connector costs nothing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from connectors.base import Revoker, Source
from connectors.errors import ConnectorConfigError

logger = logging.getLogger(__name__)

# Type name -> "module:factory". A factory takes (name, options) and returns a
# Connector, raising ConnectorConfigError when the options are invalid.
CONNECTOR_TYPES: dict[str, str] = {
    "vault": "connectors.vault.connector:create",
    "aws": "connectors.aws.connector:create",
}


class Connector(Source, Revoker, Protocol):
    """A configured connector instance: a source and the revoker of its identities."""

    def describe(self) -> dict[str, Any]:
        """Return the instance's effective options with credentials masked."""
        ...

    def close(self) -> None:
        """Release connections and stop background work."""
        ...


class ConnectorFactory(Protocol):
    def __call__(self, name: str, options: Mapping[str, Any]) -> Connector: ...


def factory_for(type_name: str) -> ConnectorFactory:
    """Import and return the factory of a connector type."""
    target = CONNECTOR_TYPES.get(type_name)
    if target is None:
        known = ", ".join(sorted(CONNECTOR_TYPES))
        raise ConnectorConfigError(
            f"unknown connector type {type_name!r}; expected one of: {known}"
        )
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    factory: ConnectorFactory = getattr(module, attribute)
    return factory


def build_connectors(
    instances: Mapping[str, tuple[str, Mapping[str, Any]]],
) -> dict[str, Connector]:
    """Start every configured instance, given as name -> (type, options).

    A type with no configured instance is skipped with one log line. An
    instance that cannot start raises ConnectorConfigError naming it, after
    closing the instances already started.
    """
    started: dict[str, Connector] = {}
    configured_types = {type_name for type_name, _ in instances.values()}
    for type_name in sorted(set(CONNECTOR_TYPES) - configured_types):
        logger.info("%s connector not configured; skipped", type_name)
    for name, (type_name, options) in sorted(instances.items()):
        try:
            started[name] = factory_for(type_name)(name, options)
        except ConnectorConfigError as error:
            for connector in started.values():
                connector.close()
            error.connector = name
            raise
        logger.info("%s connector %s started", type_name, name)
    return started
