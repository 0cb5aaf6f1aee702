"""`python -m build.bench`: the options, the builds they ask for, the runs, the report."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from build.bench import managed
from build.bench.candidates import (
    BENCH_CACHE,
    LAMBDA_MEMORY_MB,
    REAL_EVENT,
    REAL_HANDLER,
    REAL_REQUIREMENTS,
    Function,
    MemoryCgroup,
    awslambdaric_candidate,
    awslambdaric_version,
    install_for_awslambdaric,
    runtime_env,
    static_candidate,
)
from build.bench.measure import Result, breakdown, measure, measure_limited
from build.bench.report import ECHO_TARGETS, REAL_TARGETS, breakdown_lines, machine, table
from build.command import command_line
from build.elf import ARCH_ALIASES, host_architecture
from build.errors import BenchError, BuildError, EmulatorError
from build.package import write_zip
from build.paths import DEFAULT_HANDLER as ECHO_HANDLER
from build.paths import ROOT


def zip_size_mb(bootstrap: Path) -> float:
    """function.zip's size for this bootstrap, written as the pipeline writes it."""
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        return write_zip(bootstrap, Path(tmp) / "function.zip").stat().st_size / 1e6


def run_build(handler: str, dist: Path, requirements: Path | None = None) -> float:
    """`make zip` by the pipeline; its time in seconds."""
    started = time.monotonic()
    extra = ["--requirements", str(requirements)] if requirements is not None else []
    for command in (["build", "--handler", handler, *extra], ["zip"]):
        done = subprocess.run(
            [sys.executable, "-m", "build.pipeline", *command, "--dist", str(dist)],
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise BuildError(f"the pipeline's {command[0]} failed (its output is above)")
    return time.monotonic() - started


def bench_function(
    function: Function,
    bootstrap: Path,
    args: argparse.Namespace,
    env: Mapping[str, str],
    logdir: Path,
    targets: Mapping[str, str],
    build_s: float | None,
) -> tuple[list[str], dict[str, Result]]:
    """One function, A beside B: the table's lines and the results."""
    deps = install_for_awslambdaric(function.requirements) if function.requirements else None
    a = static_candidate(bootstrap)
    b = awslambdaric_candidate(function.handler, deps)
    why_not = MemoryCgroup.unavailable()
    results = measure(
        [a, b], args.cold, args.warm, env, logdir, function=function, cgroups=why_not is None
    )
    if why_not is None and args.limited:
        measure_limited([a, b], args.limited, env, logdir, function, results)
    lines = table(results["A"], results["B"], zip_size_mb(bootstrap), build_s, targets)
    if why_not is not None:
        lines += ["", f"memory cgroup: {why_not}"]
    return lines, results


def main(argv: list[str] | None = None) -> int:
    parser = command_line("build.bench", __doc__)
    parser.add_argument("--cold", type=int, default=15, help="cold starts of each (default 15)")
    parser.add_argument("--warm", type=int, default=500, help="warm invokes of each (default 500)")
    parser.add_argument("--bootstrap", default="dist/bootstrap")
    parser.add_argument(
        "--handler",
        default=ECHO_HANDLER,
        help="module.function both run (B imports it from the repository)",
    )
    parser.add_argument(
        "--build", action="store_true", help="build the bootstrap and its zip first, and time it"
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=3,
        metavar="N",
        help="cold starts of A under strace for the breakdown (0: none)",
    )
    parser.add_argument(
        "--no-importtime",
        dest="importtime",
        action="store_false",
        help="skip the import split (it builds a copy: ~15 s)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help=f"also bench the real function ({REAL_HANDLER}, {REAL_REQUIREMENTS.name}): "
        "it builds its bootstrap first (several minutes the first time)",
    )
    parser.add_argument(
        "--limited",
        type=int,
        default=5,
        metavar="N",
        help=f"cold starts of each inside a {LAMBDA_MEMORY_MB} MB memory cgroup (root; 0: none)",
    )
    parser.add_argument(
        "--tmpdir",
        help="where the runtimes' TMPDIRs (and the logs) are made (default: the system's, "
        "/tmp); e.g. a tmpfs, to see what a faster /tmp would change",
    )
    parser.add_argument(
        "--no-echo", dest="echo", action="store_false", help="only the real function (--real)"
    )
    parser.add_argument("--json", help="also write every sample to this file")
    parser.add_argument(
        "--managed-instances",
        type=int,
        default=0,
        metavar="N",
        help="then the Managed Instances rows, N workers (build/bench/managed.py; 0: none)",
    )
    parser.add_argument(
        "--managed-only",
        action="store_true",
        help="only the Managed Instances rows: none of bench's own (echo, --real)",
    )
    parser.add_argument(
        "--managed-rounds",
        type=int,
        default=3,
        metavar="N",
        help="runs of each Managed Instances candidate (default 3)",
    )
    parser.add_argument(
        "--boto3-powertools",
        action="store_true",
        help="also the Managed Instances rows of a boto3 + Powertools handler "
        "(builds its bootstrap first)",
    )
    parser.add_argument("--arch", help="x86_64 or arm64: must be this machine's (make: ARCH=)")
    args = parser.parse_args(argv)
    if args.arch and ARCH_ALIASES.get(args.arch.lower(), args.arch) != host_architecture():
        # Under qemu an arm64 bootstrap runs several times slower than on Graviton:
        # its numbers beside a native awslambdaric would say nothing about either.
        parser.exit(
            1,
            f"bench: ARCH={args.arch} on this {host_architecture()} machine would time qemu, "
            f"not the function: run `make bench` on an {args.arch} machine\n",
        )
    if args.cold < 1 or args.warm < 0 or args.breakdown < 0 or args.limited < 0:
        parser.error("--cold must be at least 1, --warm, --breakdown and --limited at least 0")
    if args.managed_instances < 0 or args.managed_instances == 1 or args.managed_rounds < 1:
        parser.error(
            "--managed-instances must be 0 (none) or at least 2, --managed-rounds at least 1"
        )
    if (args.managed_only or args.boto3_powertools) and not args.managed_instances:
        parser.error("--managed-only and --boto3-powertools need --managed-instances N")
    if args.managed_only:
        args.echo = args.real = False
    bootstrap = Path(args.bootstrap).resolve()
    record: dict[str, Any] = {"machine": machine()}
    try:
        builds = args.build and (args.echo or args.managed_instances)
        build_s = run_build(args.handler, bootstrap.parent) if builds else None
        if (args.echo or args.managed_instances) and not bootstrap.is_file():
            print(f"bench: {bootstrap} does not exist: run `make build` first", file=sys.stderr)
            return 1
        env = runtime_env(os.environ)
        if not args.managed_only:
            print("\n".join(own_rows(args, bootstrap, env, build_s, record)), flush=True)
            write_record(args.json, record)
            if args.managed_instances:
                print()
        if args.managed_instances:
            record["managed_instances"] = managed.run(
                bootstrap,
                args.handler,
                args.managed_instances,
                args.managed_rounds,
                env,
                args.boto3_powertools,
            )
            write_record(args.json, record)
    except (BuildError, EmulatorError, BenchError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    return 0


def own_rows(
    args: argparse.Namespace,
    bootstrap: Path,
    env: Mapping[str, str],
    build_s: float | None,
    record: dict[str, Any],
) -> list[str]:
    """Bench's own rows: the echo handler's (unless --no-echo) and the real
    function's (--real), with the machine they ran on; their results go in ``record``."""
    echo = Function(args.handler)
    real = Function(REAL_HANDLER, REAL_EVENT, REAL_REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.tmpdir) as tmp:
        lines = [
            f"## staticlambda bench: A static bootstrap vs B awslambdaric {awslambdaric_version()}",
            "",
            *(f"- {k}: {v}" for k, v in record["machine"].items()),
            f"- the runtimes' TMPDIRs: under {tmp}",
            f"- cold starts alternate A B, {args.cold} each; warm invokes alternate A B, "
            f"{args.warm} each, one keep-alive connection per candidate",
        ]
        if args.echo:
            lines += ["", f"### {args.handler}"]
            lines += [f"- load average before: {os.getloadavg()[0]:.2f}", ""]
            table_lines, results = bench_function(
                echo, bootstrap, args, env, Path(tmp), ECHO_TARGETS, build_s
            )
            lines += table_lines
            record["echo"] = {"results": {k: asdict(r) for k, r in results.items()}}
            split = (
                breakdown(bootstrap, args.handler, args.breakdown, args.importtime, env, Path(tmp))
                if args.breakdown
                else None
            )
            if split is not None:
                lines += ["", *breakdown_lines(split, results["A"], args.handler)]
                record["echo"]["breakdown"] = asdict(split)
        if args.real:
            real_dist = BENCH_CACHE / "real-dist"
            real_build_s = run_build(real.handler, real_dist, real.requirements)
            lines += [
                "",
                f"### the real function: {real.handler} ({REAL_REQUIREMENTS.name}), "
                f"the same requirements for both, an API Gateway HTTP event",
                f"- load average before: {os.getloadavg()[0]:.2f}",
                "",
            ]
            table_lines, results = bench_function(
                real, real_dist / "bootstrap", args, env, Path(tmp), REAL_TARGETS, real_build_s
            )
            lines += table_lines
            record["real"] = {"results": {k: asdict(r) for k, r in results.items()}}
    return lines


def write_record(path: str | None, record: Mapping[str, Any]) -> None:
    """Every sample so far to --json's file (again after the Managed Instances rows)."""
    if path:
        Path(path).write_text(json.dumps(record, indent=2, default=str) + "\n")
