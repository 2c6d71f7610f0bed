"""deploy/prometheus: promtool accepts the config and the rules, and the rules' unit tests pass."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploychecks import (
    OPERATIONS_DOC,
    PROMETHEUS,
    RULE_TESTS,
    RULES,
    alert_coverage_problems,
    promtool_problems,
)


def test_prometheus_config_is_valid() -> None:
    assert promtool_problems("check", "config", str(PROMETHEUS / "prometheus.yml")) == []


def test_rules_are_valid() -> None:
    assert RULES
    assert promtool_problems("check", "rules", *map(str, RULES)) == []


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    assert promtool_problems("test", "rules", *map(str, RULE_TESTS)) == []


def test_every_alert_fires_in_a_test_and_is_documented() -> None:
    for rule_file in RULES:
        assert alert_coverage_problems(rule_file, RULE_TESTS, OPERATIONS_DOC) == []


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    return copy


def test_config_check_fails_on_a_broken_config(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    config = copy / "prometheus.yml"
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: fast", 1))
    assert promtool_problems("check", "config", str(config))


def test_rules_check_fails_on_broken_promql(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    rules = copy / "rules" / "ecom.yml"
    rules.write_text(rules.read_text().replace("> 0.05", "> > 0.05", 1))
    assert promtool_problems("check", "rules", str(rules))


def test_unit_tests_fail_when_an_alert_threshold_changes(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    rules = copy / "rules" / "ecom.yml"
    rules.write_text(rules.read_text().replace("> 0.05", "> 0.5", 1))
    problems = promtool_problems("test", "rules", *map(str, sorted((copy / "tests").glob("*.yml"))))
    assert problems
    assert "HighErrorRate" in problems[0]


def test_coverage_check_fails_on_an_untested_undocumented_alert(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    rules = copy / "rules" / "ecom.yml"
    rules.write_text(rules.read_text().replace("alert: SlowRoute", "alert: SlowRoutes", 1))
    problems = alert_coverage_problems(rules, RULE_TESTS, OPERATIONS_DOC)
    assert "SlowRoutes: no unit test in which it fires" in problems
    assert "SlowRoutes: no section 'SlowRoutes' in operations.md" in problems
