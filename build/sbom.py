"""The SBOM: dist/bootstrap.cdx.json, a CycloneDX 1.6 list of what the static bootstrap holds.

A PyInstaller + staticx binary shows a scanner nothing (no site-packages, no dpkg database),
so the build says what went in, read back from the bootstrap itself, not from what was asked:

    staticx's archive   the section .staticx.archive: the frozen program and the libraries
                        staticx bundled for it (glibc's libc.so.6, ld.so, libm, libz, ...)
    PyInstaller's       inside that program: the shared libraries it carries (libpython,
    archive             OpenSSL's libssl/libcrypto, libffi, ...), the extension modules
                        and the PYZ of frozen Python modules

Each frozen module is traced to what provides it:

    Python packages     the distribution whose files hold its top-level package, with its
                        version: the runtime's (httpx, ...) from the build's environment,
                        the function's own from the folder its requirements were installed
                        in (pkg:pypi purls)
    CPython             the standard library, libpython and lib-dynload: the build's
                        interpreter and its version (cpe python:python)
    system libraries    each bundled file matched by sha256 to a file of the build machine,
                        then to the package that installed it (dpkg on Debian, rpm on
                        Amazon Linux), named as scanners read them (pkg:deb / pkg:rpm purls);
                        glibc and OpenSSL also get their upstream version from the library's
                        own version string, and a CPE
    the loaders         PyInstaller's bootloader and staticx's, with their versions
    this project        the runtime and the handler's modules, first-party

Scanners read it as it is: `grype sbom:dist/bootstrap.cdx.json`, `trivy sbom ...`, Amazon
Inspector's SBOM scan. The file lies beside function.zip, never inside it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import uuid
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import tomllib
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from build.errors import BuildError, ToolFailed
from build.paths import ROOT
from build.static import ARCHIVE_SECTION as STATICX_SECTION
from build.static import dump_section

SBOM_NAME = "bootstrap.cdx.json"
PYINSTALLER_COOKIE = b"MEI\014\013\012\013\016"
ONEDIR_TREE = "_internal/"
# staticx's own helper library, not the build machine's.
STATICX_FILES = frozenset({"libnssfix.so"})
FIRST_PARTY = ("runtime", "handlers")
PROPERTY = "staticlambda:"


@dataclass(frozen=True)
class Upstream:
    """A project whose libraries say their own release in a version string."""

    project: str
    files: re.Pattern[str]
    version: re.Pattern[bytes]
    cpe: str  # with {} for the version


UPSTREAM = (
    Upstream(
        "glibc",
        re.compile(r"^libc\.so\.6$"),
        re.compile(rb"GNU C Library \([^)]*\) [a-z ]*version (\d+\.\d+)"),
        "cpe:2.3:a:gnu:glibc:{}:*:*:*:*:*:*:*",
    ),
    Upstream(
        "openssl",
        re.compile(r"^lib(crypto|ssl)\.so"),
        re.compile(rb"OpenSSL (\d+\.\d+\.\d+[a-z]?) +\d+ \w+ \d{4}"),
        "cpe:2.3:a:openssl:openssl:{}:*:*:*:*:*:*:*",
    ),
)


@dataclass
class Contents:
    """What the static bootstrap holds: files by name, the frozen modules by name."""

    libraries: dict[str, bytes] = field(default_factory=dict)  # name -> bytes
    extensions: list[str] = field(default_factory=list)  # archive paths of .so modules
    modules: set[str] = field(default_factory=set)  # dotted names in the PYZ
    data_files: list[str] = field(default_factory=list)  # e.g. certifi/cacert.pem
    python_version: int = 0  # 311, as PyInstaller's cookie stores it


def staticx_members(bootstrap: Path) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "archive.tar"
        try:
            dump_section(bootstrap, STATICX_SECTION, raw)
        except ToolFailed as e:
            raise BuildError(f"SBOM: no staticx archive in {bootstrap}: {e.stderr}") from None
        with tarfile.open(raw) as tar:
            return {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }


def read_contents(bootstrap: Path) -> Contents:
    from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

    contents = Contents()
    program = None
    for name, data in staticx_members(bootstrap).items():
        if name.startswith(ONEDIR_TREE):
            # PyInstaller's onedir tree (build/static.py puts it in staticx's archive).
            add_tree_file(contents, name[len(ONEDIR_TREE) :], data)
        elif PYINSTALLER_COOKIE in data[-4096:] or (program is None and PYINSTALLER_COOKIE in data):
            program = data
        else:
            contents.libraries[name] = data
    if program is None:
        raise BuildError(f"SBOM: no PyInstaller program inside {bootstrap}")
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(program)
        tmp.flush()
        archive = CArchiveReader(tmp.name)
        contents.python_version = python_version_of(program)
        for name, entry in archive.toc.items():
            typecode = entry[4]
            if typecode == "z":
                contents.modules |= set(archive.open_embedded_archive(name).toc)
            elif typecode in "be":
                if "/lib-dynload/" in f"/{name}" or not re.search(r"^lib[^/]*\.so", name):
                    contents.extensions.append(name)
                else:
                    contents.libraries[name] = archive.extract(name)
            elif typecode == "x":
                contents.data_files.append(name)
    return contents


def add_tree_file(contents: Contents, name: str, data: bytes) -> None:
    """One file of the onedir tree, sorted as the onefile archive's typecodes sort them."""
    if name.endswith(".so") or ".so." in name:
        if "/lib-dynload/" in f"/{name}" or not re.search(r"^lib[^/]*\.so", name):
            contents.extensions.append(name)
        else:
            contents.libraries[name] = data
    else:
        contents.data_files.append(name)


