"""Alert targets: apprise configuration files, routing by tag, and real deliveries to local receivers."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from tests import receivers
from tests.receivers import SmtpServer, WebhookReceiver
from worker.alerts.channels import (
    ALL_TAGS,
    SendResult,
    Target,
    load_targets,
    routes,
    send,
    target_warnings,
)
from worker.alerts.render import Message
from worker.errors import ConfigError

PASSWORD = "pw-Zq81xLmT"
TOKEN = "tok4a9f2c7e"
ROUTING = ("kazakhstan", "ots")

# The receivers' fixtures (until tests/conftest.py imports them for every module).
smtp_server = receivers.smtp_server
webhook = receivers.webhook


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def closed_port() -> int:
    """A loopback port with nobody listening: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_target(directory: Path, url: str, tag: str = ALL_TAGS) -> Target:
    path = write(directory, "one.txt", f"{tag}={url}\n")
    [target] = load_targets(path)
    return target


def assert_one_line(text: str | None) -> str:
    assert text
    assert "\n" not in text and "\r" not in text
    return text


# ------------------------------------------------------------------------------------------ configuration

YAML_CONFIG = f"""\
version: 1
urls:
  - json://alice:{PASSWORD}@127.0.0.1:8080/hook:
      - tag: kazakhstan, team-chat
  - mmost://127.0.0.1:8065/{TOKEN}?channel=news:
      - tag: OTS
  - ntfy://127.0.0.1:8081/alerts:
      - tag: all
        format: markdown
  - mailto://nw:{PASSWORD}@127.0.0.1:2525?from=newswatch@example.org&to=alice@example.org:
      - tag: kazakhstan
  - json://127.0.0.1:8080/untagged
"""


def test_yaml_config_gives_one_target_per_url(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path, "channels.yml", YAML_CONFIG), routing_tags=ROUTING)

    assert [t.service for t in targets] == ["json", "mmost", "ntfy", "mailto", "json"]
    chat = targets[0]
    assert chat.tags == {"kazakhstan", "team-chat"}
    assert chat.name == "team-chat"  # the tag that is not a Newswatch tag names it
    assert (chat.body_format, chat.body_limit, chat.title_limit) == ("text", 32768, 250)
    mattermost = targets[1]
    assert mattermost.tags == {"ots"}  # tags compare in lower case
    assert mattermost.name == "mmost 127.0.0.1"
    assert mattermost.title_limit == 0  # Mattermost has no title
    assert mattermost.body_limit == 4000
    ntfy = targets[2]
    assert ntfy.tags == {ALL_TAGS}
    assert ntfy.body_format == "markdown"  # `format:` of the entry wins over the service default
    assert ntfy.title_limit == 200
    assert ntfy.body_limit == 7800 - 200  # ntfy counts the title in its body limit
    mail = targets[3]
    assert (mail.body_format, mail.title_limit) == ("html", 250)
    assert mail.tags == {"kazakhstan"}
    assert targets[4].tags == frozenset()

    assert len({t.id for t in targets}) == len(targets)
    for target in targets:
        assert len(target.id) == 16
        for secret in (PASSWORD, TOKEN):
            assert secret not in target.display
            assert secret not in repr(target)
    assert PASSWORD in chat.url and TOKEN in mattermost.url  # send() needs them


def test_ids_are_stable_and_follow_the_url(tmp_path: Path) -> None:
    path = write(tmp_path, "channels.yml", YAML_CONFIG)
    first = [t.id for t in load_targets(path)]
    # Retagging keeps the id; changing the URL makes another target.
    reordered = YAML_CONFIG.replace("tag: kazakhstan, team-chat", "tag: ots")
    assert [t.id for t in load_targets(write(tmp_path, "channels.yml", reordered))] == first
    moved = YAML_CONFIG.replace("8080/hook", "8080/other")
    assert [t.id for t in load_targets(write(tmp_path, "channels.yml", moved))][1:] == first[1:]
    assert load_targets(write(tmp_path, "channels.yml", moved))[0].id != first[0]


