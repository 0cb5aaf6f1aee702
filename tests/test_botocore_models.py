"""botocore's models as one archive (build/botocore_models.py) and the run-time
hook that lets botocore's own Loader read it
(build/pyinstaller_hooks/rthooks/pyi_rth_botocore_data.py), with the botocore
of the build tools' environment: what botocore reads from the archive must be
what it reads from its folder."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError

from build.botocore_models import (
    ARCHIVE,
    AS_FILES,
    RUNTIME_HOOK,
    SECTION,
    pack_models,
    services_in,
    write_archive,
)

BOTOCORE_DATA = Path(botocore.__file__).parent / "data"


def load_hook() -> ModuleType:
    """The hook as PyInstaller runs it, but not frozen: it installs nothing."""
    spec = importlib.util.spec_from_file_location("pyi_rth_botocore_data", RUNTIME_HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_members() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(BOTOCORE_DATA).as_posix(), path)
        for path in sorted(BOTOCORE_DATA.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "data.zip"
    write_archive(data_members(), path)
    return path


@pytest.fixture
def from_archive(archive: Path, tmp_path: Path) -> Iterator[Any]:
    """botocore.loaders reading its built-in data from the archive alone: the
    folder it stands in for does not exist. Undone after the test."""
    saved_os = botocore.loaders.os
    saved_methods = dict(botocore.loaders._JSON_OPEN_METHODS)
    saved_root = botocore.loaders.Loader.BUILTIN_DATA_PATH
    botocore.loaders.Loader.BUILTIN_DATA_PATH = str(tmp_path / "gone" / "data")
    try:
        hook = load_hook()
        yield hook.patch_loaders(botocore.loaders, hook.Location(str(archive)))
    finally:
        botocore.loaders.os = saved_os
        botocore.loaders._JSON_OPEN_METHODS.clear()
        botocore.loaders._JSON_OPEN_METHODS.update(saved_methods)
        botocore.loaders.Loader.BUILTIN_DATA_PATH = saved_root


def folder_loader() -> botocore.loaders.Loader:
    """A loader of botocore's folder as shipped, for comparison."""
    return botocore.loaders.Loader(
        extra_search_paths=[str(BOTOCORE_DATA)], include_default_search_paths=False
    )


def test_every_service_and_model_reads_the_same_from_the_archive(from_archive: Any) -> None:
    assert not Path(botocore.loaders.Loader.BUILTIN_DATA_PATH).exists()
    loader = botocore.loaders.Loader()
    folder = folder_loader()
    services = loader.list_available_services("service-2")
    assert services == folder.list_available_services("service-2")
    assert len(services) > 300
    # Models, gzipped and not, sdk-extras merged, and the data outside services.
    for service, kind in [("s3", "service-2"), ("dynamodb", "waiters-2"), ("ec2", "paginators-1")]:
        version = loader.determine_latest_version(service, kind)
        assert version == folder.determine_latest_version(service, kind)
        assert loader.load_service_model(service, kind) == folder.load_service_model(service, kind)
    assert loader.list_api_versions("ec2", "service-2") == folder.list_api_versions(
        "ec2", "service-2"
    )
    for name in ("endpoints", "_retry", "sdk-default-configuration", "partitions"):
        assert loader.load_data(name) == folder.load_data(name)
    assert from_archive.reads > 0


def test_clients_of_any_service_are_created_offline_from_the_archive(from_archive: Any) -> None:
    session = botocore.session.get_session()
    keys = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3 = session.create_client("s3", region_name="us-east-1", **keys)
    dynamodb = session.create_client("dynamodb", region_name="eu-west-1", **keys)
    assert "PutObject" in s3.meta.service_model.operation_names
    assert dynamodb.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert dynamodb.can_paginate("scan")
    assert "table_exists" in dynamodb.waiter_names
    assert from_archive.reads > 0
    with pytest.raises(DataNotFoundError):
        botocore.loaders.Loader().load_data("no-such-service/2020-01-01/service-2")


def test_models_outside_botocore_still_come_from_disk(from_archive: Any, tmp_path: Path) -> None:
    # AWS_DATA_PATH and ~/.aws/models are the user's folders: read as before.
    own = tmp_path / "models" / "myservice" / "2020-01-01"
    own.mkdir(parents=True)
    model = {"version": "2.0", "metadata": {"apiVersion": "2020-01-01"}, "operations": {}}
    (own / "service-2.json").write_text(json.dumps(model))
    loader = botocore.loaders.create_loader(str(tmp_path / "models"))
    assert "myservice" in loader.list_available_services("service-2")
    assert "s3" in loader.list_available_services("service-2")
    assert loader.load_service_model("myservice", "service-2")["metadata"] == model["metadata"]


