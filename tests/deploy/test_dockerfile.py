"""The Dockerfile and the deployment scripts: hadolint, shellcheck, and what the final stage holds.
(Building and running the images is tests/deploy/test_images.py, which needs a Docker engine.)"""

from __future__ import annotations

from pathlib import Path

from deploychecks import (
    DOCKERFILE,
    SHELL_SCRIPTS,
    final_stage_problems,
    hadolint_problems,
    shellcheck_problems,
)


def test_dockerfile_passes_hadolint() -> None:
    assert hadolint_problems(DOCKERFILE) == []


def test_final_stage_is_non_root_healthchecked_and_holds_no_build_tools() -> None:
    assert final_stage_problems(DOCKERFILE) == []


def test_deployment_scripts_pass_shellcheck() -> None:
    assert len(SHELL_SCRIPTS) >= 6
    assert shellcheck_problems(SHELL_SCRIPTS) == []


def test_hadolint_fails_on_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILE.read_text().replace("WORKDIR /app\nUSER", "RUN cd /app && pip install httpx\nUSER")
    )
    problems = hadolint_problems(broken)
    assert problems
    assert "DL3003" in problems[0]  # cd in RUN


def test_final_stage_check_fails_on_root_and_build_tools(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text().replace("USER 10001:10001", "USER root")
    text = text.replace(
        "COPY --from=build /out/app /app",
        "COPY --from=build /opt/uv /opt/uv\nCOPY --from=build /out/app /app",
    )
    broken.write_text(text)
    problems = final_stage_problems(broken)
    assert "final stage: runs as root" in problems
    assert (
        "final stage: copies more than /out/app from the build: COPY --from=build /opt/uv /opt/uv" in problems
    )


def test_shellcheck_fails_on_a_broken_script(tmp_path: Path) -> None:
    broken = tmp_path / "entrypoint.sh"
    broken.write_text("#!/bin/sh\nfor f in $(ls /app); do echo $f; done\n")
    problems = shellcheck_problems([broken])
    assert problems
    assert "SC2045" in problems[0]
