"""docker-compose.yml: accepted by Docker Compose v2, health-gated start order, .env required."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from deploychecks import (
    COMPOSE_FILE,
    DEPLOY,
    ROOT,
    compose_binary,
    compose_problems,
    filled_env_file,
    topic_script_topics,
)

from contracts.topics import ALL_TOPICS


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    return filled_env_file(tmp_path)


def test_compose_file_is_valid(env_file: Path) -> None:
    assert compose_problems(COMPOSE_FILE, env_file) == []


def test_compose_check_fails_on_a_broken_file(tmp_path: Path, env_file: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: when_ready", 1)
    )
    (tmp_path / "deploy").symlink_to(DEPLOY)
    problems = compose_problems(broken, env_file)
    assert problems
    assert "docker-compose config" in problems[0]


def test_compose_check_fails_when_a_service_loses_its_healthcheck(tmp_path: Path, env_file: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    kafka_check = text.index('      test: ["CMD-SHELL", "/opt/kafka/bin/kafka-broker-api-versions.sh')
    start = text.rindex("    healthcheck:", 0, kafka_check)
    end = text.index("      retries: 20\n", kafka_check) + len("      retries: 20\n")
    broken.write_text(text[:start] + text[end:])
    (tmp_path / "deploy").symlink_to(DEPLOY)
    assert "kafka-topics: waits for kafka to be healthy, which has no healthcheck" in compose_problems(
        broken, env_file
    )


def test_compose_refuses_to_interpolate_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    problems = compose_problems(COMPOSE_FILE, empty)
    assert problems
    # Compose names the first required variable it meets (in no fixed order).
    assert re.search(r"required variable (\w+) is missing a value: set \1 in \.env", problems[0])


def test_topic_job_creates_every_contract_topic() -> None:
    assert topic_script_topics(DEPLOY / "kafka" / "create-topics.sh") == set(ALL_TOPICS)


def test_make_up_refuses_to_run_without_env_file(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "up", f"ENV_FILE={tmp_path / 'missing.env'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "copy .env.example" in result.stderr


def test_make_up_refuses_an_env_file_with_empty_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    result = subprocess.run(
        ["make", "--no-print-directory", "up", f"ENV_FILE={env}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD is empty" in result.stderr


def test_the_reference_channel_runs_only_with_the_demo_profile(env_file: Path) -> None:
    def services(*profile: str) -> set[str]:
        result = subprocess.run(
            [
                compose_binary(),
                "-f",
                str(COMPOSE_FILE),
                "--env-file",
                str(env_file),
                *profile,
                "config",
                "--services",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return set(result.stdout.split())

    assert "reference-channel" not in services()
    assert "reference-channel" in services("--profile", "demo")
