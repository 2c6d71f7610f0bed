"""deploy/k8s: every overlay renders, validates against Kubernetes' and the operators' schemas, and
its resources refer to each other correctly."""

from __future__ import annotations

import copy
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from deploychecks import (
    K8S,
    OVERLAYS,
    crd_schemas,
    kafka_topics,
    render,
    schema_problems,
    wiring_problems,
)

from contracts.topics import ALL_TOPICS, dlq_topic


@cache
def rendered(overlay: Path) -> list[dict[str, Any]]:
    return render(overlay)


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    return crd_schemas()


def test_there_are_dev_and_prod_overlays() -> None:
    assert [o.name for o in OVERLAYS] == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: o.name)
def test_overlay_validates_against_kubernetes_and_crd_schemas(overlay: Path) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "Cluster",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds
    assert schema_problems(docs, schemas()) == []


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: o.name)
def test_overlay_resources_refer_to_each_other(overlay: Path) -> None:
    assert wiring_problems(rendered(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: o.name)
def test_overlay_has_a_kafka_topic_per_contract_topic_and_dlq(overlay: Path) -> None:
    expected = set(ALL_TOPICS) | {dlq_topic(t) for t in ALL_TOPICS}
    assert kafka_topics(rendered(overlay)) == expected


def _broken(kind: str, change: Any, name: str | None = None) -> list[dict[str, Any]]:
    docs = copy.deepcopy(rendered(OVERLAYS[0]))
    change(next(d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])))
    return docs


def test_schema_check_fails_on_a_broken_deployment() -> None:
    docs = _broken("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imag="x"))
    assert any("Additional properties are not allowed" in p for p in schema_problems(docs, schemas()))


def test_schema_check_fails_on_a_broken_kafka() -> None:
    docs = _broken("Kafka", lambda d: d["spec"]["kafka"].pop("listeners"))
    assert "Kafka/ecom-kafka: spec/kafka: 'listeners' is a required property" in schema_problems(
        docs, schemas()
    )


def test_schema_check_fails_on_a_broken_node_pool() -> None:
    docs = _broken("KafkaNodePool", lambda d: d["spec"].update(roles=["zookeeper"]))
    assert any(p.startswith("KafkaNodePool/") for p in schema_problems(docs, schemas()))


def test_schema_check_fails_on_a_broken_topic() -> None:
    docs = _broken("KafkaTopic", lambda d: d["spec"].update(partitions="six"))
    assert any(p.startswith("KafkaTopic/") for p in schema_problems(docs, schemas()))


def test_schema_check_fails_on_a_broken_postgres_cluster() -> None:
    docs = _broken("Cluster", lambda d: d["spec"].update(instances="three"))
    assert any(p.startswith("Cluster/") and "instances" in p for p in schema_problems(docs, schemas()))


def test_schema_check_refuses_an_unknown_kind() -> None:
    docs = _broken("Deployment", lambda d: d.update(kind="Deploymnet"))
    assert any("no schema for" in p for p in schema_problems(docs, schemas()))


def test_wiring_check_fails_when_a_service_monitor_names_a_missing_port() -> None:
    docs = _broken("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(port="metrics"))
    assert any("port metrics is not a port" in p for p in wiring_problems(docs))


def test_wiring_check_fails_when_a_network_policy_selects_no_pod() -> None:
    docs = _broken(
        "NetworkPolicy",
        lambda d: d["spec"]["podSelector"]["matchExpressions"][0].update(values=["custmer"]),
        name="services-ingress",
    )
    assert "NetworkPolicy/services-ingress: selects no Deployment's pods" in wiring_problems(docs)


def test_wiring_check_fails_when_a_database_cluster_is_missing() -> None:
    docs = [
        d
        for d in rendered(OVERLAYS[0])
        if not (d["kind"] == "Cluster" and d["metadata"]["name"] == "product-db")
    ]
    assert any("Cluster product-db is absent" in p for p in wiring_problems(docs))


def test_wiring_check_fails_on_a_writable_root_filesystem() -> None:
    docs = _broken(
        "Deployment",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    )
    assert any("writable root" in p for p in wiring_problems(docs))


def test_render_fails_on_a_broken_overlay(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    kustomization = tmp_path / "k8s" / "overlays" / "dev" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("../../base", "../../bsae"))
    with pytest.raises(RuntimeError, match="kubectl kustomize"):
        render(kustomization.parent)
