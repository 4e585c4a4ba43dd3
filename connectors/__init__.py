"""Connectors to the systems that hold credentials and tickets.

Each connector is one module behind the small typed interfaces in
`connectors.base`, and translates its vendor's exceptions into
`connectors.errors`. Implementations are loaded by name from configuration
(`connectors.registry`), so the governance core imports no vendor SDK.
"""
