"""Reading a cluster for `status`: kubectl's two `get`s, the trust gates' four, and the linkerd CLI's view of the gateway.

kubectl, not the `kubernetes` Python client: the program already needs kubectl (`kubectl` config
key), it reads the stacks' kubeconfig and context exactly as the providers do (exec plugins, tokens,
insecure test servers), and it adds no dependency. No Secret's data is read: of the issuer Secret,
kubectl prints only the metadata (its write times) to this process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driver.settings import StackSettings
from support import tools, trust_gates
from support.config_model import ClusterAccess

# One call for what every check reads; the Link CRD may be missing, so Links come in a second.
KINDS = "deployments,services,endpoints,namespaces,mutatingwebhookconfigurations,validatingwebhookconfigurations,serviceaccounts"
LINKS = "links.multicluster.linkerd.io"
GATEWAYS = "`linkerd multicluster gateways`"

# kubectl ARGS -> stdout; raises KubectlError.
Kubectl = Callable[[list[str]], str]
# (source settings, context, link name) -> what `linkerd multicluster gateways -o json` lists; raises KubectlError.
Gateways = Callable[[StackSettings, str, str], list[dict[str, Any]]]


class KubectlError(Exception):
    pass


class Objects:
    """One cluster's objects of a few kinds, by kind, namespace and name."""

    def __init__(self, items: Iterable[Mapping[str, Any]]) -> None:
        self.by_key: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for item in items:
            meta = item.get("metadata") or {}
            self.by_key[(str(item.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))] = item

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.by_key.get((kind, namespace, name))

    def all(self, kind: str, namespace: str | None = None) -> list[Mapping[str, Any]]:
        return [item for (k, ns, _), item in sorted(self.by_key.items()) if k == kind and (namespace is None or ns == namespace)]


def kubectl_runner(binary: str, context: str, kubeconfig: str | None, timeout: float = 30) -> Kubectl:
    prefix = [binary, *ClusterAccess(context=context, kubeconfig=kubeconfig).flags(), "--request-timeout", "15s"]

    def run(args: list[str]) -> str:
        try:
            done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            raise KubectlError(f"`{binary}` could not run: {error}") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("Warning:")]
            raise KubectlError(lines[-1][:300] if lines else f"kubectl exited {done.returncode}")
        return done.stdout

    return run


def read_objects(kubectl: Kubectl) -> Objects:
    """Everything the checks read, in two calls; a missing Link CRD means no Links."""
    items = list(json.loads(kubectl(["get", KINDS, "--all-namespaces", "-o", "json"]))["items"])
    with contextlib.suppress(KubectlError):
        items += json.loads(kubectl(["get", LINKS, "--all-namespaces", "-o", "json"]))["items"]
    return Objects(items)


@dataclass
class TrustObjects:
    """What the trust gates read of a cluster (support/trust_gates), each None with why where it could not be read."""

    pods: list[Mapping[str, Any]] | None = None
    roots: Mapping[str, Any] | None = None
    issuer: Mapping[str, Any] | None = None
    events: list[Mapping[str, Any]] | None = None
    errors: dict[str, str] = field(default_factory=dict)


# Meshed pods only: the injector's label, selected by the API server (kubectl pages the list, 500 a time).
MESHED_PODS = ["get", "pods", "--all-namespaces", "-l", trust_gates.MESHED_LABEL, "-o", "json"]
ROOTS = ["get", "configmap", trust_gates.ROOTS_CONFIGMAP, "-n", trust_gates.NAMESPACE, "--show-managed-fields", "-o", "json"]
# The issuer Secret's metadata alone: kubectl receives the Secret, prints only its metadata; no key reaches this process.
ISSUER = [
    "get",
    "secret",
    trust_gates.ISSUER_SECRET,
    "-n",
    trust_gates.NAMESPACE,
    "--show-managed-fields",
    "-o",
    "jsonpath={.metadata}",
]
IDENTITY_EVENTS = [
    "get",
    "events",
    "-n",
    trust_gates.NAMESPACE,
    "--field-selector",
    f"involvedObject.kind=Deployment,involvedObject.name={trust_gates.IDENTITY_DEPLOYMENT}",
    "-o",
    "json",
]


def read_trust(kubectl: Kubectl) -> TrustObjects:
    """The meshed pods, the trust roots ConfigMap, the issuer Secret's metadata and the identity controller's Events:
    four `get`s; each that fails is named in `errors` and left None."""
    found = TrustObjects()
    for key, args in (("pods", MESHED_PODS), ("roots", ROOTS), ("issuer", ISSUER), ("events", IDENTITY_EVENTS)):
        try:
            answer = _json(kubectl(args))
        except KubectlError as error:
            found.errors[key] = str(error)
            if key == "pods" and "forbidden" not in str(error).lower():
                # The API server did not answer: the other three would wait as long for nothing.
                found.errors.update({other: str(error) for other in ("roots", "issuer", "events")})
                return found
            continue
        _keep(found, key, answer)
    return found


def _json(text: str) -> Any:
    try:
        return json.loads(text or "null")
    except ValueError:
        raise KubectlError("kubectl printed no JSON") from None


def _keep(found: TrustObjects, key: str, answer: Any) -> None:
    """One answer where the gates look for it: a list's items, the ConfigMap, the Secret's metadata."""
    if not isinstance(answer, dict):
        return
    if key == "issuer":
        found.issuer = {"metadata": answer}
    elif key == "roots":
        found.roots = answer
    else:
        setattr(found, key, list(answer.get("items") or []))


def linkerd_gateways(settings: StackSettings, context: str, link_name: str) -> list[dict[str, Any]]:
    """The service mirror's view of the gateway, through the pinned linkerd CLI (it scrapes the mirror's metrics)."""
    pinned = settings.linkerd_version
    binary = settings.linkerd_cli()  # the program's own lookup
    if shutil.which(binary) is None:
        raise KubectlError(f"no linkerd CLI {pinned} here ({tools.where_to_look(pinned)})")
    kubeconfig = settings.get("kubeconfig")
    # After the subcommand: the extension's own flags, not the root's (which it would ignore).
    access = ClusterAccess(context=context, kubeconfig=str(kubeconfig) if kubeconfig else None)
    command = [str(binary), "multicluster", "gateways", *access.flags()]
    command += ["--cluster-name", link_name, "-o", "json", "--wait", "10s"]
    listed = _listed(_run_gateways(command))
    return [entry for entry in listed or [] if isinstance(entry, dict)]


def _run_gateways(command: list[str]) -> str:
    """The CLI's stdout; its `Error:` line (else its first) when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=40, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        raise KubectlError(f"{GATEWAYS} could not run: {error}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        said = next((line for line in lines if line.startswith("Error:")), lines[0] if lines else str(done.returncode))
        raise KubectlError(f"{GATEWAYS} failed: {said[:200]}")
    return done.stdout


def _listed(stdout: str) -> Any:
    try:
        return json.loads(stdout or "[]")
    except ValueError:
        raise KubectlError(f"{GATEWAYS} printed no JSON") from None
