"""Named failure points for crash tests of the remediation worker.

`STEWARD_FAILPOINT=NAME` makes the process exit abruptly (os._exit, no
cleanup, like a kill) when it reaches the point called NAME. Unset, every
point costs one environment look-up and does nothing.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

FAILPOINT_ENV = "STEWARD_FAILPOINT"
# Exit status of a process stopped at a failure point.
FAILPOINT_EXIT = 86


def failpoint(name: str) -> None:
    """Exit at once when STEWARD_FAILPOINT names this point."""
    if os.environ.get(FAILPOINT_ENV) == name:
        logger.warning("failure point %s reached; exiting", name)
        os._exit(FAILPOINT_EXIT)
