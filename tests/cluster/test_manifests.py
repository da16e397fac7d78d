"""Production manifests (deploy/compose, deploy/k8s) checked with the ecosystem's own tools.

- Compose: ``docker compose config`` (the compose plugin parses, interpolates and validates
  against the Compose specification; no engine needed), else ``docker-compose config``.
- Kubernetes: ``kubeconform -strict`` with the Kubernetes JSON schemas the PyPI package
  ``kubernetes-validate`` ships (offline), and the ``FlinkDeployment`` against
  ``deploy/k8s/schemas/flinkdeployment_v1beta1.json``; where kubeconform is absent, the same
  schema files are applied with the ``jsonschema`` library.

A missing tool skips its test and says how to get it; the structural checks below (every file
a manifest mounts exists, the job spec the manifests ship is a valid JobSpec) always run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
K8S = REPO / "deploy" / "k8s"
K8S_VERSION = "1.34.0"
COMPOSE_ENV = {"ELASTIC_PASSWORD": "test-only", "GRAFANA_ADMIN_PASSWORD": "test-only"}


def _k8s_documents() -> list[tuple[Path, dict]]:
    return [(path, document) for path in sorted(K8S.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def _compose_command() -> list[str] | None:
    """Docker Compose v2 or later: the one deploy/run builds (SOCFLOW_DOCKER_COMPOSE), the docker CLI
    plugin, or a docker-compose binary. Compose v1 (Debian's docker-compose 1.29) predates the
    Compose Specification this file follows (a top-level "name", for one): it is no judge of it."""
    built = os.environ.get("SOCFLOW_DOCKER_COMPOSE")
    if built and Path(built).is_file():
        return [built]
    plugin_dirs = [Path.home() / ".docker" / "cli-plugins", Path("/usr/local/lib/docker/cli-plugins"),
                   Path("/usr/libexec/docker/cli-plugins"), Path("/usr/lib/docker/cli-plugins")]
    if shutil.which("docker") and any((d / "docker-compose").exists() for d in plugin_dirs):
        return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is None:
        return None
    version = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True, timeout=60,
                             check=False).stdout.strip().lstrip("v")
    return None if version.startswith("1.") else [standalone]


def _kubeconform() -> str | None:
    built = os.environ.get("SOCFLOW_KUBECONFORM")  # deploy/run test builds it with Go
    if built and Path(built).is_file():
        return built
    found = shutil.which("kubeconform")
    if found:
        return found
    gopath = Path(os.environ.get("GOPATH", Path.home() / "go")) / "bin" / "kubeconform"
    return str(gopath) if gopath.exists() else None


def _schema_dir() -> Path | None:
    # Only the package's data is needed: find it without importing the package's code.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    return directory if directory.is_dir() else None


def test_compose_file_structure() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    expected = {"elasticsearch", "kafka", "jobmanager", "taskmanager", "collector-syslog", "collector-files",
                "indexer", "event-writer", "retention", "prometheus", "grafana"}
    assert expected <= set(services)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
    assert services["taskmanager"]["deploy"]["replicas"] == 2
    assert services["event-writer"]["command"][:3] == ["index", "events", "--follow"]
    writers = [doc for _, doc in _k8s_documents() if doc["kind"] == "Deployment"
               and doc["metadata"]["name"] == "event-writer"]
    assert len(writers) == 1
    assert writers[0]["spec"]["template"]["spec"]["containers"][0]["args"][:3] == ["index", "events", "--follow"]


def test_shipped_job_specs_are_valid() -> None:
    from detectors.flink.job import JobSpec

    specs = [(COMPOSE.parent / "job-spec.json").read_text(encoding="utf-8")]
    specs += [doc["data"]["job-spec.json"] for _, doc in _k8s_documents()
              if doc["kind"] == "ConfigMap" and "job-spec.json" in doc.get("data", {})]
    assert len(specs) == 2
    for text in specs:
        spec = JobSpec.from_json(text)
        assert (spec.source, spec.parallelism, spec.bounded) == ("kafka", 2, False)


def test_compose_config_validates() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 or later: deploy/run test builds one with Go (SOCFLOW_DOCKER_COMPOSE); "
                    "Debian's docker-compose package is v1, which predates the Compose Specification")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                            env={**os.environ, **COMPOSE_ENV}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    # An unset secret must stop the deployment, not start Elasticsearch without a password.
    bare = {key: value for key, value in os.environ.items() if key not in COMPOSE_ENV}
    refused = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                             env=bare, timeout=120, check=False)
    assert refused.returncode != 0
    assert "ELASTIC_PASSWORD" in refused.stderr


def test_kubernetes_manifests_validate(tmp_path: Path) -> None:
    schemas = _schema_dir()
    if schemas is None:
        pytest.skip(f"Kubernetes schemas absent: pip install kubernetes-validate (needs v{K8S_VERSION})")
    documents = _k8s_documents()
    kinds = {doc["kind"] for _, doc in documents}
    assert {"FlinkDeployment", "StatefulSet", "Deployment", "CronJob", "Service"} <= kinds
    _validate_with_schemas(schemas, documents)
    kubeconform = _kubeconform()
    if kubeconform is None:
        return  # the schema check above stands; kubeconform adds its own reading of the files
    # kubernetes-validate's schemas refer to "/api/_definitions.json" under the $id
    # https://kubernetes.io/api/...; kubeconform would fetch that. Point the references at the
    # local file instead (only for the kinds used here).
    local = tmp_path / "schemas"
    local.mkdir()
    definitions = local / "_definitions.json"
    shutil.copy(schemas / "_definitions.json", definitions)
    for _, document in documents:
        if document["kind"] == "FlinkDeployment":
            continue
        name = _schema_name(document)
        text = (schemas / name).read_text(encoding="utf-8")
        (local / name).write_text(text.replace('"/api/_definitions.json', f'"{definitions.as_uri()}'),
                                  encoding="utf-8")
    # kubeconform names schemas <kind><-group-version>.json (lowercase); the CRD subset lives in
    # the repository under the name its template gives it.
    locations = [f"{local}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                 f"{K8S / 'schemas'}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"]
    command = [kubeconform, "-strict", "-summary", "-output", "json", "-kubernetes-version", K8S_VERSION]
    for location in locations:
        command += ["-schema-location", location]
    result = subprocess.run([*command, *map(str, sorted(K8S.glob("*.yaml")))], capture_output=True, text=True,
                            timeout=300, check=False)
    report = json.loads(result.stdout or "{}")
    assert result.returncode == 0, json.dumps(report.get("resources", report), indent=1)[:6000] + result.stderr
    summary = report["summary"]
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0
    assert summary["valid"] == len(documents)


def _schema_name(document: dict) -> str:
    # rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1 (kubernetes-validate's naming)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", document["apiVersion"])
    return f"{document['kind'].lower()}-{group_version}.json"


def _validate_with_schemas(schemas: Path, documents: list[tuple[Path, dict]]) -> None:
    """The schema files applied the way kubernetes-validate applies them (JSON Schema 2020-12)."""
    import jsonschema
    from referencing import Registry, Resource

    definitions = Resource.from_contents(json.loads((schemas / "_definitions.json").read_text(encoding="utf-8")))
    failures = []
    for path, document in documents:
        if document["kind"] == "FlinkDeployment":
            schema = json.loads((K8S / "schemas" / "flinkdeployment_v1beta1.json").read_text(encoding="utf-8"))
            validator: jsonschema.protocols.Validator = jsonschema.Draft7Validator(schema)
        else:
            schema = json.loads((schemas / _schema_name(document)).read_text(encoding="utf-8"))
            registry = definitions @ (Resource.from_contents(schema) @ Registry())
            validator = jsonschema.Draft202012Validator(schema, registry=registry)
        failures += [f"{path.name} {document['kind']}/{document['metadata']['name']}: {error.json_path}: "
                     f"{error.message}" for error in validator.iter_errors(document)]
    assert not failures, "\n".join(failures)