def test_untagged_targets_are_kept_with_a_warning(tmp_path: Path) -> None:
    targets = load_targets(write(tmp_path, "channels.yml", YAML_CONFIG))
    [warning] = target_warnings(targets)
    assert "untagged" in warning and "no apprise tag" in warning
    assert not routes(targets[4], ["kazakhstan", "ots", "anything"])


def test_text_config(tmp_path: Path) -> None:
    text = (
        "# apprise TEXT format: tags=URL\n"
        f"kazakhstan, ots = json://alice:{PASSWORD}@127.0.0.1:8080/both\n"
        f"all=mmost://127.0.0.1:8065/{TOKEN}\n"
        "json://127.0.0.1:8080/untagged\n"
    )
    targets = load_targets(write(tmp_path, "apprise.conf", text))
    assert [(t.service, t.tags) for t in targets] == [
        ("json", {"kazakhstan", "ots"}),
        ("mmost", {ALL_TAGS}),
        ("json", frozenset()),
    ]
    assert len(target_warnings(targets)) == 1


def test_the_content_decides_the_format(tmp_path: Path) -> None:
    assert len(load_targets(write(tmp_path, "apprise.conf", YAML_CONFIG))) == 5
    [target] = load_targets(write(tmp_path, "channels.yml", "ots=json://127.0.0.1:8080/a\n"))
    assert target.tags == {"ots"}


def test_any_file_name(tmp_path: Path) -> None:
    directory = tmp_path / "my configs #1 %20?"
    directory.mkdir()
    assert len(load_targets(write(directory, "chan nels.yml", YAML_CONFIG))) == 5


def test_the_same_url_twice_is_one_target_with_both_tags(tmp_path: Path) -> None:
    text = "kazakhstan=json://127.0.0.1:8080/hook\nots,desk=json://127.0.0.1:8080/hook\n"
    [target] = load_targets(write(tmp_path, "apprise.txt", text), routing_tags=ROUTING)
    assert target.tags == {"kazakhstan", "ots", "desk"}
    assert target.name == "desk"


def test_include_lines_are_followed(tmp_path: Path) -> None:
    write(tmp_path, "more.txt", "ots=json://127.0.0.1:8080/included\n")
    path = write(tmp_path, "apprise.txt", "include more.txt\nkazakhstan=json://127.0.0.1:8080/main\n")
    assert sorted(t.display.split("?")[0] for t in load_targets(path)) == [
        "json://127.0.0.1:8080/included",
        "json://127.0.0.1:8080/main",
    ]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yml", "version: 1\nurls:\n  - json://127.0.0.1/x: [\n", "YAML"),
        ("unknown.yml", "urls:\n  - foo://example.org/x:\n      - tag: ots\n", "foo"),
        ("unknown.txt", "ots=json://127.0.0.1/ok\nkazakhstan=foo://example.org/x\n", "foo://example.org/x"),
        ("no-token.yml", "urls:\n  - mmost://127.0.0.1:\n      - tag: ots\n", "Mattermost"),
        ("junk.txt", "hello world\n", "line 1"),
    ],
)
def test_config_problems_are_one_line_each_naming_the_file(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as raised:
        load_targets(path)
    problems = raised.value.problems
    assert problems
    for problem in problems:
        assert assert_one_line(problem).startswith(f"{path}: ")
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(("name", "text"), [("no-urls.yml", "version: 1\nurls:\n"), ("c.txt", "# later\n")])
def test_a_file_without_urls_means_alerts_are_off(tmp_path: Path, name: str, text: str) -> None:
    assert load_targets(write(tmp_path, name, text)) == []


def test_the_shipped_channels_file_is_valid() -> None:
    assert load_targets(Path(__file__).resolve().parents[1] / "config" / "channels.yml") == []


def test_a_rejected_entry_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yml", "urls:\n  - mailto://127.0.0.1:2525?to=alice@example.org&from=nobody:\n")
    with pytest.raises(ConfigError) as raised:
        load_targets(path)
    [problem] = raised.value.problems
    assert "entry #1" in problem and "From" in problem


def test_missing_or_unreadable_file(tmp_path: Path) -> None:
    koi8 = tmp_path / "koi8.txt"
    koi8.write_bytes("ots=json://127.0.0.1/Almaty-Алматы\n".encode("koi8-r"))
    cases = [(tmp_path / "nope.yml", "No such file"), (tmp_path, "Is a directory"), (koi8, "not UTF-8")]
    for path, reason in cases:
        with pytest.raises(ConfigError) as raised:
            load_targets(path)
        [problem] = raised.value.problems
        assert problem.startswith(f"{path}: ") and reason in problem


def test_config_problems_hide_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, "c.txt", f"ots=foo://alice:{PASSWORD}@example.org/x?token={TOKEN}\n")
    with pytest.raises(ConfigError) as raised:
        load_targets(path)
    text = " ".join(raised.value.problems)
    assert "foo://" in text
    assert PASSWORD not in text and TOKEN not in text


