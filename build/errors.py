"""The build side's errors: one base, a class per tool, each message one line that says what to do.

    StaticLambdaError       every failure of build/ a user can act on; never a traceback
    ├── BuildError          a build stage failed (freeze, static, verify, loader, sbom, initcheck)
    │   └── ToolFailed      an external tool (objcopy) said no; carries the tool and its stderr
    ├── EmulatorError       the AWS Runtime Interface Emulator could not be fetched or run
    ├── InvokeError         `make invoke` was called wrongly (build/invoke.py)
    ├── BenchError          a benchmark candidate did not answer as it must (build/bench*)
    ├── CompareError        `make compare` was called wrongly or could not run (build/compare/)
    └── DeployError         AWS said no, or the zip is wrong (build/aws_errors.py, exit 1)
        └── UsageError      the deploy command line is wrong or incomplete (exit 2)

Each tool still catches its own classes: the base lets a caller that drives several tools
(a test, a script) catch them all without catching a bug.
"""

from __future__ import annotations


class StaticLambdaError(Exception):
    """A failure of the build side the user can act on; the message says what to do."""


class BuildError(StaticLambdaError):
    """A build stage failed; the message says what to do."""


class ToolFailed(BuildError):
    """An external tool the build runs exited non-zero; ``stderr`` is what it said."""

    def __init__(self, tool: str, operation: str, stderr: str):
        super().__init__(f"{tool} {operation} failed: {stderr}")
        self.tool, self.operation, self.stderr = tool, operation, stderr


class EmulatorError(StaticLambdaError):
    """The Runtime Interface Emulator could not be fetched, started or reached."""


class InvokeError(StaticLambdaError):
    """A mistake in how invoke was called; the message says what to do."""


class BenchError(StaticLambdaError):
    """A benchmark candidate did not answer as the echo handler must."""


class CompareError(StaticLambdaError):
    """`make compare` was given what it cannot compare; the message says what to do."""
