"""The alert rules in deploy/prometheus: valid, each alert unit-tested by promtool, and every
metric and label they read one that the service really exposes, so that renaming a metric in the
code breaks this test and not, silently, the alert."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client import Counter, Histogram

from app import metrics
from scripts.promtool import ensure_promtool
from tests.support.api import bearer, create_goods, create_user

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
SELECTOR = re.compile(r"\b(ordersaga_\w+)(?:\{([^}]*)\})?")


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_promtool()


def test_the_rules_pass_promtool_check(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_as_its_unit_tests_say(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    tested = {
        case["alertname"]
        for test in yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert alerts == tested


def test_every_metric_and_label_an_alert_reads_is_exposed(client: FlaskClient) -> None:
    buyer, goods = create_user(client), create_goods(client)
    order = {"items": [{"goods_id": goods["id"], "quantity": 1}]}
    placed = client.post("/api/v1/orders", json=order, headers=bearer(buyer["token"]))
    assert placed.status_code == 202  # an order, so that the orders gauge has a series
    exposed = _exposed(client.get("/metrics").get_data(as_text=True))
    for rule in _rules():
        for name, selector in SELECTOR.findall(rule["expr"] + str(rule.get("annotations", {}))):
            assert name in exposed, (rule["alert"], name)
            labels = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", selector))
            assert labels <= exposed[name], (rule["alert"], name, labels - exposed[name])


def _rules() -> list[dict[str, str]]:
    document = yaml.safe_load((RULES / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _exposed(scraped: str) -> dict[str, set[str]]:
    """Each series name the service can expose, with its label names: the counters and histograms
    from their definitions (a labelled one has no series before its first event), the gauges
    computed at scrape time from the scrape."""
    exposed: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            exposed[value._name + "_total"] = set(value._labelnames)
        elif isinstance(value, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                exposed[value._name + suffix] = set(value._labelnames) | (
                    {"le"} if suffix == "_bucket" else set()
                )
    for name, labels in re.findall(r"^(ordersaga_\w+)(?:\{(.*)\})? ", scraped, re.M):
        exposed.setdefault(name, set()).update(re.findall(r'(\w+)="', labels))
    return exposed