# ---------------------------------------------------------------------------------------------- routing


def make_target(tags: set[str]) -> Target:
    return Target(
        id="x",
        url="json://127.0.0.1/x",
        display="json://127.0.0.1/x",
        name="x",
        tags=frozenset(tags),
        service="json",
        body_format="text",
        body_limit=100,
        title_limit=10,
    )


def test_routes() -> None:
    kazakhstan = make_target({"kazakhstan", "team-chat"})
    assert routes(kazakhstan, ["Kazakhstan"])  # case-insensitive
    assert routes(kazakhstan, ["ots", "kazakhstan"])
    assert not routes(kazakhstan, ["ots"])
    assert not routes(kazakhstan, [])
    everything = make_target({ALL_TAGS})
    assert routes(everything, ["my-own-tag"]) and routes(everything, [])
    assert not routes(make_target(set()), ["kazakhstan"])


# ------------------------------------------------------------------------------------------------ sending

TEXT = Message(
    title="Astana hosts the OTS summit",
    body="Leaders met in Astana.\nMore: https://example.org/a",
    body_format="text",
)


def test_send_json(tmp_path: Path, webhook: WebhookReceiver) -> None:
    target = one_target(tmp_path, f"json://alice:{PASSWORD}@127.0.0.1:{webhook.port}/alerts/in")
    assert send(target, TEXT) == SendResult(ok=True)
    [request] = webhook.wait_for(1)
    assert (request.method, request.path) == ("POST", "/alerts/in")
    payload = request.json()
    assert payload["title"] == TEXT.title
    assert payload["message"] == TEXT.body
    assert payload["type"] == "info"
    assert request.headers["authorization"].startswith("Basic ")


def test_send_mattermost(tmp_path: Path, webhook: WebhookReceiver) -> None:
    target = one_target(tmp_path, f"mmost://newswatch@127.0.0.1:{webhook.port}/{TOKEN}?channel=news")
    assert target.title_limit == 0
    assert send(target, TEXT).ok
    [request] = webhook.wait_for(1)
    assert request.path == f"/hooks/{TOKEN}"
    payload = request.json()
    assert payload["channel"] == "news"
    assert payload["username"] == "newswatch"
    # Without a title field apprise puts the title on the first line of the text.
    assert payload["text"].startswith(TEXT.title) and TEXT.body.splitlines()[0] in payload["text"]


def test_send_ntfy_markdown(tmp_path: Path, webhook: WebhookReceiver) -> None:
    target = one_target(tmp_path, f"ntfy://127.0.0.1:{webhook.port}/kz-news?format=markdown")
    assert target.body_format == "markdown"
    message = Message(
        title="Astana", body="**Leaders** met in [Astana](https://example.org/a).", body_format="markdown"
    )
    assert send(target, message).ok
    [request] = webhook.wait_for(1)
    assert request.path == "/"
    assert request.headers["x-markdown"] == "yes"
    payload = request.json()
    assert payload == {"topic": "kz-news", "title": "Astana", "message": message.body}


