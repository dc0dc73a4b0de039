"""The dedup evaluator (worker.evaluation.dedup): its scoring rules, its input errors, and the targets on the
development set in ../shared/eval (read in place, never copied)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, require_shared, write_config
from worker.errors import NewswatchError
from worker.evaluation.dedup import evaluate_dedup, published_of, read_rows

EVAL_DIR = SHARED / "eval"
DUPES = EVAL_DIR / "dupes.jsonl"
HARD_NEGATIVES = EVAL_DIR / "dupes_hard_negative_pairs.jsonl"

# Our own little report and its variants, for the scoring rules.
TEXT = (
    "Engineers in the port city of Aktau began testing a new ferry terminal on Tuesday, the regional "
    "administration said, after two years of construction that cost more than 140 million dollars. The "
    "terminal is designed to handle up to four million tonnes of cargo a year and will shorten the "
    "waiting time for trucks crossing the Caspian Sea, officials told reporters at the opening ceremony."
)
OTHER = (
    "A cold snap brought heavy snow to the northern regions over the weekend, closing several highways "
    "and delaying flights at two airports, the emergencies ministry reported on Sunday. Road crews worked "
    "through the night to clear the main routes, and schools in three districts stayed closed on Monday "
    "morning."
)


@pytest.fixture(scope="module")
def dev_result() -> dict[str, Any]:
    return evaluate_dedup(require_shared(DUPES))


def write_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def row(row_id: str, event: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": row_id, "event_id": event, "event_group": event, "url": None, "outlet": "wire",
            "date": "2025-03-04", "lang": "en", "title": "", "text": text, **extra}  # fmt: skip


# --- on the development set ----------------------------------------------------------------------------


def test_dev_set_meets_the_targets(dev_result: dict[str, Any]) -> None:
    article, story = dev_result["same_article"], dev_result["same_story"]
    assert article["precision"] >= 0.99, article["false_positives"]
    assert article["recall"] >= 0.95, article["false_negatives"]
    assert story["precision"] >= 0.95, story["false_positives"]
    assert story["recall"] >= 0.80


def test_dev_result_follows_the_json_contract(dev_result: dict[str, Any]) -> None:
    rows = read_rows(DUPES)
    assert set(dev_result) >= {"same_article", "same_story", "items"}
    for kind in ("same_article", "same_story"):
        assert set(dev_result[kind]) >= {"precision", "recall", "f1"}
        assert all(0.0 <= dev_result[kind][k] <= 1.0 for k in ("precision", "recall", "f1"))
    items = dev_result["items"]
    assert [i["id"] for i in items] == [r.id for r in rows]
    ids = {r.id for r in rows}
    for item in items:
        assert set(item) == {"id", "duplicate_of", "story_id"}
        assert item["duplicate_of"] is None or item["duplicate_of"] in ids
        assert isinstance(item["story_id"], str)
    json.dumps(dev_result)


def test_duplicates_point_at_originals(dev_result: dict[str, Any]) -> None:
    by_id = {i["id"]: i for i in dev_result["items"]}
    for item in dev_result["items"]:
        if item["duplicate_of"] is not None:
            assert by_id[item["duplicate_of"]]["duplicate_of"] is None
            assert by_id[item["duplicate_of"]]["story_id"] == item["story_id"]


def test_hard_negative_pairs_are_different_stories(dev_result: dict[str, Any]) -> None:
    story = {i["id"]: i["story_id"] for i in dev_result["items"]}
    pairs = [
        json.loads(line) for line in require_shared(HARD_NEGATIVES).read_text().splitlines() if line.strip()
    ]
    assert pairs
    for pair in pairs:
        assert story[pair["a_id"]] != story[pair["b_id"]], pair


# --- scoring rules -------------------------------------------------------------------------------------


def test_copies_and_transitive_copies_are_scored_as_one_article(tmp_path: Path) -> None:
    summary = TEXT.split(". The ")[0] + "."
    rows = [
        row("a", "e1", TEXT, url="https://a.example/1"),
        row("b", "e1", summary, url="https://b.example/1", copy_of="a"),
        row("c", "e1", TEXT + " [...] Read more", url="https://c.example/1", copy_of="b"),
        row("d", "e2", OTHER, url="https://d.example/1"),
    ]
    result = evaluate_dedup(write_rows(tmp_path, rows))
    assert result["same_article"]["pairs"] == 3  # a-b, a-c and b-c, through the chain
    assert result["same_article"]["precision"] == result["same_article"]["recall"] == 1.0
    items = {i["id"]: i for i in result["items"]}
    assert items["b"]["duplicate_of"] == items["c"]["duplicate_of"] == "a"
    assert items["d"]["story_id"] != items["a"]["story_id"]
    assert result["same_story"]["recall"] == 1.0


def test_a_missed_copy_costs_recall_and_is_listed(tmp_path: Path) -> None:
    rows = [row("a", "e1", TEXT), row("d", "e2", OTHER, copy_of="a")]
    result = evaluate_dedup(write_rows(tmp_path, rows))
    assert result["same_article"]["recall"] == 0.0
    assert result["same_article"]["false_negatives"] == [["a", "d"]]
    assert result["same_story"]["false_positives"] == []


def test_same_event_pairs_with_half_shared_text_are_not_scored(tmp_path: Path) -> None:
    words = TEXT.split()
    two_thirds = " ".join(words[: len(words) * 2 // 3]) + " " + OTHER  # containment about 0.67
    rows = [row("a", "e1", TEXT), row("b", "e1", two_thirds)]
    result = evaluate_dedup(write_rows(tmp_path, rows))
    assert result["same_article"]["unscored"] == 1
    assert result["same_article"]["pairs"] == 0


def test_dates_are_read_at_their_precision() -> None:
    assert published_of("2023-10-28") == datetime(2023, 10, 28, tzinfo=UTC)
    assert published_of("2023-11") == datetime(2023, 11, 1, tzinfo=UTC)
    assert published_of("2023") == datetime(2023, 1, 1, tzinfo=UTC)
    assert published_of(None) == published_of("sometime") == datetime(2000, 1, 1, tzinfo=UTC)


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "event_id": "e", "text": "x"}\nnot json\n', "rows.jsonl:2: not a JSON object"),
        ('{"id": "a", "text": "x"}\n', "rows.jsonl:1: missing or non-text field(s): event_id"),
        ('{"id": "a", "event_id": "e", "text": "x"}\n{"id": "a", "event_id": "e", "text": "y"}\n', "twice"),
        ('{"id": "a", "event_id": "e", "text": "x", "copy_of": "zz"}\n', "'zz', not in the file"),
        ("\n\n", "no rows"),
    ],
)
def test_malformed_files_raise_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NewswatchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate_dedup(path)


def test_missing_file_raises_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NewswatchError, match="cannot read"):
        evaluate_dedup(tmp_path / "nope.jsonl")


# --- the command ---------------------------------------------------------------------------------------


def test_eval_command_prints_the_contract_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker.cli.dedup import eval_dedup_command

    rows = [row("a", "e1", TEXT), row("b", "e1", TEXT.replace("Tuesday", "Monday"), copy_of="a")]
    eval_dedup_command(write_rows(tmp_path, rows), "json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["same_article"]["precision"] == 1.0
    assert printed["items"][1] == {
        "id": "b",
        "duplicate_of": "a",
        "story_id": printed["items"][0]["story_id"],
    }


def test_eval_command_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker.cli.dedup import eval_dedup_command

    rows = [row("a", "e1", TEXT), row("b", "e2", TEXT.replace("Tuesday", "Monday"))]
    eval_dedup_command(write_rows(tmp_path, rows), "table")
    out = capsys.readouterr().out
    assert "same article" in out and "same story" in out
    assert "false positives involve: a, b" in out


def test_eval_command_reports_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "dedup", str(bad), "--format", "json"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.jsonl:1" in err and len(err.strip().splitlines()) == 1


def test_rebuild_command_redecides_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker.cli import main

    config = write_config(tmp_path)  # its store gets the seeds on opening
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "dedup", "rebuild"])
    assert exit_.value.code in (0, None)
    assert "re-decided 1 article in" in capsys.readouterr().out
