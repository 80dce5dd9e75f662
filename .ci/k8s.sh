#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests (deploy/kubernetes) against
# the JSON schemas of a pinned Kubernetes version:
#
#   .ci/k8s.sh                  the manifests
#   .ci/k8s.sh --sbom FILE      instead, FILE (`cargo xtask sbom`) against
#                               the CycloneDX 1.5 JSON schema
#
# The validator is the `kubernetes-validate` package from PyPI, which carries
# the schemas of every Kubernetes version it supports inside the package (no
# network at validation time). It is installed once into
# $LLM_ROUTER_CACHE (default ~/.cache/llm-router)/k8s-venv. Validation is
# strict: an unknown field is an error, as `kubectl apply` would reject it.
#
# Custom resources are not in the Kubernetes schemas: the ServiceMonitor
# (Prometheus Operator) is validated against the schema committed in
# deploy/kubernetes/schemas/. Any other kind without a schema is an error.
# The kustomization is checked to list every manifest of the directory (and
# no example). The SBOM's schema comes with the `cyclonedx-python-lib`
# package, also offline.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/venv.sh

# The Kubernetes version the manifests must be valid for, and the validator
# release that carries its schemas.
K8S_VERSION=1.33.0
VALIDATOR=kubernetes-validate==1.37.0
CYCLONEDX=cyclonedx-python-lib[json-validation]==11.12.0
SBOM=
if [ "${1:-}" = --sbom ]; then
    SBOM=${2:?--sbom needs a file}
fi

VENV=$(llm_cache_dir)/k8s-venv
start=$SECONDS
ensure_venv "$VENV"
PY=$VENV/bin/python
if [ "$(cat "$VENV/.installed" 2>/dev/null || true)" != "$VALIDATOR $CYCLONEDX" ]; then
    echo "k8s: installing $VALIDATOR $CYCLONEDX" >&2
    "$PY" -m pip install --disable-pip-version-check -q "$VALIDATOR" "$CYCLONEDX" >&2
    echo "$VALIDATOR $CYCLONEDX" >"$VENV/.installed"
fi
echo "k8s: $VALIDATOR, $CYCLONEDX in $VENV ($((SECONDS - start)) s)" >&2

if [ -n "$SBOM" ]; then
    exec "$PY" - "$SBOM" <<'PY'
import pathlib
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

path = sys.argv[1]
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(pathlib.Path(path).read_text())
if error is not None:
    print(f"ERROR {path}: not a valid CycloneDX 1.5 document: {error}")
    sys.exit(1)
print(f"ok   {path} (CycloneDX 1.5 JSON schema, strict)")
PY
fi

echo "k8s: Kubernetes $K8S_VERSION" >&2

exec "$PY" - "$K8S_VERSION" deploy/kubernetes <<'PY'
import json
import pathlib
import sys

import jsonschema
import yaml
from kubernetes_validate import utils

version, root = sys.argv[1], pathlib.Path(sys.argv[2])
custom = {}
for path in sorted((root / "schemas").glob("*.json")):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    custom[(schema["properties"]["apiVersion"]["const"],
            schema["properties"]["kind"]["const"])] = (path, schema)

failures = 0
checked = 0
passed = 0


def fail(message):
    global failures
    failures += 1
    print(f"ERROR {message}")


manifests = sorted(p for p in root.glob("*.yaml") if p.name != "kustomization.yaml")
examples = sorted((root / "examples").glob("*.yaml"))
for path in manifests + examples:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as e:
        fail(f"{path}: not YAML: {e}")
        continue
    if not docs:
        fail(f"{path}: no resource")
    for doc in docs:
        name = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        checked += 1
        if key in custom:
            schema_path, schema = custom[key]
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc),
                            key=lambda e: list(e.path))
            for e in errors:
                fail(f"{name}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
            if not errors:
                passed += 1
                print(f"ok   {name} (schema {schema_path.name})")
            continue
        try:
            utils.validate(doc, version, strict=True)
            passed += 1
            print(f"ok   {name} (Kubernetes {version}, strict)")
        except utils.ValidationError as e:
            fail(f"{name}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
        except utils.SchemaNotFoundError as e:
            fail(f"{name}: {e.message}; commit a schema in {root}/schemas")

kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
listed = kustomization.get("resources", [])
on_disk = [p.name for p in manifests]
for r in listed:
    if r not in on_disk:
        fail(f"kustomization.yaml lists {r}, which is not a manifest of {root}")
for n in on_disk:
    if n not in listed:
        fail(f"{root}/{n} is not listed in kustomization.yaml")
if kustomization.get("kind") != "Kustomization":
    fail("kustomization.yaml: kind is not Kustomization")

print(f"k8s: {checked} resources in {len(manifests) + len(examples)} files, "
      f"{passed} valid; {failures} errors")
sys.exit(1 if failures else 0)
PY
