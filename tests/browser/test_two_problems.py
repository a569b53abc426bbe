"""One server, two problems, in a real browser: the house-price form at / (houses is the server's
problem, as after `quickstart --problem houses`) and the Favorita form at /favorita/, each asking its
own routes. Both models went through pipeline, gate and deploy into a real `mlflow server` of this
module's own (the problems' registered models keep their committed names), served by
`run_python_script.py serve` (gunicorn)."""

from __future__ import annotations

import csv

import pytest

from benchmarks.processes import mlflow_server as local_mlflow_server
from tests.browser.chromium import needs_chromium, open_page
from tests.conftest import ROOT
from tests.real_stack import Server, cli, cli_env, deliver


@pytest.fixture(scope="module")
def both(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-problems")
    with open(folder / "mlflow.log", "wb") as log, local_mlflow_server(folder / "mlflow", log, seconds=90) as uri:
        env = cli_env(folder, uri)
        env.pop("CD4ML_TRACKING_REGISTERED_MODEL")  # sales-forecast and house-prices, as committed
        deliver(env, tiny_data / "store47-2016.csv")
        houses = folder / "data" / "houses-tiny"
        made = cli(env, "generate-data", "--problem", "houses", "--size", "tiny", "--out", str(houses))
        assert made.returncode == 0, made.stderr
        deliver(env, houses / "sales.csv", "--problem", "houses")
        server = Server({**env, "CD4ML_PARAMS": str(ROOT / "params-houses.toml")}, folder / "server.log")
        try:
            server.wait_ready()
            with (houses / "sales.csv").open(newline="") as lines:
                sale = next(csv.DictReader(lines))
            yield server.url, sale
        finally:
            server.stop()


@needs_chromium
@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "plain-form"])
def test_the_favorita_form_under_its_prefix_asks_its_own_routes(browser, both, javascript):
    url, _ = both
    context, page = open_page(browser, url, javascript)
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    try:
        page.goto(url + "/favorita/")
        page.fill("#date", "2016-08-01")
        page.select_option("#item_nbr", "99197")
        page.click("#submit")
        page.wait_for_selector("#prediction")
        assert "Milk" in page.inner_text("#what")
        assert page.url.startswith(url + "/favorita/?") and "item_nbr=99197" in page.url, page.url
        assert not any(a.startswith(url + "/prediction") for a in asked), asked  # the houses' API
        assert page.outside == [] and page.problems == [], page.problems
    finally:
        context.close()


@needs_chromium
@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "plain-form"])
def test_price_a_house_in_the_form_and_see_it_in_dollars(browser, both, tmp_path, javascript):
    url, sale = both
    context, page = open_page(browser, url, javascript)
    try:
        page.goto(url + "/")
        for name, value in sale.items():
            if name == "price" or not page.locator(f"#{name}").count():
                continue
            if page.locator(f"select#{name}").count():
                page.select_option(f"#{name}", value)
            elif page.get_attribute(f"#{name}", "type") == "checkbox":
                page.set_checked(f"#{name}", value.lower() in ("1", "true"))
            else:
                page.fill(f"#{name}", value)
        page.click("#submit")
        page.wait_for_selector("#prediction")
        shown = page.inner_text("#prediction")
        assert shown.startswith("$") and 20_000 < float(page.get_attribute("#prediction", "data-value")) < 20_000_000
        assert f"zipcode={sale['zipcode']}" in page.url
        page.screenshot(path=str(tmp_path / f"houses-{'js' if javascript else 'plain'}.png"), full_page=True)
        assert 'href="/favorita/"' in page.content()  # / offers the other deployed problem
        assert page.outside == [] and page.problems == [], page.problems
    finally:
        context.close()

