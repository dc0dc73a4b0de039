"""The HTTP API on both stores: listings and filters, pagination, search, the article view, feed health,
/healthz, /metrics, Atom feeds, the token, 422s for bad parameters, and `newswatch serve` as users run it."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import uvicorn
from lxml import etree

from tests.apiserver import SECRET_FEED, TOKEN, SampleStore, live_server, sample_store, set_last_success
from tests.conftest import REPO, write_config
from tests.running import RunningDaemon
from worker.api.app import create_app
from worker.api.handoff import HandedServer, hand_over
from worker.cli.serve import listen
from worker.config import load_settings
from worker.errors import ConfigError, NewswatchError
from worker.runtime import Runtime
from worker.store.db import make_engine
from worker.timeutil import utcnow

ATOM_RNG = Path(__file__).parent / "data" / "atom.rng"


@pytest.fixture
def sample(tmp_path: Path, store_url: str) -> Iterator[SampleStore]:
    store = sample_store(tmp_path, store_url)
    yield store
    store.runtime.engine.dispose()


@contextmanager
def served(runtime: Runtime) -> Iterator[httpx.Client]:
    """A client of the app of `runtime`, served live by uvicorn on loopback."""
    with live_server(create_app(runtime)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


@pytest.fixture
def client(sample: SampleStore) -> Iterator[httpx.Client]:
    with served(sample.runtime) as client:
        yield client


def ids_of(client: httpx.Client, path: str = "/api/articles", **params: Any) -> list[int]:
    response = client.get(path, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_articles_are_listed_newest_first_without_duplicates(
    client: httpx.Client, sample: SampleStore
) -> None:
    ids = sample.ids
    assert ids_of(client, source="feed") == [ids["tokayev"], ids["weather"], ids["summit"], ids["grain"]]
    item = client.get("/api/articles", params={"limit": 1}).json()["items"][0]
    assert item["title"] == "Tokayev opens the new Aktau seaport terminal"
    assert item["outlet"] == "Astana Times" and item["source"] == "feed"
    assert item["url"] == "https://news.example/tokayev"
    assert [t["name"] for t in item["tags"]] == ["kazakhstan"]
    assert item["tags"][0]["score"] > 0 and item["tags"][0]["evidence"]


def test_filters(client: httpx.Client, sample: SampleStore) -> None:
    ids = sample.ids
    assert ids_of(client, tag="kazakhstan", source="feed") == [ids["tokayev"], ids["grain"]]
    assert ids_of(client, tag="ots", source="feed") == [ids["summit"]]
    assert ids_of(client, tag=["kazakhstan", "ots"], source="feed") == []
    assert ids_of(client, tag="no-such-tag") == []
    assert ids_of(client, since="7d", source="feed") == [ids["tokayev"], ids["weather"], ids["summit"]]
    assert ids_of(client, until="7d", source="feed") == [ids["grain"]]
    day = (sample.now - timedelta(days=20)).date().isoformat()
    assert ids_of(client, since=day, until="36h", source="feed") == [ids["weather"], ids["summit"]]
    assert ids_of(client, outlet="Trend") == [ids["summit"]]
    with_copies = ids_of(client, include_duplicates="true", source="feed")
    assert with_copies[:2] == [ids["tokayev-copy"], ids["tokayev"]]
    assert ids_of(client, duplicates_of=ids["tokayev"]) == [ids["tokayev-copy"]]
    seeds = client.get("/api/articles", params={"source": "seed"}).json()["items"]
    assert seeds and {item["source"] for item in seeds} == {"seed"}
    story = client.get(f"/api/articles/{ids['tokayev']}").json()["story_id"]
    assert ids_of(client, story_id=story, include_duplicates="true") == [ids["tokayev-copy"], ids["tokayev"]]


def test_cursor_pagination_visits_every_article_once(client: httpx.Client) -> None:
    everything = ids_of(client, include_duplicates="true")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "include_duplicates": "true"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/articles", params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(everything) >= 6


def test_search_ranks_and_highlights(client: httpx.Client, sample: SampleStore) -> None:
    ids = sample.ids
    page = client.get("/api/search", params={"q": "tokayev", "source": "feed"}).json()
    assert [item["id"] for item in page["items"]] == [ids["tokayev"]] and page["total"] == 1
    hit = page["items"][0]
    assert [part["text"] for part in hit["snippet_parts"] if part["highlight"]] == ["Tokayev"]
    assert "".join(part["text"] for part in hit["snippet_parts"]) == hit["snippet"]
    assert hit["rank"] > 0
    assert ids_of(client, "/api/search", q='"Turkic States"', source="feed") == [ids["summit"]]
    both = ids_of(client, "/api/search", q="Tokay*", include_duplicates="true", source="feed")
    assert sorted(both) == sorted([ids["tokayev"], ids["tokayev-copy"]])
    assert ids_of(client, "/api/search", q="Astana AND wheat", source="feed") == [ids["grain"]]
    assert ids_of(client, "/api/search", q="Caspian NOT Budapest", source="feed") == [ids["tokayev"]]
    assert ids_of(client, "/api/search", q="Caspian", tag="ots", source="feed") == [ids["summit"]]
    assert ids_of(client, "/api/search", q="nosuchwordanywhere") == []


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all(error["msg"] for error in detail)
    return list(detail)


BAD_PARAMETERS: tuple[tuple[dict[str, Any], str], ...] = (
    ({"since": "last tuesday"}, "since"),
    ({"until": "2025-13-45"}, "until"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"source": "web"}, "source"),
    ({"duplicates_of": "0"}, "duplicates_of"),
    ({"duplicates_of": str(2**31)}, "duplicates_of"),
    ({"tag": "x" * 65}, "tag"),
    ({"outlet": "a\x00b"}, "outlet"),
    ({"outlet": "---"}, "outlet"),
    ({"feed": "http://feeds.example/unknown.xml"}, "feed"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"include_duplicates": "perhaps"}, "include_duplicates"),
    ({"story_id": ["a", "b"]}, "story_id"),
)


def test_bad_parameters_are_422_naming_the_parameter(client: httpx.Client) -> None:
    for params, name in BAD_PARAMETERS:
        errors = _errors(client.get("/api/articles", params=params))
        assert errors[0]["loc"] == ["query", name], params


def test_bad_search_queries_are_422(client: httpx.Client) -> None:
    assert _errors(client.get("/api/search"))[0]["loc"] == ["query", "q"]
    assert _errors(client.get("/api/search", params={"q": ""}))[0]["loc"] == ["query", "q"]
    for query in ('"unclosed phrase', "a\x00b", "(Tokayev"):
        assert _errors(client.get("/api/search", params={"q": query}))[0]["loc"] == ["query", "q"], query
    for path in ("/api/articles/abc", "/api/articles/0", f"/api/articles/{2**31}"):
        assert _errors(client.get(path))[0]["loc"] == ["path", "article_id"], path


def test_article_view(client: httpx.Client, sample: SampleStore) -> None:
    ids = sample.ids
    article = client.get(f"/api/articles/{ids['tokayev']}").json()
    assert article["title"] == "Tokayev opens the new Aktau seaport terminal"
    assert article["text"].startswith("President Kassym-Jomart Tokayev")
    assert article["feed"] == "http://feeds.example/astana.xml" and article["source"] == "feed"
    assert article["tags"][0]["name"] == "kazakhstan" and article["tags"][0]["evidence"]
    assert [(d["status"], d["target"]) for d in article["deliveries"]] == [
        ("pending", "json://hook.example/***")
    ]
    assert [d["id"] for d in article["duplicates"]] == [ids["tokayev-copy"]] and article["why"] is None
    copy = client.get(f"/api/articles/{ids['tokayev-copy']}", params={"why": "true"}).json()
    assert copy["duplicate_of"] == ids["tokayev"] and copy["original"]["id"] == ids["tokayev"]
    assert copy["story_id"] == article["story_id"]
    assert ids["tokayev"] in [s["id"] for s in copy["story_siblings"]]
    assert copy["why"]["duplicate_of"] == ids["tokayev"] and copy["why"]["dup_method"]
    weather = client.get(f"/api/articles/{ids['weather']}").json()
    assert "feedsecret" not in weather["feed"] and weather["feed"].startswith("http://feeds.example/private")
    missing = client.get("/api/articles/987654321")
    assert missing.status_code == 404 and missing.json() == {"detail": "no article 987654321"}


def test_feed_health(client: httpx.Client) -> None:
    feeds = client.get("/api/feeds").json()
    by_url = {feed["url"].split("?")[0]: feed for feed in feeds}
    assert by_url["http://feeds.example/astana.xml"]["articles"] == 2
    assert by_url["http://feeds.example/trend.xml"]["articles"] == 2
    assert {feed["status"] for feed in feeds} == {"ok"}
    assert all("feedsecret" not in feed["url"] for feed in feeds)
    assert SECRET_FEED.split("?")[0] in by_url


def test_healthz_is_503_when_polling_is_stale(client: httpx.Client, sample: SampleStore) -> None:
    fresh = client.get("/healthz")
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["age_seconds"] >= 60
    stale_after = sample.runtime.settings.api.stale_after
    set_last_success(sample.runtime, utcnow() - timedelta(seconds=stale_after + 60))
    stale = client.get("/healthz")
    assert stale.status_code == 503 and stale.json()["status"] == "stale"
    set_last_success(sample.runtime, None)
    never = client.get("/healthz")
    assert never.status_code == 503 and never.json()["last_success"] is None


def test_unreachable_database_is_503_not_500(tmp_path: Path) -> None:
    # Port 1 on loopback refuses at once: a PostgreSQL server that is down.
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    settings = load_settings(write_config(tmp_path, database_url=url))
    with served(Runtime(settings, make_engine(url))) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "down"
        listing = client.get("/api/articles")
        assert listing.status_code == 503 and listing.json() == {"detail": "the database is unavailable"}


_SAMPLE_LINE = re.compile(r'^([a-z_]+)(\{(?:[a-z_]+="[^"\\\n]*",?)*\})? (-?[0-9.e+]+)$')


def parse_metrics(text: str) -> dict[str, float]:
    """Samples by name (with labels), after checking every line against the text format 0.0.4."""
    values: dict[str, float] = {}
    declared: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge") and name not in declared
            declared[name] = kind
            continue
        match = _SAMPLE_LINE.match(line)
        assert match, line
        assert match.group(1) in declared, f"{match.group(1)} has no TYPE line"
        values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def test_metrics(client: httpx.Client, sample: SampleStore) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = parse_metrics(response.text)
    assert values['newswatch_articles{source="feed"}'] == 5
    assert values['newswatch_articles{source="seed"}'] == 1
    assert values["newswatch_duplicates"] == 1
    assert values["newswatch_polls_total"] == 9
    assert values["newswatch_feeds"] == 3 and values["newswatch_feeds_failing"] == 0
    assert values["newswatch_fetch_errors"] == 0
    assert values['newswatch_alerts{status="pending"}'] == 1
    assert values['newswatch_alerts{status="sent"}'] == 1
    assert values['newswatch_alerts{status="failed"}'] == 0
    assert values["newswatch_outbox_depth"] == 1
    # The pending delivery was created ten minutes before the scrape.
    assert 600 <= values["newswatch_outbox_oldest_age_seconds"] < 86400
    assert 60 <= values["newswatch_last_success_age_seconds"] < 86400


def test_atom_feed_of_a_tag_is_valid_atom(client: httpx.Client, sample: SampleStore) -> None:
    response = client.get("/feeds/kazakhstan.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    titles = [entry.title for entry in parsed.entries]
    # Duplicates folded: the copy of the Tokayev story is not a second entry.
    assert titles.count("Tokayev opens the new Aktau seaport terminal") == 1
    assert "Kazakhstan grain exports reach a record" in titles
    assert "Rain expected in Paris <b>all week</b>" not in titles
    schema = etree.RelaxNG(etree.parse(str(ATOM_RNG)))
    document = etree.fromstring(response.content)
    assert schema.validate(document), schema.error_log
    empty = client.get("/feeds/no-such-tag.atom")
    assert empty.status_code == 200 and schema.validate(etree.fromstring(empty.content))
    assert feedparser.parse(empty.content).entries == []


def test_pages_escape_what_feeds_send(client: httpx.Client, sample: SampleStore) -> None:
    page = client.get("/", params={"q": "Paris"})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text and "&lt;b&gt;all week&lt;/b&gt;" in page.text
    assert "Le Temps &amp; Co" in page.text and f'href="articles/{sample.ids["weather"]}"' in page.text
    article = client.get(f"/articles/{sample.ids['weather']}")
    assert article.status_code == 200 and "<script>alert(1)" not in article.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in article.text
    assert client.get("/articles/987654321").status_code == 404
    assert client.get("/articles/abc").status_code == 404
    assert client.get(f"/articles/{2**31}").status_code == 404
    bad = client.get("/", params={"since": "whenever"})
    assert bad.status_code == 422 and 'class="error"' in bad.text


def test_token_guards_everything_but_healthz(tmp_path: Path) -> None:
    store = sample_store(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", token=TOKEN)
    with served(store.runtime) as client:
        for path in (
            "/api/articles",
            "/api/feeds",
            "/metrics",
            "/feeds/ots.atom",
            "/",
            "/docs",
            "/openapi.json",
        ):
            refused = client.get(path)
            assert refused.status_code == 401, path
            challenges = refused.headers.get_list("www-authenticate")
            assert [c.split()[0] for c in challenges] == ["Bearer", "Basic"]
        assert client.get("/healthz").status_code == 200
        wrong = {"Authorization": "Bearer not-the-token"}
        assert client.get("/api/articles", headers=wrong).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/articles", headers=bearer).status_code == 200
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        assert client.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        wrong_basic = base64.b64encode(b"anyone:guess").decode()
        assert client.get("/", headers={"Authorization": f"Basic {wrong_basic}"}).status_code == 401
        schema = client.get("/openapi.json", headers=bearer).json()
        assert schema["components"]["securitySchemes"]["token"] == {"type": "http", "scheme": "bearer"}
        assert schema["paths"]["/healthz"]["get"]["security"] == []
    store.runtime.engine.dispose()


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "serve", "--host", "0.0.0.0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: refusing to listen on 0.0.0.0 without an API token")
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_listen_reports_a_taken_port_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NewswatchError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: "):
            listen("127.0.0.1", port)


def test_serve_answers_then_stops_on_sigterm(tmp_path: Path) -> None:
    config = write_config(tmp_path, f'[api]\ntoken = "{TOKEN}"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(60)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    with notify, RunningDaemon(config, command=("serve", "--port", "0"), env=env) as server:
        line = server.wait_for_line("serving http://127.0.0.1:")[0]
        assert "READY=1" in notify.recv(4096).decode()
        base = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert base is not None
        feeds = httpx.get(base.group(1) + "api/feeds", headers={"Authorization": f"Bearer {TOKEN}"})
        assert feeds.status_code == 200 and isinstance(feeds.json(), list)
        assert httpx.get(base.group(1) + "api/feeds").status_code == 401
        assert server.stop() == 0
    assert TOKEN not in server.output and "Traceback" not in server.output
    assert len([line for line in server.lines if "serving" in line]) == 1


def _children(pid: int) -> dict[int, float]:
    """The API worker processes of `pid` and the CPU seconds each has used so far."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def _wait_for_workers(pid: int, count: int, without: frozenset[int] = frozenset()) -> dict[int, float]:
    deadline = time.monotonic() + 60
    while len(workers := {p: t for p, t in _children(pid).items() if p not in without}) != count:
        assert time.monotonic() < deadline, f"expected {count} API workers, found {workers}"
        time.sleep(0.1)
    return workers


