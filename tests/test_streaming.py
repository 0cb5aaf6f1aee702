"""Response streaming (runtime/streaming.py) against the fake Runtime API: the
exact request, chunk for chunk, its trailers, and what goes to /error instead."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import NEXT, FakeRuntimeAPI, error_path, response_path
from support import WriteModule
from support import run_loop as run_loop_with

from build.rie import Emulator
from handlers import stream as stream_example
from runtime._streaming_http import MAX_STREAMED_BODY, StreamingResponse
from runtime.client import USER_AGENT
from runtime.handler import Handler
from runtime.streaming import HttpResponse, ResponseStream

TRAILER = "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
# The loop writing the trace id where Lambda's runtime does.
run_loop = partial(run_loop_with, environ=os.environ)


def streaming(*items: Any) -> Handler:
    def handler(event: Any, context: Any) -> Iterator[Any]:
        yield from items

    return handler


def error_trailers(api: FakeRuntimeAPI, index: int = 1) -> tuple[str, dict[str, Any]]:
    trailers = api.requests[index].trailers
    assert trailers is not None
    body = json.loads(base64.b64decode(trailers["Lambda-Runtime-Function-Error-Body"]))
    return trailers["Lambda-Runtime-Function-Error-Type"], body


# --- the request -----------------------------------------------------------------


def test_generator_is_streamed_one_chunk_per_item(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, streaming("hello ", b"world", "", bytearray(b"\xff\x00")))
    assert api.paths() == [("GET", NEXT), ("POST", response_path("req-1"))]
    posted = api.requests[1]
    assert [(k, v) for k, v in posted.headers.items() if k != "Host"] == [
        ("User-Agent", USER_AGENT),
        ("Lambda-Runtime-Function-Response-Mode", "streaming"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Type", "application/octet-stream"),
        ("Trailer", TRAILER),
    ]
    # As yielded; the empty item is not sent (an empty chunk ends a body).
    assert posted.chunks == (b"hello ", b"world", b"\xff\x00")
    assert posted.trailers is not None
    assert list(posted.trailers.items()) == []  # no error: no trailer sent


def test_iterator_is_streamed_but_values_are_not(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    answers = iter([iter([b"a", b"b"]), ("a", "b")])  # a tuple is a value: JSON
    run_loop(api, lambda event, context: next(answers), 2)
    assert api.requests[1].chunks == (b"a", b"b")
    assert api.requests[3].chunks == ()
    assert api.requests[3].body == b'["a", "b"]'
    assert api.requests[3].headers["Content-Type"] == "application/json"


def test_exact_bytes_on_the_wire() -> None:
    """The request as the Runtime API reads it: chunk framing and the zero-length
    last chunk with its trailers after it."""
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                data = b""
                while not data.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in data:
                    data += conn.recv(65536)
                received.append(data)
                conn.sendall(b'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{"status":"OK"}')

        thread = threading.Thread(target=serve)
        thread.start()

        def fails() -> Iterator[str]:
            yield "hello"
            yield "x" * 20
            raise ValueError("mid-stream")

        stream = ResponseStream(fails())
        outcome = StreamingResponse(f"127.0.0.1:{port}", "req-1", stream.content_type).send(stream)
        thread.join(5)
    assert outcome.body_bytes == 25
    assert outcome.error is not None
    error_body = base64.b64encode(outcome.error.to_json())
    assert received == [
        b"POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + f"User-Agent: {USER_AGENT}\r\n".encode()
        + b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Trailer: " + TRAILER.encode() + b"\r\n"
        b"\r\n"
        b"5\r\nhello\r\n"
        b"14\r\n" + b"x" * 20 + b"\r\n"
        b"0\r\n"
        b"Lambda-Runtime-Function-Error-Type: ValueError\r\n"
        b"Lambda-Runtime-Function-Error-Body: " + error_body + b"\r\n"
        b"\r\n"
    ]


# --- errors ----------------------------------------------------------------------


def test_error_after_the_first_chunk_is_sent_as_trailers(
    api: FakeRuntimeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(event: Any, context: Any) -> Iterator[str]:
        yield "partial"
        raise ValueError("lost the database")

    api.add_event(b"{}", "req-1")
    api.add_event(b"{}", "req-2")
    run_loop(api, handler, 2)
    # No /error: the trailers carry it; and the loop goes on.
    assert api.paths() == [
        ("GET", NEXT),
        ("POST", response_path("req-1")),
        ("GET", NEXT),
        ("POST", response_path("req-2")),
    ]
    assert api.requests[1].chunks == (b"partial",)
    error_type, body = error_trailers(api)
    assert error_type == "ValueError"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "lost the database"
    assert body["requestId"] == "req-1"
    assert len(body["stackTrace"]) == 1
    assert 'raise ValueError("lost the database")' in body["stackTrace"][0]
    assert "[ERROR] ValueError: lost the database" in capsys.readouterr().out


@pytest.mark.parametrize("error", [ConnectionResetError("its own socket"), TimeoutError("slow")])
def test_the_handler_s_own_os_error_mid_stream_is_its_error_not_the_connection_s(
    api: FakeRuntimeAPI, error: OSError
) -> None:
    def handler(event: Any, context: Any) -> Iterator[str]:
        yield "partial"
        raise error

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    assert api.requests[1].chunks == (b"partial",)
    error_type, body = error_trailers(api)
    assert (error_type, body["errorMessage"]) == (type(error).__name__, str(error))


def test_an_error_too_large_for_a_trailer_is_cut_to_fit(api: FakeRuntimeAPI) -> None:
    def handler(event: Any, context: Any) -> Iterator[str]:
        yield "partial"
        raise ValueError("x" * 2_000_000)

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    trailers = api.requests[1].trailers
    assert trailers is not None
    section = "".join(f"{name}: {value}\r\n" for name, value in trailers.items()) + "\r\n"
    assert len(section) <= 4096 - 128  # within Lambda's 4 KiB (see the emulator's test)
    error_type, body = error_trailers(api)
    assert error_type == "ValueError"
    assert body["errorMessage"].endswith("xxx [cut to fit Lambda's limit]")


def test_error_before_the_first_chunk_goes_to_the_error_path(api: FakeRuntimeAPI) -> None:
    def handler(event: Any, context: Any) -> Iterator[str]:
        raise KeyError("user_id")
        yield "never"

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    assert api.paths() == [("GET", NEXT), ("POST", error_path("req-1"))]
    posted = api.requests[1]
    assert posted.headers["Lambda-Runtime-Function-Error-Type"] == "KeyError"
    assert posted.json()["errorMessage"] == "'user_id'"


def test_an_item_that_is_not_bytes_or_str_is_a_marshal_error(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, streaming("ok", {"not": "bytes"}))
    assert api.requests[1].chunks == (b"ok",)
    error_type, body = error_trailers(api)
    assert error_type == "Runtime.MarshalError"
    assert body["errorMessage"] == (
        "Unable to stream response: items must be bytes or str, not dict"
    )


MIB = 1024 * 1024


def counting(api: FakeRuntimeAPI) -> Any:
    """Keep no chunk (hundreds of MB), but their digest and count."""
    api.keep_chunks = False
    seen = hashlib.sha256()
    count = [0]

    def on_chunk(path: str, chunk: bytes) -> None:
        seen.update(chunk)
        count[0] += 1

    api.on_chunk = on_chunk
    return seen, count


def test_a_50_mb_stream_arrives_whole(api: FakeRuntimeAPI) -> None:
    """Past the 20 MiB this runtime cut streams at before Lambda's 200 MB."""
    seen, count = counting(api)
    sent = hashlib.sha256()

    def handler(event: Any, context: Any) -> Iterator[bytes]:
        for n in range(50):
            chunk = bytes([n]) * MIB
            sent.update(chunk)
            yield chunk

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    posted = api.requests[1]
    assert (posted.size, count[0]) == (50 * MIB, 50)
    assert seen.hexdigest() == sent.hexdigest()
    assert posted.trailers is not None and list(posted.trailers.items()) == []


