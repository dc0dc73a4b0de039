"""The search page in a real headless Chromium: load it, search, filter by tag and date, follow a result.

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver through selenium, against the app served live on
loopback, emulating a phone's screen: the page must be laid out for it and fit without scrolling sideways.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.apiserver import SampleStore, live_server, sample_store
from tests.conftest import IN_CI
from worker.api.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# A phone's screen: the page's viewport meta decides whether it is laid out 390 or 980 pixels wide.
PHONE = {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0}}
WAIT = 20.0


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"{', '.join(missing)} missing (Debian: apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(f"{reason}; required under CI=true")
        pytest.skip(reason)
    # Both paths are given: selenium must not look for (or download) a driver of its own.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", PHONE)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, SampleStore]]:
    store = sample_store(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    with live_server(create_app(store.runtime)) as base:
        yield base, store
    store.runtime.engine.dispose()


def titles(driver: WebDriver) -> list[str]:
    return [link.text for link in driver.find_elements(By.CSS_SELECTOR, "ol.results a.title")]


def submit(driver: WebDriver) -> None:
    """Click Search and wait for the new page (the old form goes stale)."""
    form = driver.find_element(By.CSS_SELECTOR, "form.search")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, WAIT).until(expected_conditions.staleness_of(form))


def test_search_filter_and_follow_a_result(browser: WebDriver, site: tuple[str, SampleStore]) -> None:
    base, store = site
    browser.get(base + "/")
    assert browser.title == "Newswatch"
    viewport = browser.find_element(By.CSS_SELECTOR, 'meta[name="viewport"]').get_attribute("content")
    assert viewport is not None and "width=device-width" in viewport
    assert browser.execute_script("return window.innerWidth") == PHONE["deviceMetrics"]["width"]
    assert titles(browser)[0] == "Tokayev opens the new Aktau seaport terminal"
    fits = "return document.documentElement.scrollWidth <= window.innerWidth"
    assert browser.execute_script(fits), "the page scrolls sideways on a phone-sized window"

    box = browser.find_element(By.NAME, "q")
    box.send_keys("Caspian")
    submit(browser)
    assert "q=Caspian" in browser.current_url
    assert set(titles(browser)) == {
        "Tokayev opens the new Aktau seaport terminal",
        "Organization of Turkic States summit opens in Budapest",
    }
    marks = {mark.text.lower() for mark in browser.find_elements(By.CSS_SELECTOR, ".snippet mark")}
    assert marks == {"caspian"}

    Select(browser.find_element(By.NAME, "tag")).select_by_value("ots")
    submit(browser)
    assert titles(browser) == ["Organization of Turkic States summit opens in Budapest"]

    browser.find_element(By.NAME, "q").clear()
    Select(browser.find_element(By.NAME, "tag")).select_by_value("kazakhstan")
    submit(browser)
    assert "Kazakhstan grain exports reach a record" in titles(browser)
    Select(browser.find_element(By.NAME, "since")).select_by_value("7d")
    submit(browser)
    assert titles(browser) == ["Tokayev opens the new Aktau seaport terminal"]
    assert browser.execute_script(fits), "the result list scrolls sideways on a phone-sized window"

    browser.find_element(By.LINK_TEXT, "Tokayev opens the new Aktau seaport terminal").click()
    WebDriverWait(browser, WAIT).until(expected_conditions.url_contains("/articles/"))
    assert browser.current_url == f"{base}/articles/{store.ids['tokayev']}"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Tokayev opens the new Aktau seaport terminal"
    assert "Kassym-Jomart Tokayev" in browser.find_element(By.CSS_SELECTOR, ".text").text
    assert "kazakhstan" in [tag.text for tag in browser.find_elements(By.CSS_SELECTOR, ".tags a")]
    browser.find_element(By.CSS_SELECTOR, "header a").click()
    WebDriverWait(browser, WAIT).until(expected_conditions.url_to_be(base + "/"))
