"""The bundled shared libraries as components: one per OS package that installed them
(pkg:deb / pkg:rpm purls, as scanners match them), or, for a library no package manager
knows, one per file with its hash. glibc and OpenSSL also carry their upstream CPE."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.component import Component, ComponentType
from packageurl import PackageURL

from build.sbom.contents import Contents
from build.sbom.os_packages import Owner, host_file, library_dirs, os_release, owner_of
from build.sbom.project import PROPERTY
from build.sbom.upstream import upstream_version

# staticx's own helper library, not the build machine's.
STATICX_FILES = frozenset({"libnssfix.so"})


def library_components(contents: Contents) -> Iterator[Component]:

    release = os_release()
    for key, files in by_owner(contents).items():
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


def by_owner(contents: Contents) -> dict[Owner | str, list[tuple[str, bytes]]]:
    """The bundled libraries (name, bytes) by the OS package that installed them, or by
    their own name where no package did; in the order of their names."""
    dirs = library_dirs()
    grouped: dict[Owner | str, list[tuple[str, bytes]]] = {}
    for name, data in sorted(contents.libraries.items()):
        if name in STATICX_FILES or name.startswith("libpython"):
            continue  # staticx's own; libpython belongs to the python component
        host = host_file(name, data, dirs)
        owner = owner_of(host) if host else None
        grouped.setdefault(owner or name, []).append((name, data))
    return grouped
