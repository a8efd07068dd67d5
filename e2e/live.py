"""What the live objects of both clusters must be after each step of the full tier, read with kubectl.

Each function is a set of plain asserts on what `kubectl get` returns from the clusters, never on what
Pulumi reports. e2e/test_full.py calls them on the local clusters; the kind job (.github/workflows/e2e-kind.yml)
calls `after_up` and `after_destroy` on its own, with a `Reader` naming its kubectl and contexts.

The names the page asks for (Emissary in `emissary`, QOTM on the target, the gateway's identity) come from
upstream's table, so a check says what the page asks for, not what the program happened to do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support import upstream

GATEWAY = upstream.CURRENT.edge_stack["emissary"]
PROBE_PATH = upstream.DEFAULT_PROBE_PATH
IDENTITY = upstream.gateway_identity(GATEWAY.service_account, GATEWAY.namespace, upstream.DEFAULT_TRUST_DOMAIN)
MANAGED = f"{upstream.MANAGED_BY_LABEL}={upstream.MANAGED_BY}"
CONTEXTS = ("target", "source")
# `linkerd install --ha` (values-ha.yaml): replicas of each controller, and each one's PDB.
HA_REPLICAS = 3
CONTROLLERS = {
    "linkerd-identity": "linkerd-identity",
    "linkerd-destination": "linkerd-dst",
    "linkerd-proxy-injector": "linkerd-proxy-injector",
}
WEBHOOKS = {
    "mutatingwebhookconfiguration": ["linkerd-proxy-injector-webhook-config"],
    "validatingwebhookconfiguration": ["linkerd-sp-validator-webhook-config", "linkerd-policy-validator-webhook-config"],
}
# The webhooks' serving keys, which the CLI renders (secret in state; they sign no identity).
WEBHOOK_KEYS = {
    f"linkerd:linkerd/{name}"
    for name in ("linkerd-proxy-injector-k8s-tls", "linkerd-sp-validator-k8s-tls", "linkerd-policy-validator-k8s-tls")
}
# What upstream keeps on uninstall (helm.sh/resource-policy: keep) outlives destroy.
KEEP = "helm.sh/resource-policy"
GATEWAY_API_KEPT = sorted(f"{kind}.gateway.networking.k8s.io" for kind in ("grpcroutes", "httproutes", "tcproutes", "tlsroutes"))


@dataclass(frozen=True, kw_only=True)
class Reader:
    """How to read both clusters, and what runs there (what may be checked)."""

    kubectl: str
    env: Mapping[str, str] | None = None
    prefix: str = ""  # the kind job's contexts are kind-target and kind-source
    gateway_address: str = "127.0.0.1"  # the address the Link must carry; "any": whatever the load balancer gave
    target_server: str = ""  # the target's API server as the source's Link reaches it; "": the kubeconfig's
    injector_served: bool = False  # the real proxy injector serves its webhook: the meshed pods carry its proxy
    apiext_served: bool = False  # Emissary 3.9.1's real apiext converts v3alpha1 to the stored v2
    linkerd_ha: bool = False  # linkerdHa is true: 3 replicas, PDBs, webhooks failing closed
    emissary_version: str = "4.1.0"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.kubectl, *args], capture_output=True, text=True, check=False, env=self.env, timeout=120)

    def get(self, context: str, *args: str) -> Any:
        """`kubectl get ARGS -o json` on CONTEXT, parsed; None when the object is not there."""
        done = self.run("--context", self.prefix + context, "get", *args, "-o", "json")
        if done.returncode != 0:
            assert "NotFound" in done.stderr, f"kubectl --context {context} get {' '.join(args)}: {done.stderr}"
            return None
        return json.loads(done.stdout)

    def server(self, context: str) -> str:
        """CONTEXT's API server, from the kubeconfig."""
        done = self.run("config", "view", "--raw", "-o", "yaml")
        assert done.returncode == 0, done.stderr
        config = yaml.safe_load(done.stdout)
        cluster = next(c for c in config["contexts"] if c["name"] == self.prefix + context)["context"]["cluster"]
        return str(next(c for c in config["clusters"] if c["name"] == cluster)["cluster"]["server"])