def test_body_past_200_mib_is_cut_and_reported(api: FakeRuntimeAPI) -> None:
    closed = threading.Event()
    mib = b"x" * MIB
    _, count = counting(api)

    def handler(event: Any, context: Any) -> Iterator[bytes]:
        try:
            while True:
                yield mib
        finally:
            closed.set()

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    posted = api.requests[1]
    assert count[0] == 200
    assert posted.size == MAX_STREAMED_BODY == 200 * MIB
    error_type, body = error_trailers(api)
    assert error_type == "Function.ResponseSizeTooLarge"
    assert body["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (209715200 bytes): "
        "209715200 bytes sent, the next 1048576 were not"
    )
    assert closed.is_set(), "the generator was not closed"


# --- Function URLs: the HTTP-integration form ------------------------------------


def test_http_response_first_becomes_the_prelude(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    prelude = HttpResponse(
        201, {"Content-Type": "text/csv", "X-Trace": "1"}, ["a=1; Secure", "b=2"]
    )
    run_loop(api, streaming(prelude, "id,name\n", "1,Ada\n"))
    posted = api.requests[1]
    assert posted.headers["Content-Type"] == HTTP_INTEGRATION
    expected_prelude = (
        b'{"statusCode": 201, "headers": {"Content-Type": "text/csv", "X-Trace": "1"}, '
        b'"cookies": ["a=1; Secure", "b=2"]}' + b"\x00" * 8
    )
    assert posted.chunks == (expected_prelude, b"id,name\n", b"1,Ada\n")
    assert posted.body == expected_prelude + b"id,name\n1,Ada\n"


def test_http_response_after_the_body_is_an_error(api: FakeRuntimeAPI) -> None:
    api.add_event(b"{}", "req-1")
    run_loop(api, streaming("body", HttpResponse(500)))
    error_type, body = error_trailers(api)
    assert error_type == "Runtime.MarshalError"
    assert body["errorMessage"] == "HttpResponse must be the stream's first item"


def test_example_handler(api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_example, "PAUSE", 0)
    api.add_event(json.dumps({"queryStringParameters": {"count": "2"}}), "req-1")
    run_loop(api, stream_example.handler)
    posted = api.requests[1]
    assert posted.headers["Content-Type"] == HTTP_INTEGRATION
    prelude, *body = posted.chunks
    assert json.loads(prelude[:-8]) == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
    }
    assert prelude[-8:] == b"\x00" * 8
    assert body == [b"line 1 of 2\n", b"line 2 of 2\n"]


