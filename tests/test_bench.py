"""build/bench/'s pieces: the parsers of what the emulator, Python and strace
write, the process-tree memory reading, and one short run of the whole bench
when a bootstrap is built. No timing is asserted: this is a benchmark's test."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from build import bench

RIE_LOG = """\
26 Nov 2026 21:43:13,549 [INFO] (rapid) INIT START(type: on-demand, phase: init)
26 Nov 2026 21:43:14,016 [INFO] (rapid) INIT RTDONE(status: success)
26 Nov 2026 21:43:14,016 [INFO] (rapid) INIT REPORT(durationMs: 466.630000)
REPORT RequestId: 62619e8b	Init Duration: 0.02 ms	Duration: 468.54 ms	Billed Duration: 469 ms
"""

IMPORT_LOG = """\
import time: self [us] | cumulative | imported package
import time:      6561 |      24339 | inspect
import time:        99 |         99 |   runtime
import time:       166 |        374 | runtime.frozen
import time:       644 |     106956 |   runtime.client
import time:       109 |     109430 | runtime.__main__
import time:        40 |         40 |   handlers
import time:        80 |        120 | handlers.echo
import time:       197 |      74571 | httpcore
"""

STRACE_LOG = """\
9288  1795729399.548227 execve("/w/bootstrap", ["/w/bootstrap"], 0x7f /* 46 vars */) = 0
9288  1795729399.801995 fork()          = 9289
9289  1795729399.802322 execve("/tmp/staticx-E/b", ["/tmp/staticx-E/b"], 0x7f0d /* 48 vars */) = 0
9289  1795729399.879378 clone(child_stack=NULL, flags=SIGCHLD, child_tidptr=0x7f87) = 9290
9290  1795729399.879790 execve("/tmp/staticx-E/b", ["/tmp/staticx-E/b"], 0x2b <unfinished ...>
9289  1795729399.879822 wait4(9290,  <unfinished ...>
9290  1795729399.880008 <... execve resumed>) = 0
9290  1795729399.900000 connect(3, {sa_family=AF_UNIX, sun_path="/x"}, 110) = -1 ENOENT (No file)
9290  1795729400.008769 connect(3, {sa_family=AF_INET, sin_port=htons(40359)}, 16) = 0
"""


INIT_TRACE_LOG = """\
staticlambda init:    25.0 ms  staticx loader: unpack into /tmp/staticx-*, fork  (from +0.0 ms)
staticlambda init:     0.2 ms  handler import: handlers.echo.handler  (from +120.1 ms)
staticlambda init:   128.1 ms  in all, to the first /next
"""


def test_init_durations_come_from_init_report_lines_only() -> None:
    assert bench.init_durations(RIE_LOG) == [466.63]
    assert bench.init_durations("no report here") == []


def test_import_times_keep_order_depth_and_milliseconds() -> None:
    times = bench.import_times("26 Nov 2026 [INFO] noise\n" + IMPORT_LOG)
    assert [t.name for t in times][:3] == ["inspect", "runtime", "runtime.frozen"]
    assert times[1] == bench.ImportTime("runtime", 1, 0.099, 0.099)
    assert times[-1] == bench.ImportTime("httpcore", 0, 0.197, 74.571)


def test_split_imports_buckets_start_up_runtime_and_handler() -> None:
    split = bench.split_imports(bench.import_times(IMPORT_LOG), "handlers.echo.handler")
    assert split.startup_ms == pytest.approx(24.339)
    # runtime.frozen, runtime.__main__, and httpcore (imported after the runtime began)
    assert split.runtime_ms == pytest.approx(0.374 + 109.430 + 74.571)
    assert split.handler_ms == pytest.approx(0.120)
    assert split.heaviest[0] == ("runtime.__main__", 109.430)


def test_init_trace_lines_give_phase_and_milliseconds() -> None:
    assert bench.init_trace("noise\n" + INIT_TRACE_LOG) == [
        ("staticx loader: unpack into /tmp/staticx-*, fork", 25.0),
        ("handler import: handlers.echo.handler", 0.2),
        ("in all, to the first /next", 128.1),
    ]
    runs = [[("a", 1.0), ("b", 5.0)], [("a", 3.0)], [("a", 2.0), ("b", 7.0)]]
    assert bench.median_phases(runs) == [("a", 2.0), ("b", 6.0)]


def archive_toc(program: Path, tmp: Path) -> list[tuple[str, str]]:
    """(name, type) of each entry of the PyInstaller archive in ``program``'s pydata."""
    section = tmp / "dumped"
    subprocess.run(["objcopy", "--dump-section", f"pydata={section}", str(program)], check=True)
    data = section.read_bytes()
    cookie = struct.calcsize(bench.PYI_COOKIE_FORMAT)
    magic, length, offset, toc_length, *_ = struct.unpack(bench.PYI_COOKIE_FORMAT, data[-cookie:])
    toc_end = offset + toc_length
    assert magic == bench.PYI_COOKIE_MAGIC and length == len(data)
    entries, head = [], struct.calcsize(bench.PYI_TOC_ENTRY_FORMAT)
    assert toc_end == length - cookie  # the table of contents, then the cookie
    while offset < toc_end:
        size, *_, typecode = struct.unpack_from(bench.PYI_TOC_ENTRY_FORMAT, data, offset)
        entries.append(
            (data[offset + head : offset + size].rstrip(b"\0").decode(), typecode.decode())
        )
        offset += size
    return entries


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="objcopy (binutils) is not installed")
def test_add_python_option_appends_an_option_entry_to_the_archive(tmp_path: Path) -> None:
    from PyInstaller.archive.writers import CArchiveWriter  # type: ignore[import-untyped]

    archive = tmp_path / "pydata"
    CArchiveWriter(str(archive), [("X utf8", "", False, "o")], "libpython3.11.so.1.0")
    program = tmp_path / "program"
    shutil.copy("/bin/true", program)
    subprocess.run(["objcopy", "--add-section", f"pydata={archive}", str(program)], check=True)

    bench.add_python_option(program, "X importtime")

    assert archive_toc(program, tmp_path) == [("X utf8", "o"), ("X importtime", "o")]
    assert subprocess.run([str(program)], check=False).returncode == 0  # still a program


