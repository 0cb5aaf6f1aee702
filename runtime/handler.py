"""`module.function` to the handler callable, once at init, with the faults
and messages of AWS's Python runtime."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from runtime import errors
from runtime.errors import Fault

Handler = Callable[[Any, Any], Any]


def split_handler_name(name: str) -> tuple[str, str]:
    """`module.function` split at its last dot; the module as written, which
    may be `dir/module` (messages quote it so, as AWS's runtime does)."""
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as e:
        raise Fault(errors.MALFORMED_HANDLER_NAME, f"Bad handler '{name}': {e}") from None
    return module_name, function_name


def resolve_handler(name: str) -> Handler:
    module_name, function_name = split_handler_name(name)
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            errors.BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        # `dir/module.handler` is accepted, as by AWS's runtime.
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise Fault(
            errors.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {e}"
        ) from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise Fault(
            errors.USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {e}", trace
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        raise Fault(
            errors.HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        )
    if not callable(handler):
        raise Fault(
            errors.HANDLER_NOT_FOUND,
            f"Handler '{function_name}' on module '{module_name}' is not callable",
        )
    return handler  # type: ignore[no-any-return]
