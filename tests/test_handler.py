"""`module.function` to a callable at init: every init row of the table, with
real module files, and the same fault as awslambdaric's for each."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from awslambdaric import bootstrap as aws_bootstrap
from awslambdaric.lambda_runtime_exception import FaultException
from support import WriteModule

from runtime.errors import ErrorPayload, Fault
from runtime.handler import resolve_handler

HANDLER = "def handler(event, context):\n    return {'event': event}\n"


def fault_of(name: str) -> tuple[str, str, list[str]]:
    with pytest.raises(Fault) as e:
        resolve_handler(name)
    return e.value.error_type, e.value.message, e.value.stack_trace


def awslambdaric_fault_of(name: str) -> tuple[str, str, list[str]]:
    for module in [m for m in sys.modules if m.startswith("lambda_")]:
        del sys.modules[module]  # as in a fresh process
    with pytest.raises(FaultException) as e:
        aws_bootstrap._get_handler(name)
    return e.value.exception_type, e.value.msg, e.value.trace or []


def test_module_function_resolves_to_the_function(write_module: WriteModule) -> None:
    write_module("lambda_app", HANDLER)
    handler = resolve_handler("lambda_app.handler")
    assert handler("e", None) == {"event": "e"}


def test_dir_slash_module_form(write_module: WriteModule) -> None:
    write_module("src/lambda_app", HANDLER)
    assert resolve_handler("src/lambda_app.handler")(1, None) == {"event": 1}


def test_dotted_package_module_form(write_module: WriteModule) -> None:
    write_module("lambda_pkg/__init__", "")
    write_module("lambda_pkg/app", HANDLER)
    assert resolve_handler("lambda_pkg.app.handler")(2, None) == {"event": 2}


def test_handler_name_without_a_dot() -> None:
    assert fault_of("handler") == (
        "Runtime.MalformedHandlerName",
        "Bad handler 'handler': not enough values to unpack (expected 2, got 1)",
        [],
    )


def test_module_not_found(write_module: WriteModule) -> None:
    assert fault_of("lambda_missing.handler") == (
        "Runtime.ImportModuleError",
        "Unable to import module 'lambda_missing': No module named 'lambda_missing'",
        [],
    )


def test_module_not_found_in_dir_form_quotes_the_name_as_written(write_module: WriteModule) -> None:
    write_module("src/lambda_app", HANDLER)
    assert fault_of("src/lambda_nope.handler") == (
        "Runtime.ImportModuleError",
        "Unable to import module 'src/lambda_nope': No module named 'src.lambda_nope'",
        [],
    )


def test_import_error_inside_the_module(write_module: WriteModule) -> None:
    write_module("lambda_app", "import lambda_dependency_not_installed\n" + HANDLER)
    assert fault_of("lambda_app.handler") == (
        "Runtime.ImportModuleError",
        "Unable to import module 'lambda_app': No module named 'lambda_dependency_not_installed'",
        [],
    )


def test_import_error_of_a_name_inside_the_module(write_module: WriteModule) -> None:
    write_module("lambda_app", "from json import no_such_name\n" + HANDLER)
    error_type, message, _ = fault_of("lambda_app.handler")
    assert error_type == "Runtime.ImportModuleError"
    assert message == (
        "Unable to import module 'lambda_app': cannot import name 'no_such_name' from 'json' "
        f"({sys.modules['json'].__file__})"
    )


def test_syntax_error_in_the_module(write_module: WriteModule) -> None:
    path = write_module("lambda_app", "x = 1\ndef handler(event, context:\n    return x\n")
    error_type, message, trace = fault_of("lambda_app.handler")
    assert error_type == "Runtime.UserCodeSyntaxError"
    assert (
        message
        == "Syntax error in module 'lambda_app': '(' was never closed (lambda_app.py, line 2)"
    )
    assert trace == [f'  File "{path}" Line 2\n    def handler(event, context:\n']


def test_indentation_error_is_a_syntax_error(write_module: WriteModule) -> None:
    write_module("lambda_app", "def handler(event, context):\nreturn 1\n")
    error_type, message, _ = fault_of("lambda_app.handler")
    assert error_type == "Runtime.UserCodeSyntaxError"
    assert message.startswith("Syntax error in module 'lambda_app': expected an indented block")


def test_function_missing_on_the_module(write_module: WriteModule) -> None:
    write_module("lambda_app", HANDLER)
    assert fault_of("lambda_app.handle") == (
        "Runtime.HandlerNotFound",
        "Handler 'handle' missing on module 'lambda_app'",
        [],
    )


def test_function_missing_in_dir_form_quotes_the_module_as_written(
    write_module: WriteModule,
) -> None:
    write_module("src/lambda_app", HANDLER)
    assert (
        fault_of("src/lambda_app.handle")[1]
        == "Handler 'handle' missing on module 'src/lambda_app'"
    )


def test_built_in_module_is_refused() -> None:
    assert fault_of("sys.handler") == (
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys as a handler module",
        [],
    )


@pytest.mark.parametrize(
    ("source", "error_type", "message"),
    [
        ("x = 1 / 0\n", ZeroDivisionError, "division by zero"),
        ("raise RuntimeError('no database')\n", RuntimeError, "no database"),
        ("settings = {}\ntable = settings['TABLE']\n", KeyError, "'TABLE'"),
    ],
)
def test_any_other_exception_at_import_keeps_its_class_name(
    write_module: WriteModule, source: str, error_type: type[Exception], message: str
) -> None:
    path = write_module("lambda_app", source + HANDLER)
    with pytest.raises(error_type) as e:
        resolve_handler("lambda_app.handler")
    payload = ErrorPayload.from_exception(e.value)
    assert (payload.error_type, payload.error_message) == (error_type.__name__, message)
    assert payload.stack_trace[-1].startswith(f'  File "{path}", line ')
    assert "^" not in "".join(payload.stack_trace)


# --- the same faults as awslambdaric ------------------------------------------


MODULES: dict[str, str] = {
    "lambda_ok": HANDLER,
    "lambda_imports": "import lambda_dependency_not_installed\n",
    "lambda_syntax": "def handler(:\n    pass\n",
    "src/lambda_in_dir": HANDLER,
}


@pytest.mark.parametrize(
    "name",
    [
        "nodot",
        "lambda_missing.handler",
        "lambda_imports.handler",
        "lambda_syntax.handler",
        "lambda_ok.nothere",
        "src/lambda_in_dir.nothere",
        "src/lambda_missing.handler",
        "sys.handler",
    ],
)
def test_fault_is_awslambdaric_s(write_module: WriteModule, name: str) -> None:
    for module, source in MODULES.items():
        write_module(module, source)
    assert fault_of(name) == awslambdaric_fault_of(name)


def test_other_exception_is_awslambdaric_s(write_module: WriteModule) -> None:
    write_module("lambda_app", "x = {}['missing']\n")
    errors: list[Any] = []
    for resolve in (resolve_handler, aws_bootstrap._get_handler):
        sys.modules.pop("lambda_app", None)
        with pytest.raises(KeyError) as e:
            resolve("lambda_app.handler")
        errors.append(e.value)
    ours, theirs = (
        ErrorPayload.from_exception(errors[0]),
        aws_bootstrap.build_fault_result(
            (type(errors[1]), errors[1], errors[1].__traceback__), None
        ),
    )
    assert (ours.error_type, ours.error_message) == (theirs["errorType"], theirs["errorMessage"])
    assert ours.stack_trace[-1] == theirs["stackTrace"][-1]
