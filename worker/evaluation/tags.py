"""Measure the real Tagger on labelled items (the ../shared/eval/tagging.jsonl format).

The result is the evaluators' JSON contract — per-tag precision/recall/F1 and the predicted tags of every
item — plus the misclassified ids per tag, so that a rule change can be judged by exactly what it fixed and
what it broke.

Conventions: a tag is evaluated when the rules define it and at least one item is labelled with it (labels
made without a tag in mind say nothing about it). Precision with nothing predicted is 1.0 when there are no
positives and 0.0 otherwise; recall with no positives is 1.0; F1 is 0.0 when precision and recall are both 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.analysis.tagging import Tagger
from worker.errors import NewswatchError

REQUIRED_FIELDS = ("id", "tags")
DIGITS = 4  # rounding of the reported figures


@dataclass(frozen=True)
class LabelledItem:
    id: str
    title: str
    text: str
    tags: frozenset[str]


def read_items(path: Path) -> list[LabelledItem]:
    """The labelled items of a JSON-lines file; NewswatchError naming the file and line on bad input."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NewswatchError(f"{path}: cannot read labelled items: {reason}") from exc
    items = [_parse_line(path, number, line) for number, line in _numbered(lines)]
    if not items:
        raise NewswatchError(f"{path}: no labelled items in the file")
    return items


def _numbered(lines: list[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def _parse_line(path: Path, number: int, line: str) -> LabelledItem:
    where = f"{path}:{number}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise NewswatchError(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise NewswatchError(f"{where}: expected a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise NewswatchError(f"{where}: missing field(s) {', '.join(missing)}")
    tags = data["tags"]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise NewswatchError(f"{where}: 'tags' must be a list of tag names")
    title, text = data.get("title") or "", data.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise NewswatchError(f"{where}: 'title' and 'text' must be strings")
    return LabelledItem(id=str(data["id"]), title=title, text=text, tags=frozenset(tags))


def _ratio(numerator: int, denominator: int, empty: float) -> float:
    return round(numerator / denominator, DIGITS) if denominator else empty


def _scores(true_positives: int, predicted: int, positives: int) -> dict[str, float]:
    precision = _ratio(true_positives, predicted, 1.0 if positives == 0 else 0.0)
    recall = _ratio(true_positives, positives, 1.0)
    f1 = round(2 * precision * recall / (precision + recall), DIGITS) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate_tags(path: Path, tagger: Tagger) -> dict[str, Any]:
    """`{"tags": {tag: {precision, recall, f1}}, "items": [{id, tags}], "misclassified": {tag: {...}}}`.

    `misclassified[tag]` holds `false_positives` and `false_negatives`, lists of item ids in file order.
    """
    items = read_items(path)
    labelled = set().union(*(item.tags for item in items))
    evaluated = [name for name in tagger.rules.tag_names if name in labelled]
    predictions = [frozenset(result.tag for result in tagger.tag(item.title, item.text)) for item in items]
    report: dict[str, Any] = {"tags": {}, "items": [], "misclassified": {}}
    for name in evaluated:
        false_positives = [
            i.id for i, p in zip(items, predictions, strict=True) if name in p and name not in i.tags
        ]
        false_negatives = [
            i.id for i, p in zip(items, predictions, strict=True) if name not in p and name in i.tags
        ]
        positives = sum(1 for item in items if name in item.tags)
        predicted = sum(1 for p in predictions if name in p)
        true_positives = predicted - len(false_positives)
        report["tags"][name] = _scores(true_positives, predicted, positives)
        report["misclassified"][name] = {
            "false_positives": false_positives,
            "false_negatives": false_negatives,
        }
    report["items"] = [{"id": i.id, "tags": sorted(p)} for i, p in zip(items, predictions, strict=True)]
    return report
