"""The tag evaluator: targets on the labelled development set, the JSON contract, bad input, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import SHARED, require_shared
from worker.analysis.tagging import Tagger, rules_from_mapping
from worker.cli.evaluate import app as eval_app
from worker.errors import NewswatchError
from worker.evaluation.tags import evaluate_tags
from worker.tagrules import DEFAULT_RULES_PATH, load_rules

DEV_SET = SHARED / "eval" / "tagging.jsonl"
MIN_PRECISION = 0.97
MIN_RECALL = 0.95


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(load_rules(DEFAULT_RULES_PATH))


@pytest.fixture(scope="module")
def dev_report(tagger: Tagger) -> dict[str, Any]:
    return evaluate_tags(require_shared(DEV_SET), tagger)


def test_dev_set_meets_the_targets(dev_report: dict[str, Any]) -> None:
    for name in ("kazakhstan", "ots"):
        figures = dev_report["tags"][name]
        wrong = dev_report["misclassified"][name]
        assert figures["precision"] >= MIN_PRECISION, (name, figures, wrong)
        assert figures["recall"] >= MIN_RECALL, (name, figures, wrong)


def test_report_follows_the_json_contract(dev_report: dict[str, Any]) -> None:
    assert set(dev_report) == {"tags", "items", "misclassified"}
    assert set(dev_report["tags"]) == {"kazakhstan", "ots"}
    for figures in dev_report["tags"].values():
        assert set(figures) == {"precision", "recall", "f1"}
        assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in figures.values())
    lines = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [item["id"] for item in dev_report["items"]] == [line["id"] for line in lines]
    for item in dev_report["items"]:
        assert set(item) == {"id", "tags"}
        assert item["tags"] == sorted(item["tags"]) and set(item["tags"]) <= {"kazakhstan", "ots"}
    json.dumps(dev_report)  # serialisable as is


def write_items(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(item) for item in items) + "\n", encoding="utf-8")
    return path


def demo_tagger() -> Tagger:
    rules = {
        "languages": {"en": {}},
        "tags": {
            "uranium": {"threshold": 1.0, "terms": {"metal": {"weight": 1.0, "en": ["uranium"]}}},
            "gold": {"threshold": 1.0, "terms": {"metal": {"weight": 1.0, "en": ["gold"]}}},
            "unlabelled": {"threshold": 1.0, "terms": {"x": {"weight": 1.0, "en": ["zinc"]}}},
        },
    }
    return Tagger(rules_from_mapping(rules))


def test_figures_and_conventions_on_synthetic_items(tmp_path: Path) -> None:
    items: list[dict[str, Any]] = [
        {"id": "a", "title": "Uranium", "text": "", "tags": ["uranium"]},  # true positive
        {"id": "b", "title": "", "text": "uranium and zinc", "tags": []},  # uranium false positive
        {"id": "c", "title": "", "text": "nothing", "tags": ["uranium", "gold"]},  # two false negatives
        {"id": "d", "title": None, "text": "gold", "tags": ["gold"]},  # null title is no title
    ]
    report = evaluate_tags(write_items(tmp_path / "items.jsonl", items), demo_tagger())
    # "unlabelled" is defined by the rules but labelled nowhere: not evaluated.
    assert report["tags"] == {
        "uranium": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
        "gold": {"precision": 1.0, "recall": 0.5, "f1": 0.6667},
    }
    assert report["misclassified"]["uranium"] == {"false_positives": ["b"], "false_negatives": ["c"]}
    assert report["items"][1] == {"id": "b", "tags": ["unlabelled", "uranium"]}


def test_nothing_predicted_is_precision_zero_when_there_were_positives(tmp_path: Path) -> None:
    items = [{"id": "a", "text": "nothing", "tags": ["gold"]}]
    report = evaluate_tags(write_items(tmp_path / "items.jsonl", items), demo_tagger())
    assert report["tags"]["gold"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "tags": []}\n{"id": "b", "tags": [\n', r"items\.jsonl:2: not valid JSON"),
        ('{"id": "a"}\n', r"items\.jsonl:1: missing field\(s\) tags"),
        ('{"id": "a", "tags": "gold"}\n', r"items\.jsonl:1: 'tags' must be a list"),
        ("[1, 2]\n", r"items\.jsonl:1: expected a JSON object"),
        ("\n\n", r"items\.jsonl: no labelled items"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NewswatchError, match=message):
        evaluate_tags(path, demo_tagger())


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(NewswatchError, match=r"nope\.jsonl: cannot read labelled items"):
        evaluate_tags(tmp_path / "nope.jsonl", demo_tagger())


runner = CliRunner()


def test_eval_tags_json_prints_the_contract(tmp_path: Path) -> None:
    items = [{"id": "x1", "title": "Tokayev in Budapest", "text": "Talks.", "tags": ["kazakhstan"]}]
    path = write_items(tmp_path / "items.jsonl", items)
    outcome = runner.invoke(
        eval_app, ["tags", str(path), "--format", "json", "--rules", str(DEFAULT_RULES_PATH)]
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert report["tags"] == {"kazakhstan": {"precision": 1.0, "recall": 1.0, "f1": 1.0}}
    assert report["items"] == [{"id": "x1", "tags": ["kazakhstan"]}]


def test_eval_tags_table_lists_misclassified_ids(tmp_path: Path) -> None:
    items = [
        {"id": "fp-1", "title": "", "text": "Tokayev spoke.", "tags": []},
        {"id": "ok-2", "title": "", "text": "Nothing.", "tags": ["kazakhstan"]},
    ]
    path = write_items(tmp_path / "items.jsonl", items)
    outcome = runner.invoke(eval_app, ["tags", str(path), "--rules", str(DEFAULT_RULES_PATH)])
    assert outcome.exit_code == 0, outcome.output
    assert "kazakhstan" in outcome.stdout and "fp-1" in outcome.stdout and "ok-2" in outcome.stdout


def test_eval_tags_bad_file_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text("not json\n", encoding="utf-8")
    outcome = runner.invoke(eval_app, ["tags", str(path), "--rules", str(DEFAULT_RULES_PATH)])
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(f"error: {path}:1: not valid JSON")
    assert "Traceback" not in outcome.output
