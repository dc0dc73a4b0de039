"""Synthetic news feeds for benchmarks: deterministic, realistic in size and shape, written as static files.

Each feed is RSS 2.0 or (one in `ATOM_EVERY`) Atom 1.0, with items of about 1–2 KB: a title, a link, a
guid, a date within the last few days and an HTML description of a few paragraphs of news-like English.
About one item in `TOPICAL_SHARE` mentions Kazakhstan, Astana, Tokayev or the Organization of Turkic
States, so that tagging has real matches to make and not only misses to confirm.

Feed `n` depends only on (seed, n, items, now): generating 50 feeds gives the first 50 of 500, and a
later benchmark can regenerate one feed to simulate a change.

    from feedgen import generate_feeds, feed_urls, write_opml
    feeds = generate_feeds(Path("/tmp/feeds"), count=500, items=30)
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

DEFAULT_SEED = 20240601
DEFAULT_ITEMS = 30
ATOM_EVERY = 5  # feed numbers divisible by this are Atom, the others RSS 2.0
TOPICAL_SHARE = 5  # about one item in this many mentions Kazakhstan or the OTS
MAX_AGE = timedelta(days=3)  # items are dated within this much before `now`
# Description length in characters of HTML, drawn uniformly per item; with the title and the other
# fields this gives items of 1–2 KB.
DESCRIPTION_CHARS = (600, 1300)
FEED_DIR = "feeds"
TOPICAL_SENTENCE_CHANCE = 0.5  # per sentence slot of a topical item, until its 1–2 topical sentences are used
MARKUP_CHANCE = 0.3  # items that end with a link and emphasis, as real feeds have, for the sanitiser


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


# The vocabulary. Real news shares few 5-word runs between unrelated articles (under 5 % of a text's
# winnowed shingles in the labelled English set) and many of its names only with few other stories, so
# every template puts a slot at least every two words and the pools are large: repetitive text would
# inflate the cost of near-duplicate lookups far beyond what real feeds cause.
_NOUNS = _words(
    "budget tariff pipeline harbour railway airport refinery hospital school bridge highway reservoir dam "
    "grid factory mine port terminal market bank fund bond loan subsidy pension wage tax levy quota "
    "licence permit contract tender lease merger stake deal treaty accord decree bill amendment reform "
    "inquiry audit survey census forecast deficit surplus reserve shipment cargo fleet satellite network "
    "cable tower station depot warehouse corridor route crossing checkpoint visa ballot coalition cabinet "
    "court tribunal regulator commission committee union federation startup operator supplier investor "
    "lender insurer developer contractor programme scheme strategy roadmap framework platform portal "
    "registry database campaign festival exhibition forum summit conference delegation mission visit "
    "partnership venture consortium plant turbine reactor battery mill laboratory clinic campus stadium "
    "museum theatre library park district province region village harvest drought flood wildfire "
    "earthquake heatwave outage shortage backlog dispute strike protest lawsuit verdict ruling appeal "
    "sanction embargo ceasefire agreement deadline timetable loophole vaccine curriculum subway tram "
    "ferry canal dock pier quarry smelter vineyard orchard greenhouse hatchery fishery forest "
    "glacier aquifer"
)
_ADJECTIVES = _words(
    "new revised ambitious modest costly controversial delayed long-awaited regional national municipal "
    "cross-border bilateral multilateral digital green renewable nuclear offshore rural urban coastal "
    "northern southern eastern western central private public joint emergency temporary permanent annual "
    "quarterly preliminary final draft landmark sweeping limited partial unexpected cautious strategic "
    "technical legal financial fiscal industrial agricultural logistical medical cultural environmental "
    "historic fragile stalled disputed overdue expanded simplified mandatory voluntary experimental "
    "modernised subsidised"
)
_VERBED = _words(
    "approved announced postponed criticised welcomed proposed rejected reviewed expanded signed "
    "questioned outlined finalised suspended backed unveiled launched cancelled delayed extended halted "
    "resumed funded financed blocked challenged endorsed confirmed investigated audited inspected awarded "
    "secured renewed revised doubled trimmed capped raised cut lifted eased tightened scrapped relaunched "
    "privatised nationalised restructured"
)
_VERBS = _words(
    "expand build upgrade replace close reopen sell buy merge review audit fund cut raise ease tighten "
    "delay simplify digitise insure export import protect restore"
)
_HEADLINE_VERBS = _words(
    "approves announces postpones criticises welcomes proposes rejects reviews expands signs questions "
    "outlines suspends backs unveils launches cancels delays extends halts resumes funds blocks endorses "
    "confirms awards renews revises doubles trims caps raises cuts lifts eases scraps"
)
_PLACES = _words(
    "Berlin Warsaw Nairobi Lima Jakarta Oslo Lisbon Hanoi Santiago Accra Dublin Manila Tunis Quito Riga "
    "Vienna Seoul Bogotá Porto Gdańsk Lagos Dakar Lusaka Harare Kampala Kigali Cairo Amman Beirut Muscat "
    "Doha Karachi Lahore Dhaka Colombo Kathmandu Chennai Pune Penang Cebu Osaka Sapporo Busan Taipei "
    "Perth Adelaide Auckland Wellington Vancouver Calgary Halifax Denver Phoenix Memphis Tampa Monterrey "
    "Puebla Havana Kingston Recife Curitiba Rosario Montevideo Asunción Valparaíso Cusco Seville Bilbao "
    "Turin Naples Lyon Marseille Ghent Utrecht Aarhus Tampere Tartu Vilnius Brno Graz Cluj Varna Skopje "
    "Tirana Tbilisi Yerevan"
)
_FIRST_NAMES = _words(
    "Anna Marek Leila Tomás Ingrid Kwame Priya Hiroshi Sofia Mateo Amara Lars Elena Omar Chen Fatima "
    "Pavel Rosa Jonas Mei Ahmed Clara Diego Nadia Viktor Aisha Henrik Lucia Kofi Yuki Marta Rafael Selin "
    "Tariq Ewa Bruno Hana Ivan Zara Felix Dana Emil Ines Karim Olga Pedro Rania Stefan Vera"
)
# Surnames are made of three parts (some 7,000 of them), so a name is shared by a few stories, as in news.
_NAME_STARTS = _words(
    "Ab Bel Cor Dar El Fen Gal Hol Ist Jar Kal Lor Mar Nor Ol Pet Quin Ros Sal Tor Ul Val Wen Yar Zel"
)
_NAME_MIDDLES = _words("a e i o u an er in or ul am et is ov")
_NAME_ENDS = _words("berg son ova ez ini ski sen ard ano ides escu man ley ton ier ak ić ura ssen dze")
_ROLES = (
    "a spokesperson for",
    "the chief executive of",
    "an economist at",
    "a senior official at",
    "the head of",
    "an analyst at",
    "a lawyer for",
    "the chair of",
    "a researcher at",
    "a board member of",
)
_AGENCIES = _words("regulator authority ministry agency office board commission council inspectorate")
_ORG_KINDS = _words(
    "Port Authority|Energy Agency|Chamber of Commerce|Water Board|Transport Institute|Farmers' Union|"
    "Audit Office|Development Bank|Housing Trust|Health Service|Statistics Bureau|Trade Council|"
    "Employers' Federation|Consumer Watchdog|Railway Company|Science Academy|Tourism Board|Bar Association|"
    "Teachers' Syndicate|Pension Fund|Grain Exchange|Weather Service|Metro Operator|Airport Group",
    sep="|",
)
_COMPANY_ENDS = _words("Group Holdings Energy Logistics Mining Telecom Capital Foods Motors Systems")
_CURRENCIES = ("euros", "dollars", "pounds", "yen", "rupees", "pesos")
_MONTHS = _words("January February March April May June July August September October November December")
_WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_OTS_MEMBERS = ("Azerbaijan", "Kyrgyzstan", "Türkiye", "Uzbekistan", "Hungary", "Turkmenistan")
_TOPICAL_PLACES = ("Astana", "Almaty", "Shymkent", "Aktau", "Karaganda")

# Real news names a few people, places and organisations and gives a few numbers; the rest is common words.
_SENTENCES = (
    "Officials {verbed} the {adj} {noun} for {place} on {weekday}, citing {adj} {nouns}.",
    "{Person}, {role} the {agency}, said the {noun} would cost about {money}.",
    "According to the {agency}, {number} {nouns} were affected by the {adj} {noun}.",
    "The {adj} {noun} is expected to {verb} {adj} {nouns} by {month}.",
    "Local {nouns} {verbed} the {noun} {small} times since {year}, the {agency} said.",
    "Shares of {company} rose {pct} percent after the {noun} was {verbed}.",
    "Critics warned the {adj} {noun} could {verb} local {nouns} and {adj} {nouns}.",
    "In {place}, the {agency} {verbed} {a_adj} {noun} worth {money}.",
    "Residents {verbed} the plan, pointing to {adj} {nouns} and {adj} {nouns}.",
    "\u201cWe {verbed} the {noun} because the {noun} needs {adj} {nouns},\u201d said {person}.",
    "The {agency} {verbed} its {noun}, on which {adj} {nouns} depend.",
    "{Org} put {adj} {noun} spending at {money}, up {pct} percent.",
    "{Nouns} near {place} would {verb} {adj} {nouns} within {small} years, the {agency} said.",
    "{A_adj} {noun} {verbed} {adj} {nouns} last {weekday}, {org} reported.",
    "Lawmakers {verbed} {adj} {nouns} after the {adj} {noun} was {verbed}.",
    "The {agency} plans to {verb} its {adj} {nouns} and {adj} {nouns}.",
)
_TOPICAL_SENTENCES = (
    "{Person}, {role} the {agency} in Astana, said Kazakhstan would {verb} its {adj} {nouns}.",
    "President Kassym-Jomart Tokayev {verbed} the {adj} {noun} at a meeting in {kzplace} on {weekday}.",
    "Members of the Organization of Turkic States {verbed} {a_adj} {noun} at talks in {otsmember}.",
    "Kazakhstan {verbed} {number} {nouns} in {year}, the {agency} said.",
    "Officials in {kzplace} {verbed} the {adj} {noun} with partners from {otsmember}.",
    "{Company} {verbed} {a_adj} {noun} in Kazakhstan worth {money}.",
    "The Organization of Turkic States, which includes {otsmember}, {verbed} the {adj} {noun}.",
)
_TITLES = (
    "{Org} {verbs} {adj} {noun} for {place}",
    "{Place}: {company} {verbs} {noun} worth {money}",
    "{Adj} {noun} in {place} {verbed} after {number} {nouns} {verbed}",
    "{Person} {verbs} {adj} {noun} plan",
)
_TOPICAL_TITLES = (
    "Kazakhstan {verbs} {adj} {noun} with {otsmember}",
    "Tokayev {verbs} {adj} {noun} in {kzplace}",
    "Organization of Turkic States {verbs} {adj} {noun}",
    "{Company} {verbs} {noun} in Astana worth {money}",
)
_MORE_URL = "https://example.com/more"
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_SLUG_WORDS = 8


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    guid: str
    published: datetime
    description_html: str
    topical: bool


@dataclass(frozen=True)
class Feed:
    number: int
    kind: str  # "rss" or "atom"
    title: str
    site: str
    items: tuple[Item, ...]

    @property
    def path(self) -> str:
        """The feed's URL path (and its file's path under the root)."""
        return f"/{FEED_DIR}/{self.number:05d}.{self.kind}"


@dataclass(frozen=True)
class GeneratedFeeds:
    root: Path
    paths: tuple[str, ...]
    items: int  # in all feeds together
    topical_items: int
    bytes: int


def make_feed(number: int, items: int = DEFAULT_ITEMS, *, seed: int = DEFAULT_SEED, now: datetime) -> Feed:
    """Feed `number`, newest item first. Its own random stream keeps it independent of the other feeds."""
    rng = random.Random(f"{seed}:{number}")
    site = f"https://outlet{number}.example.com"
    kind = "atom" if number % ATOM_EVERY == 0 else "rss"
    ages = sorted(rng.uniform(0, MAX_AGE.total_seconds()) for _ in range(items))
    made = [
        _make_item(rng, number, index, now - timedelta(seconds=age), site) for index, age in enumerate(ages)
    ]
    return Feed(number, kind, f"Outlet {number} News", site, tuple(made))


def _make_item(rng: random.Random, feed: int, index: int, published: datetime, site: str) -> Item:
    topical = rng.randrange(TOPICAL_SHARE) == 0
    title = _fill(rng, rng.choice(_TOPICAL_TITLES if topical else _TITLES))
    slug = "-".join(_SLUG_DROP.sub(" ", title.lower()).split()[:_SLUG_WORDS])
    link = f"{site}/news/{published:%Y/%m/%d}/{slug}-{feed}-{index}"
    return Item(
        title=title,
        link=link,
        guid=f"outlet{feed}-{index:05d}",
        published=published.replace(microsecond=0),
        description_html=_description(rng, topical),
        topical=topical,
    )


class _Slots:
    """A template's slot values, drawn on each use: "{noun} and {noun}" names two things, not one twice.
    A capitalised slot name ("{Org}") gives its value with a capital, for the start of a sentence."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __getitem__(self, name: str) -> str:
        value = self._draw(name.lower())
        return value[0].upper() + value[1:] if name[0].isupper() else value

    def _draw(self, name: str) -> str:
        rng = self.rng
        simple = {
            "noun": _NOUNS, "adj": _ADJECTIVES, "verbed": _VERBED, "verb": _VERBS, "verbs": _HEADLINE_VERBS,
            "place": _PLACES, "role": _ROLES, "month": _MONTHS, "weekday": _WEEKDAYS,
            "kzplace": _TOPICAL_PLACES, "otsmember": _OTS_MEMBERS,
        }  # fmt: skip
        if name in simple:
            return rng.choice(simple[name])
        if name == "nouns":
            return _plural(rng.choice(_NOUNS))
        if name == "person":
            return f"{rng.choice(_FIRST_NAMES)} {self._surname()}"
        if name == "agency":
            return f"{rng.choice(_NOUNS)} {rng.choice(_AGENCIES)}"
        if name == "a_adj":
            adjective = rng.choice(_ADJECTIVES)
            return f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective}"
        if name == "org":
            return f"the {rng.choice(_PLACES)} {rng.choice(_ORG_KINDS)}"
        if name == "company":
            return f"{self._surname()} {rng.choice(_COMPANY_ENDS)}"
        if name == "money":
            return f"{rng.randint(2, 950)}.{rng.randint(0, 9)} million {rng.choice(_CURRENCIES)}"
        if name == "number":
            return f"{rng.randint(12, 48_000):,}"
        if name == "pct":
            return f"{rng.randint(1, 40)}.{rng.randint(0, 9)}"
        if name == "small":
            return str(rng.randint(2, 9))
        if name == "year":
            return str(rng.randint(1995, 2025))
        if name == "future":
            return str(rng.randint(2026, 2035))
        raise KeyError(name)

    def _surname(self) -> str:
        rng = self.rng
        return rng.choice(_NAME_STARTS) + rng.choice(_NAME_MIDDLES) + rng.choice(_NAME_ENDS)