def test_strace_log_gives_one_stage_per_exec_ending_at_the_first_connect() -> None:
    events = bench.trace_events(STRACE_LOG)
    assert [e.syscall for e in events] == ["execve", "fork", "execve", "clone", "execve", "connect"]
    stages = bench.exec_stages(events)
    assert [path for path, _ in stages] == [
        "/w/bootstrap",
        "/tmp/staticx-E/b",
        "/tmp/staticx-E/b",
    ]
    assert [round(ms, 1) for _, ms in stages] == [254.1, 77.5, 129.0]


def test_median_stages_is_taken_stage_by_stage() -> None:
    runs = [[("a", 1.0), ("b", 10.0)], [("a", 3.0), ("b", 30.0)], [("a", 2.0), ("b", 20.0)]]
    assert bench.median_stages(runs) == [("a", 2.0), ("b", 20.0)]


def test_tree_memory_reads_a_real_child_process() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; b = bytearray(8 << 20); print(1, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"
        memory = {p.pid: p for p in bench.tree_memory(os.getpid())}
        assert child.pid in memory
        assert memory[child.pid].hwm_kb >= 8 * 1024  # the bytearray was touched
        assert child.pid in bench.descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert bench.vm_hwm_kb(child.pid) == 0  # gone


def test_extraction_dirs_are_found_from_a_process_running_in_one(tmp_path: Path) -> None:
    unpacked = tmp_path / "staticx-12345"
    unpacked.mkdir()
    program = unpacked / "sleeper"
    program.write_bytes(Path("/bin/sleep").read_bytes())
    program.chmod(0o755)
    child = subprocess.Popen([str(program), "30"])
    try:
        deadline = time.monotonic() + 5
        while not bench.extraction_dirs([child.pid]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bench.extraction_dirs([child.pid]) == {unpacked}
    finally:
        child.kill()
        child.wait()


def test_a_memory_cgroup_counts_what_the_wrapped_program_allocates(tmp_path: Path) -> None:
    why_not = bench.MemoryCgroup.unavailable()
    if why_not is not None:
        pytest.skip(why_not)
    group = bench.MemoryCgroup("test")
    try:
        ran = subprocess.run(
            group.wrap(
                [
                    sys.executable,
                    "-c",
                    "b = bytearray(64 << 20); print(open('/proc/self/cgroup').read())",
                ]
            ),
            capture_output=True,
            text=True,
            check=True,
        )
        assert group.path.name in ran.stdout  # it ran inside the cgroup
        peak = group.peak_mb()
        assert peak is not None and 64 <= peak < 200, peak
    finally:
        group.remove()
    assert not group.path.exists()


def test_runtime_env_drops_what_only_one_candidate_would_be_told() -> None:
    env = bench.runtime_env(
        {"PATH": "/bin", "AWS_REGION": "x", "_HANDLER": "a.b", "PYTHONHASHSEED": "0", "HOME": "/h"}
    )
    assert env == {"PATH": "/bin", "HOME": "/h"}


@pytest.fixture
def echo_bootstrap(echo_dist: Path) -> Path:
    """The echo bootstrap, built once per run (CI has no dist/ of its own; conftest.py)."""
    return echo_dist / "bootstrap"


@pytest.mark.binary
@pytest.mark.rie
def test_a_short_bench_prints_both_columns_and_the_breakdown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, echo_bootstrap: Path
) -> None:
    out = tmp_path / "bench.json"
    status = bench.main(
        [
            "--cold",
            "1",
            "--warm",
            "5",
            "--breakdown",
            "1",
            "--no-importtime",
            "--limited",
            "1",
            "--bootstrap",
            str(echo_bootstrap),
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "| | A: static bootstrap | B: awslambdaric" in printed
    init_row = next(line for line in printed.splitlines() if line.startswith("| INIT duration"))
    cells = [c.strip() for c in init_row.strip("|").split("|")]
    assert float(cells[1]) > 0 and float(cells[2]) > 0 and cells[3].endswith("x")
    assert "peak memory" in printed and "zip, MB" in printed
    rows = {line.split("|")[1].strip(): line for line in printed.splitlines() if "|" in line}
    # One copy of the program per cold start, in the runtime's own TMPDIR; B writes none.
    written = [c.strip() for c in rows["written to /tmp per cold start, MB"].split("|")[2:4]]
    assert float(written[0]) > 10 and float(written[1]) == 0, written
    files = [c.strip() for c in rows["files written to /tmp per cold start"].split("|")[2:4]]
    assert 10 < int(files[0]) < 200 and files[1] == "0", files
    if bench.MemoryCgroup.unavailable() is None:
        peak = rows[next(k for k in rows if k.startswith("peak of the runtime's memory cgroup"))]
        assert float(peak.split("|")[2]) > 0, peak
        assert any(k.startswith("INIT inside a 128 MB memory cgroup") for k in rows)
    if "strace is not installed" not in printed:
        assert "Where A's cold start goes" in printed
    assert out.is_file()
