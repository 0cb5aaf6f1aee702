"""Functions as users write them, built as a user builds them (`make zip` with
SRC and REQUIREMENTS outside the repository), run under the official emulator;
and the mistakes users make, each stopped at build with one line.

The realistic function (tests/fixtures/realfunc, copied out of the repository
first) is built once per session: powertools Logger + Tracer + Metrics,
pydantic v2, FastAPI through Mangum, data files read beside the code and with
importlib.resources, and a package of its own named `handlers`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from makefile_support import MAKE_VARIABLES
from support import ROOT

from build.buildenv import build_env
from build.rie import Emulator

REALFUNC = ROOT / "tests" / "fixtures" / "realfunc"


def make(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`make -C <repo> ARGS`, run from ``cwd`` as a user outside the repository would."""
    base = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "BUILDER=native", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def lambda_env(**extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def realfunc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's folder: the function, its requirements, and dist/ (built and zipped)."""
    home = tmp_path_factory.mktemp("user-project")
    shutil.copytree(REALFUNC, home / "fn")
    built = make(
        "zip",
        "HANDLER=app.handler",
        f"SRC={home / 'fn'}",
        f"REQUIREMENTS={home / 'fn' / 'requirements.txt'}",
        f"DIST={home / 'dist'}",
        cwd=home,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (home / "build.log").write_text(built.stdout + built.stderr)
    return home


def invoke(home: Path, event: object, **env: str) -> tuple[int, object, str]:
    dist = home / "dist"
    with Emulator([str(dist / "bootstrap")], env=lambda_env(**env), cwd=dist) as rie:
        status, body = rie.invoke(json.dumps(event))
    return status, json.loads(body), rie.log()


# --- the realistic function -------------------------------------------------------


def test_the_build_says_what_it_bundled(realfunc: Path) -> None:
    log = (realfunc / "build.log").read_text()
    assert "data files: 2 (handlers/greeting.json, templates/hello.txt)" in log
    assert "aws_xray_sdk" in log.split("package data:", 1)[1].splitlines()[0]
    assert "init ok: the runtime asked for its first event" in log
    with zipfile.ZipFile(realfunc / "dist" / "function.zip") as z:
        assert z.namelist() == ["bootstrap"]


def test_powertools_pydantic_data_files_and_a_user_handlers_package(realfunc: Path) -> None:
    order = {"order": {"id": 7, "item": "O'Brien's"}}
    status, body, log = invoke(realfunc, order, POWERTOOLS_TRACE_DISABLED="1")
    assert status == 200, body
    assert body == {
        "order": {"id": 7, "item": "O'Brien's"},
        "text": "user handlers package: O'Brien's",  # the user's `handlers`, not the tool's
        "built_by": "user build package",  # the user's `build`, not the tool's
        "template": "Hello from a data file",
        "greeting": "hi from importlib.resources",
        "tracer_enabled": False,
    }
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r.get("message") == "order received" and r["order_id"] == 7 for r in records)
    emf = [r for r in records if "_aws" in r]
    assert emf and emf[0]["Orders"] == [1.0]
    status, body, _ = invoke(realfunc, {"order": {"id": "x", "item": "y"}})
    assert (status, body) == (200, {"invalid": 1})  # pydantic v2 validated


def test_tracer_enabled_without_a_daemon(realfunc: Path) -> None:
    # On, as in Lambda (LAMBDA_TASK_ROOT set), with no X-Ray daemon listening:
    # aws_xray_sdk's sampling rules (package data no hook collects) must be there.
    status, body, _ = invoke(realfunc, {"order": {"id": 1, "item": "a"}}, LAMBDA_TASK_ROOT="/")
    assert status == 200, body
    assert isinstance(body, dict) and body["tracer_enabled"] is True


def test_fastapi_through_mangum_answers_an_http_api_v2_event(realfunc: Path) -> None:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/orders/42",
        "rawQueryString": "",
        "headers": {"host": "x.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "x",
            "domainName": "x.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "x",
            "http": {
                "method": "GET",
                "path": "/orders/42",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test",
            },
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:15:00:00 +0000",
            "timeEpoch": 1800000000000,
        },
        "isBase64Encoded": False,
    }
    status, body, _ = invoke(realfunc, event)
    assert status == 200
    assert isinstance(body, dict) and body["statusCode"] == 200
    assert json.loads(body["body"]) == {"order": 42, "via": "fastapi"}