def _connections(pids: Iterable[int], port: int) -> dict[int, int]:
    """How many established TCP connections to `port` each of `pids` holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(f"socket:[{fields[9]}]")
    counts = {}
    for pid in pids:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        counts[pid] = sum(link in inodes for link in links)
    return counts


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")
def test_serve_spreads_connections_over_its_workers_and_replaces_one_that_dies(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[api]\nworkers = 2\n")
    with RunningDaemon(config, command=("serve", "--port", "0")) as server:
        line = server.wait_for_line("serving http://127.0.0.1:")[0]
        assert "2 workers" in line
        base = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert base is not None
        before = _wait_for_workers(server.process.pid, 2)
        port = int(base.group(1).rstrip("/").rsplit(":", 1)[1])
        clients = [httpx.Client(timeout=30) for _ in range(20)]
        try:  # 20 connections held open at once: the server hands them out in turn, ten each
            for client in clients:
                assert client.get(base.group(1) + "api/articles", params={"limit": 100}).status_code == 200
            assert list(_connections(before, port).values()) == [10, 10]
        finally:
            for client in clients:
                client.close()
        after = _children(server.process.pid)
        assert all(after[pid] - before[pid] >= 0.02 for pid in before), (before, after)  # each one served

        victim = next(iter(before))
        os.kill(victim, signal.SIGKILL)
        server.wait_for_line("starting another")
        _wait_for_workers(server.process.pid, 2, without=frozenset({victim}))
        assert all(httpx.get(base.group(1) + "api/feeds").status_code == 200 for _ in range(10))
        assert server.stop() == 0
    assert "Traceback" not in server.output
    assert not _children(server.process.pid)


def test_a_worker_takes_every_connection_handed_over_at_once() -> None:
    """All connections waiting on the channel are taken in one turn of the event loop: a turn can be long
    (each connection with a request gets its search run), and one a turn left a burst's last waiting."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = HandedServer(uvicorn.Config(app=create_app), theirs)
    taken: list[socket.socket] = []

    async def take(_loop: asyncio.AbstractEventLoop, connection: socket.socket) -> None:
        taken.append(connection)

    async def one_turn() -> None:
        theirs.setblocking(False)
        server._receive(asyncio.get_running_loop())
        await asyncio.sleep(0)  # the tasks it started run

    server._take = take  # type: ignore[method-assign,assignment]
    connections = [socket.socket() for _ in range(3)]
    with ours, theirs:
        for connection in connections:
            hand_over(ours, connection)
            connection.close()
        asyncio.run(one_turn())
    assert len(taken) == 3
    for connection in taken:
        connection.close()


