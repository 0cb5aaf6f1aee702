"""The build side's one error: a stage failed, and the message says what to do.

BuildError            every build failure the user can act on, one line
  InitCheckFailed     the built binary did not initialise (build/initcheck.py)
"""

from __future__ import annotations


class BuildError(Exception):
    """A build stage failed; the message says what to do."""
