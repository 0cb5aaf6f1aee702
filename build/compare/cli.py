"""`make compare`: the static bootstrap beside AWS's Python runtime, on your own events.

    python -m build.compare --events PATH [--dist dist] [--env-file FILE] [--env "A=1 ..."]
                            [--log-format Text|JSON] [--json REPORT] [--timeout 30] [--up-to-date]

Runs the function built in DIST (what its build record names: handler, SRC,
REQUIREMENTS) once per event, each a cold start under the official emulator, as
A, the static bootstrap, and as B, awslambdaric 4.2.2 on the same Python with the
same requirements (build/compare/sides.py), both in Lambda's environment as
`make invoke` gives it, AWS_EC2_METADATA_DISABLED=true, and the function's own
variables: those the build declared (ENV_FILE, ENV: DIST/bootstrap.environment.json),
as `make invoke` gives them, or --env-file/--env's instead when given. EVENTS is an
event file, or a folder whose *.json files are run in name order. `make compare`
rebuilds first when `make zip` would (make's bootstrap step, then --up-to-date); run
directly, an out-of-date bootstrap is refused.

Per event it compares whether init succeeded, the emulator's status, the reply
(JSON, structurally; an error by errorType, errorMessage and the frames of the
function's own code: file relative to the code folder, line, function, source
line) and the function's log (request ids, times, durations and memory figures
as placeholders), and prints `same` or what differs, with both cold starts' INIT
beside it (not compared). Known, intended differences (build/compare/known.py)
are left out and named. Exit status 0 only when every event is the same.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from build.bench.candidates import Candidate, install_for_awslambdaric
from build.bench.parsing import init_durations
from build.command import command_line, exit_status
from build.compare import sides
from build.compare.diff import verdict
from build.compare.events import Event, read_events
from build.compare.frames import OwnCode
from build.compare.normalise import observe, places
from build.compare.report import DIFFERS, Compared, event_lines, summary_lines, write_json
from build.errors import BuildError, CompareError, EmulatorError
from build.function_env import declared, read_environment
from build.invoke import function_env
from build.paths import ROOT
from build.record import Inputs, read_record, rebuild_reason, recorded_inputs

LOG_FORMATS = ("Text", "JSON")  # Lambda's LoggingConfig.LogFormat
CONTAINER_REPOSITORY = PurePosixPath("/src")  # the Makefile's DOCKER_RUN: -v "$PWD":/src


def built(dist: Path, up_to_date: bool = False) -> Inputs:
    """What the bootstrap in ``dist`` was built from, its paths as this machine sees them;
    refused when it is out of date, unless ``up_to_date`` (make's bootstrap step just
    rebuilt what needed it, and a container build's fingerprint is over the container's
    paths, which this machine cannot check)."""
    record = read_record(dist)
    if record is None:
        raise CompareError(
            f"no bootstrap built in {dist} (or not the one its record describes): run "
            "`make compare`, which builds it, or `make zip` first"
        )
    inputs = recorded_inputs(record)
    why = None if up_to_date else rebuild_reason(dist, record, inputs, inputs)
    if why is not None:
        raise CompareError(
            f"{dist / 'bootstrap'} is out of date ({why}): `make compare` rebuilds it"
        )
    inputs = replace(inputs, src=here(inputs.src), requirements=here(inputs.requirements))
    if inputs.src_path is not None and not inputs.src_path.is_dir():
        raise CompareError(f"SRC={inputs.src} of the last build is not a folder any more")
    return inputs


def here(recorded: str) -> str:
    """A recorded path as this machine sees it: a build in the container (BUILDER=docker)
    records the repository's files under /src, where the Makefile mounts it."""
    inside = PurePosixPath(recorded)
    if recorded and not Path(recorded).exists() and inside.is_relative_to(CONTAINER_REPOSITORY):
        return str(ROOT / inside.relative_to(CONTAINER_REPOSITORY))
    return recorded


def function_variables(dist: Path, env_file: str, env: str) -> dict[str, str]:
    """The function's own variables for both sides: ``env_file``/``env`` when given (run
    directly), else those the build declared, as `make invoke` gives them."""
    given = declared(env_file, env)
    return given if given is not None else read_environment(dist) or {}