def test_make_zip_again_zips_what_was_built(realfunc: Path) -> None:
    # The README's step 4 names HANDLER and SRC but not REQUIREMENTS: the
    # requirements of the build are kept, nothing is rebuilt.
    before = (realfunc / "dist" / "bootstrap").read_bytes()
    again = make(
        "zip",
        "HANDLER=app.handler",
        f"SRC={realfunc / 'fn'}",
        f"DIST={realfunc / 'dist'}",
        cwd=realfunc,
    )
    assert again.returncode == 0, again.stderr
    assert "zip: " in again.stdout and "as built" in again.stdout
    assert f"REQUIREMENTS={realfunc / 'fn' / 'requirements.txt'}" in again.stdout
    assert "==> freeze" not in again.stdout
    assert (realfunc / "dist" / "bootstrap").read_bytes() == before
    with zipfile.ZipFile(realfunc / "dist" / "function.zip") as z:
        assert z.read("bootstrap") == before


def test_the_same_requirements_reuse_their_build_environment(realfunc: Path) -> None:
    env = build_env(realfunc / "fn" / "requirements.txt")
    assert env.reused
    assert ".cache/envs/" in str(env.root)
    tool_only = {"moto", "mypy", "yaml", "boto3", "pytest"}
    site = next((env.root / "lib").glob("python3*/site-packages"))
    assert not tool_only & {p.name for p in site.iterdir()}


# --- make invoke ---------------------------------------------------------------------

HOSTILE = "O'Brien's \"x\" $HOME `touch PWNED` $(touch PWNED)\nline two"


def test_make_invoke_shows_the_function_and_survives_quotes(realfunc: Path) -> None:
    event = json.dumps({"echo": HOSTILE}, indent=1)  # newlines between tokens too
    ran = make("invoke", f"EVENT={event}", f"DIST={realfunc / 'dist'}", cwd=realfunc)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == {"echo": HOSTILE}
    assert "INIT REPORT" in ran.stdout and "REPORT RequestId" in ran.stdout
    assert not (realfunc / "PWNED").exists() and not (ROOT / "PWNED").exists()
    # EVENT_FILE, the function's log records, the init trace on request.
    (realfunc / "event.json").write_text(json.dumps({"order": {"id": 3, "item": "b"}}))
    ran = make(
        "invoke",
        f"EVENT_FILE={realfunc / 'event.json'}",
        "INIT_TRACE=1",
        f"DIST={realfunc / 'dist'}",
        cwd=realfunc,
    )
    assert ran.returncode == 0, ran.stderr
    assert '"message":"order received"' in ran.stdout
    assert '"CloudWatchMetrics"' in ran.stdout
    assert "staticlambda init:" in ran.stdout and "in all, to the first /next" in ran.stdout


def test_make_invoke_exits_1_when_the_function_errors(realfunc: Path) -> None:
    ran = make("invoke", 'EVENT={"raise": "boom"}', f"DIST={realfunc / 'dist'}", cwd=realfunc)
    assert ran.returncode != 0
    assert "[ERROR] ValueError: boom" in ran.stdout
    assert '"errorType": "ValueError"' in ran.stdout
    assert "invoke: the function errored" in ran.stderr


