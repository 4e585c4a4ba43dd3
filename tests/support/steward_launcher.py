"""Run the `steward` command with the file-backed test revoker registered.

Run as `python -m tests.support.steward_launcher ARGS...` from the repository
root. The test connector type is added here, never in connectors.registry, so
production code cannot load it.
"""

from __future__ import annotations

from connectors.registry import CONNECTOR_TYPES
from governance.cli.main import main
from tests.support.file_revoker import FILE_REVOKER_FACTORY, TYPE_NAME

CONNECTOR_TYPES[TYPE_NAME] = FILE_REVOKER_FACTORY

if __name__ == "__main__":
    main()