def test_send_email_multipart_with_headers(tmp_path: Path, smtp_server: SmtpServer) -> None:
    target = one_target(
        tmp_path,
        f"mailto://newswatch:{PASSWORD}@127.0.0.1:{smtp_server.port}"
        "?from=newswatch@example.org&to=alice@example.org&cc=bob@example.org",
    )
    assert target.body_format == "html"
    message = Message(
        title="Қазақстан: саммит ОТС",
        body="<p><b>Leaders</b> met in <a href='https://example.org/a'>Astana</a>.</p>",
        body_format="html",
        headers={"List-Id": "Newswatch alerts <alerts.newswatch.example.org>"},
    )
    result = send(target, message)
    assert result == SendResult(ok=True), result.error
    [mail] = smtp_server.wait_for(1)
    assert mail.login == "newswatch"
    assert set(mail.recipients) == {"alice@example.org", "bob@example.org"}
    assert mail.sender == "newswatch@example.org"
    email = mail.message
    assert email["Subject"] == message.title
    assert email["List-Id"] == "Newswatch alerts <alerts.newswatch.example.org>"
    assert email.get_content_type() == "multipart/alternative"
    plain = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert plain is not None and html is not None
    assert "Leaders" in plain.get_content() and "<b>" not in plain.get_content()
    assert "<b>Leaders</b>" in html.get_content()


def test_header_values_cannot_inject_headers(tmp_path: Path, smtp_server: SmtpServer) -> None:
    target = one_target(
        tmp_path, f"mailto://127.0.0.1:{smtp_server.port}?from=nw@example.org&to=a@example.org"
    )
    message = Message("t", "b", "text", headers={"List-Id": "<a.example.org>\r\nBcc: evil@example.org"})
    assert send(target, message).ok
    [mail] = smtp_server.wait_for(1)
    assert mail.recipients == ("a@example.org",)
    assert mail.message["Bcc"] is None


def test_http_error_is_reported_without_secrets(tmp_path: Path, webhook: WebhookReceiver) -> None:
    webhook.set_status(500)
    target = one_target(tmp_path, f"json://alice:{PASSWORD}@127.0.0.1:{webhook.port}/hook?token={TOKEN}")
    result = send(target, TEXT)
    assert not result.ok
    error = assert_one_line(result.error)
    assert "500" in error
    for secret in (PASSWORD, TOKEN):
        assert secret not in error and secret not in target.display
    assert len(webhook.requests) == 1  # apprise does not retry: the outbox does


def test_header_and_parameter_values_are_masked(tmp_path: Path, webhook: WebhookReceiver) -> None:
    webhook.set_status(401)
    url = f"json://127.0.0.1:{webhook.port}/hook?+Authorization=Bearer%20{TOKEN}&-apikey={PASSWORD}"
    target = one_target(tmp_path, url)
    assert TOKEN not in target.display and PASSWORD not in target.display
    assert "Authorization" in target.display
    result = send(target, TEXT)
    [request] = webhook.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"  # sent, though never shown
    assert request.query == {"apikey": PASSWORD}
    error = assert_one_line(result.error)
    assert "401" in error and TOKEN not in error and PASSWORD not in error


def test_connection_error_masks_a_token_in_the_path(tmp_path: Path) -> None:
    # Mattermost's token is a path segment; requests quotes the path in its exception.
    target = one_target(tmp_path, f"mmost://127.0.0.1:{closed_port()}/{TOKEN}")
    result = send(target, TEXT)
    assert not result.ok
    error = assert_one_line(result.error)
    assert "/hooks/***" in error and "Connection refused" in error
    assert TOKEN not in error


def test_smtp_down_then_up(tmp_path: Path) -> None:
    server = SmtpServer()  # not started: connections are refused
    target = one_target(
        tmp_path, f"mailto://nw:{PASSWORD}@127.0.0.1:{server.port}?from=nw@example.org&to=alice@example.org"
    )
    down = send(target, TEXT)
    assert not down.ok
    error = assert_one_line(down.error)
    assert "Connection refused" in error and PASSWORD not in error
    with server:
        assert send(target, TEXT).ok
        [mail] = server.wait_for(1)
    assert mail.recipients == ("alice@example.org",)