def test_serve_stops_when_its_workers_cannot_start(tmp_path: Path) -> None:
    rules = tmp_path / "tags.toml"
    rules.write_text("[tags.broken\n", encoding="utf-8")
    config = tmp_path / "newswatch.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[api]\nworkers = 2\n[tagging]\nrules = "{rules}"\n'
        "[seeds]\nauto_import = false\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "serve", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "an API worker cannot start" in done.stderr and str(rules) in done.stderr
    assert (
        done.stderr.rstrip().splitlines()[-1]
        == "error: the API workers could not start (see the error above)"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "api.workers: expected a whole number from 1 to 64, got 0"),
        ("65", "api.workers: expected a whole number from 1 to 64, got 65"),
        ('"many"', "api.workers: expected a whole number from 1 to 64, got 'many'"),
        ("true", "api.workers: expected a whole number from 1 to 64, got True"),
    ],
)
def test_bad_workers_settings_are_one_line_errors(tmp_path: Path, value: str, message: str) -> None:
    config = write_config(tmp_path, f"[api]\nworkers = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert caught.value.problems == [f"{config}: {message}"]


def test_workers_default_to_the_cpus_and_follow_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert load_settings(config, env={}).api.workers == min(len(os.sched_getaffinity(0)), 4)
    assert load_settings(config, env={"NEWSWATCH_API_WORKERS": "3"}).api.workers == 3
    with pytest.raises(ConfigError, match="environment NEWSWATCH_API_WORKERS: expected a whole number"):
        load_settings(config, env={"NEWSWATCH_API_WORKERS": "-1"})


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads worker processes from /proc")
def test_workers_end_when_the_server_is_killed(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[api]\nworkers = 2\n")
    with RunningDaemon(config, command=("serve", "--port", "0")) as server:
        server.wait_for_line("serving http://127.0.0.1:")
        workers = _wait_for_workers(server.process.pid, 2)
        server.signal(signal.SIGKILL)  # no chance to stop them itself
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "API workers outlived the killed server"
            time.sleep(0.1)
        server.process.wait(30)
