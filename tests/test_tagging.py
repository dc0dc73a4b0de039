"""Tag matching with the shipped rules (config/tags.toml), rule validation, and `newswatch tags test`."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from worker.analysis.tagging import (
    Evidence,
    RuleError,
    Tagger,
    TagResult,
    fold_for_matching,
    rules_from_mapping,
)
from worker.analysis.text import fold, fold_with_offsets
from worker.cli.tags import app
from worker.errors import ConfigError
from worker.ingest.seeds import read_seed
from worker.tagrules import DEFAULT_RULES_PATH, load_rules

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "seeds" / "000_f04ee3409059703f.txt"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(load_rules(DEFAULT_RULES_PATH))


def result(tagger: Tagger, tag: str, text: str, title: str = "") -> TagResult | None:
    return next((r for r in tagger.explain(title, text) if r.tag == tag), None)


def terms(tagger: Tagger, tag: str, text: str, title: str = "") -> list[str]:
    found = result(tagger, tag, text, title)
    return [e.term for e in found.evidence] if found else []


def tags(tagger: Tagger, text: str, title: str = "") -> set[str]:
    return {r.tag for r in tagger.tag(title, text)}


def small_rules(**tag: Any) -> dict[str, Any]:
    """A one-tag rule mapping ("demo") on top of English, for exact arithmetic."""
    body = {"threshold": 3.0, "terms": {"city": {"weight": 1.0, "en": ["Astana"]}}}
    body.update(tag)
    return {"languages": {"en": {"suffixes": ["s"]}}, "tags": {"demo": body}}


# --- word boundaries and inflection -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Pakistan", "Kazan", "Kazakova", "Kazakbayev", "Kazakhstanian", "Astanax"])
def test_lookalike_words_are_not_kazakhstan(tagger: Tagger, text: str) -> None:
    assert terms(tagger, "kazakhstan", f"News from {text} today.") == []


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Визит в столицу Казахстана", "Казахстан"),  # ru genitive
        ("Президент Токаева встретил", "Токаев"),  # ru genitive of the surname
        ("Қазақстанның экономикасы", "Қазақстан"),  # kk genitive
        ("Астанаға барды", "Астана"),  # kk dative
        ("Kazakistan'ın başkenti", "Kazakistan"),  # tr, apostrophe
        ("Kazakistanda seçim", "Kazakistan"),  # tr, no apostrophe
        ("Tokayev'in ziyareti", "Tokayev"),  # tr
        ("Qazaxıstanda keçirilən", "Qazaxıstan"),  # az locative
        ("Qozogʻistonda saylov", "Qozog'iston"),  # uz, with the turned-comma letter
        ("Astanaga keldi", "Astana"),  # uz dative
        ("Казакстандын президенти", "Казакстан"),  # ky genitive
        ("Kazahsztánban tartott", "Kazahsztán"),  # hu inessive
        ("Kasachstans Präsident", "Kasachstan"),  # de genitive
    ],
)
def test_inflected_forms_match_their_base_name(tagger: Tagger, text: str, term: str) -> None:
    assert term in terms(tagger, "kazakhstan", text)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("саммит Организации тюркских государств", "Организация тюркских государств"),
        ("Türk Devletleri Teşkilatı'nın zirvesi", "Türk Devletleri Teşkilatı"),
        ("Türk Dövlətləri Təşkilatının sammiti", "Türk Dövlətləri Təşkilatı"),
        ("a Türk Államok Szervezetének csúcstalálkozója", "Türk Államok Szervezete"),
        ("Түркі мемлекеттері ұйымының саммиті", "Түркі мемлекеттері ұйымы"),
        ("Turkiy davlatlar tashkilotining sammiti", "Turkiy davlatlar tashkiloti"),
        ("VIII саммит Тюркского совета", "Тюркский совет"),
    ],
)
def test_inflected_multiword_names_match(tagger: Tagger, text: str, term: str) -> None:
    assert term in terms(tagger, "ots", text)


def test_a_suffix_outside_the_language_list_does_not_match(tagger: Tagger) -> None:
    assert terms(tagger, "kazakhstan", "Казахстанщина и казахстанизация") == []


def test_arabic_proclitics_but_not_other_letters_may_precede_a_name(tagger: Tagger) -> None:
    assert "كازاخستان" in terms(tagger, "kazakhstan", "زيارة وكازاخستان")
    assert terms(tagger, "kazakhstan", "زيارة سكازاخستان") == []


def test_chinese_names_match_inside_unspaced_text(tagger: Tagger) -> None:
    found = terms(tagger, "kazakhstan", "哈萨克斯坦总统托卡耶夫会见")
    assert "哈萨克斯坦" in found and "托卡耶夫" in found


# --- Unicode: look-alikes, diacritics, invisible characters ---------------------------------------------


def test_mixed_script_words_match_after_repair(tagger: Tagger) -> None:
    text = "Kаzаkhstаn holds elections"  # three Cyrillic "а"
    found = result(tagger, "kazakhstan", text)
    assert found is not None
    evidence = found.evidence[0]
    assert (evidence.term, evidence.matched) == ("Kazakhstan", text[:10])
    assert fold_for_matching("Vаrkert Bazár")[0] == "varkert bazar"


@pytest.mark.parametrize("text", ["Turkiye and the Turk Devletleri Teskilati", "KAZAKİSTAN", "Almati"])
def test_diacritics_and_case_do_not_matter(tagger: Tagger, text: str) -> None:
    assert tagger.explain("", text)


def test_soft_hyphen_inside_a_name_still_matches_with_exact_offsets(tagger: Tagger) -> None:
    text = "🙂 News: Kazak\u00adhstan’s ﬁnance minister"
    found = result(tagger, "kazakhstan", text)
    assert found is not None
    evidence = found.evidence[0]
    assert text[evidence.start : evidence.end] == evidence.matched == "Kazak\u00adhstan"


def test_fast_fold_equals_the_reference_fold(tagger: Tagger) -> None:
    """fold_for_matching is text.fold_with_offsets (plus apostrophes) computed faster; check on noise."""
    rng = random.Random(7)
    alphabet = list("abcXYZ KazĞğİıŞşÖöÜüßæøłđΣσςАаКкЙйЁёҚқӘәІі«»—…\u00a0\u00ad\u200b\u0301ﬁＡ①한ʻ’İ🙂")
    apostrophes = str.maketrans(dict.fromkeys("’‘ʼʻ`", "'"))
    for _ in range(3000):
        text = "a " + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        folded, offsets = fold_for_matching(text)
        reference, reference_offsets = fold_with_offsets(text)
        assert folded == reference.translate(apostrophes), text
        assert (offsets if offsets is not None else list(range(len(text)))) == reference_offsets, text


# --- weights, positions, lists ------------------------------------------------------------------------


def test_a_title_hit_weighs_title_multiplier_times_a_body_hit() -> None:
    tagger = Tagger(rules_from_mapping(small_rules(lead_multiplier=1.0)))
    in_title = result(tagger, "demo", "nothing here.", title="Astana")
    in_body = result(tagger, "demo", "Nothing here. Then Astana.")
    assert in_title is not None and in_body is not None
    assert in_title.score == 2.0 * in_body.score == 2.0


def test_repeats_add_with_diminishing_returns() -> None:
    tagger = Tagger(rules_from_mapping(small_rules(lead_multiplier=1.0)))
    found = result(tagger, "demo", "Astana. Astana again. And Astana.")
    assert found is not None
    assert [e.weight for e in found.evidence] == [1.0, 0.5, 0.25]


def test_the_lead_sentence_counts_more_than_the_body(tagger: Tagger) -> None:
    lead = "A gas pipeline in Kazakhstan was damaged on Monday. Repairs began."
    body = "A gas pipeline was damaged on Monday. Repairs began, officials in Kazakhstan said."
    assert "kazakhstan" in tags(tagger, lead)
    assert "kazakhstan" not in tags(tagger, body)


def test_a_dateline_is_where_a_report_was_filed_not_its_subject(tagger: Tagger) -> None:
    text = "ALMATY, Kazakhstan (AP) — Kyrgyz lawmakers voted on Friday to end a state of emergency."
    assert result(tagger, "kazakhstan", text) is None


def test_one_name_in_a_list_of_states_is_not_the_story(tagger: Tagger) -> None:
    text = "The leaders of Azerbaijan, Kazakhstan, Kyrgyzstan and Uzbekistan met in Budapest."
    found = result(tagger, "kazakhstan", text)
    assert found is not None and found.score == pytest.approx(2.0 * 1.5 * 0.25)
    assert tags(tagger, text) == set()
    two_sides = "Kazakhstan and China signed a gas deal on Monday."
    assert "kazakhstan" in tags(tagger, two_sides)


def test_member_states_alone_are_not_ots(tagger: Tagger) -> None:
    text = "Turkey, Azerbaijan, Kazakhstan, Kyrgyzstan and Hungary expanded trade in the Turkic world."
    assert result(tagger, "ots", text) is None


def test_a_kazakh_actor_counts_an_ethnic_kazakh_abroad_does_not(tagger: Tagger) -> None:
    assert "kazakhstan" in tags(
        tagger, "A court froze the assets of a former Kazakh banker.", "Kazakh tycoon loses case"
    )
    abroad = "Authorities detained ethnic Kazakhs in Ili prefecture."
    assert result(tagger, "kazakhstan", abroad, "Ethnic Kazakhs detained in Xinjiang") is None


def test_the_longest_alias_counts_once(tagger: Tagger) -> None:
    found = result(tagger, "kazakhstan", "President Kassym-Jomart Tokayev spoke.")
    assert found is not None
    assert [e.term for e in found.evidence] == ["Kassym-Jomart Tokayev"]


# --- context and exclusions ---------------------------------------------------------------------------


def test_ots_abbreviation_needs_a_turkic_context(tagger: Tagger) -> None:
    assert result(tagger, "ots", "The OTS team shipped a new OTS release.") is None
    found = result(tagger, "ots", "Turkic-language radio: the OTS adopted a declaration.")
    assert found is not None and [e.term for e in found.evidence] == ["OTS"]


@pytest.mark.parametrize(
    "text",
    [
        "The CIA's Office of Technical Services (OTS) built Turkic-language radios.",
        "Commercial off-the-shelf (OTS) parts are cheaper, a Turkic startup says.",
        "Vienna (APA-OTS) - A Turkic culture festival opens.",
    ],
)
def test_other_meanings_of_ots_are_excluded_even_near_turkic_words(tagger: Tagger, text: str) -> None:
    assert "OTS" not in terms(tagger, "ots", text)


@pytest.mark.parametrize(
    "text",
    [
        "FC Astana beat Chelsea. Astana's striker scored twice.",
        "ФК «Астана» сыграл вничью в Лиге конференций.",
        "The Astana format talks on Syria resumed in a new round.",
        "Astana Qazaqstan Team won the stage.",
        "The East Turkistan Government in Exile held a press conference.",
    ],
)
def test_astana_the_club_the_team_and_the_syria_talks_are_not_kazakhstan(tagger: Tagger, text: str) -> None:
    assert result(tagger, "kazakhstan", text) is None


def test_unless_drops_a_term_but_keeps_other_evidence(tagger: Tagger) -> None:
    text = "FC Astana lost; Kazakhstan's sports minister resigned over the club's debts."
    assert terms(tagger, "kazakhstan", text) == ["Kazakhstan"]


# --- whole articles -----------------------------------------------------------------------------------


def test_the_seed_article_is_kazakhstan_and_ots(tagger: Tagger) -> None:
    seed = read_seed(SEED)
    results = {r.tag: r for r in tagger.tag(seed.title, seed.text)}
    assert set(results) == {"kazakhstan", "ots"}
    for found in results.values():
        for e in found.evidence:
            source = seed.title if e.field == "title" else seed.text
            assert source[e.start : e.end] == e.matched


def test_results_are_sorted_and_evidence_sums_to_the_score(tagger: Tagger) -> None:
    results = tagger.explain(
        "Tokayev at the OTS summit", "Kazakhstan hosted the Organization of Turkic States in Astana."
    )
    assert len(results) == 2
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for found in results:
        assert found.score == pytest.approx(sum(e.weight for e in found.evidence))
        assert all(isinstance(e, Evidence) for e in found.evidence)


def test_explain_shows_evidence_below_the_threshold(tagger: Tagger) -> None:
    text = "Officials said prices would rise. Exports go to Kazakhstan."
    assert tagger.tag("", text) == []
    found = result(tagger, "kazakhstan", text)
    assert found is not None and found.score == 2.0


def test_a_tagger_survives_pickling_for_process_pools(tagger: Tagger) -> None:
    copy = pickle.loads(pickle.dumps(tagger))
    title, text = "Tokayev visits Budapest", "The Organization of Turkic States met."
    assert copy.tag(title, text) == tagger.tag(title, text)


def test_empty_input_and_empty_rules() -> None:
    tagger = Tagger(rules_from_mapping({}))
    assert tagger.tag("Kazakhstan", "Kazakhstan") == []
    assert Tagger(load_rules(DEFAULT_RULES_PATH)).explain("", "") == []


# --- rule validation ----------------------------------------------------------------------------------


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleError) as caught:
        rules_from_mapping(data)
    return caught.value.problems


def test_a_wrong_type_names_file_key_and_value() -> None:
    assert problems_of(small_rules(threshold="x")) == [
        "tags.toml: tags.demo.threshold: expected a number, got 'x'"
    ]


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "colour": 1,
        "defaults": {"repeat_factor": 2},
        "languages": {"en": {"suffixes": "s", "boundaries": "yes"}},
        "tags": {
            "Bad Name": {"terms": {"t": {"weight": 1, "en": ["x"]}}},
            "demo": {
                "threshold": True,
                "typo": 1,
                "terms": {
                    "a": {"en": ["Kazakh|st|an"]},
                    "b": {"weight": 1, "xx": ["y"], "context": ["nowhere"]},
                    "c": {"weight": -1},
                },
            },
            "empty": {},
        },
    }
    found = problems_of(data)
    expected = [
        "colour: unknown key",
        "defaults.repeat_factor: expected a number between 0 and 1, got 2",
        "languages.en.suffixes: expected a list of strings",
        "languages.en.boundaries: expected true or false",
        "tags.Bad Name: a tag name is lower-case",
        "tags.demo.threshold: expected a number, got True",
        "tags.demo.typo: unknown key",
        "tags.demo.terms.a.weight: missing",
        "tags.demo.terms.a.en: 'Kazakh|st|an': a word takes at most one '|'",
        "tags.demo.terms.b.xx: unknown key",
        "tags.demo.terms.b.context: unknown set or term 'nowhere'",
        "tags.demo.terms.c: no aliases",
        "tags.demo.terms.c.weight: expected a number greater than 0, got -1",
        "tags.empty.terms: a tag needs at least one term",
    ]
    for fragment in expected:
        assert any(fragment in problem for problem in found), (fragment, found)
    assert all(problem.startswith("tags.toml: ") for problem in found)


def test_the_shipped_rules_are_valid_and_define_both_tags() -> None:
    rules = load_rules(DEFAULT_RULES_PATH)
    assert set(rules.tag_names) >= {"kazakhstan", "ots"}


def test_load_rules_reports_unreadable_files_syntax_and_rule_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read tag rules"):
        load_rules(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[tags.demo\nthreshold = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: .*line 1"):
        load_rules(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[tags.demo]\nthreshold = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(wrong)
    assert f"{wrong}: tags.demo.threshold: expected a number, got 'x'" in caught.value.problems


def test_user_tags_need_no_code(tmp_path: Path) -> None:
    rules = tmp_path / "tags.toml"
    rules.write_text(
        '[languages.en]\nsuffixes = ["s"]\n'
        "[tags.uranium]\nthreshold = 2.0\n"
        '[tags.uranium.terms.metal]\nweight = 2.0\nen = ["uranium", "yellowcake"]\n',
        encoding="utf-8",
    )
    tagger = Tagger(load_rules(rules))
    assert [r.tag for r in tagger.tag("", "Yellowcake exports doubled.")] == ["uranium"]


# --- `newswatch tags test` ----------------------------------------------------------------------------

runner = CliRunner()


def test_cli_json_lists_tags_scores_and_positions() -> None:
    text = "Президент Казахстана Токаев прибыл на саммит ОТГ в Будапешт."
    outcome = runner.invoke(app, ["test", text, "--format", "json", "--rules", str(DEFAULT_RULES_PATH)])
    assert outcome.exit_code == 0, outcome.output
    listed = {entry["tag"]: entry for entry in json.loads(outcome.stdout)}
    assert listed["kazakhstan"]["passed"] is True
    assert listed["kazakhstan"]["threshold"] == 3.0
    for entry in listed.values():
        for e in entry["evidence"]:
            assert set(e) == {"term", "matched", "field", "start", "end", "weight"}
            assert text[e["start"] : e["end"]] == e["matched"]


def test_cli_table_reads_stdin_and_shows_matched_terms() -> None:
    outcome = runner.invoke(
        app,
        ["test", "-", "--title", "OTS summit", "--rules", str(DEFAULT_RULES_PATH)],
        input="Tokayev [spoke].",
    )
    assert outcome.exit_code == 0, outcome.output
    assert "kazakhstan" in outcome.stdout and "Tokayev" in outcome.stdout and "[spoke]" not in outcome.stdout
    assert "ots" in outcome.stdout and "OTS summit" in outcome.stdout


def test_cli_uses_the_configured_rules_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[languages.en]\n[tags.demo.terms.word]\nweight = 5.0\nen = ["zebra"]\n', encoding="utf-8"
    )
    config = tmp_path / "newswatch.toml"
    config.write_text(f'[tagging]\nrules = "{rules}"\n', encoding="utf-8")
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(config))
    outcome = runner.invoke(app, ["test", "A zebra.", "--format", "json"])
    assert outcome.exit_code == 0, outcome.output
    assert [entry["tag"] for entry in json.loads(outcome.stdout)] == ["demo"]


def test_cli_bad_rules_is_one_error_line_without_traceback(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[tags.demo]\nthreshold = 'x'\n", encoding="utf-8")
    outcome = runner.invoke(app, ["test", "text", "--rules", str(rules)])
    assert outcome.exit_code == 1
    lines = outcome.stderr.splitlines()
    assert f"error: {rules}: tags.demo.threshold: expected a number, got 'x'" in lines
    assert all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in outcome.output


def test_fold_for_matching_agrees_with_text_fold_on_plain_words() -> None:
    sentence = "Türkiye’nin Cumhurbaşkanı İlham ile Қазақстан"
    assert fold_for_matching(sentence)[0] == fold(sentence).replace("’", "'")