def not_checked(what: str) -> None:
    print(f"[live] NOT CHECKED: {what}", file=sys.stderr)


def certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def signed(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except Exception:
        return False
    return True


def linkerd_values(live: Reader, context: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(live.get(context, "configmap", "-n", "linkerd", "linkerd-config")["data"]["values"])
    return values


# --- Linkerd's control plane and its identity ------------------------------------------------------
def control_plane(live: Reader, context: str) -> tuple[x509.Certificate, x509.Certificate]:
    """Linkerd's control plane with its identity; returns the live anchor and issuer."""
    replicas = HA_REPLICAS if live.linkerd_ha else 1
    for name in CONTROLLERS:
        deployment = live.get(context, "deploy", "-n", "linkerd", name)
        assert deployment and deployment["status"].get("readyReplicas") == replicas == deployment["spec"]["replicas"], (
            f"{context}: Deployment linkerd/{name} ready, {replicas} replica(s)",
            deployment and deployment["status"],
        )
    high_availability(live, context)
    anchor = certificate(roots(live, context)[0])
    assert common_name(anchor) == "root.linkerd.cluster.local", f"{context}: trust roots hold the anchor"
    values = linkerd_values(live, context)
    assert certificate(values["identityTrustAnchorsPEM"]) == anchor, f"{context}: linkerd-config holds the same anchor"
    external_issuer(live, context, values)
    issuer, signer = issuer_secret(live, context)
    assert signer == anchor, f"{context}: the issuer Secret's ca.crt is the anchor"
    assert signed(issuer, anchor), f"{context}: issuer signed by the anchor"
    assert live.get(context, "mutatingwebhookconfiguration", "linkerd-proxy-injector-webhook-config"), (
        f"{context}: proxy injector webhook"
    )
    assert live.get(context, "crd", "links.multicluster.linkerd.io"), f"{context}: Link CRD"
    return anchor, issuer


def external_issuer(live: Reader, context: str, values: dict[str, Any]) -> None:
    """linkerd-config and the identity controller as `install --identity-external-issuer` leaves them."""
    assert values["identity"]["issuer"]["scheme"] == "kubernetes.io/tls", f"{context}: linkerd-config: issuer scheme"
    assert values["identity"]["issuer"]["tls"] == {"crtPEM": ""}, f"{context}: linkerd-config: no issuer certificate"
    containers = live.get(context, "deploy", "-n", "linkerd", "linkerd-identity")["spec"]["template"]["spec"]["containers"]
    args = [arg for c in containers if c["name"] == "identity" for arg in c["args"]]
    assert "-identity-scheme=kubernetes.io/tls" in args, (f"{context}: identity controller reads kubernetes.io/tls", args)


def key_pair(secret: dict[str, Any], what: str) -> x509.Certificate:
    """A kubernetes.io/tls Secret of ours: its certificate, checked against its key."""
    assert secret["type"] == "kubernetes.io/tls", (f"{what}: type", secret["type"])
    assert (secret["metadata"].get("labels") or {}).get(upstream.MANAGED_BY_LABEL) == upstream.MANAGED_BY, f"{what}: ours"
    data = secret["data"]
    assert sorted(data) == ["ca.crt", "tls.crt", "tls.key"], (f"{what}: tls.crt, tls.key, ca.crt", sorted(data))
    cert = certificate(base64.b64decode(data["tls.crt"]).decode())
    key = serialization.load_pem_private_key(base64.b64decode(data["tls.key"]), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers(), f"{what}: its key is its certificate's"  # type: ignore[union-attr]
    return cert


def issuer_secret(live: Reader, context: str) -> tuple[x509.Certificate, x509.Certificate]:
    """The live issuer Secret in the external issuer's format: (issuer, the anchor in its ca.crt)."""
    secret = live.get(context, "secret", "-n", "linkerd", "linkerd-identity-issuer")
    issuer = key_pair(secret, f"{context}: issuer Secret")
    return issuer, certificate(base64.b64decode(secret["data"]["ca.crt"]).decode())


def anchor_secrets(live: Reader) -> dict[str, x509.Certificate]:
    """The target's anchor Secrets (ours, in linkerd), each checked: {name: anchor}."""
    anchors = {}
    for secret in live.get("target", "secret", "-n", "linkerd", "-l", MANAGED)["items"]:
        name = secret["metadata"]["name"]
        if name.startswith("linkerd-trust-anchor"):
            anchors[name] = key_pair(secret, f"target: anchor Secret {name}")
            assert secret["data"]["ca.crt"] == secret["data"]["tls.crt"], f"target: {name}: ca.crt is itself"
    return anchors


def high_availability(live: Reader, context: str) -> None:
    """HA: each controller's 3 pods ready on 3 distinct nodes (required anti-affinity), a PDB of
    maxUnavailable 1 selecting them, and Linkerd's three webhooks failing closed; without HA, open."""
    policy = "Fail" if live.linkerd_ha else "Ignore"
    for kind, names in WEBHOOKS.items():
        for name in names:
            policies = [hook.get("failurePolicy") for hook in (live.get(context, kind, name) or {}).get("webhooks", [])]
            assert policies and set(policies) == {policy}, (f"{context}: {name} failurePolicy {policy}", policies)
    if not live.linkerd_ha:
        not_checked(f"{context}: Linkerd in HA (linkerdHa forced false)")
        return
    for name, budget in CONTROLLERS.items():
        pods = current_pods(live, context, "linkerd", name)
        ready = [
            p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        nodes = sorted({p["spec"].get("nodeName", "") for p in ready})
        assert len(ready) == len(nodes) == HA_REPLICAS, (f"{context}: {name}'s {HA_REPLICAS} pods ready on distinct nodes", nodes)
        affinity = pods[0]["spec"].get("affinity", {}).get("podAntiAffinity", {})
        terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        assert [t["topologyKey"] for t in terms] == ["kubernetes.io/hostname"], (f"{context}: {name}: one pod per node", affinity)
        pdb = live.get(context, "pdb", "-n", "linkerd", budget)
        assert pdb is not None, f"{context}: PodDisruptionBudget linkerd/{budget}"
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert pdb["spec"].get("maxUnavailable") == 1 and selector.items() <= pods[0]["metadata"]["labels"].items(), (
            f"{context}: PDB {budget} maxUnavailable 1 over {name}'s pods",
            pdb["spec"],
        )
        assert pdb["status"].get("currentHealthy") == HA_REPLICAS and pdb["status"].get("disruptionsAllowed") == 1, (
            f"{context}: PDB {budget} sees {HA_REPLICAS} healthy pods",
            pdb["status"],
        )


def current_pods(live: Reader, context: str, namespace: str, name: str) -> list[Any]:
    """The pods of a Deployment's current ReplicaSet (the one its revision names)."""
    deployment = live.get(context, "deploy", "-n", namespace, name)
    revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    owned = [
        rs
        for rs in live.get(context, "replicasets", "-n", namespace)["items"]
        if any(o["uid"] == deployment["metadata"]["uid"] for o in rs["metadata"].get("ownerReferences", []))
        and rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == revision
    ]
    assert len(owned) == 1, (f"{context}: {namespace}/{name} has its current ReplicaSet", [r["metadata"]["name"] for r in owned])
    template_hash = owned[0]["metadata"]["labels"]["pod-template-hash"]
    pods = live.get(context, "pods", "-n", namespace, "-l", f"pod-template-hash={template_hash}")["items"]
    assert len(pods) >= 1, f"{context}: {namespace}/{name} has pods"
    return list(pods)


# --- Edge Stack, the gateway and the Link ------------------------------------------------------------
def edge_stack(live: Reader, context: str, *, gateway: bool) -> None:
    namespace, name = GATEWAY.namespace, GATEWAY.deployment
    deployment = live.get(context, "deploy", "-n", namespace, name)
    assert deployment and deployment["status"].get("readyReplicas", 0) >= 1, f"{context}: Emissary ready"
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    meshed = {
        "linkerd.io/inject": "enabled",
        "config.linkerd.io/skip-inbound-ports": "80,443",
        "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
    }
    if gateway:
        meshed["config.linkerd.io/enable-gateway"] = "true"
    assert meshed.items() <= notes.items(), (f"{context}: Emissary meshed by inject (and gateway)", notes)
    module = live.get(context, "modules.getambassador.io", "-n", namespace, upstream.MODULE_NAME)
    assert module["spec"]["config"].get("add_linkerd_headers") is True, (f"{context}: Module add_linkerd_headers", module["spec"])
    assert len(live.get(context, "listeners.getambassador.io", "-n", namespace)["items"]) >= 2, f"{context}: Listeners"
    meshed_ns = live.get(context, "ns", "default")["metadata"].get("annotations") or {}
    assert meshed_ns.get("linkerd.io/inject") == "enabled", (f"{context}: default meshed", meshed_ns)
    injected(live, context, namespace, name, skipped_ports={"80", "443"}, identity_ports={"4143"})
    conversion(live, context)


def injected(live: Reader, context: str, namespace: str, name: str, *, skipped_ports: set[str], identity_ports: set[str]) -> None:
    """Every current pod of the Deployment carries the proxy the real injector put there."""
    if not live.injector_served:
        not_checked(f"{context}: {namespace}/{name}'s injected proxy (no proxy injector served)")
        return
    for pod in current_pods(live, context, namespace, name):
        where = f"{context}: pod {namespace}/{pod['metadata']['name']}"
        init = {c["name"]: c for c in pod["spec"].get("initContainers", [])}
        main = {c["name"]: c for c in pod["spec"]["containers"]}
        # Linkerd's native sidecar is an init container that keeps running; otherwise a container.
        proxy = main.get("linkerd-proxy") or init.get("linkerd-proxy")
        assert proxy is not None, (f"{where} has linkerd-proxy", sorted(init) + sorted(main))
        if "linkerd-proxy" in init:
            assert init["linkerd-proxy"].get("restartPolicy") == "Always", f"{where}: proxy is a native sidecar"
        assert "linkerd-init" in init, (f"{where} has linkerd-init", sorted(init))
        env = {e["name"]: e.get("value", "") for e in proxy["env"]}
        if identity_ports:
            required = set(env.get("LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", "").split(","))
            assert identity_ports <= required, (f"{where}: inbound ports requiring identity", required)
        if skipped_ports:
            args = init["linkerd-init"]["args"]
            ignored = set(args[args.index("--inbound-ports-to-ignore") + 1].split(","))
            assert skipped_ports <= ignored, (f"{where}: inbound ports skipped by the proxy", ignored)
        created_by = pod["metadata"]["annotations"].get("linkerd.io/created-by", "")
        assert created_by.startswith("linkerd/proxy-injector"), f"{where}: injected by the webhook"


def conversion(live: Reader, context: str) -> None:
    """The real Emissary CRDs: v2 stored, v3alpha1 converted by apiext; the Module reads back as v2.

    Emissary 4.1.0's CRD chart: v3alpha1 served and stored alone, no conversion, no emissary-apiext at all.
    """
    if live.emissary_version == "4.1.0":
        for crd in live.get(context, "crd")["items"]:
            if crd["spec"]["group"] == "getambassador.io":
                name = crd["metadata"]["name"]
                versions = [(v["name"], v["served"], v["storage"]) for v in crd["spec"]["versions"]]
                assert versions == [("v3alpha1", True, True)], (f"{context}: {name} v3alpha1 alone", versions)
                assert crd["spec"]["conversion"]["strategy"] == "None", f"{context}: {name} unconverted"
        apiext = live.get(context, "deploy", "-A", "-l", "app.kubernetes.io/name=emissary-apiext")["items"]
        assert apiext == [], (f"{context}: no emissary-apiext", apiext)
        module = live.get(context, "modules.v3alpha1.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
        assert module["spec"]["config"].get("add_linkerd_headers") is True, (
            f"{context}: the chart's Module has add_linkerd_headers",
            module["spec"],
        )
        return
    if not live.apiext_served:
        not_checked(f"{context}: Emissary's conversion webhook (a stand-in CRD stores v3alpha1)")
        return
    crd = live.get(context, "crd", "modules.getambassador.io")["spec"]
    stored = [v["name"] for v in crd["versions"] if v["storage"]]
    assert stored == ["v2"], (f"{context}: Module CRD stores v2", stored)
    webhook = crd["conversion"].get("webhook", {}).get("clientConfig", {})
    assert (
        crd["conversion"]["strategy"] == "Webhook"
        and webhook.get("service", {}).get("name") == "emissary-apiext"
        and bool(webhook.get("caBundle"))
    ), (f"{context}: Module CRD converts through apiext, its caBundle patched in", crd["conversion"])
    # Written as v3alpha1, stored as v2: apiext converted it (its marker for an object that had no
    # ambassador_id); read as v3alpha1, apiext converts it back (the marker becomes `default`).
    module = live.get(context, "modules.v2.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
    assert module and module["spec"].get("ambassador_id") == ["--apiVersion-v3alpha1-only--default"], (
        f"{context}: the Module stored as v2 by apiext's conversion",
        module and module["spec"],
    )
    assert module["spec"]["config"].get("add_linkerd_headers") is True, f"{context}: the stored Module keeps add_linkerd_headers"
    read = live.get(context, "modules.v3alpha1.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
    assert read and read["apiVersion"] == "getambassador.io/v3alpha1" and read["spec"].get("ambassador_id") == ["default"], (
        f"{context}: the Module read back as v3alpha1 through apiext",
        read and read["spec"],
    )
    assert read["spec"]["config"].get("add_linkerd_headers") is True, f"{context}: converted back, add_linkerd_headers kept"


def gateway(live: Reader, context: str) -> None:
    namespace = GATEWAY.namespace
    service = live.get(context, "svc", "-n", namespace, GATEWAY.service)
    ports = [(p.get("name"), p["port"], p.get("targetPort")) for p in service["spec"]["ports"]]
    assert ports == [("mc-probe", 80, 8080), ("https", 443, 8443), ("mc-gateway", 4143, 4143)], (
        f"{context}: gateway ports",
        ports,
    )
    notes = service["metadata"]["annotations"]
    expected = {
        "mirror.linkerd.io/gateway-identity": IDENTITY,
        "mirror.linkerd.io/multicluster-gateway": "true",
        "mirror.linkerd.io/probe-path": PROBE_PATH,
        "mirror.linkerd.io/probe-period": "3",
    }
    assert expected.items() <= notes.items(), (f"{context}: gateway annotations", notes)
    host = live.get(context, "hosts.getambassador.io", "-n", namespace, upstream.GATEWAY_HOST_NAME)
    assert host["spec"]["requestPolicy"]["insecure"]["action"] == "Route", (f"{context}: Host routes insecure", host["spec"])
    health = live.get(context, "mappings.getambassador.io", "-n", namespace, upstream.HEALTH_MAPPING_NAME)["spec"]
    assert (health["prefix"], health["rewrite"], health["service"], health["bypass_auth"]) == (
        PROBE_PATH,
        "/ambassador/v0/check_ready",
        "localhost:8877",
        True,
    ), (f"{context}: health Mapping", health)
    qotm = live.get(context, "deploy", "qotm")
    assert qotm and qotm["status"].get("readyReplicas") == 1, f"{context}: QOTM ready"
    injected(live, context, "default", upstream.QOTM_NAME, skipped_ports=set(), identity_ports=set())
    exported = live.get(context, "svc", "qotm-linkerd2")
    assert exported["metadata"]["labels"].get("mirror.linkerd.io/exported") == "true", f"{context}: QOTM exported"
    mapping = live.get(context, "mappings.getambassador.io", "linkerd2-qotm")["spec"]
    assert (mapping["prefix"], mapping["service"]) == ("/qotm-linkerd2/", "qotm-linkerd2"), (f"{context}: QOTM Mapping", mapping)


def link(live: Reader, context: str, target_server: str) -> None:
    found = live.get(context, "links.multicluster.linkerd.io", "-n", "linkerd-multicluster", "target")
    assert found is not None, f"{context}: Link target"
    spec = found["spec"]
    assert spec["gatewayPort"] == "4143", (f"{context}: Link gateway port", spec)
    assert live.gateway_address in ("any", spec["gatewayAddress"]), (f"{context}: Link gateway address", spec)
    assert spec["gatewayIdentity"] == IDENTITY, f"{context}: Link identity"
    assert (spec["probeSpec"]["path"], spec["probeSpec"]["port"]) == (PROBE_PATH, "80"), (f"{context}: Link probe", spec)
    credentials = live.get(context, "secret", "-n", "linkerd-multicluster", "cluster-credentials-target")
    kubeconfig = yaml.safe_load(base64.b64decode(credentials["data"]["kubeconfig"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == target_server, f"{context}: Link credentials reach the target"
    assert live.get(context, "deploy", "-n", "linkerd-multicluster", "controller-target"), f"{context}: the link's service mirror"


# --- after each step of the tier ------------------------------------------------------------------------
def after_up(live: Reader) -> None:
    target_anchor, target_issuer = control_plane(live, "target")
    source_anchor, source_issuer = control_plane(live, "source")
    assert target_anchor == source_anchor, "one trust anchor for both clusters"
    assert target_issuer != source_issuer, "an issuer per cluster"
    assert anchor_secrets(live) == {"linkerd-trust-anchor": target_anchor}, "the anchor's key in its Secret in the target"
    ours = {c: sorted(x["metadata"]["name"] for x in live.get(c, "secret", "-A", "-l", MANAGED)["items"]) for c in CONTEXTS}
    assert ours == {"target": ["linkerd-identity-issuer", "linkerd-trust-anchor"], "source": ["linkerd-identity-issuer"]}, (
        "the keys' Secrets: anchor and issuer in the target, the issuer alone in the source",
        ours,
    )
    edge_stack(live, "target", gateway=True)
    edge_stack(live, "source", gateway=False)
    gateway(live, "target")
    link(live, "source", live.target_server or live.server("target"))


def after_destroy(live: Reader) -> None:
    for context in CONTEXTS:
        for namespace in ("linkerd", "linkerd-multicluster", GATEWAY.namespace, "emissary-system"):
            assert live.get(context, "ns", namespace) is None, f"{context}: namespace {namespace} gone"
        # The Gateway API CRDs Linkerd's render carries (upstream keeps them: other teams' routes need them)
        # outlive destroy. Nothing else is left.
        crds = live.get(context, "crd")["items"]
        kept = sorted(c["metadata"]["name"] for c in crds if (c["metadata"].get("annotations") or {}).get(KEEP) == "keep")
        others = sorted(c["metadata"]["name"] for c in crds if c["metadata"]["name"] not in kept)
        assert others == [], (f"{context}: no CRDs left but those upstream keeps", others)
        assert kept == GATEWAY_API_KEPT, (f"{context}: the Gateway API CRDs upstream keeps are left", kept)
        hooks = live.get(context, "mutatingwebhookconfigurations,validatingwebhookconfigurations")["items"]
        assert hooks == [], (f"{context}: no webhooks left", [h["metadata"]["name"] for h in hooks])
        default = live.get(context, "ns", "default")["metadata"].get("annotations") or {}
        assert "linkerd.io/inject" not in default, (f"{context}: default as it was", default)
        left = [d["metadata"]["name"] for d in live.get(context, "deploy,svc", "-n", "default")["items"]]
        assert left == ["kubernetes"], (f"{context}: nothing of ours in default", left)
        keys = [s["metadata"]["name"] for s in live.get(context, "secret", "-A", "-l", MANAGED)["items"]]
        assert keys == [], (f"{context}: no Secret of ours left (anchors, issuer)", keys)


def issuers(live: Reader) -> dict[str, str]:
    """Each cluster's live issuer certificate (PEM)."""
    return {
        context: base64.b64decode(
            live.get(context, "secret", "-n", "linkerd", "linkerd-identity-issuer")["data"]["tls.crt"]
        ).decode()
        for context in CONTEXTS
    }


def after_renewal(live: Reader, before: dict[str, str]) -> None:
    """The source's issuer was due and is new, signed by the same anchor; the target's is as it was."""
    now = issuers(live)
    anchor, _ = control_plane(live, "source")
    assert now["source"] != before["source"], "source: a new issuer"
    assert signed(certificate(now["source"]), anchor), "source: the new issuer chains to the same anchor"
    assert now["target"] == before["target"], "target: its issuer, not due, kept"
    control_plane(live, "target")


def roots(live: Reader, context: str) -> list[str]:
    """The live trust roots (linkerd-identity-trust-roots), one PEM per anchor."""
    bundle = live.get(context, "configmap", "-n", "linkerd", "linkerd-identity-trust-roots")["data"]["ca-bundle.crt"]
    marker = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + marker + "\n" for part in bundle.split(marker) if part.strip()]


def identity(live: Reader) -> dict[str, Any]:
    """Each cluster's live trust roots and issuer."""
    return {"roots": {context: roots(live, context) for context in CONTEXTS}, "issuers": issuers(live)}


def after_rotation(live: Reader, step: str, before: dict[str, Any]) -> dict[str, Any]:
    """One step of a trust anchor rotation, on both clusters, against what the step before left; returns what it read.

    bundle: the roots carry the old anchor and a new one; the issuers are as they were (old-signed).
    issuers: the same two roots; each cluster's issuer is new and signed by the new anchor.
    drop-old: only the new anchor; the issuers as the last step left them.
    """
    now = identity(live)
    for context in CONTEXTS:
        old, trusted, issuer = before["roots"][context], now["roots"][context], certificate(now["issuers"][context])
        if step == "bundle":
            assert len(old) == 1 and trusted[0] == old[0] and len(trusted) == 2, (
                f"{context}: the roots carry the old anchor and a new one"
            )
            signer = trusted[0]
        else:
            assert len(old) == 2, f"{context}: the roots carried two anchors before {step}"
            expected = old if step == "issuers" else old[1:]
            assert trusted == expected, (f"{context}: the roots after {step}", [common_name(certificate(p)) for p in trusted])
            signer = old[1]
        renewed = issuer != certificate(before["issuers"][context])
        assert renewed is (step == "issuers"), f"{context}: the issuer is {'new' if step == 'issuers' else 'kept'}"
        assert signed(issuer, certificate(signer)), (
            f"{context}: the issuer is signed by the {'old' if step == 'bundle' else 'new'} anchor"
        )
        values = linkerd_values(live, context)
        assert values["identityTrustAnchorsPEM"].strip() == "".join(trusted).strip(), (
            f"{context}: linkerd-config carries the same roots"
        )
        external_issuer(live, context, values)
        live_issuer, ca = issuer_secret(live, context)
        assert live_issuer == issuer, f"{context}: the issuer Secret is the one read"
        assert ca == certificate(signer), f"{context}: the issuer Secret's ca.crt is its signer"
        # Linkerd annotates its pods with the sha256 of the anchors file as read: the roots, one newline each.
        digest = hashlib.sha256("".join(trusted).encode()).hexdigest()
        for name in CONTROLLERS:
            notes = live.get(context, "deploy", "-n", "linkerd", name)["spec"]["template"]["metadata"]["annotations"]
            assert notes.get("linkerd.io/trust-root-sha256") == digest, (f"{context}: {name} rolls to the roots' hash", notes)
    assert now["roots"]["target"] == now["roots"]["source"], "both clusters trust the same roots"
    # The anchors' keys: both Secrets while both anchors are trusted; after drop-old, only the new one's.
    expected_anchors = {"linkerd-trust-anchor": certificate(now["roots"]["target"][0])} if step != "drop-old" else {}
    expected_anchors["linkerd-trust-anchor-1"] = certificate(now["roots"]["target"][-1])
    anchors = anchor_secrets(live)
    assert anchors == expected_anchors, (f"target: the anchor Secrets after {step}", sorted(anchors))
    return now


# --- no identity key in the stacks' state -----------------------------------------------------------------
def _texts(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string in a state, a secret's `plaintext` (JSON of the value) opened too."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _texts(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _texts(v, f"{where}[{i}]")]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _texts(json.loads(value), where)
        except ValueError:
            pass
    return [(where, value)] if isinstance(value, str) else []


def _decoded(text: str) -> str:
    try:
        return base64.b64decode("".join(text.split()), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def identity_keys(live: Reader) -> list[str]:
    """The base64 body of every identity key in both clusters (anchors and issuers: our Secrets in linkerd)."""
    keys = []
    for context in CONTEXTS:
        for secret in live.get(context, "secret", "-n", "linkerd", "-l", MANAGED)["items"]:
            pem = base64.b64decode(secret["data"]["tls.key"]).decode()
            keys.append("".join(pem.strip().splitlines()[1:-1]))
    assert len(keys) >= 3, ("identity keys found live to look for", len(keys))
    return keys


def no_keys_in_state(live: Reader, states: Mapping[str, dict[str, Any]]) -> dict[str, list[str]]:
    """No identity key in any stack's state, decrypted (`pulumi stack export --show-secrets`), as PEM or base64,
    nor any other private key but the webhooks' serving keys; returns each stack's resources holding a private key."""
    keys = identity_keys(live)
    holding: dict[str, list[str]] = {}
    for stack, state in states.items():
        compact = "".join(json.dumps(state).replace("\\n", "").split())
        assert not any(k in compact for k in keys), f"{stack}: no identity key (PEM body)"
        holders, with_identity = set(), set()
        for resource in state["deployment"].get("resources") or []:
            name = resource["urn"].rsplit("::", 1)[1]
            for _, value in _texts(resource.get("inputs") or {}, "inputs") + _texts(resource.get("outputs") or {}, "outputs"):
                decoded = _decoded(value)
                if "PRIVATE KEY" in value or "PRIVATE KEY" in decoded:
                    holders.add(name)
                if any(k in "".join(value.replace("\\n", "").split()) or k in "".join(decoded.split()) for k in keys):
                    with_identity.add(name)
        assert not with_identity, (f"{stack}: no identity key, as PEM or base64, in any resource", sorted(with_identity))
        assert holders <= WEBHOOK_KEYS, (
            f"{stack}: no private key but the webhooks' serving keys",
            sorted(holders - WEBHOOK_KEYS),
        )
        holding[stack] = sorted(holders)
    return holding