def compare_event(
    event: Event,
    a: Candidate,
    b: Candidate,
    env: dict[str, str],
    code: Path,
    logdir: Path,
) -> Compared:
    observed, init_ms, replies = {}, {}, {}
    for side, task_root in ((a, str(a.cwd)), (b, str(code))):
        ran = sides.run(side, env, event.body, logdir)
        own = OwnCode(code, ran.working_directory, ran.tmpdir)
        where = places(ran.log, own, [ran.working_directory, task_root], ran.tmpdir)
        observed[side.label] = observe(ran.status, ran.body, ran.log, where)
        inits = init_durations(ran.log)
        init_ms[side.label] = inits[0] if inits else None
        replies[side.label] = ran.body.decode(errors="replace")
    return Compared(event.name, observed, init_ms, replies, verdict(observed["A"], observed["B"]))


def main(argv: list[str] | None = None) -> int:
    parser = command_line("build.compare", __doc__)
    parser.add_argument("--events", default="", help="an event file or a folder (make: EVENTS=)")
    parser.add_argument("--dist", default="dist", help="where the bootstrap was built")
    parser.add_argument(
        "--env-file", default="", help="a dotenv file, instead of the build's environment"
    )
    parser.add_argument(
        "--env", default="", help='"NAME=value ...", instead of the build\'s environment'
    )
    parser.add_argument(
        "--log-format", default="", help="Text or JSON: Lambda's log format (make: LOG_FORMAT=)"
    )
    parser.add_argument("--json", help="also write the report to this file (make: REPORT=)")
    parser.add_argument("--timeout", default="30", help="the function's timeout, in seconds")
    parser.add_argument(
        "--up-to-date",
        action="store_true",
        help="DIST/bootstrap was just brought up to date (make compare's bootstrap step): "
        "not checked again",
    )
    args = parser.parse_args(argv)
    statuses: list[int] = []  # compare's own: 1 when an event differs
    failed = exit_status(
        "compare",
        lambda: statuses.append(compare(args.events, Path(args.dist).resolve(), args)),
        (CompareError, BuildError, EmulatorError),
    )
    return failed or statuses[0]


def compare(events_path: str, dist: Path, args: argparse.Namespace) -> int:
    events = read_events(events_path)
    if args.log_format and args.log_format not in LOG_FORMATS:
        raise CompareError(f"LOG_FORMAT={args.log_format} is neither Text nor JSON")
    inputs = built(dist, args.up_to_date)
    variables = function_variables(dist, args.env_file, args.env)
    code = inputs.src_path.resolve() if inputs.src_path else ROOT
    requirements = inputs.requirements_path
    deps = install_for_awslambdaric(requirements) if requirements is not None else None
    a = sides.static_side(dist / "bootstrap")
    b = sides.awslambdaric_side(inputs.handler, code, deps, sides.runtime_packages())
    # TMPDIR is each run's own (Session's); LAMBDA_TASK_ROOT is B's code folder for B.
    env = function_env(os.environ, args.timeout, "", str(dist), [], False, False, variables)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if args.log_format:
        env["AWS_LAMBDA_LOG_FORMAT"] = args.log_format
    header = {
        "A": a.description,
        "B": f"{b.description} on Python {platform.python_version()} ({sys.executable} -S)",
        "handler": inputs.handler,
        "code_folder": str(code),
        "requirements": inputs.requirements,
        "events_from": events_path,
        "variables": sorted(variables),  # names only: values may be secrets
    }
    print(f"compare: A {header['A']}")
    print(f"         B {header['B']}")
    print(
        f"         {inputs.handler} from {code}; {len(events)} event(s) from {events_path}; "
        f"Lambda's environment as make invoke gives it"
        + (f", and {', '.join(sorted(variables))}" if variables else ""),
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="staticlambda-compare-") as tmp:
        for event in events:
            compared = compare_event(event, a, b, env, code, Path(tmp))
            print("\n".join(event_lines(compared)), flush=True)
            results.append(compared)
    print("\n".join(summary_lines(results)))
    if args.json:
        write_json(Path(args.json), header, results)
    return 1 if any(c.result == DIFFERS for c in results) else 0
