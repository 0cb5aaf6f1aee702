"""Every bundled distribution's metadata ships (build/package_metadata.py):
importlib.metadata answers in the static bootstrap as in a normal install, as it
does for the same function under awslambdaric (tests/side_by_side.py)."""

from __future__ import annotations

import importlib.metadata

import pytest
from side_by_side import APIFUNC, Runtime

PINS = dict(line.split("==") for line in (APIFUNC / "requirements.txt").read_text().split())


@pytest.mark.rie
def test_versions_requirements_and_distributions_of_bundled_packages(
    side_by_side: tuple[Runtime, Runtime],
) -> None:
    ours, theirs = (runtime.invoke({"action": "metadata"})[0] for runtime in side_by_side)
    assert ours.status == 200, ours.log
    assert not ours.errored(), ours.body
    versions = ours.body["versions"]
    assert versions["aws-lambda-powertools"] == PINS["aws-lambda-powertools"]
    assert versions["pydantic"] == PINS["pydantic"]
    # pydantic-core came as a dependency, at the version pydantic requires.
    assert f"pydantic-core=={versions['pydantic-core']}" in ours.body["requires"]
    assert ours.body["summary"].startswith("Powertools for AWS Lambda (Python)")
    # packages_distributions() reads top_level.txt or RECORD (hatchling's wheels).
    assert ours.body["distributions"] == {
        "aws_lambda_powertools": ["aws_lambda_powertools"],
        "pydantic": ["pydantic"],
        "pydantic_core": ["pydantic_core"],
    }
    # As awslambdaric sees the same requirements installed beside the function
    # (it also sees the test environment's own pydantic: each name once here).
    for key in ("versions", "requires", "summary"):
        assert ours.body[key] == theirs.body[key], key
    assert ours.body["distributions"] == {
        name: sorted(set(found)) for name, found in theirs.body["distributions"].items()
    }


@pytest.mark.rie
def test_entry_points_of_the_runtime_s_own_bundled_packages(
    side_by_side: tuple[Runtime, Runtime],
) -> None:
    ours = side_by_side[0].invoke({"action": "metadata"})[0]
    # httpx and idna (the runtime's Runtime API client) declare console scripts;
    # the bootstrap holds no other distribution that does.
    assert ours.body["entry_points"] == [
        f"httpx = {entry('httpx')}",
        f"idna = {entry('idna')}",
    ]


def entry(distribution: str) -> str:
    """The console script `distribution` declares, as installed here."""
    [script] = [
        ep
        for ep in importlib.metadata.distribution(distribution).entry_points
        if ep.group == "console_scripts"
    ]
    return script.value
