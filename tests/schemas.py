"""Validation of what the program registers: getambassador.io objects against the project's own CRDs
(tests/fixtures, today's line) and then upstream's real CRD schemas (skipped, loudly, where upstream's
files are not found), built-in kinds against Kubernetes' own (kubernetes-validate).

Unknown fields are rejected (CRD schemas only prune them on the server, so a misspelt field would
otherwise vanish silently).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.conftest import OWN_CRDS, upstream_file

# The page's line is validated against the CRDs it installs; today's against Emissary's current CRDs.
UPSTREAM_CRDS = {
    "getambassador.io/v2": "emissary/aes-crds.v1.14.4.yaml",
    "getambassador.io/v3alpha1": "emissary/crds.v4-head.yaml",
}
# What the stacks' test config installs on today's line in place of upstream's CRDs.
OWN_CRD_FILES = {"getambassador.io/v3alpha1": OWN_CRDS}


@functools.cache
def _crd_schemas(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in yaml.safe_load_all(path.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or (spec.get("validation") or {}).get("openAPIV3Schema")
            if schema:
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = _strict(schema)
    return schemas


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Reject fields the schema does not name, except where Kubernetes keeps unknown fields."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            if isinstance(value, dict):
                visit(value)
            elif isinstance(value, list):
                for item in value:
                    visit(item)

    visit(schema)
    # metadata is Kubernetes' own, validated by the API server.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return schema


def _validate(path: Path, api_version: str, kind: str, body: dict[str, Any]) -> None:
    schema = _crd_schemas(path).get((api_version, kind))
    assert schema is not None, f"{api_version} {kind} is not served by {path.name}"
    jsonschema.validate({"apiVersion": api_version, "kind": kind, **body}, schema)


def validate_custom_resource(api_version: str, kind: str, body: dict[str, Any]) -> None:
    """Against the project's own CRDs where it has them, then upstream's (the test skips without those)."""
    if api_version in OWN_CRD_FILES:
        _validate(OWN_CRD_FILES[api_version], api_version, kind, body)
    _validate(upstream_file(UPSTREAM_CRDS[api_version]), api_version, kind, body)


def validate_builtin(api_version: str, kind: str, body: dict[str, Any], kubernetes_version: str) -> None:
    kubernetes_validate.validate({"apiVersion": api_version, "kind": kind, **body}, kubernetes_version, strict=True)
