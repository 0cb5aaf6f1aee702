"""Event bytes to Python and results back to bytes, byte for byte as awslambdaric."""

from __future__ import annotations

import decimal
import json
from typing import Any

import pytest
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

from runtime.errors import Fault
from runtime.marshal import marshal_response, unmarshal_event

D = decimal.Decimal


def marshal_fault(result: Any) -> tuple[str, str]:
    with pytest.raises(Fault) as e:
        marshal_response(result)
    return e.value.error_type, e.value.message


# --- events -------------------------------------------------------------------


def test_json_event() -> None:
    assert unmarshal_event(b'{"text":"Hello","n":[1,2.5,null]}', "application/json") == {
        "text": "Hello",
        "n": [1, 2.5, None],
    }


def test_event_without_content_type_is_json() -> None:
    assert unmarshal_event(b'"x"', None) == "x"


def test_event_of_another_content_type_is_given_as_bytes() -> None:
    assert unmarshal_event(b"\x00raw", "application/octet-stream") == b"\x00raw"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"),
        (b"", "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"),
        (
            b'{"a": 1',
            "Unable to unmarshal input: Expecting ',' delimiter: line 1 column 8 (char 7)",
        ),
        (
            b"\xff",
            "Unable to unmarshal input: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte",
        ),
    ],
)
def test_invalid_json_event_is_an_unmarshal_error(body: bytes, message: str) -> None:
    with pytest.raises(Fault) as e:
        unmarshal_event(body, "application/json")
    assert (e.value.error_type, e.value.message) == ("Runtime.UnmarshalError", message)


# --- results ------------------------------------------------------------------


def test_json_result() -> None:
    assert marshal_response({"text": "Hello"}) == (b'{"text": "Hello"}', "application/json")
    assert marshal_response(None) == (b"null", "application/json")
    assert marshal_response("é") == (b'"\\u00e9"', "application/json")


def test_bytes_result_is_sent_as_is() -> None:
    assert marshal_response(b"\x89PNG\r\n") == (b"\x89PNG\r\n", "application/unknown")


def test_decimals_are_written_as_the_numbers_they_spell() -> None:
    result = {
        "price": D("19.90"),
        "count": D("3"),
        "big": D("12345678901234567890.123456789012345678"),
        "exp": D("1E+2"),
        "tiny": D("0E-7"),
        "nested": [D("-0.5"), {"d": D("7")}],
    }
    body, content_type = marshal_response(result)
    assert content_type == "application/json"
    assert body == (
        b'{"price": 19.90, "count": 3, "big": 12345678901234567890.123456789012345678, '
        b'"exp": 1E+2, "tiny": 0E-7, "nested": [-0.5, {"d": 7}]}'
    )
    assert json.loads(body, parse_float=D) == result


def test_non_finite_decimals_as_python_writes_non_finite_floats() -> None:
    body, _ = marshal_response([D("NaN"), D("-NaN"), D("sNaN"), D("Infinity"), D("-Infinity")])
    assert body == b"[NaN, NaN, NaN, Infinity, -Infinity]"


def test_strings_around_decimals_are_left_alone() -> None:
    result = {"quote": '"x":0"', "d": D("1.5"), "colon": "a:0", "list": ["1.5", D("2.5")]}
    body, _ = marshal_response(result)
    assert json.loads(body) == {"quote": '"x":0"', "d": 1.5, "colon": "a:0", "list": ["1.5", 2.5]}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({1, 2}, "Unable to marshal response: Object of type set is not JSON serializable"),
        (
            {"when": object()},
            "Unable to marshal response: Object of type object is not JSON serializable",
        ),
        (
            {(1, 2): "tuple key"},
            "Unable to marshal response: keys must be str, int, float, bool or None, not tuple",
        ),
    ],
)
def test_result_that_is_not_json_is_a_marshal_error(result: Any, message: str) -> None:
    assert marshal_fault(result) == ("Runtime.MarshalError", message)


def test_circular_result_is_a_marshal_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert marshal_fault(loop) == (
        "Runtime.MarshalError",
        "Unable to marshal response: Circular reference detected",
    )


class Order:
    pass


@pytest.mark.parametrize(
    "result",
    [
        {"text": "Hello"},
        [1, 2.5, None, True, "é"],
        {"price": D("19.90"), "big": D("12345678901234567890.1234567890"), "e": D("1E+2")},
        [D("NaN"), D("Infinity"), D("-0")],
        float("nan"),
        b"\x00\xff",
        {1, 2},
        Order(),
    ],
)
def test_same_bytes_or_same_fault_as_awslambdaric(result: Any) -> None:
    try:
        theirs = LambdaMarshaller().marshal_response(result)
    except Exception as e:  # awslambdaric's FaultException
        assert marshal_fault(result) == (e.exception_type, e.msg)  # type: ignore[attr-defined]
        return
    body, content_type = marshal_response(result)
    their_body = theirs[0] if isinstance(theirs[0], bytes) else theirs[0].encode()
    assert (body, content_type) == (their_body, theirs[1])
