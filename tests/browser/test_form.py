"""The sales-forecast page in a real browser: Debian's chromium through Playwright, against the real
server (`run_python_script.py serve`, gunicorn) serving a model the pipeline delivered to a real
registry. Skipped only when /usr/bin/chromium is missing. tests/unit/test_form_page.py renders the
same page with Flask's test client.
"""

from __future__ import annotations

import pytest

from tests.browser.chromium import needs_chromium, open_page
from tests.real_stack import deployed_server, production_model
from tests.serving_helpers import MILK


# --- a real browser against the real server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def deployed(mlflow_server, tiny_data, tmp_path_factory):
    """The product end to end: the tiny data delivered to a real registry, served by `run_python_script.py serve`."""
    with deployed_server(tmp_path_factory.mktemp("browser-server"), mlflow_server, tiny_data) as server:
        yield server


@pytest.fixture(scope="module")
def server(deployed) -> str:
    return deployed.url


@pytest.fixture(scope="module")
def v1(deployed):
    """The model the server serves, loaded from the registry as the server loads it."""
    return production_model(deployed.env)


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