def _fill(rng: random.Random, template: str) -> str:
    return template.format_map(_Slots(rng))


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def _description(rng: random.Random, topical: bool) -> str:
    """Paragraphs of 2–4 sentences until the drawn length is reached; topical items get 1–2 topical ones."""
    target = rng.randint(*DESCRIPTION_CHARS)
    topical_left = rng.randint(1, 2) if topical else 0
    paragraphs: list[str] = []
    length = 0
    while length < target:
        sentences = []
        for _ in range(rng.randint(2, 4)):
            if topical_left and rng.random() < TOPICAL_SENTENCE_CHANCE:
                topical_left -= 1
                sentences.append(_fill(rng, rng.choice(_TOPICAL_SENTENCES)))
            else:
                sentences.append(_fill(rng, rng.choice(_SENTENCES)))
        paragraph = f"<p>{escape(' '.join(sentences))}</p>"
        paragraphs.append(paragraph)
        length += len(paragraph)
    if topical_left:  # the random draws skipped them: a topical item must mention its topic
        paragraphs.append(f"<p>{escape(_fill(rng, rng.choice(_TOPICAL_SENTENCES)))}</p>")
    if rng.random() < MARKUP_CHANCE:
        paragraphs.append(f'<p><a href="{_MORE_URL}">Read more</a> <em>{_fill(rng, "{Org}")}</em></p>')
    return "\n".join(paragraphs)