def test_the_archive_lists_folders_as_botocore_walks_them(archive: Path) -> None:
    hook = load_hook()
    models = hook.ModelArchive(hook.Location(str(archive)), "/bundle/botocore/data")
    assert models.member("/bundle/botocore/data") == ""
    assert models.member("/bundle/botocore/data/s3/../s3") == "s3"
    assert models.member("/bundle/botocore/database") is None
    assert models.member("/elsewhere/s3") is None
    assert "s3" in models.listdir("")
    assert models.listdir("s3") == sorted(os.listdir(BOTOCORE_DATA / "s3"))
    assert models.is_folder("s3") and not models.is_file("s3")
    assert models.is_file("endpoints.json") and not models.is_folder("endpoints.json")
    with pytest.raises(FileNotFoundError):
        models.listdir("no-such-service")
    with pytest.raises(NotADirectoryError):
        models.listdir("endpoints.json")
    with pytest.raises(FileNotFoundError):
        models.read("s3")


def test_the_archive_is_read_in_place_from_its_elf_section(archive: Path, tmp_path: Path) -> None:
    # As build/static.py adds it to the bootstrap, and the hook finds it there.
    program = tmp_path / "program"
    shutil.copyfile("/bin/true", program)
    subprocess.run(["objcopy", "--add-section", f"{SECTION}={archive}", str(program)], check=True)
    hook = load_hook()
    location = hook.find_archive({"STATICX_PROG_PATH": str(program)}, str(tmp_path))
    assert location is not None and location.path == str(program)
    assert location.size == archive.stat().st_size
    assert program.read_bytes()[location.offset :][:4] == b"PK\x03\x04"
    models = hook.ModelArchive(location, "/bundle/botocore/data")
    assert models.read("endpoints.json") == (BOTOCORE_DATA / "endpoints.json").read_bytes()
    assert models.listdir("s3") == sorted(os.listdir(BOTOCORE_DATA / "s3"))
    # No section (a program without models): the tree's file, else nothing.
    shutil.copyfile("/bin/true", program)
    assert hook.find_archive({"STATICX_PROG_PATH": str(program)}, str(tmp_path)) is None
    (tmp_path / "botocore").mkdir()
    shutil.copyfile(archive, tmp_path / ARCHIVE)
    location = hook.find_archive({"STATICX_PROG_PATH": str(program)}, str(tmp_path))
    assert location is not None and (location.path, location.size) == (
        str(tmp_path / ARCHIVE),
        None,
    )
    assert hook.find_archive({}, str(tmp_path / "elsewhere")) is None


def test_the_archive_is_the_same_bytes_from_the_same_models(tmp_path: Path) -> None:
    members = data_members()[:50]
    copies = tmp_path / "copy"
    moved = []
    for name, source in members:
        target = copies / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        os.utime(target, (1_900_000_000, 1_900_000_000))  # another clock
        moved.append((name, target))
    write_archive(members, tmp_path / "a.zip")
    write_archive(list(reversed(moved)), tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


class FakeAnalysis:
    def __init__(self, members: list[tuple[str, Path]]) -> None:
        self.datas: list[tuple[str, str, str]] = [
            (f"botocore/data/{name}", str(path), "DATA") for name, path in members
        ] + [("botocore/cacert.pem", "/x/cacert.pem", "DATA"), ("certifi/py.typed", "/y", "DATA")]


def test_the_build_replaces_the_folder_by_its_checked_archive(tmp_path: Path) -> None:
    members = data_members()
    analysis = FakeAnalysis(members)
    line = pack_models(analysis, str(tmp_path), {})
    assert line == f"botocore models: {len(members)} files in one archive, {ARCHIVE}"
    assert [d for d in analysis.datas if d[0].startswith("botocore/data/")] == []
    packed = [d for d in analysis.datas if d[0] == ARCHIVE]
    assert len(packed) == 1 and Path(packed[0][1]).is_file()
    assert ("botocore/cacert.pem", "/x/cacert.pem", "DATA") in analysis.datas
    assert len(analysis.datas) == 3


def test_an_archive_that_fails_its_check_leaves_the_files(tmp_path: Path) -> None:
    # Without s3's models the check's s3 client cannot be made: kept as files.
    members = [m for m in data_members() if not m[0].startswith("s3/")]
    analysis = FakeAnalysis(members)
    before = list(analysis.datas)
    line = pack_models(analysis, str(tmp_path), {})
    assert line.startswith(f"botocore models: kept as {len(members)} files, the archive failed")
    assert "s3" in line
    assert analysis.datas == before


def test_files_on_request_and_nothing_without_botocore(tmp_path: Path) -> None:
    analysis = FakeAnalysis(data_members()[:5])
    before = list(analysis.datas)
    assert pack_models(analysis, str(tmp_path), {AS_FILES: "1"}).endswith(f"as {AS_FILES}=1 asks")
    assert analysis.datas == before
    bare = FakeAnalysis([])
    assert pack_models(bare, str(tmp_path), {}) == ""


def test_services_are_the_folders_with_a_service_model() -> None:
    names = ["s3/2006-03-01/service-2.json.gz", "s3/2006-03-01/waiters-2.json", "endpoints.json"]
    names += ["sdb/2009-04-15/paginators-1.json", "ec2/2016-11-15/service-2.json"]
    assert services_in(names) == 2
