"""Log redaction: secrets by key and by value, in fields and tracebacks; never locals."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from syncd.logs import configure_logging, is_sensitive_key
from syncd.secrets import Secret

VALUE = "tok-LOGS-7d1e0b9a55"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def secret() -> Iterator[Secret]:
    """A registered secret, forgotten after the test."""
    value = Secret(VALUE)
    yield value
    value.forget()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave the root logger and structlog as the test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def capture(as_json: bool) -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("debug", stream=buffer, json=as_json)
    return buffer


UNREGISTERED = "local-only-c0ffee42"


def raise_with_local(secret: Secret) -> None:
    token = secret.reveal()  # a local variable holding the registered value
    other = UNREGISTERED[:]  # and one that only a locals dump could show
    assert token
    assert other
    raise RuntimeError("the server said no")


both = pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])


@both
def test_value_in_field_is_scrubbed(secret: Secret, as_json: bool) -> None:
    """A secret value inside an ordinary field (and the event text) does not reach the output."""
    out = capture(as_json)
    structlog.get_logger().info(f"sent {VALUE}", url=f"https://x/?q={VALUE}", n=3)
    text = out.getvalue()
    assert VALUE not in text
    assert "***" in text


@both
def test_value_in_exception_message_is_scrubbed(secret: Secret, as_json: bool) -> None:
    """A secret value in an exception's message and its cause is not in the rendered traceback."""
    out = capture(as_json)
    try:
        try:
            raise ValueError(f"bad token {VALUE!r}")
        except ValueError as cause:
            raise RuntimeError(f"refresh failed for {VALUE}") from cause
    except RuntimeError:
        structlog.get_logger().exception("refresh failed")
    text = out.getvalue()
    assert "RuntimeError" in text
    assert "ValueError" in text
    assert VALUE not in text


@both
def test_traceback_has_no_locals(secret: Secret, as_json: bool) -> None:
    """Local variables of a raising frame (a secret, or any value) never reach the log."""
    out = capture(as_json)
    try:
        raise_with_local(secret)
    except RuntimeError:
        structlog.get_logger().exception("cycle failed")
    text = out.getvalue()
    assert "raise_with_local" in text
    assert VALUE not in text
    assert UNREGISTERED not in text


def test_json_traceback_is_structured(secret: Secret) -> None:
    """JSON lines carry the exception as structured frames, without a locals key."""
    out = capture(True)
    try:
        raise_with_local(secret)
    except RuntimeError:
        structlog.get_logger().exception("cycle failed")
    line = json.loads(out.getvalue())
    frames = line["exception"][0]["frames"]
    assert frames[-1]["name"] == "raise_with_local"
    assert all("locals" not in frame for frame in frames)


@both
def test_redaction_by_key_nested(as_json: bool) -> None:
    """Credential-named keys are redacted at any depth, in dicts and lists."""
    out = capture(as_json)
    structlog.get_logger().info(
        "token reply",
        password="pw-one-1",  # noqa: S106 - a fake, to be redacted
        reply={"access_token": "at-two-2", "items": [{"refreshToken": "rt-three-3"}]},
        headers={"Authorization": "Basic dXNlcjpwdw==", "X-Api-Key": "ak-four-4"},
        cookies=["c-five-5"],
        calendar="work",
    )
    text = out.getvalue()
    for value in ("pw-one-1", "at-two-2", "rt-three-3", "dXNlcjpwdw==", "ak-four-4", "c-five-5"):
        assert value not in text
    assert "work" in text


def test_redaction_by_key_keeps_shape() -> None:
    """Only the credential's value becomes ***; the key and its neighbours stay."""
    out = capture(True)
    structlog.get_logger().info("reply", reply={"client_secret": "cs-6", "expires_in": 3599})
    assert json.loads(out.getvalue())["reply"] == {"client_secret": "***", "expires_in": 3599}


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("db_password", True),
        ("passwd", True),
        ("refreshToken", True),
        ("client-secret", True),
        ("credentials", True),
        ("Set-Cookie", True),
        ("api_key", True),
        ("sync_token", False),
        ("password_file", False),
        ("calendar", False),
    ],
)
def test_sensitive_key_names(key: str, sensitive: bool) -> None:
    """Key matching follows the word at the end of the name; cursors and paths are not secrets."""
    assert is_sensitive_key(key) is sensitive


def test_bound_context_is_redacted(secret: Secret) -> None:
    """Values bound to a logger or to context variables are redacted like event fields."""
    out = capture(True)
    structlog.contextvars.bind_contextvars(token="ctx-token-8")  # noqa: S106 - a fake
    try:
        structlog.get_logger().bind(note=VALUE).info("bound")
    finally:
        structlog.contextvars.clear_contextvars()
    text = out.getvalue()
    assert "ctx-token-8" not in text
    assert VALUE not in text


def test_secret_object_in_field_prints_stars() -> None:
    """A Secret passed as a field renders as *** (and objects are rendered by repr)."""
    out = capture(True)
    wrapped = Secret("obj-secret-9")
    structlog.get_logger().info("x", extra=wrapped, objects=(Path("/a"),))
    wrapped.forget()
    line = json.loads(out.getvalue())
    assert line["extra"] == "***"
    assert line["objects"] == ["PosixPath('/a')"]


@both
def test_stdlib_logging_is_redacted(secret: Secret, as_json: bool) -> None:
    """A library logging through the standard logging module is redacted the same way."""
    out = capture(as_json)
    try:
        raise_with_local(secret)
    except RuntimeError:
        logging.getLogger("somelib").exception("request with %s failed", VALUE)
    logging.getLogger("somelib").warning("Authorization: Bearer abc.def-ghi")
    text = out.getvalue()
    assert "somelib" in text
    assert VALUE not in text
    assert "abc.def-ghi" not in text


def test_reconfiguring_keeps_one_root_handler() -> None:
    """Configuring twice replaces the root handler instead of duplicating lines."""
    capture(True)
    out = capture(True)
    logging.getLogger("somelib").warning("once")
    assert out.getvalue().count("once") == 1


def test_json_when_not_a_terminal() -> None:
    """Without an explicit choice a non-terminal stream gets JSON lines."""
    buffer = io.StringIO()
    configure_logging(stream=buffer)
    structlog.get_logger().info("hello", n=1)
    assert json.loads(buffer.getvalue())["event"] == "hello"


def test_child_process_stderr_has_no_secret(tmp_path: Path) -> None:
    """A separate process logging an exception that carries a secret leaves it out of stderr."""
    password = tmp_path / "password"
    password.write_text("child-SECRET-31c7aa\n")
    password.chmod(0o600)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import structlog
        from syncd.logs import configure_logging
        from syncd.secrets import read_secret

        configure_logging()
        secret = read_secret(file=Path({str(password)!r}), env=None, credential=None,
                             where="calendars[0].password")
        log = structlog.get_logger("child")

        def connect(password):
            auth = "user:" + password
            raise ConnectionError(f"login with {{auth}} refused")

        try:
            connect(secret.reveal())
        except ConnectionError:
            log.exception("login failed", secret=secret.reveal(), attempt=1)
        log.error("uncaught next")
        print("done", file=sys.stdout)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ConnectionError" in result.stderr
    assert "login failed" in result.stderr
    assert "child-SECRET-31c7aa" not in result.stderr
    assert "child-SECRET-31c7aa" not in result.stdout
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["login failed", "uncaught next"]
