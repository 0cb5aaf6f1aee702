"""boto3 as Lambda's Python runtime has it (build/provided_sdk.py): the function's
imports read before the build environment is made, the pins, the PROVIDED_SDK=0
error, and a function that imports boto3 without requiring it, built and run
under the official emulator.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from support import ROOT, run_pipeline

from build import provided_sdk
from build.errors import BuildError
from build.provided_sdk import SDK_PINS, SdkImport, SdkUse, function_imports, pinned_blocks
from build.rie import Emulator

SDKFUNC = ROOT / "tests" / "fixtures" / "sdkfunc"
PINNED = re.search(r"^boto3==(\S+)$", (ROOT / "requirements" / "provided-sdk.in").read_text(), re.M)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


# --- what the function imports ---------------------------------------------------------


def test_the_scan_finds_every_import_of_the_sdk_and_which_are_required(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        {
            "app.py": """\
                import json, boto3.session
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from botocore.client import BaseClient
                def handler(event, context):
                    from botocore.exceptions import ClientError
                    return json.dumps(event)
            """,
            "pkg/__init__.py": "",
            "pkg/store.py": """\
                try:
                    import boto3
                except ImportError:
                    boto3 = None
                from . import botocore  # the package's own module, not the SDK
                import boto3_stubs  # another distribution
            """,
            "pkg/botocore.py": "",
            "notes.txt": "import boto3",
        },
    )
    found = sorted(function_imports(src, "app", ()), key=lambda i: (i.module, i.name, i.required))
    assert found == [
        SdkImport("app", "boto3", required=True),
        SdkImport("app", "botocore", required=False),  # under `if TYPE_CHECKING`
        SdkImport("app", "botocore", required=True),  # inside the handler: still required
        SdkImport("pkg.store", "boto3", required=False),  # in a try
    ]
    # EXCLUDE'd files are not the function's.
    assert [i.module for i in function_imports(src, "app", ("pkg",))] == ["app"] * 3


def test_without_src_the_shipped_handlers_module_is_read() -> None:
    assert {i.name for i in function_imports(None, "handlers.api", ())} == {"boto3"}
    assert function_imports(None, "handlers.echo", ()) == []


def test_the_environment_key_changes_only_when_the_sdk_may_be_provided() -> None:
    boto3 = (SdkImport("app", "boto3", required=True),)
    assert SdkUse(enabled=False, imports=boto3).env_key() is None  # PROVIDED_SDK=0: as before
    assert SdkUse(enabled=True).env_key() is None  # no import: the environment it always was
    key = SdkUse(enabled=True, imports=boto3).env_key()
    assert key is not None and SDK_PINS.read_bytes() in key


# --- the pins ---------------------------------------------------------------------------


def test_the_pins_are_hashed_and_hold_what_boto3_needs() -> None:
    assert PINNED is not None
    blocks = pinned_blocks(SDK_PINS.read_text())
    assert set(blocks) == {
        "boto3",
        "botocore",
        "jmespath",
        "python-dateutil",
        "s3transfer",
        "six",
        "urllib3",
    }
    assert all("--hash=sha256:" in block for block in blocks.values())
    assert provided_sdk.pinned_versions()["boto3"] == PINNED.group(1)
    header = (ROOT / "requirements" / "provided-sdk.in").read_text()
    assert "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html" in header
    assert re.search(r"read[\s#]+20\d\d-\d\d-\d\d", header), "the date it was read"


# --- PROVIDED_SDK=0 ---------------------------------------------------------------------


def fake_env(root: Path, *distributions: str) -> Path:
    """A build environment's site-packages holding only these distributions' metadata."""
    site = root / "lib" / "python3.11" / "site-packages"
    for name in distributions:
        info = site / f"{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    site.mkdir(parents=True, exist_ok=True)
    return root


def test_provided_sdk_0_fails_a_required_import_in_one_line(tmp_path: Path) -> None:
    use = SdkUse(enabled=False, imports=(SdkImport("app", "boto3", required=True),))
    requirements = tmp_path / "requirements.txt"
    with pytest.raises(BuildError) as failed:
        provided_sdk.check_disabled(fake_env(tmp_path / "env"), use, requirements)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("module 'app' imports boto3, which Lambda's Python runtime includes")
    assert f"add boto3 to REQUIREMENTS={requirements}" in message
    assert "PROVIDED_SDK=0" in message
    # The requirements bring it, the import is optional, or the build may provide it: no error.
    provided_sdk.check_disabled(fake_env(tmp_path / "with", "boto3"), use, requirements)
    optional = SdkUse(enabled=False, imports=(SdkImport("app", "boto3", required=False),))
    provided_sdk.check_disabled(tmp_path / "env", optional, requirements)
    provided_sdk.check_disabled(tmp_path / "env", SdkUse(True, use.imports), requirements)


def test_provided_sdk_0_stops_the_build_before_the_freeze(tmp_path: Path) -> None:
    built = run_pipeline(
        "build",
        "--handler=app.handler",
        f"--src={SDKFUNC}",
        "--provided-sdk=0",
        f"--dist={tmp_path}",
    )
    assert built.returncode == 1, built.stdout + built.stderr
    # One line says it, the last (the interpreter's choice, pip's warnings may come first).
    assert built.stderr.strip().splitlines()[-1] == (
        "build: module 'app' imports boto3, which Lambda's Python runtime includes but "
        "PROVIDED_SDK=0 leaves out: add boto3 to a requirements file (REQUIREMENTS=), "
        "or build without PROVIDED_SDK=0"
    )
    assert "==> freeze" not in built.stdout
    assert not (tmp_path / "bootstrap").exists()


# --- the built function -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """tests/fixtures/sdkfunc, built as a user would: SRC, no requirements file."""
    dist = tmp_path_factory.mktemp("sdk-dist")
    built = run_pipeline("build", "--handler=app.handler", f"--src={SDKFUNC}", f"--dist={dist}")
    assert built.returncode == 0, built.stdout + built.stderr
    return dist, built.stdout


@pytest.mark.binary
@pytest.mark.rie
def test_a_function_that_imports_boto3_unrequired_gets_the_pinned_one(
    sdk_dist: tuple[Path, str],
) -> None:
    dist, output = sdk_dist
    assert PINNED is not None
    version = PINNED.group(1)
    said = [line for line in output.splitlines() if line.startswith("build: the function imports")]
    assert said == [
        "build: the function imports boto3 and botocore and its requirements do not bring them: "
        f"adding boto3 {version}, botocore {provided_sdk.pinned_versions()['botocore']} as "
        "Lambda's Python runtimes include them (requirements/provided-sdk.txt, "
        "with what they need; PROVIDED_SDK=0 turns this off)"
    ]
    # The record says so (make zip rebuilds when it changes)...
    record = json.loads((dist / "bootstrap.inputs.json").read_text())
    assert record["inputs"]["provided_sdk"] is True
    # ...the SBOM names where boto3 came from...
    sbom = json.loads((dist / "bootstrap.cdx.json").read_text())
    parts = {
        c["name"]: {p["name"]: p["value"] for p in c.get("properties", [])}.get("staticlambda:part")
        for c in sbom["components"]
    }
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3"):
        assert parts[name] == "provided-sdk", name
    # ...and the function runs as on Lambda: its client made at import, in Lambda's region,
    # with the role's credentials (no instance metadata is asked for).
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
        "AWS_REGION": "eu-west-1",  # both, as Lambda sets them
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIDTEST",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with Emulator([str(dist / "bootstrap")], env=env, cwd=dist) as rie:
        status, body = rie.invoke("{}")
    assert status == 200, body
    assert json.loads(body) == {
        "boto3": version,
        "botocore": provided_sdk.pinned_versions()["botocore"],
        "client": "s3",
        "region": "eu-west-1",
    }


# --- the build record ---------------------------------------------------------------------


def test_make_zip_rebuilds_when_the_provided_sdk_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from build import record

    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "bootstrap").write_bytes(b"\x7fELF stand-in")
    record.write_record(dist, record.Inputs(), "x86_64")
    written = record.read_record(dist)
    assert written is not None
    recorded = record.recorded_inputs(written)
    assert recorded.provided_sdk is True
    # PROVIDED_SDK=0 given to `make zip` after a build without it...
    off = replace(recorded, provided_sdk=False)
    assert record.rebuild_reason(dist, written, recorded, off) == (
        "provided_sdk differ from the last build's"
    )
    # ...and new pins (the provided boto3 moved) are files of the inputs that changed.
    pins = tmp_path / "provided-sdk.txt"
    pins.write_text(SDK_PINS.read_text() + "# moved\n")
    monkeypatch.setattr(record, "SDK_PINS", pins)
    assert record.rebuild_reason(dist, written, recorded, recorded) == (
        "files of the last build's inputs changed"
    )
