"""HANDLER is checked before anything is frozen or any build environment is made
(build/handler_name.py): its form, answered with the form meant; its module, in SRC or
among the shipped handlers, with the closest names; its function, read from the module.
The last tests run the pipeline as a process: the one-line error comes within seconds,
before the first stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_pipeline

from build.errors import BuildError
from build.handler_name import check_handler, parse

APP = "import os\n\n\ndef handler(event, context):\n    return event\n\n\ndef helper():\n    pass\n"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "fn"
    (folder / "pkg").mkdir(parents=True)
    (folder / "app.py").write_text(APP)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "api.py").write_text("async def lambda_handler(event, context):\n    pass\n")
    return folder


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("app.py:handler", "app.handler"),
        ("app:handler", "app.handler"),
        ("pkg/api.py:lambda_handler", "pkg.api.lambda_handler"),
        ("app/handler", "app.handler"),
        ("app.py.handler", "app.handler"),
        ("app.py", "app.<function>"),
    ],
)
def test_forms_of_other_tools_are_answered_with_the_form_meant(given: str, meant: str) -> None:
    with pytest.raises(BuildError) as raised:
        parse(given)
    assert str(raised.value) == (
        f"HANDLER={given!r} is not module.function: give HANDLER={meant} "
        "(the module's dotted name, a dot, the function's name)"
    )


@pytest.mark.parametrize(
    ("given", "bad"),
    [
        ("app.handler\nimport os", "handler\nimport os"),
        ("app.handler'); import os; ('", "handler'); import os; ('"),
        ("app.han dler", "han dler"),
        ("my-app.handler", "my-app"),
        ("app.class", "class"),
        ("app..handler", None),
        ("echo", None),
    ],
)
def test_what_is_not_python_names_never_reaches_the_entry_script(
    given: str, bad: str | None
) -> None:
    with pytest.raises(BuildError) as raised:
        parse(given)
    message = str(raised.value)
    assert message.startswith(f"HANDLER={given!r} is not module.function"), message
    if bad is not None:
        assert f"{bad!r} is not a Python name" in message
    assert "\n" not in message


def test_lambdas_own_forms_are_taken() -> None:
    assert parse("app.handler").module == "app"
    name = parse("pkg/api.lambda_handler")  # as AWS's runtime takes it
    assert (name.module, name.function, name.text) == ("pkg.api", "lambda_handler", name.text)
    with pytest.raises(BuildError, match=r"HANDLER is 129 characters; Lambda takes at most 128"):
        parse("a" * 121 + ".handler")


def test_a_module_not_in_src_is_named_with_the_closest(src: Path) -> None:
    with pytest.raises(BuildError) as raised:
        check_handler("ap.handler", src, None)
    assert str(raised.value) == (
        f"HANDLER=ap.handler: SRC={src} has no module 'ap' (ap.py); closest: app: "
        "give HANDLER=app.handler"
    )
    with pytest.raises(BuildError) as raised:
        check_handler("pkg.apii.lambda_handler", src, None)
    assert "closest: pkg.api: give HANDLER=pkg.api.lambda_handler" in str(raised.value)
    with pytest.raises(BuildError) as raised:
        check_handler("orders.handler", src, None)
    assert str(raised.value) == (
        f"HANDLER=orders.handler: SRC={src} has no module 'orders' (orders.py); its modules: "
        "app, pkg, pkg.api"
    )


def test_a_function_the_module_does_not_define_is_named_with_the_closest(src: Path) -> None:
    with pytest.raises(BuildError) as raised:
        check_handler("app.handlr", src, None)
    assert str(raised.value) == (
        "HANDLER=app.handlr: app.py of module 'app' defines no 'handlr'; closest: handler: "
        "give HANDLER=app.handler"
    )
    assert check_handler("pkg.api.lambda_handler", src, None).path == src / "pkg" / "api.py"


def test_names_made_in_ways_reading_cannot_follow_are_left_to_the_init_check(
    src: Path,
) -> None:
    for source in (
        "from handlers_lib import *\n",
        "def __getattr__(name):\n    return print\n",
        "globals()['handler'] = print\n",
        "import sys\nsetattr(sys.modules[__name__], 'handler', print)\n",
    ):
        (src / "dyn.py").write_text(source)
        assert check_handler("dyn.handler", src, None).path == src / "dyn.py"
    (src / "bound.py").write_text("from pkg.api import lambda_handler as handler\n")
    assert check_handler("bound.handler", src, None).path == src / "bound.py"


def test_without_src_only_the_shipped_handlers_are_there() -> None:
    with pytest.raises(BuildError) as raised:
        check_handler("app.handler", None, None)
    assert str(raised.value) == (
        "HANDLER=app.handler: no module 'app' in this repository's handlers; "
        "give SRC=<your function's folder>"
    )
    with pytest.raises(BuildError, match=r"closest: handlers.api: give HANDLER=handlers.api"):
        check_handler("handlers.ap.handler", None, None)
    assert check_handler("handlers.echo.handler", None, None).path is not None


def test_with_requirements_a_module_far_from_srcs_names_is_asked_of_the_environment(
    src: Path, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")
    # Not near any of SRC's modules: perhaps a package's; the build environment says.
    assert check_handler("mangum_adapter.handler", src, requirements).path is None
    # Near one of SRC's: a typo, refused at once all the same.
    with pytest.raises(BuildError, match=r"closest: app: give HANDLER=app.handler"):
        check_handler("ap.handler", src, requirements)


def test_a_typo_fails_the_pipeline_before_its_first_stage(src: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for handler, said in (
        ("app.py:lambda_handler", "give HANDLER=app.lambda_handler"),
        ("ap.handler", "closest: app: give HANDLER=app.handler"),
    ):
        ran = run_pipeline("build", f"--handler={handler}", f"--src={src}", f"--dist={dist}")
        assert ran.returncode == 1
        assert ran.stderr.startswith("build: HANDLER=") and said in ran.stderr, ran.stderr
        assert len(ran.stderr.splitlines()) == 1, ran.stderr
        assert "==>" not in ran.stdout, "a stage ran before the check"
    ran = run_pipeline("build", "--handler=ap.handler", f"--dist={dist}")  # no SRC
    assert ran.stderr == (
        "build: HANDLER=ap.handler: no module 'ap' in this repository's handlers; "
        "give SRC=<your function's folder>\n"
    )
    assert "REQUIREMENTS" not in ran.stderr and "==>" not in ran.stdout