def rss_document(feed: Feed, now: datetime) -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(feed.title)}</title><link>{feed.site}/</link>",
        f"<description>News from outlet {feed.number}</description><language>en</language>",
        f"<lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>",
    ]
    for item in feed.items:
        # Half the feeds use permalink guids, as many real ones do.
        permalink = feed.number % 2 == 0
        guid = item.link if permalink else item.guid
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
            f'<guid isPermaLink="{str(permalink).lower()}">{escape(guid)}</guid>'
            f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"
            f"<description>{escape(item.description_html)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "\n".join(parts)


def atom_document(feed: Feed, now: datetime) -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
        f"<title>{escape(feed.title)}</title><id>{feed.site}/</id>",
        f'<link rel="alternate" href={quoteattr(feed.site + "/")}/><updated>{now.isoformat()}</updated>',
    ]
    for item in feed.items:
        stamp = item.published.isoformat()
        parts.append(
            f'<entry><title>{escape(item.title)}</title><link rel="alternate" href={quoteattr(item.link)}/>'
            f"<id>tag:outlet{feed.number}.example.com,2024:{item.guid}</id>"
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            f"<author><name>Newsroom {feed.number}</name></author>"
            f'<content type="html">{escape(item.description_html)}</content></entry>'
        )
    parts.append("</feed>\n")
    return "\n".join(parts)