def test_make_invoke_gives_lambdas_environment_not_yours(realfunc: Path) -> None:
    secret = "wJalrXUtnFEMI-not-a-real-secret"
    caller = {
        "HOME": str(realfunc),
        "DB_PASSWORD": "hunter2",
        "GITHUB_TOKEN": "ghp_x",
        "AWS_REGION": "eu-west-3",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_PROFILE": "prod",
    }
    dist = f"DIST={realfunc / 'dist'}"
    ran = make("invoke", 'EVENT={"env": 1}', dist, cwd=realfunc, env=caller)
    assert ran.returncode == 0, ran.stderr
    reply = json.loads(ran.stdout.strip().splitlines()[-1])
    names = set(reply["names"])
    assert reply["region"] == "eu-west-3"
    assert {"AWS_REGION", "AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT", "TMPDIR"} <= names
    assert not names & {"HOME", "DB_PASSWORD", "GITHUB_TOKEN", "AWS_PROFILE"}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    asked = make(
        "invoke",
        'EVENT={"env": 1}',
        "AWS_CREDENTIALS=1",
        "PASS_ENV=DB_PASSWORD",
        dist,
        cwd=realfunc,
        env=caller,
    )
    assert asked.returncode == 0, asked.stderr
    names = set(json.loads(asked.stdout.strip().splitlines()[-1])["names"])
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"} <= names
    assert "HOME" not in names
    assert secret not in asked.stdout + asked.stderr, "a credential was printed"
    missing = make("invoke", "PASS_ENV=NOT_SET_ANYWHERE", dist, cwd=realfunc, env=caller)
    assert missing.returncode != 0
    assert "PASS_ENV names NOT_SET_ANYWHERE, which is not set" in missing.stderr


# --- the mistakes users make, each stopped at build ----------------------------------