# --- streamed as produced ----------------------------------------------------------


def test_first_chunk_reaches_the_api_before_the_handler_finishes(api: FakeRuntimeAPI) -> None:
    """The handler waits, after its first item, until the server has it: were the
    chunks buffered, the server would never see it, and the wait would time out."""
    received = threading.Event()
    waited: list[bool] = []
    api.on_chunk = lambda path, chunk: received.set()

    def handler(event: Any, context: Any) -> Iterator[str]:
        yield "first"
        waited.append(received.wait(timeout=5))
        yield "second"

    api.add_event(b"{}", "req-1")
    run_loop(api, handler)
    assert waited == [True], "the first chunk was held back until the handler finished"
    assert api.requests[1].chunks == (b"first", b"second")


def test_buffered_results_do_not_import_streaming(
    api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "runtime.streaming")
    answers = iter([{"a": 1}, [1], "text", b"raw", ("t",), None])
    for i in range(6):
        api.add_event(b"{}", f"req-{i}")
    run_loop(api, lambda event, context: next(answers), 6)
    assert "runtime.streaming" not in sys.modules
    assert [r.body for r in api.requests if r.method == "POST"] == [
        b'{"a": 1}',
        b"[1]",
        b'"text"',
        b"raw",
        b'["t"]',
        b"null",
    ]


# --- under the official emulator -----------------------------------------------------
# The emulator (aws-lambda-rie, aws-sam-cli 1.170.0) accepts the streaming mode
# but buffers: it answers its caller once the stream has ended, with the bytes as
# sent (the prelude too), its 6 MB buffered limit (a 413 mid-stream), and the
# trailers ignored (a failed stream is a 200 with the partial body).

RIE_APP = """\
def fails(event, context):
    yield "partial "
    raise ValueError("mid-stream")


def fails_at_length(event, context):
    yield "partial "
    raise ValueError("x" * event["n"])
"""


@pytest.mark.rie
def test_under_the_emulator(tmp_path: Path, write_module: WriteModule) -> None:
    root = Path(__file__).resolve().parent.parent
    write_module("rie_stream_app", RIE_APP)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{root}:{tmp_path}"}
    with Emulator(
        [sys.executable, "-m", "runtime", "handlers.stream.handler"], env=env, cwd=tmp_path
    ) as rie:
        status, body = rie.invoke(json.dumps({"queryStringParameters": {"count": "2"}}))
    assert status == 200
    prelude, _, text = body.partition(b"\x00" * 8)
    assert json.loads(prelude)["statusCode"] == 200
    assert text == b"line 1 of 2\nline 2 of 2\n"
    with Emulator(
        [sys.executable, "-m", "runtime", "rie_stream_app.fails"], env=env, cwd=tmp_path
    ) as rie:
        assert rie.invoke("{}") == (200, b"partial ")  # the emulator drops the trailers
        assert rie.invoke("{}") == (200, b"partial ")  # and the runtime goes on
    assert "[ERROR] ValueError: mid-stream" in rie.log()
    assert rie.log().count("INIT START") == 1


@pytest.mark.rie
def test_an_error_trailer_past_4_kib_is_cut_to_what_the_emulator_reads(
    tmp_path: Path, write_module: WriteModule
) -> None:
    """Go's net/http, under Lambda's Runtime API, reads trailers within 4 KiB:
    a longer one failed the response and reset the runtime (a 2,900-byte
    message did). Cut to fit, the invoke fails as it should, and the next is served."""
    root = Path(__file__).resolve().parent.parent
    write_module("rie_stream_app", RIE_APP)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{root}:{tmp_path}"}
    with Emulator(
        [sys.executable, "-m", "runtime", "rie_stream_app.fails_at_length"], env=env, cwd=tmp_path
    ) as rie:
        for n in (3_000, 100_000):
            assert rie.invoke(json.dumps({"n": n})) == (200, b"partial ")
    log = rie.log()
    assert "suspiciously long trailer" not in log
    assert log.count("INIT START") == 1, log
