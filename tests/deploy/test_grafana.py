"""deploy/grafana: dashboards Grafana can load, on the provisioned datasource, with valid PromQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploychecks import DASHBOARDS, dashboard_expressions, dashboard_problems, provisioned_datasource_uids


def test_there_is_a_dashboard_per_area() -> None:
    assert {p.stem for p in DASHBOARDS} == {"api", "events", "sync", "business"}


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_valid(dashboard: Path) -> None:
    assert dashboard_expressions(json.loads(dashboard.read_text()))
    assert dashboard_problems(dashboard, provisioned_datasource_uids()) == []


def test_dashboard_check_fails_on_broken_promql(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    panel = next(p for p in dashboard["panels"] if p.get("targets"))
    panel["targets"][0]["expr"] = "sum by (job) (rate(http_requests_total[5m]"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dashboard))
    problems = dashboard_problems(broken, provisioned_datasource_uids())
    assert problems
    assert "promtool check rules" in problems[0]


def test_dashboard_check_fails_on_broken_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(DASHBOARDS[0].read_text()[:-10])
    assert "not JSON" in dashboard_problems(broken, provisioned_datasource_uids())[0]


def test_dashboard_check_fails_on_an_unknown_datasource(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    next(p for p in dashboard["panels"] if p.get("targets"))["datasource"] = {"uid": "influx"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dashboard))
    assert any(
        "unknown datasource influx" in p for p in dashboard_problems(broken, provisioned_datasource_uids())
    )
