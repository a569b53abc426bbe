"""The sales-forecast page rendered by Flask (test client), around a stand-in for the registry's fetch.

tests/browser/test_form.py uses the same page in a real browser against the real server.
"""

from __future__ import annotations

import re
from html import unescape as html_unescape

import pytest

from cd4ml.events import JsonlSink
from cd4ml.serving.app import create_app
from cd4ml.serving.model_store import ModelStore
from tests.serving_helpers import MILK, Registry, loaded, model_a, serving_settings


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