def python_version_of(program: bytes) -> int:
    at = program.rfind(PYINSTALLER_COOKIE)
    return int.from_bytes(program[at + 20 : at + 24], "big") if at >= 0 else 0


# --- who provides what ---------------------------------------------------------------


def top_levels(dist: importlib.metadata.Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return set(text.split())
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__"):
            continue
        names.add(first.split(".")[0])
    return names


def distributions(paths: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """Top-level module name -> the distribution providing it, first path first."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions(path=paths):
        for name in top_levels(dist):
            found.setdefault(name, dist)
    return found


def site_paths(python: Path) -> list[str]:
    """The import path of another interpreter (a build environment), as it reports it."""
    probe = subprocess.run(
        [str(python), "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [str(p) for p in json.loads(probe.stdout)]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions() -> set[str]:
    """The runtime's dependencies (pyproject.toml) and theirs, as installed for the build.

    Anything else found in the build's environment got in because the handler's imports
    reached it there (boto3, for a function that imports it without requiring it).
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [requirement_name(r) for r in project.get("dependencies", [])]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return canonical(match.group(1)) if match else ""


def top_level_of(archive_name: str) -> str:
    return archive_name.replace("/", ".").split(".")[0]


@dataclass(frozen=True)
class Owner:
    """The OS package a bundled library came from."""

    manager: str  # deb or rpm
    name: str
    version: str
    source: str | None
    arch: str | None


def library_dirs() -> list[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [sysconfig.get_config_var("LIBDIR") or ""]
    for base in ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/opt"):
        dirs += [f"{base}/{multiarch}", base]
    seen, out = set(), []
    for d in dirs:
        path = Path(d)
        if d and path.is_dir() and path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def host_file(name: str, data: bytes, dirs: list[Path]) -> Path | None:
    """The build machine's file with these exact bytes, under the name it was bundled as."""
    digest = hashlib.sha256(data).digest()
    base = Path(name).name
    for d in dirs:
        for candidate in [d / base, *d.glob(f"*/lib*/{base}")] if d.name == "opt" else [d / base]:
            try:
                if hashlib.sha256(candidate.read_bytes()).digest() == digest:
                    return candidate
            except OSError:
                continue
    return None


def path_aliases(path: Path) -> list[str]:
    """The names a package manager may know a file by: with /lib a link to /usr/lib
    (merged /usr), dpkg still records many libraries under /lib."""
    names = [str(path), os.path.realpath(path)]
    for name in list(names):
        if name.startswith("/usr/lib/"):
            names.append(name.removeprefix("/usr"))
        elif name.startswith("/lib/"):
            names.append("/usr" + name)
    return list(dict.fromkeys(names))


def owner_of(path: Path) -> Owner | None:
    for candidate in path_aliases(path):
        if shutil.which("dpkg-query"):
            found = run(["dpkg-query", "-S", candidate])
            if found:
                package = found.split(":", 1)[0].strip()
                fields = run(
                    ["dpkg-query", "-W", "-f=${Version}\t${source:Package}\t${Architecture}",
                     package]
                )  # fmt: skip
                if fields:
                    version, source, arch = [*fields.split("\t"), "", ""][:3]
                    return Owner("deb", package.split(":")[0], version, source or None, arch)
        if shutil.which("rpm"):
            found = run(
                ["rpm", "-qf", candidate, "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"]
            )
            if found and "\t" in found:
                name, version, arch = found.splitlines()[0].split("\t")
                return Owner("rpm", name, version, None, arch)
    return None


def run(command: list[str]) -> str | None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    return dict(
        (k, v.strip('"')) for k, _, v in (line.partition("=") for line in text.splitlines()) if v
    )


# --- the document --------------------------------------------------------------------


def write_sbom(
    bootstrap: Path, env_python: Path | None = None, requirement_tops: Collection[str] = ()
) -> Path:
    """Write DIST/bootstrap.cdx.json for ``bootstrap``; print its line of the build summary.

    ``env_python``: the Python of the function's build environment (build/buildenv.py),
    whose packages are what PyInstaller froze; ``requirement_tops``: the top-level
    packages the function's requirements brought there (the rest are the build pins).
    """

    contents = read_contents(bootstrap)
    bom = make_bom(bootstrap, contents, env_python, requirement_tops)
    path = bootstrap.with_name(SBOM_NAME)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2) + "\n")
    print(f"{path}: CycloneDX SBOM, {len(bom.components)} components: {summary(bom)}")
    return path


def make_bom(
    bootstrap: Path,
    contents: Contents,
    env_python: Path | None,
    requirement_tops: Collection[str],
) -> Bom:

    digest = hashlib.sha256(bootstrap.read_bytes()).hexdigest()
    handler_file = bootstrap.with_name("bootstrap.handler")
    handler = handler_file.read_text().strip() if handler_file.is_file() else None
    main = Component(
        name="bootstrap",
        type=ComponentType.APPLICATION,
        version=project_version(),
        bom_ref="bootstrap",
        description="AWS Lambda bootstrap: Python, its runtime and handler, one static file",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
        properties=[Property(name=f"{PROPERTY}handler", value=handler)] if handler else [],
    )
    components = [
        *python_components(contents, env_python, requirement_tops),
        *library_components(contents),
        *loader_components(),
    ]
    bom = Bom(
        components=components,
        # The same bootstrap always gets the same serial number.
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:sha256:{digest}"),
        metadata=BomMetaData(component=main, timestamp=build_time()),
    )
    bom.register_dependency(main, components)
    return bom


def summary(bom: Bom) -> str:
    """Name and version of each component, with the upstream release of glibc and OpenSSL."""
    words = []
    for component in sorted(bom.components, key=lambda c: c.name):
        upstream = [p.value for p in component.properties if p.name == f"{PROPERTY}upstream"]
        words.append(
            f"{component.name} {component.version or ''}".strip()
            + (f" ({upstream[0]})" if upstream else "")
        )
    return ", ".join(words)


def build_time() -> datetime:
    # SOURCE_DATE_EPOCH (reproducible-builds.org): the same input, the same SBOM.
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    return datetime.now(tz=timezone.utc).replace(microsecond=0)


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def python_components(
    contents: Contents, env_python: Path | None, requirement_tops: Collection[str]
) -> Iterator[Component]:

    tops = {top_level_of(m) for m in contents.modules}
    tops |= {top_level_of(e) for e in contents.extensions if "/lib-dynload/" not in f"/{e}"}
    tops |= {top_level_of(d) for d in contents.data_files if "/" in d}
    tops -= {"base_library", "pyimod01_archive", "pyimod02_importers", "pyimod03_ctypes"}
    installed = distributions(site_paths(env_python) if env_python else sys.path)
    runtime = runtime_distributions()
    stdlib = set(sys.stdlib_module_names)
    by_dist: dict[tuple[str, str, str], set[str]] = {}
    first_party = set()
    for top in sorted(tops):
        if top in FIRST_PARTY or top not in installed:
            if top not in stdlib:
                first_party.add(top)
            continue
        dist = installed[top]
        if canonical(dist.metadata["Name"]) in runtime:
            part = "runtime"
        elif top in requirement_tops:
            part = "requirements"
        else:
            part = "build-environment"
        key = (dist.metadata["Name"], dist.version, part)
        by_dist.setdefault(key, set()).add(top)
    for (name, version, part), modules in sorted(by_dist.items()):
        yield Component(
            name=name,
            version=version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name}@{version}",
            purl=PackageURL("pypi", name=name.lower().replace("_", "-"), version=version),
            properties=[
                Property(name=f"{PROPERTY}part", value=part),
                Property(name=f"{PROPERTY}modules", value=", ".join(sorted(modules))),
            ],
        )
    version = platform.python_version()
    dynload = sorted(e.rsplit("/", 1)[-1] for e in contents.extensions if "lib-dynload" in e)
    yield Component(
        name="python",
        version=version,
        type=ComponentType.FRAMEWORK,
        bom_ref=f"cpython@{version}",
        description=f"CPython {version}: interpreter, standard library, lib-dynload",
        cpe=f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*",
        purl=PackageURL("generic", name="cpython", version=version),
        properties=[Property(name=f"{PROPERTY}files", value=", ".join(dynload))],
    )
    if first_party:
        yield Component(
            name="staticlambda",
            version=project_version(),
            type=ComponentType.LIBRARY,
            bom_ref="first-party",
            description="first-party: the staticlambda runtime and the function's own modules",
            properties=[Property(name=f"{PROPERTY}modules", value=", ".join(sorted(first_party)))],
        )