def render(feed: Feed, now: datetime) -> str:
    return atom_document(feed, now) if feed.kind == "atom" else rss_document(feed, now)


def generate_feeds(
    root: Path,
    count: int,
    items: int = DEFAULT_ITEMS,
    *,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
) -> GeneratedFeeds:
    """Write feeds 0 … count-1 under `root`; `now` (default: the current time) anchors the item dates."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    (root / FEED_DIR).mkdir(parents=True, exist_ok=True)
    paths = []
    total_items = topical = size = 0
    for number in range(count):
        feed = make_feed(number, items, seed=seed, now=now)
        data = render(feed, now).encode("utf-8")
        (root / feed.path.lstrip("/")).write_bytes(data)
        paths.append(feed.path)
        total_items += len(feed.items)
        topical += sum(item.topical for item in feed.items)
        size += len(data)
    return GeneratedFeeds(root, tuple(paths), total_items, topical, size)


def feed_urls(paths: Sequence[str], addresses: Sequence[str], port: int) -> list[str]:
    """One URL per feed, spread round-robin over the server's addresses (each is a host of its own)."""
    return [f"http://{addresses[n % len(addresses)]}:{port}{path}" for n, path in enumerate(paths)]


def write_opml(path: Path, urls: Iterable[str]) -> Path:
    outlines = "\n".join(
        f'    <outline type="rss" text="Feed {n}" xmlUrl={quoteattr(url)}/>' for n, url in enumerate(urls)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n'
        f"  <head><title>Benchmark feeds</title></head>\n  <body>\n{outlines}\n  </body>\n</opml>\n",
        encoding="utf-8",
    )
    return path