def test_smtp_rejection_is_a_failure(tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1)
    url = f"mailto://127.0.0.1:{smtp_server.port}?from=nw@example.org&to=alice@example.org"
    target = one_target(tmp_path, url)
    assert not send(target, TEXT).ok
    assert send(target, TEXT).ok
    assert len(smtp_server.wait_for(1)) == 1


def test_read_timeout_from_the_url(tmp_path: Path, webhook: WebhookReceiver) -> None:
    answer_after = 5.0
    webhook.delay(answer_after)
    target = one_target(tmp_path, f"json://127.0.0.1:{webhook.port}/slow?rto=0.3")
    started = time.monotonic()
    result = send(target, TEXT)
    assert not result.ok and "timed out" in assert_one_line(result.error).lower()
    assert time.monotonic() - started < answer_after - 1  # it did not wait for the answer


def test_failures_then_recovery(tmp_path: Path, webhook: WebhookReceiver) -> None:
    target = one_target(tmp_path, f"json://127.0.0.1:{webhook.port}/hook")
    webhook.fail_next(1, status=503)
    assert "503" in (send(target, TEXT).error or "")
    webhook.fail_for(0.3)
    assert not send(target, TEXT).ok
    time.sleep(0.35)
    assert send(target, TEXT).ok
    assert [r.status for r in webhook.requests] == [503, 500, 200]


def test_send_never_raises_for_a_target_apprise_cannot_use() -> None:
    broken = Target(
        id="x",
        url=f"foo://alice:{PASSWORD}@example.org/x",
        display="foo://alice:***@example.org/x",
        name="x",
        tags=frozenset({ALL_TAGS}),
        service="foo",
        body_format="text",
        body_limit=100,
        title_limit=10,
    )
    result = send(broken, TEXT)
    assert not result.ok
    assert PASSWORD not in assert_one_line(result.error)


def test_unknown_body_format_is_a_programming_error(tmp_path: Path) -> None:
    target = one_target(tmp_path, "json://127.0.0.1:9/x")
    with pytest.raises(ValueError, match="body format"):
        send(target, Message("t", "b", "rtf"))


def test_apprise_messages_stay_out_of_the_log(
    tmp_path: Path, webhook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook.set_status(500)
    target = one_target(tmp_path, f"mmost://127.0.0.1:{webhook.port}/{TOKEN}")
    assert not send(target, TEXT).ok
    assert not send(one_target(tmp_path, f"mmost://127.0.0.1:{closed_port()}/{TOKEN}"), TEXT).ok
    assert TOKEN not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("apprise")]


def test_concurrent_sends_keep_their_own_errors(tmp_path: Path) -> None:
    with WebhookReceiver() as good, WebhookReceiver() as bad:
        good.delay(0.2)
        bad.delay(0.2)
        bad.set_status(502)
        targets = [
            one_target(tmp_path, f"json://127.0.0.1:{good.port}/ok"),
            one_target(tmp_path, f"json://127.0.0.1:{bad.port}/bad"),
            one_target(tmp_path, f"mmost://127.0.0.1:{closed_port()}/{TOKEN}"),
        ] * 3
        results: list[SendResult | None] = [None] * len(targets)
        start = threading.Barrier(len(targets))

        def deliver(index: int) -> None:
            start.wait()
            results[index] = send(targets[index], TEXT)

        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(targets))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(good.accepted) == 3
    for index, result in enumerate(results):
        assert result is not None
        kind = index % 3
        if kind == 0:
            assert result == SendResult(ok=True)
        elif kind == 1:
            error = assert_one_line(result.error)
            assert "502" in error and "Mattermost" not in error
        else:
            error = assert_one_line(result.error)
            assert "Mattermost" in error and "502" not in error
