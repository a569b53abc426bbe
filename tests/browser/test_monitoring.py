"""The monitoring page in a real browser: Debian's chromium through Playwright, against the real server
(`run_python_script.py serve`, gunicorn) serving a model the pipeline delivered to a real registry;
the report is built by the monitoring code from the events that server wrote (tests/monitoring_helpers.py).
tests/unit/test_monitoring_page.py renders the same page with Flask's test client.
"""

from __future__ import annotations

import shutil

import requests

from tests.browser.chromium import needs_chromium, open_page
from tests.monitoring_helpers import forecast_all, tiny_profile, write_report
from tests.real_stack import deployed_server, production_model
from tests.serving_helpers import wait_for


@needs_chromium
def test_the_monitoring_page_in_a_browser(browser, mlflow_server, tiny_data, tmp_path):
    with deployed_server(tmp_path, mlflow_server, tiny_data) as server:
        url = server.url
        profile = tiny_profile(tiny_data, production_model(server.env).model)
        served = forecast_all(lambda path: requests.get(url + path, timeout=10))
        events = tmp_path / "data" / "predictions.jsonl"
        wait_for(lambda: events.exists() and len(events.read_text().splitlines()) >= served, what="the events written")
        write_report(tmp_path / "data", tiny_data, profile)
        context, page = open_page(browser, url)
        try:
            page.goto(url + "/monitoring")
            assert page.inner_text("#events") == str(served)
            assert page.inner_text("#serving-version") == "1"
            for chart in ("volume", "products", "latency", "versions", "psi", "forecast", "weekdays", "accuracy"):
                box = page.locator(f"#chart-{chart}").bounding_box()
                assert box and box["width"] > 300 and box["height"] > 100, chart  # drawn, two by two
            assert page.locator("#chart-volume rect").count() >= 3
            assert "Live accuracy on 9 forecasts" in page.inner_text("#accuracy")
            shot = tmp_path / "monitoring.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copy(shot, tmp_path.parent / "monitoring-latest.png")  # to look at after a run
            assert page.outside == [] and page.problems == []
        finally:
            context.close()
