"""Connection hygiene of a real `llmapi serve`, over raw sockets: a client that sends nothing, drips its head
or its body, idles on a kept-alive connection, sends huge headers or opens too many connections holds the
server only as long as its limits say, and never needs a credential to be refused."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from tests.servers import ADMIN_HEADERS, RunningServer, llmapi_server

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1
MAX_HEADER_BYTES = 8_192
MAX_CONNECTIONS = 8
# What a timer may be late by on a busy test machine.
SLACK_S = 2.0
SENTIMENT_ONLY = "models:\n  - {id: vader, task: sentiment, backend: vader}\n"
ADMIN_AUTHORIZATION = f"Authorization: {ADMIN_HEADERS['Authorization']}\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("connection-limits")
    (directory / "models.yaml").write_text(SENTIMENT_ONLY)
    env = {
        "LLMAPI_SERVER__HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        "LLMAPI_SERVER__BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
        "LLMAPI_SERVER__KEEP_ALIVE_TIMEOUT_SECONDS": str(KEEP_ALIVE_S),
        "LLMAPI_SERVER__MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "LLMAPI_SERVER__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with llmapi_server(directory, models_file=directory / "models.yaml", env=env) as running:
        yield running


def connect(server: RunningServer) -> socket.socket:
    address = urlsplit(server.base_url)
    return socket.create_connection((address.hostname, address.port), timeout=5)


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """What the server sends within `seconds`, and whether it closed the connection by then."""
    deadline = time.monotonic() + seconds
    received = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            break
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk
    return False, received


def drip(sock: socket.socket, data: bytes, *, every_s: float = 0.05, for_at_most_s: float) -> bool:
    """Send `data` a byte at a time until the server answers or closes (True), `data` runs out or
    `for_at_most_s` have passed (False)."""
    deadline = time.monotonic() + for_at_most_s
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        if select.select([sock], [], [], every_s)[0]:
            return True
        if time.monotonic() > deadline:
            break
    return False


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (its head and its Content-Length of body), the connection left open."""
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := sock.recv(1 << 16)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = int(next(line for line in lines if line.startswith(b"content-length:"))[15:])
    while len(body) < length and (chunk := sock.recv(1 << 16)):
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def send_head_in_pieces(sock: socket.socket, head: bytes, *, piece: int = 1 << 16) -> None:
    """Send `head`, stopping where the server stops reading (it may close before the end)."""
    for start in range(0, len(head), piece):
        try:
            sock.sendall(head[start : start + piece])
        except (BrokenPipeError, ConnectionResetError):
            return


def test_a_connection_that_sends_nothing_is_closed(server: RunningServer) -> None:
    with connect(server) as sock:
        start = time.monotonic()
        closed, received = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)

    assert closed, "a connection that sent nothing is still open"
    assert received == b"", "nothing was asked, so nothing is answered"
    assert time.monotonic() - start >= HEADER_TIMEOUT_S * 0.9


def test_a_head_dripped_slowly_gets_408_and_is_closed(server: RunningServer) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"

    with connect(server) as sock:
        cut_off = drip(sock, head, for_at_most_s=HEADER_TIMEOUT_S + SLACK_S)
        closed, response = read_until_closed(sock, SLACK_S)

    assert cut_off, f"the head was still being read after {HEADER_TIMEOUT_S + SLACK_S} s"
    assert closed
    assert status_of(response) == 408
    assert b'"code":"request_timeout"' in response


def test_a_body_dripped_slowly_gets_408_and_is_closed(server: RunningServer) -> None:
    body = b'{"model": "vader", "input": "' + b"a" * 200 + b'"}'
    head = (
        b"POST /v1/analyze/sentiment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + ADMIN_AUTHORIZATION
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )

    with connect(server) as sock:
        sock.sendall(head)
        cut_off = drip(sock, body, for_at_most_s=BODY_TIMEOUT_S + SLACK_S)
        closed, response = read_until_closed(sock, SLACK_S)

    assert cut_off, f"the body was still being read after {BODY_TIMEOUT_S + SLACK_S} s"
    assert closed
    assert status_of(response) == 408


def test_a_body_nobody_reads_cannot_hold_the_connection(server: RunningServer) -> None:
    """Refused before its body is read (no credential), a request may not drip that body forever."""
    head = (
        b"POST /v1/analyze/sentiment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )

    with connect(server) as sock:
        sock.sendall(head)
        assert status_of(read_answer(sock)) == 401
        cut_off = drip(sock, b"a" * 1_000, for_at_most_s=BODY_TIMEOUT_S + SLACK_S)
        closed, _ = read_until_closed(sock, SLACK_S)

    assert cut_off, "a request refused with 401 still holds its connection while its body drips"
    assert closed


def test_an_idle_kept_alive_connection_is_closed(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status_of(read_answer(sock)) == 200
        closed, received = read_until_closed(sock, KEEP_ALIVE_S + SLACK_S)

    assert closed
    assert received == b""


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n", id="one long header"),
        pytest.param(b"X-Small: a\r\n" * (MAX_HEADER_BYTES // 10), id="many short headers"),
        pytest.param(b"X-Huge: " + b"a" * (10 << 20) + b"\r\n", id="a 10 MB header"),
    ],
)
def test_headers_over_the_limit_get_431(server: RunningServer, head: bytes) -> None:
    with connect(server) as sock:
        send_head_in_pieces(sock, b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        closed, response = read_until_closed(sock, SLACK_S)

    assert status_of(response) == 431
    assert b'"code":"request_header_fields_too_large"' in response
    assert closed


def test_a_long_url_counts_as_head(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live?" + b"a" * MAX_HEADER_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        _, response = read_until_closed(sock, SLACK_S)

    assert status_of(response) == 431


def test_an_http_client_reads_the_431(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/health/live", headers={"X-Big": "a" * (1 << 20)}, timeout=10)

    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"


def test_headers_within_the_limit_are_served(server: RunningServer) -> None:
    padding = "a" * (MAX_HEADER_BYTES - 1_024)

    response = httpx.get(f"{server.base_url}/health/live", headers={"X-Padding": padding}, timeout=10)

    assert response.status_code == 200


def test_connections_over_the_limit_get_503(server: RunningServer) -> None:
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # let the server accept them all
        crowded = httpx.get(f"{server.base_url}/health/live", timeout=10)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    after = httpx.get(f"{server.base_url}/health/live", timeout=10)

    assert crowded.status_code == 503
    assert after.status_code == 200
