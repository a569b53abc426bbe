"""The sales-forecast page: rendered by Flask (test client) and used in a real browser.

The browser tests start the real server (gunicorn, tests/serving_server.py) on a free port and
drive Debian's chromium through Playwright; they are skipped only when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import re
from html import unescape as html_unescape
from pathlib import Path

import pytest

from cd4ml.events import JsonlSink
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.serving_helpers import MILK, Registry, loaded, model_a, serving_settings, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="Debian chromium is not installed at /usr/bin/chromium")


@pytest.fixture(scope="module")
def v1(tiny_data):
    return loaded(model_a(tiny_data), "1")


@pytest.fixture
def client(v1, tmp_path):
    store = ModelStore(Registry(v1), poll_seconds=0)
    store.refresh()
    sink = JsonlSink(tmp_path / "predictions.jsonl")
    yield create_app(serving_settings(), store, sink).test_client()
    sink.close()


# --- server-side rendering (no JavaScript needed) ---------------------------------------------------------

def test_the_page_offers_a_date_picker_and_the_models_own_products(client, v1):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'<input type="date" id="date" name="date" value="\d{4}-\d{2}-\d{2}"', html)
    products = html.split('<select id="item_nbr"', 1)[1].split("</select>", 1)[0]
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', products)
    assert {int(value) for value, _ in options} == set(v1.catalogue)
    labels = [label for _, label in options]
    assert labels[:3] == ["Cheese · Dairy", "Milk · Dairy", "Soap · Cleaning"]
    assert "Item 180891 (BREAD/BAKERY)" in labels
    assert '<button type="submit" id="submit">Submit</button>' in html
    assert 'id="store_nbr"' in html  # the tiny data's model knows two stores


def test_the_date_starts_at_the_first_day_after_the_models_data(client, v1):
    assert v1.period == ("2015-01-01", "2016-12-31")  # the tiny data
    html = client.get("/").get_data(as_text=True)
    assert '<input type="date" id="date" name="date" value="2017-01-01"' in html
    assert "learned from the sales of 2015-01-01 to 2016-12-31" in html
    assert re.search(r'<p id="date-note"[^>]*hidden', html)  # nothing to say about 2017-01-01


@pytest.mark.parametrize("day, words", [
    ("2026-12-06", "2026-12-06 is 3,627 days after the model's data ends (2016-12-31)"),
    ("2005-03-01", "2005-03-01 is 3,593 days before the model's data begins (2015-01-01)"),
])
def test_a_date_far_outside_the_data_gets_a_note(client, day, words):
    html = client.get(f"/?date={day}&item_nbr=99197&store_nbr=47").get_data(as_text=True)
    note = re.search(r'<p id="date-note"[^>]*>([^<]*)</p>', html)
    assert words in html_unescape(note.group(1)) and "hidden" not in note.group(0)
    assert 'id="prediction"' in html  # a note, not an error


def test_the_favicon_is_the_sites_icon_not_a_json_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["Location"].endswith("/static/favicon.svg")
    icon = client.get(response.headers["Location"])
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_submitting_the_form_shows_the_forecast_and_the_model_version(client, v1):
    response = client.get("/?date=2016-08-01&item_nbr=99197&store_nbr=47")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    expected = float(v1.model.predict([MILK])[0])
    assert f'data-value="{expected}"' in html and f">{expected:.1f}<" in html
    assert 'id="model-version">1<' in html and "Milk" in html
    assert re.search(r'<option value="99197"\s+selected>', html)  # the user's choice is kept
    assert 'value="2016-08-01"' in html


@pytest.mark.parametrize("query, field, words", [
    ("date=1999-12-31&item_nbr=105574", "date", "between 2000-01-01 and 2100-12-31"),
    ("date=2016-02-30&item_nbr=105574", "date", "not a day of the calendar"),
    ("date=&item_nbr=105574", "date", "date is empty"),
    ("date=2016-08-01&item_nbr=1", "item_nbr", "not a product"),
    ("date=2016-08-01&item_nbr=105574&store_nbr=3", "store_nbr", "not a store"),
])
def test_bad_input_re_renders_the_form_with_the_error_and_the_users_values(client, query, field, words):
    response = client.get(f"/?{query}&onpromotion=true")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert words in html
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html, re.S)
    date = re.search(r"date=([^&]*)", query).group(1)
    assert f'name="date" value="{date}"' in html
    if "item_nbr=105574" in query:
        assert re.search(r'<option value="105574"\s+selected>', html)
    assert re.search(r'id="onpromotion" name="onpromotion" value="true"\s+checked', html)
    assert 'id="result" class="card result" aria-live="polite" hidden' in html


def test_the_page_escapes_what_the_user_typed(client):
    html = client.get("/?date=%3Cscript%3Ealert(1)%3C/script%3E&item_nbr=99197").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_without_a_model_the_page_says_how_to_deploy_one(tmp_path):
    sink = JsonlSink(tmp_path / "p.jsonl")
    client = create_app(serving_settings(), ModelStore(Registry(None), 0), sink).test_client()
    response = client.get("/?date=2016-08-01&item_nbr=99197")
    html = response.get_data(as_text=True)
    sink.close()
    assert response.status_code == 503
    assert "No model is deployed yet" in html
    for command in ("pipeline", "acceptance", "deploy"):
        assert f"python3 run_python_script.py {command}" in html


def test_the_page_loads_nothing_from_elsewhere(client):
    html = client.get("/").get_data(as_text=True)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
    for asset in ("/static/style.css", "/static/forecast.js", "/static/favicon.svg"):
        response = client.get(asset)
        assert response.status_code == 200 and b"http" not in response.data.replace(b"http://www.w3.org", b"")


# --- a real browser against the real server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(v1, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-server")
    process, url, log = start_server(folder, {"1": v1.model})
    yield url
    stop_server(process)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, server, javascript: bool = True):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.outside = []  # requests that left our server
    page.problems = []  # console errors, CSP violations
    page.on("request", lambda r: None if r.url.startswith(server) else page.outside.append(r.url))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return context, page


@needs_chromium
@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "plain-form"])
def test_pick_a_date_and_a_product_and_see_the_forecast(browser, server, v1, tmp_path, javascript):
    context, page = open_page(browser, server, javascript)
    try:
        page.goto(server + "/")
        page.fill("#date", "2016-08-01")
        page.select_option("#item_nbr", "99197")
        page.click("#submit")
        page.wait_for_selector("#prediction")
        expected = float(v1.model.predict([MILK])[0])
        assert page.inner_text("#prediction") == f"{expected:.1f}"
        assert float(page.get_attribute("#prediction", "data-value")) == expected
        assert page.inner_text("#model-version") == "1"
        assert "Milk" in page.inner_text("#what")
        assert page.input_value("#date") == "2016-08-01" and page.input_value("#item_nbr") == "99197"
        assert "date=2016-08-01" in page.url and "item_nbr=99197" in page.url
        page.screenshot(path=str(tmp_path / f"forecast-{'js' if javascript else 'plain'}.png"), full_page=True)
        assert page.outside == [] and page.problems == []
    finally:
        context.close()


@needs_chromium
def test_a_bad_date_shows_the_error_and_keeps_the_users_values(browser, server, tmp_path):
    context, page = open_page(browser, server)
    try:
        page.goto(server + "/?date=1999-12-31&item_nbr=105574&onpromotion=true")
        error = page.inner_text("#form-error")
        assert "between 2000-01-01 and 2100-12-31" in error
        assert page.get_attribute("#date", "aria-invalid") == "true"
        assert page.input_value("#date") == "1999-12-31"
        assert page.input_value("#item_nbr") == "105574"
        assert page.is_checked("#onpromotion")
        assert not page.is_visible("#result")
        page.screenshot(path=str(tmp_path / "bad-date.png"), full_page=True)

        # Fix the date and submit again (JavaScript path): the error goes, the forecast comes.
        page.fill("#date", "2016-08-02")
        page.click("#submit")
        page.wait_for_selector("#prediction")
        assert page.is_hidden("#form-error") and page.get_attribute("#date", "aria-invalid") is None
        assert page.inner_text("#model-version") == "1"
        # the console shows the 400 of the first load as an error; nothing else may appear
        assert page.outside == [] and all("400" in p for p in page.problems), page.problems
    finally:
        context.close()


@needs_chromium
def test_picking_a_date_far_after_the_data_shows_the_note_at_once(browser, server):
    context, page = open_page(browser, server)
    try:
        page.goto(server + "/")
        assert page.input_value("#date") == "2017-01-01" and not page.is_visible("#date-note")
        page.fill("#date", "2026-12-06")
        assert "3,627 days after the model's data ends (2016-12-31)" in page.inner_text("#date-note")
        page.fill("#date", "2017-02-01")
        assert not page.is_visible("#date-note")
        assert page.outside == [] and page.problems == []
    finally:
        context.close()


@needs_chromium
def test_an_unknown_product_via_javascript_marks_the_field(browser, server):
    context, page = open_page(browser, server)
    try:
        page.goto(server + "/")
        page.fill("#date", "2016-08-01")
        page.evaluate("document.getElementById('item_nbr').add(new Option('Gone', '1'), null)")
        page.select_option("#item_nbr", "1")
        page.click("#submit")
        page.wait_for_selector("#form-error:not([hidden])")
        assert "not a product" in page.inner_text("#form-error")
        assert page.get_attribute("#item_nbr", "aria-invalid") == "true"
    finally:
        context.close()