def write_function(folder: Path, source: str, requirements: str | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(source)
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def build_fails(folder: Path, *extra: str) -> str:
    """Builds ``folder``'s app.handler; asserts it failed; returns the error line."""
    ran = make(
        "build", "HANDLER=app.handler", f"SRC={folder}", f"DIST={folder}/dist", *extra, cwd=folder
    )
    assert ran.returncode != 0, ran.stdout
    errors = [
        line
        for line in ran.stderr.splitlines()
        if line.startswith("build: ") and not line.startswith("build: using ")
    ]
    assert len(errors) == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    return errors[0]


def test_a_syntax_error_fails_the_build_with_file_and_line(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", "def handler(event, context):\n    return {\n")
    line = build_fails(fn)
    assert line.startswith("build: Runtime.UserCodeSyntaxError: Syntax error in module 'app': "), (
        line
    )
    assert f"({fn / 'app.py'}, line 2)" in line


def test_a_misspelled_handler_fails_the_build(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", "def handle(event, context):\n    return event\n")
    (tmp_path / "fn" / "dist").mkdir()
    (tmp_path / "fn" / "dist" / "function.zip").write_text("another build's zip")
    line = build_fails(fn)
    # Read from app.py before anything is built (build/handler_name.py), with the fix.
    assert line == (
        "build: HANDLER=app.handler: app.py of module 'app' defines no 'handler'; closest: "
        "handle: give HANDLER=app.handle"
    )
    # Nothing of another build stays beside a new (here: failed) one.
    assert not (tmp_path / "fn" / "dist" / "function.zip").exists()


def test_an_import_the_requirements_do_not_name_fails_the_build(tmp_path: Path) -> None:
    # PyYAML is in the tool's own .venv (through moto): it must not leak in.
    fn = write_function(
        tmp_path / "fn", "import yaml\n\ndef handler(event, context):\n    return event\n", ""
    )
    line = build_fails(fn, f"REQUIREMENTS={fn / 'requirements.txt'}")
    assert line == (
        "build: Runtime.ImportModuleError: Unable to import module 'app': No module named "
        f"'yaml' -- add the package that provides 'yaml' to REQUIREMENTS={fn / 'requirements.txt'}"
    )


def test_a_missing_import_the_init_does_not_reach_fails_the_build(tmp_path: Path) -> None:
    # pkg.later is imported inside the handler, so the init check cannot see it fail;
    # PyInstaller's own warnings can. An optional import (in a try) is the user's choice.
    fn = write_function(
        tmp_path / "fn",
        "def handler(event, context):\n    from pkg import later\n    return event\n",
    )
    (fn / "pkg").mkdir()
    (fn / "pkg" / "__init__.py").write_text("")
    (fn / "pkg" / "later.py").write_text(
        "try:\n    import ujson\nexcept ImportError:\n    ujson = None\nimport yaml\n"
    )
    line = build_fails(fn)
    assert line == (
        "build: module 'pkg.later' imports 'yaml', which nothing bundled provides: add the "
        "package that provides 'yaml' to a requirements file (REQUIREMENTS=)"
    )


def test_warnings_name_only_the_users_unforgiving_imports() -> None:
    from build.missing import unresolved_imports

    warnings = (
        "missing module named yaml - imported by pkg.later (top-level), lib.x (top-level)\n"
        "missing module named ujson - imported by pkg.later (optional)\n"
        "missing module named winreg - imported by pkg.win (conditional), pkg.y (delayed)\n"
        "missing module named 'a.b' - imported by app (delayed, optional)\n"
        "missing module named pydantic.BaseModel - imported by app (top-level)\n"
    )
    assert unresolved_imports(warnings, {"pkg", "app"}) == [
        ("yaml", "pkg.later"),
        ("winreg", "pkg.y"),
    ]


def test_an_exception_at_import_fails_the_build_with_its_type(tmp_path: Path) -> None:
    source = "raise RuntimeError('init failed on purpose')\n\ndef handler(e, c):\n    return e\n"
    line = build_fails(write_function(tmp_path / "fn", source))
    assert line == (
        "build: RuntimeError: init failed on purpose -- if init needs environment variables, "
        'give them: ENV_FILE=<dotenv file> or ENV="NAME=value ..."; INIT_CHECK=0 skips this check'
    )


def test_a_user_runtime_package_is_refused(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", "def handler(event, context):\n    return event\n")
    (fn / "runtime").mkdir()
    (fn / "runtime" / "__init__.py").write_text("")
    line = build_fails(fn)
    assert "has a top-level `runtime` module or package, which is staticlambda's own" in line
    assert line.endswith("rename yours")


def test_a_missing_requirements_file_is_one_line(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", "def handler(event, context):\n    return event\n")
    line = build_fails(fn, f"REQUIREMENTS={fn / 'nope.txt'}")
    assert line == f"build: REQUIREMENTS={fn / 'nope.txt'} does not exist"


# --- requirements with hashes --------------------------------------------------------

SIX = "six==1.17.0"
SIX_WHEEL_SHA256 = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def test_hashed_requirements_are_checked_and_a_wrong_hash_stops_the_build(
    tmp_path: Path,
) -> None:
    source = "import six\n\ndef handler(event, context):\n    return {'six': six.__version__}\n"
    good = write_function(tmp_path / "good", source, f"{SIX} --hash=sha256:{SIX_WHEEL_SHA256}\n")
    ran = make(
        "build",
        "HANDLER=app.handler",
        f"SRC={good}",
        f"REQUIREMENTS={good / 'requirements.txt'}",
        "ONLY_BINARY=1",
        f"DIST={good / 'dist'}",
        cwd=good,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "installed with --require-hashes" in ran.stdout
    assert "init ok" in ran.stdout
    bad = write_function(tmp_path / "bad", source, f"{SIX} --hash=sha256:{'0' * 64}\n")
    line = build_fails(bad, f"REQUIREMENTS={bad / 'requirements.txt'}")
    assert line == f"build: pip could not install {bad / 'requirements.txt'} (its output is above)"


# --- the README's walkthrough, verbatim ------------------------------------------------


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("<!-- /walkthrough -->", 1)[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


def test_the_readme_walkthrough_ends_in_a_working_zip(tmp_path: Path) -> None:
    # A copy of the repository as a clone has it; the tool's .venv and caches are
    # shared (the copies keep their times, so make sees the .venv up to date).
    clone = tmp_path / "clone"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    (clone / ".cache").symlink_to(ROOT / ".cache")
    script = tmp_path / "walkthrough.sh"
    script.write_text(readme_walkthrough())
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    env["BUILDER"] = "native"  # this machine, whether or not a Docker engine answers
    ran = subprocess.run(
        ["bash", str(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out
    assert "not a dynamic executable" in out
    assert "data files: 1 (templates/greeting.txt)" in out
    assert "zip: " in out and "as built (HANDLER=app.handler" in out
    reply = json.loads(ran.stdout.strip().splitlines()[-1])
    assert reply["hello"] == "Lambda" and reply["greeting"] == "Hello from a data file"
    with zipfile.ZipFile(clone / "dist" / "function.zip") as z:
        assert z.read("bootstrap") == (clone / "dist" / "bootstrap").read_bytes()
    # Then the README's `make compare` block: the same function, beside awslambdaric.
    section = (ROOT / "README.md").read_text().split("## Check your own function: ", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    compared = subprocess.run(
        ["bash", "-c", block], cwd=clone, env=env, capture_output=True, text=True, timeout=600
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "\nhello.json: same  (INIT A " in compared.stdout


# --- the init check's isolation --------------------------------------------------------

IS_ROOT = os.geteuid() == 0


@pytest.mark.skipif(not IS_ROOT, reason="the empty root needs root (unshare, chroot); CI is root")
def test_init_runs_with_no_network_and_init_check_0_skips_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:  # answers on this machine's network only
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        source = (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n\n"
            "def handler(event, context):\n    return event\n"
        )
        fn = write_function(tmp_path / "fn", source)
        line = build_fails(fn)
        assert line.startswith(
            "build: ConnectionRefusedError: [Errno 111] Connection refused -- "
        ), line
        assert line.endswith("INIT_CHECK=0 skips this check")
        skipped = make(
            "build", "HANDLER=app.handler", f"SRC={fn}", f"DIST={fn}/dist", "INIT_CHECK=0", cwd=fn
        )
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "init check skipped (INIT_CHECK=0)" in skipped.stdout


def test_without_root_the_init_check_says_what_it_could_not_isolate(
    realfunc: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from build import initcheck

    monkeypatch.setattr(initcheck, "isolation", lambda: "not root")
    outcome = initcheck.verify_init(realfunc / "dist" / "bootstrap", "app.handler", None)
    assert outcome.reached_next
    said = capsys.readouterr().out
    assert "init check: not root, so NOT in an empty root and WITH this machine's network" in said
    assert "init ok: the runtime asked for its first event" in said


def test_root_that_may_not_unshare_checks_init_anyway_and_says_why(
    realfunc: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As in an unprivileged container: root, but unshare is refused.
    from build import initcheck

    (tmp_path / "unshare").write_text(
        "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n"
    )
    (tmp_path / "unshare").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(initcheck, "isolation", lambda: None)
    outcome = initcheck.verify_init(realfunc / "dist" / "bootstrap", "app.handler", None)
    assert outcome.reached_next
    said = capsys.readouterr().out
    assert (
        "init check: the empty root could not be made (unshare: unshare failed: Operation not "
        "permitted), so NOT in an empty root" in said
    )


# --- make zip: what was built, or a build when it must -----------------------------------


def test_make_zip_builds_only_when_it_must(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    fresh = make("zip", f"DIST={dist}", cwd=tmp_path)  # as on a fresh clone: the echo handler
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert (
        f"zip: nothing was built in {dist} and no HANDLER was given: building the default "
        "echo handler (handlers.echo.handler)"
    ) in fresh.stdout
    assert (dist / "bootstrap.handler").read_text() == "handlers.echo.handler\n"
    assert (dist / "function.zip").is_file()
    fn = write_function(tmp_path / "fn", "def handler(event, context):\n    return 'v1'\n")
    built = make("build", "HANDLER=app.handler", f"SRC={fn}", f"DIST={dist}", cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert not (dist / "function.zip").exists(), "the echo zip stayed beside the new bootstrap"
    same = make("zip", f"DIST={dist}", cwd=tmp_path)
    assert "as built (HANDLER=app.handler" in same.stdout and "==> freeze" not in same.stdout
    (fn / "app.py").write_text("def handler(event, context):\n    return 'v2'\n")
    changed = make("zip", f"DIST={dist}", cwd=tmp_path)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "zip: building first: files of the last build's inputs changed" in changed.stdout
    assert "==> freeze app.handler" in changed.stdout
    with Emulator([str(dist / "bootstrap")], env=lambda_env(), cwd=dist) as rie:
        assert rie.invoke("{}") == (200, b'"v2"')
