"""Tagging throughput: the real Tagger against a naive matcher, on the same synthetic items, in one run.

    python benchmarks/tagging.py [--items N] [--baseline-items M] [--seed S]

Items are ~1 KB of news-like text in English, Russian, Kazakh, Turkish, Azerbaijani, Uzbek, Hungarian, German
and French, generated deterministically from the seed; about one in five names Kazakhstan or the OTS (in
inflected forms), some carry hard negatives (Pakistan, Kazan), look-alike letters or an ellipsis.

The naive baseline is what one writes first: fold the text with `text.fold`, then run one compiled regex
per alias of the rule set (the same patterns the Tagger confirms its hits with) over it. It does less than
the Tagger (no scoring) and is slow, so it runs on the first `--baseline-items` items only. Its figures are
printed twice: with its folding, and matching alone, so that the ratio is not only about folding.
Targets: >= 20,000 items/s on one core and >= 10x the naive baseline.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.analysis import tagging
from worker.analysis.text import fold
from worker.tagrules import DEFAULT_RULES_PATH, load_rules

DEFAULT_ITEMS = 100_000
DEFAULT_BASELINE_ITEMS = 2_000
DEFAULT_SEED = 20250521
ITEM_CHARS = 1000
TITLE_WORDS = 9
TAGGED_SHARE = 0.2
NEGATIVE_SHARE = 0.1
ODD_CHARACTER_SHARE = 0.1
TARGET_ITEMS_PER_SECOND = 20_000
TARGET_RATIO = 10.0

WORDS = {
    "en": "the government said on monday that new rules for energy exports would take effect next year "
    "while officials in the capital discussed trade transport and security with partners from the region "
    "and analysts expect prices to rise after talks between ministers ended without agreement",
    "ru": "правительство заявило в понедельник что новые правила экспорта энергии вступят в силу в следующем "
    "году пока чиновники в столице обсуждали торговлю транспорт и безопасность с партнерами из региона а "
    "аналитики ожидают роста цен после переговоров министров которые завершились без соглашения",
    "kk": "үкімет дүйсенбі күні энергия экспортының жаңа ережелері келесі жылы күшіне енетінін мәлімдеді ал "
    "астанадағы шенеуніктер өңірдегі серіктестермен сауда көлік және қауіпсіздік мәселелерін талқылады",
    "tr": "hükümet pazartesi günü enerji ihracatına ilişkin yeni kuralların gelecek yıl yürürlüğe gireceğini "
    "açıkladı başkentteki yetkililer bölgedeki ortaklarla ticaret ulaşım ve güvenlik konularını görüştü "
    "analistler bakanlar arasındaki görüşmelerin anlaşma olmadan sona ermesinin ardından fiyatların",
    "az": "hökumət bazar ertəsi günü enerji ixracına dair yeni qaydaların gələn il qüvvəyə minəcəyini "
    "bildirdi paytaxtdakı rəsmilər regiondakı tərəfdaşlarla ticarət nəqliyyat və təhlükəsizlik məsələlərini",
    "uz": "hukumat dushanba kuni energiya eksportiga oid yangi qoidalar kelgusi yil kuchga kirishini ma'lum "
    "qildi poytaxtdagi rasmiylar mintaqadagi hamkorlar bilan savdo transport va xavfsizlik masalalarini",
    "hu": "a kormány hétfőn közölte hogy az energiaexportra vonatkozó új szabályok jövőre lépnek hatályba "
    "miközben a fővárosban a tisztviselők a régió partnereivel kereskedelemről szállításról és biztonságról",
    "de": "die regierung teilte am montag mit dass neue regeln für energieexporte im nächsten jahr in kraft "
    "treten während beamte in der hauptstadt mit partnern aus der region über handel verkehr und sicherheit",
    "fr": "le gouvernement a annoncé lundi que de nouvelles règles pour les exportations d'énergie entreront "
    "en vigueur l'année prochaine tandis que les responsables de la capitale discutaient du commerce",
}
LANGUAGE_WEIGHTS = {"en": 40, "ru": 20, "tr": 10, "kk": 6, "az": 5, "uz": 5, "hu": 5, "de": 5, "fr": 4}
TAG_PHRASES = {
    "en": [
        "Kazakhstan",
        "President Tokayev",
        "the Organization of Turkic States",
        "the OTS summit",
        "Astana",
    ],
    "ru": ["Казахстана", "Токаева", "Организации тюркских государств", "саммите ОТГ", "в Астане"],
    "kk": ["Қазақстанның", "Тоқаев", "Түркі мемлекеттері ұйымының", "Астанада"],
    "tr": ["Kazakistan'ın", "Tokayev'in", "Türk Devletleri Teşkilatı'nın", "TDT Zirvesi"],
    "az": ["Qazaxıstanda", "Tokayevin", "Türk Dövlətləri Təşkilatının"],
    "uz": ["Qozogʻistonda", "Tokayev", "Turkiy davlatlar tashkilotining"],
    "hu": ["Kazahsztánban", "Tokajev", "a Türk Államok Szervezetének"],
    "de": ["Kasachstans", "Tokajew", "der Organisation der Turkstaaten"],
    "fr": ["le Kazakhstan", "Tokaïev", "l'Organisation des États turciques"],
}
NEGATIVES = ["Pakistan", "Kazan", "Kazakova", "FC Astana", "the Astana format", "off-the-shelf (OTS)"]
# Look-alike letters, an ellipsis, a soft hyphen, a ligature: what sends text off the fastest folding path.
ODD_CHARACTERS = ["Kаzаkhstаn", "…", "Nur\u00adSultan", "ﬁnance"]


def make_items(count: int, seed: int) -> list[tuple[str, str]]:
    """Deterministic (title, text) pairs of about ITEM_CHARS characters each."""
    rng = random.Random(seed)
    languages = list(LANGUAGE_WEIGHTS)
    weights = list(LANGUAGE_WEIGHTS.values())
    vocabulary = {language: words.split() for language, words in WORDS.items()}
    items = []
    for _ in range(count):
        language = rng.choices(languages, weights)[0]
        words = vocabulary[language]
        extras = []
        if rng.random() < TAGGED_SHARE:
            extras += rng.sample(TAG_PHRASES[language], k=min(2, len(TAG_PHRASES[language])))
        if rng.random() < NEGATIVE_SHARE:
            extras.append(rng.choice(NEGATIVES))
        if rng.random() < ODD_CHARACTER_SHARE:
            extras.append(rng.choice(ODD_CHARACTERS))
        title = " ".join(rng.choice(words) for _ in range(TITLE_WORDS)).capitalize()
        body: list[str] = []
        length = 0
        while length < ITEM_CHARS:
            sentence = [rng.choice(words) for _ in range(rng.randint(8, 16))]
            if extras and rng.random() < 0.3:
                sentence.insert(rng.randrange(len(sentence)), extras.pop())
            text = " ".join(sentence).capitalize() + "."
            body.append(text)
            length += len(text) + 1
        items.append((title, " ".join(body)))
    return items


def naive_matcher(rules: tagging.RuleSet) -> Callable[[str], int]:
    """One compiled regex per alias, each run over the folded text; returns the number of matches."""
    patterns = [
        tagging._compile_alias(alias, language, exact)[1]
        for _, _, _, alias, language, exact in tagging._merged_aliases(rules)
    ]

    def match(folded: str) -> int:
        return sum(1 for pattern in patterns for _ in pattern.finditer(folded))

    return match


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a busy machine the second is the one-core figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--baseline-items", type=int, default=DEFAULT_BASELINE_ITEMS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    rules = load_rules(DEFAULT_RULES_PATH)
    started = time.perf_counter()
    tagger = tagging.Tagger(rules)
    compile_seconds = time.perf_counter() - started
    items = make_items(args.items, args.seed)
    size = sum(len(title) + len(text) for title, text in items) / len(items)
    print(
        f"{len(items):,} items, {size:,.0f} characters on average; rules compiled in {compile_seconds:.2f} s"
    )

    tagged: list[int] = []
    wall, cpu = timed(lambda: tagged.append(sum(1 for title, text in items if tagger.tag(title, text))))
    tagger_rate = rate(len(items), cpu)
    print(f"tagger:               {tagger_rate:9,.0f} items/s CPU, {rate(len(items), wall):9,.0f} wall")
    print(f"                      ({tagged[0]:,} items tagged)")

    sample = items[: args.baseline_items]
    match = naive_matcher(rules)
    folded: list[tuple[str, str]] = []
    _, fold_cpu = timed(lambda: folded.extend((fold(title), fold(text)) for title, text in sample))
    _, match_cpu = timed(lambda: [match(title) + match(text) for title, text in folded])
    naive_rate = rate(len(sample), fold_cpu + match_cpu)
    matching_rate = rate(len(sample), match_cpu)
    print(f"naive (fold + regex): {naive_rate:9,.0f} items/s CPU  (first {len(sample):,} items)")
    print(f"naive (regex only):   {matching_rate:9,.0f} items/s CPU")
    ratio, matching_ratio = tagger_rate / naive_rate, tagger_rate / matching_rate
    print(f"ratio: {ratio:.1f}x the naive baseline, {matching_ratio:.1f}x its matching alone")
    met = tagger_rate >= TARGET_ITEMS_PER_SECOND and ratio >= TARGET_RATIO
    targets = f">= {TARGET_ITEMS_PER_SECOND:,} items/s, >= {TARGET_RATIO:g}x"
    print(f"targets ({targets}): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
