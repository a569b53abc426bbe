"""What the workshop instructions say about the stack matches the stack's files."""

from __future__ import annotations

import json
import re

from tests.stack.files import load_json, read

NUMBERS = {"four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}


def test_setup_lists_stopped_one_shots_with_ps_all():
    """`docker compose ps` lists running containers only: the one-shots that exited need -a."""
    text = read("instructions/1-setup.md")
    assert "exited with code 0" in text
    section = text.split("### 3. Start the stack", 1)[1].split("\n### ", 1)[0]
    assert "docker compose ps -a" in section
    assert not re.search(r"docker compose ps(?! -a)", section)


def test_setup_tells_linux_users_to_set_their_ids_for_the_dev_box():
    text = read("instructions/1-setup.md")
    assert "CD4ML_UID" in text and "id -u" in text


def test_monitoring_counts_the_dashboard_panels_right():
    objects = [json.loads(line) for line in read("kibana/dashboard.ndjson").splitlines() if line.strip()]
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    panels = len(json.loads(dashboard["attributes"]["panelsJSON"]))
    said = re.search(r"has (\w+) panels", read("instructions/6-monitoring.md"))
    assert said and NUMBERS.get(said.group(1), said.group(1)) in {panels, str(panels)}, said and said.group(0)


def test_monitoring_names_the_data_view_as_discover_shows_it():
    name = load_json("kibana/data-view.json")["data_view"]["name"]
    text = read("instructions/6-monitoring.md")
    assert f"data view\n**{name}**" in text or f"data view **{name}**" in text
    assert "choose the data view\n`model-*`" not in text and "choose the data view `model-*`" not in text