def library_components(contents: Contents) -> Iterator[Component]:

    dirs = library_dirs()
    release = os_release()
    grouped: dict[object, list[tuple[str, bytes]]] = {}
    for name, data in sorted(contents.libraries.items()):
        if name in STATICX_FILES or name.startswith("libpython"):
            continue  # staticx's own; libpython belongs to the python component
        host = host_file(name, data, dirs)
        owner = owner_of(host) if host else None
        grouped.setdefault(owner or name, []).append((name, data))
    for key, files in grouped.items():
        upstream = [u for f in files if (u := upstream_version(*f))]
        names = ", ".join(f for f, _ in files)
        properties = [Property(name=f"{PROPERTY}files", value=names)]
        if upstream:
            properties.append(Property(name=f"{PROPERTY}upstream", value=" ".join(upstream[0][:2])))
        cpe = upstream[0][2] if upstream else None
        description = f"{upstream[0][0]} {upstream[0][1]}" if upstream else None
        if isinstance(key, Owner):
            qualifiers = {"arch": key.arch or ""}
            if key.source and key.source != key.name:
                qualifiers["upstream"] = key.source
            if release.get("ID"):
                qualifiers["distro"] = f"{release['ID']}-{release.get('VERSION_ID', '')}"
            yield Component(
                name=key.name,
                version=key.version,
                type=ComponentType.LIBRARY,
                bom_ref=f"{key.manager}:{key.name}@{key.version}",
                purl=PackageURL(
                    key.manager,
                    namespace=release.get("ID"),
                    name=key.name,
                    version=key.version,
                    qualifiers={k: v for k, v in qualifiers.items() if v},
                ),
                cpe=cpe,
                description=description,
                properties=properties,
            )
        else:
            # No package manager knows it (a library built from source): its own version
            # string, where it has one, and its hash.
            name, data = files[0]
            yield Component(
                name=upstream[0][0] if upstream else name,
                version=upstream[0][1] if upstream else None,
                type=ComponentType.LIBRARY,
                bom_ref=f"file:{name}",
                cpe=cpe,
                hashes=[
                    HashType(alg=HashAlgorithm.SHA_256, content=hashlib.sha256(data).hexdigest())
                ],
                properties=properties,
            )


def upstream_version(name: str, data: bytes) -> tuple[str, str, str] | None:
    """(project, version, CPE) from the version string a library carries, if known."""
    for upstream in UPSTREAM:
        if upstream.files.match(Path(name).name):
            match = upstream.version.search(data)
            if match:
                version = match.group(1).decode()
                return upstream.project, version, upstream.cpe.format(version)
    return None


def loader_components() -> Iterable[Component]:

    for name, what in (
        ("pyinstaller", "PyInstaller's bootloader, which unpacks and starts Python"),
        ("staticx", "staticx's bootloader and libnssfix, which start the bundled libraries"),
    ):
        version = importlib.metadata.version(name)
        yield Component(
            name=name,
            version=version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name}@{version}",
            purl=PackageURL("pypi", name=name, version=version),
            description=what,
            properties=[Property(name=f"{PROPERTY}part", value="loader")],
        )
