"""The differences between the two sides that are known and intended, in one place, each
with its reason. `make compare` reports an event whose only differences are these as
"same but for" them, naming each; it never drops them silently. They are the last four
points of the README's "What differs from AWS's Python runtime" (the points before those
compare sees as placeholders: the folders; or as differences: a distribution left out);
one added here is added there.

A difference is left out of both sides before they are compared again:
``scope="entry"`` leaves out a whole log entry that matches, ``scope="text"`` the
matching text of every string (reply and log alike), ``scope="lines"`` splits the log
entries that match at their inner line breaks (\r), as the other side may have written
them as separate lines. A difference is named only where leaving it out took away some
of what differed. Patterns see the normalised form (build/compare/normalise.py:
`<request id>`, `<n> ms`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from build.compare.normalise import Observed


@dataclass(frozen=True)
class Known:
    name: str
    reason: str
    pattern: re.Pattern[str]
    scope: str  # "entry", "text" or "lines"

    def leave_out(self, observed: Observed) -> Observed:
        if self.scope == "entry":
            log = tuple(e for e in observed.log if not self.pattern.search(entry_text(e)))
            return replace(observed, log=log)
        if self.scope == "lines":
            split = [
                e.split("\r") if isinstance(e, str) and self.pattern.search(e) else [e]
                for e in observed.log
            ]
            return replace(observed, log=tuple(line for lines in split for line in lines))
        return replace(
            observed,
            reply=self._strip(observed.reply),
            log=tuple(self._strip(e) for e in observed.log),
        )

    def _strip(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.pattern.sub("", value)
        if isinstance(value, list):
            return [self._strip(v) for v in value]
        if isinstance(value, dict):
            return {k: self._strip(v) for k, v in value.items()}
        return value


def entry_text(entry: Any) -> str:
    return entry if isinstance(entry, str) else str(entry)


KNOWN: tuple[Known, ...] = (
    Known(
        "the runtime's name in AWS_EXECUTION_ENV and the SDK's User-Agent",
        "Lambda sets AWS_EXECUTION_ENV=AWS_Lambda_python3.x for its managed Python runtimes "
        "and not for the provided runtimes a bootstrap runs on (AWS docs: defined runtime "
        "environment variables); botocore sends it in every request's User-Agent "
        "(exec-env/AWS_Lambda_python3.x). B is given it as Lambda gives it",
        re.compile(r" ?exec-env/AWS_Lambda_python\d+\.\d+|AWS_Lambda_python\d+\.\d+"),
        "text",
    ),
    Known(
        "awslambdaric's LAMBDA_WARNING before an init error",
        "awslambdaric logs advice about managed runtime updates before it reports an "
        "init error; Lambda never updates a provided runtime's bootstrap, so the static "
        "bootstrap does not log it",
        re.compile(r"LAMBDA_WARNING: Unhandled exception\."),
        "entry",
    ),
    Known(
        "a logged error's message lines",
        "outside Lambda (no telemetry log fd, as under the emulator) awslambdaric writes an "
        "error's multi-line message with its newlines as they are, so each of its lines is "
        "an entry of its own; on Lambda it is one event. The static bootstrap writes them as "
        "\\r, one event everywhere (README: Operability)",
        re.compile("\r"),
        "lines",
    ),
    Known(
        "the soft deadline's warning",
        "the static bootstrap logs where the handler is shortly before Lambda's timeout "
        "(STATICLAMBDA_SOFT_DEADLINE_MS; README: Operability); awslambdaric does not",
        re.compile(r"Soft deadline: request \S+ has .* left before Lambda's timeout"),
        "entry",
    ),
    Known(
        "the init trace",
        "STATICLAMBDA_INIT_TRACE=1 makes the static bootstrap print how long each init "
        "phase took (README: Operability); awslambdaric has no such lines",
        re.compile(r"^staticlambda init: "),
        "entry",
    ),
)
