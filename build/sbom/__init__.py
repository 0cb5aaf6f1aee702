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

One module a step:

    contents            what the bootstrap holds: staticx's archive, the onedir tree in it
    python_packages     the Python packages by part (runtime, requirements,
                        build-environment), CPython, and the first-party modules
    os_packages         the build machine's package (dpkg, rpm) that installed a library
    upstream            glibc's and OpenSSL's own version strings, and their CPEs
    libraries           the bundled shared libraries as components: purls, CPEs, hashes
    loaders             PyInstaller's and staticx's bootloaders
    project             this project: its version and the namespace of its properties
    document            the CycloneDX document, written beside the bootstrap

Scanners read it as it is: `grype sbom:dist/bootstrap.cdx.json`, `trivy sbom ...`, Amazon
Inspector's SBOM scan. The file lies beside function.zip, never inside it.
"""

from build.sbom.document import write_sbom

__all__ = ["write_sbom"]
