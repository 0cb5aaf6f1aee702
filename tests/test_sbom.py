"""The SBOM beside the bootstrap (build/sbom/): dist/bootstrap.cdx.json, read as a
scanner reads it, for the echo bootstrap and a user's function with requirements.

Both bootstraps are the suite's own (conftest.py), built once per run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import ssl
from pathlib import Path
from typing import Any

from support import USERFUNC


def read_sbom(dist: Path) -> dict[str, Any]:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (dist / "bootstrap.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return dict(json.loads(text))


def by_purl(sbom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Components by purl without qualifiers; properties as a dict."""
    found = {}
    for component in sbom["components"]:
        component["props"] = {p["name"]: p["value"] for p in component.get("properties", [])}
        found[component.get("purl", component["name"]).split("?")[0]] = component
    return found


def test_the_sbom_lists_what_the_function_bootstrap_holds(user_dist: Path) -> None:
    sbom = read_sbom(user_dist)
    digest = hashlib.sha256((user_dist / "bootstrap").read_bytes()).hexdigest()
    assert sbom["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    components = by_purl(sbom)
    # The function's requirement, at the version its requirements file pins...
    name, version = (USERFUNC / "requirements.txt").read_text().strip().split("==")
    powertools = components[f"pkg:pypi/{name}@{version}"]
    assert powertools["props"]["staticlambda:part"] == "requirements"
    # ...not boto3, which powertools imports only if present: the function's build
    # environment holds its requirements and the build pins, not the tool's packages...
    assert not [purl for purl in components if purl.startswith("pkg:pypi/boto3@")]
    # ...the runtime's own, and the interpreter.
    httpx = components[f"pkg:pypi/httpx@{importlib.metadata.version('httpx')}"]
    assert httpx["props"]["staticlambda:part"] == "runtime"
    assert f"pkg:generic/cpython@{platform.python_version()}" in components
    # glibc and OpenSSL as this machine's Python reports them: the libraries bundled.
    cpes = {c.get("cpe", "") for c in sbom["components"]}
    assert f"cpe:2.3:a:gnu:glibc:{platform.libc_ver()[1]}:*:*:*:*:*:*:*" in cpes
    openssl = ssl.OPENSSL_VERSION.split()[1]
    assert f"cpe:2.3:a:openssl:openssl:{openssl}:*:*:*:*:*:*:*" in cpes
    # The function's own modules, files in the tree (app.py), are first-party; neither
    # the metadata folders (httpx-0.28.1.dist-info/) nor __pycache__/ are taken for modules.
    [first_party] = [c for c in sbom["components"] if c.get("bom-ref") == "first-party"]
    modules = first_party["props"]["staticlambda:modules"].split(", ")
    assert {"app", "runtime"} <= set(modules)
    assert all(m.isidentifier() and m != "__pycache__" for m in modules), modules
    libssl = [c for c in sbom["components"] if "openssl" in c.get("cpe", "")]
    assert {"libssl.so.3", "libcrypto.so.3"} <= set(
        libssl[0]["props"]["staticlambda:files"].split(", ")
    )


def test_the_echo_sbom_is_valid_and_a_broken_one_is_not(echo_dist: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sbom = read_sbom(echo_dist)
    handler = sbom["metadata"]["component"]["properties"]
    assert handler == [{"name": "staticlambda:handler", "value": "handlers.echo.handler"}]
    assert "pkg:pypi/aws-lambda-powertools" not in json.dumps(sbom)
    sbom["components"][0]["type"] = "not-a-type"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is not None
