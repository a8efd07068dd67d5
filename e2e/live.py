"""The live objects of both local clusters, checked with kubectl after e2e/full.sh's steps.

    python e2e/live.py after-up | after-destroy | issuers | identity
    python e2e/live.py after-renewal ISSUERS.json
    python e2e/live.py after-rotation bundle|issuers|drop-old IDENTITY.json   (prints the identity it found)
    python e2e/live.py no-keys-in-state EXPORT.json...   (`pulumi stack export --show-secrets` of each stack)

Reads the committed stacks' names (Emissary in `emissary`, QOTM on the target) from upstream's table,
so a check says what the page asks for, not what the program happened to do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from support import upstream

# The local tier's kubectl and contexts by default; the kind job passes its own.
KUBECTL = os.environ.get("E2E_KUBECTL") or os.path.expanduser("~/.cache/aes-linkerd2/bin/kubectl")
PREFIX = os.environ.get("E2E_CONTEXT_PREFIX", "")
# The gateway address the Link must carry ("any": whatever the load balancer gave).
GATEWAY_ADDRESS = os.environ.get("E2E_GATEWAY_ADDRESS", "127.0.0.1")
GATEWAY = upstream.CURRENT.edge_stack["emissary"]
PROBE_PATH = upstream.DEFAULT_PROBE_PATH
IDENTITY = upstream.gateway_identity(GATEWAY.service_account, GATEWAY.namespace, upstream.DEFAULT_TRUST_DOMAIN)
CHECKED: list[str] = []
# e2e/full.sh sets these when the real webhook servers run (e2e/webhooks.sh); unset, the stand-ins
# are in place and what the servers would show is said to be not checked.
INJECTOR_SERVED = os.environ.get("E2E_INJECTOR_SERVED") == "1"
APIEXT_SERVED = os.environ.get("E2E_APIEXT_SERVED") == "1"
# e2e/full.sh sets linkerdHa true, and this, only when all three of Linkerd's webhooks are served.
LINKERD_HA = os.environ.get("E2E_LINKERD_HA") == "true"
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


def get(context: str, *args: str) -> Any:
    done = subprocess.run(
        [KUBECTL, "--context", PREFIX + context, "get", *args, "-o", "json"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def check(what: str, condition: bool, detail: object = "") -> None:
    if not condition:
        sys.exit(f"[live] FAILED: {what} {detail}")
    CHECKED.append(what)


def certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def control_plane(context: str) -> tuple[x509.Certificate, x509.Certificate]:
    """Linkerd's control plane with its identity; returns the live anchor and issuer."""
    replicas = HA_REPLICAS if LINKERD_HA else 1
    for name in CONTROLLERS:
        deployment = get(context, "deploy", "-n", "linkerd", name)
        check(
            f"{context}: Deployment linkerd/{name} ready, {replicas} replica(s)",
            deployment and deployment["status"].get("readyReplicas") == replicas == deployment["spec"]["replicas"],
            deployment and deployment["status"],
        )
    high_availability(context)
    roots = get(context, "configmap", "-n", "linkerd", "linkerd-identity-trust-roots")["data"]["ca-bundle.crt"]
    anchor = certificate(roots)
    check(f"{context}: trust roots hold the anchor", common_name(anchor) == "root.linkerd.cluster.local")
    values = yaml.safe_load(get(context, "configmap", "-n", "linkerd", "linkerd-config")["data"]["values"])
    check(f"{context}: linkerd-config holds the same anchor", certificate(values["identityTrustAnchorsPEM"]) == anchor)
    external_issuer(context, values)
    issuer, signer = issuer_secret(context)
    check(f"{context}: the issuer Secret's ca.crt is the anchor", signer == anchor)
    check(f"{context}: issuer signed by the anchor", _signed(issuer, anchor))
    check(
        f"{context}: proxy injector webhook",
        get(context, "mutatingwebhookconfiguration", "linkerd-proxy-injector-webhook-config"),
    )
    check(f"{context}: Link CRD", get(context, "crd", "links.multicluster.linkerd.io"))
    return anchor, issuer


MANAGED = f"{upstream.MANAGED_BY_LABEL}={upstream.MANAGED_BY}"


def external_issuer(context: str, values: dict[str, Any]) -> None:
    """linkerd-config and the identity controller as `install --identity-external-issuer` leaves them."""
    check(
        f"{context}: linkerd-config: issuer scheme kubernetes.io/tls",
        values["identity"]["issuer"]["scheme"] == "kubernetes.io/tls",
    )
    check(f"{context}: linkerd-config: no issuer certificate", values["identity"]["issuer"]["tls"] == {"crtPEM": ""})
    containers = get(context, "deploy", "-n", "linkerd", "linkerd-identity")["spec"]["template"]["spec"]["containers"]
    args = [arg for c in containers if c["name"] == "identity" for arg in c["args"]]
    check(f"{context}: identity controller reads kubernetes.io/tls", "-identity-scheme=kubernetes.io/tls" in args, args)


def _key_pair(secret: dict[str, Any], what: str) -> x509.Certificate:
    """A kubernetes.io/tls Secret of ours: its certificate, checked against its key."""
    check(f"{what}: type kubernetes.io/tls", secret["type"] == "kubernetes.io/tls", secret["type"])
    check(f"{what}: ours", (secret["metadata"].get("labels") or {}).get(upstream.MANAGED_BY_LABEL) == upstream.MANAGED_BY)
    data = secret["data"]
    check(f"{what}: tls.crt, tls.key, ca.crt", sorted(data) == ["ca.crt", "tls.crt", "tls.key"], sorted(data))
    cert = certificate(base64.b64decode(data["tls.crt"]).decode())
    key = serialization.load_pem_private_key(base64.b64decode(data["tls.key"]), password=None)
    check(f"{what}: its key is its certificate's", key.public_key().public_numbers() == cert.public_key().public_numbers())  # type: ignore[union-attr]
    return cert


def issuer_secret(context: str) -> tuple[x509.Certificate, x509.Certificate]:
    """The live issuer Secret in the external issuer's format: (issuer, the anchor in its ca.crt)."""
    secret = get(context, "secret", "-n", "linkerd", "linkerd-identity-issuer")
    issuer = _key_pair(secret, f"{context}: issuer Secret")
    return issuer, certificate(base64.b64decode(secret["data"]["ca.crt"]).decode())


def anchor_secrets() -> dict[str, x509.Certificate]:
    """The target's anchor Secrets (ours, in linkerd), each checked: {name: anchor}."""
    found = get("target", "secret", "-n", "linkerd", "-l", MANAGED)["items"]
    anchors = {}
    for secret in found:
        name = secret["metadata"]["name"]
        if name.startswith("linkerd-trust-anchor"):
            anchors[name] = _key_pair(secret, f"target: anchor Secret {name}")
            check(f"target: {name}: ca.crt is itself", secret["data"]["ca.crt"] == secret["data"]["tls.crt"])
    return anchors


def high_availability(context: str) -> None:
    """HA: each controller's 3 pods ready on 3 distinct nodes (required anti-affinity), a PDB of
    maxUnavailable 1 selecting them, and Linkerd's three webhooks failing closed; without HA, open."""
    policy = "Fail" if LINKERD_HA else "Ignore"
    for kind, names in WEBHOOKS.items():
        for name in names:
            hooks = (get(context, kind, name) or {}).get("webhooks", [])
            policies = [hook.get("failurePolicy") for hook in hooks]
            check(f"{context}: {name} failurePolicy {policy}", bool(policies) and set(policies) == {policy}, policies)
    if not LINKERD_HA:
        print(f"[live] NOT CHECKED: {context}: Linkerd in HA (linkerdHa forced false)", file=sys.stderr)
        return
    for name, budget in CONTROLLERS.items():
        pods = current_pods(context, "linkerd", name)
        ready = [
            p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        nodes = sorted({p["spec"].get("nodeName", "") for p in ready})
        check(f"{context}: {name}'s {HA_REPLICAS} pods ready on distinct nodes", len(ready) == len(nodes) == HA_REPLICAS, nodes)
        affinity = pods[0]["spec"].get("affinity", {}).get("podAntiAffinity", {})
        terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        check(
            f"{context}: {name} requires one pod per node",
            [t["topologyKey"] for t in terms] == ["kubernetes.io/hostname"],
            affinity,
        )
        pdb = get(context, "pdb", "-n", "linkerd", budget)
        check(f"{context}: PodDisruptionBudget linkerd/{budget}", pdb is not None)
        labels = pods[0]["metadata"]["labels"]
        selector = pdb["spec"]["selector"]["matchLabels"]
        check(
            f"{context}: PDB {budget} maxUnavailable 1 over {name}'s pods",
            pdb["spec"].get("maxUnavailable") == 1 and selector.items() <= labels.items(),
            pdb["spec"],
        )
        check(
            f"{context}: PDB {budget} sees {HA_REPLICAS} healthy pods",
            pdb["status"].get("currentHealthy") == HA_REPLICAS and pdb["status"].get("disruptionsAllowed") == 1,
            pdb["status"],
        )


def _signed(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except Exception:
        return False
    return True


def edge_stack(context: str, gateway: bool) -> None:
    namespace, name = GATEWAY.namespace, GATEWAY.deployment
    deployment = get(context, "deploy", "-n", namespace, name)
    check(f"{context}: Emissary ready", deployment and deployment["status"].get("readyReplicas", 0) >= 1)
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    meshed = {
        "linkerd.io/inject": "enabled",
        "config.linkerd.io/skip-inbound-ports": "80,443",
        "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
    }
    if gateway:
        meshed["config.linkerd.io/enable-gateway"] = "true"
    check(f"{context}: Emissary meshed by inject (and gateway)", meshed.items() <= notes.items(), notes)
    module = get(context, "modules.getambassador.io", "-n", namespace, upstream.MODULE_NAME)
    check(f"{context}: Module add_linkerd_headers", module["spec"]["config"].get("add_linkerd_headers") is True, module["spec"])
    check(f"{context}: Listeners", len(get(context, "listeners.getambassador.io", "-n", namespace)["items"]) >= 2)
    meshed_ns = get(context, "ns", "default")["metadata"].get("annotations") or {}
    check(f"{context}: default meshed", meshed_ns.get("linkerd.io/inject") == "enabled", meshed_ns)
    injected(context, namespace, name, skipped_ports={"80", "443"}, identity_ports={"4143"})
    conversion(context)


def current_pods(context: str, namespace: str, name: str) -> list[Any]:
    """The pods of a Deployment's current ReplicaSet (the one its revision names)."""
    deployment = get(context, "deploy", "-n", namespace, name)
    revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    owned = [
        rs
        for rs in get(context, "replicasets", "-n", namespace)["items"]
        if any(o["uid"] == deployment["metadata"]["uid"] for o in rs["metadata"].get("ownerReferences", []))
        and rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == revision
    ]
    check(f"{context}: {namespace}/{name} has its current ReplicaSet", len(owned) == 1, [r["metadata"]["name"] for r in owned])
    template_hash = owned[0]["metadata"]["labels"]["pod-template-hash"]
    pods = get(context, "pods", "-n", namespace, "-l", f"pod-template-hash={template_hash}")["items"]
    check(f"{context}: {namespace}/{name} has pods", len(pods) >= 1)
    return list(pods)


def injected(context: str, namespace: str, name: str, skipped_ports: set[str], identity_ports: set[str]) -> None:
    """Every current pod of the Deployment carries the proxy the real injector put there."""
    if not INJECTOR_SERVED:
        print(f"[live] NOT CHECKED: {context}: {namespace}/{name}'s injected proxy (no proxy injector served)", file=sys.stderr)
        return
    for pod in current_pods(context, namespace, name):
        where = f"{context}: pod {namespace}/{pod['metadata']['name']}"
        spec = pod["spec"]
        init = {c["name"]: c for c in spec.get("initContainers", [])}
        main = {c["name"]: c for c in spec["containers"]}
        # Linkerd's native sidecar is an init container that keeps running; otherwise a container.
        proxy = main.get("linkerd-proxy") or init.get("linkerd-proxy")
        check(f"{where} has linkerd-proxy", proxy is not None, sorted(init) + sorted(main))
        if "linkerd-proxy" in init:
            check(f"{where}: proxy is a native sidecar", init["linkerd-proxy"].get("restartPolicy") == "Always")
        check(f"{where} has linkerd-init", "linkerd-init" in init, sorted(init))
        env = {e["name"]: e.get("value", "") for e in proxy["env"]}  # type: ignore[index]
        if identity_ports:
            required = set(env.get("LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", "").split(","))
            check(f"{where}: inbound ports requiring identity", identity_ports <= required, required)
        if skipped_ports:
            args = init["linkerd-init"]["args"]
            ignored = set(args[args.index("--inbound-ports-to-ignore") + 1].split(","))
            check(f"{where}: inbound ports skipped by the proxy", skipped_ports <= ignored, ignored)
        check(
            f"{where}: injected by the webhook",
            pod["metadata"]["annotations"].get("linkerd.io/created-by", "").startswith("linkerd/proxy-injector"),
        )


def conversion(context: str) -> None:
    """The real Emissary CRDs: v2 stored, v3alpha1 converted by apiext; the Module reads back as v2.

    Emissary 4.1.0's CRD chart: v3alpha1 served and stored alone, no conversion, no emissary-apiext at all.
    """
    if os.environ.get("E2E_EMISSARY_VERSION") == "4.1.0":
        for crd in get(context, "crd")["items"]:
            if crd["spec"]["group"] == "getambassador.io":
                versions = [(v["name"], v["served"], v["storage"]) for v in crd["spec"]["versions"]]
                check(f"{context}: {crd['metadata']['name']} v3alpha1 alone", versions == [("v3alpha1", True, True)], versions)
                check(f"{context}: {crd['metadata']['name']} unconverted", crd["spec"]["conversion"]["strategy"] == "None")
        apiext = get(context, "deploy", "-A", "-l", "app.kubernetes.io/name=emissary-apiext")["items"]
        check(f"{context}: no emissary-apiext", apiext == [], apiext)
        module = get(context, "modules.v3alpha1.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
        headers = module["spec"]["config"].get("add_linkerd_headers")
        check(f"{context}: the chart's Module has add_linkerd_headers", headers is True, module["spec"])
        return
    if not APIEXT_SERVED:
        print(f"[live] NOT CHECKED: {context}: Emissary's conversion webhook (a stand-in CRD stores v3alpha1)", file=sys.stderr)
        return
    crd = get(context, "crd", "modules.getambassador.io")["spec"]
    stored = [v["name"] for v in crd["versions"] if v["storage"]]
    check(f"{context}: Module CRD stores v2", stored == ["v2"], stored)
    webhook = crd["conversion"].get("webhook", {}).get("clientConfig", {})
    check(
        f"{context}: Module CRD converts through apiext, its caBundle patched in",
        crd["conversion"]["strategy"] == "Webhook"
        and webhook.get("service", {}).get("name") == "emissary-apiext"
        and bool(webhook.get("caBundle")),
        crd["conversion"],
    )
    # Written as v3alpha1, stored as v2: apiext converted it (its marker for an object that had no
    # ambassador_id); read as v3alpha1, apiext converts it back (the marker becomes `default`).
    stored = get(context, "modules.v2.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
    check(
        f"{context}: the Module stored as v2 by apiext's conversion",
        stored and stored["spec"].get("ambassador_id") == ["--apiVersion-v3alpha1-only--default"],
        stored and stored["spec"],
    )
    check(f"{context}: the stored Module keeps add_linkerd_headers", stored["spec"]["config"].get("add_linkerd_headers") is True)
    read = get(context, "modules.v3alpha1.getambassador.io", "-n", GATEWAY.namespace, upstream.MODULE_NAME)
    check(
        f"{context}: the Module read back as v3alpha1 through apiext",
        read and read["apiVersion"] == "getambassador.io/v3alpha1" and read["spec"].get("ambassador_id") == ["default"],
        read and read["spec"],
    )
    check(f"{context}: converted back, add_linkerd_headers kept", read["spec"]["config"].get("add_linkerd_headers") is True)


def gateway(context: str) -> None:
    namespace, name = GATEWAY.namespace, GATEWAY.service
    service = get(context, "svc", "-n", namespace, name)
    ports = [(p.get("name"), p["port"], p.get("targetPort")) for p in service["spec"]["ports"]]
    check(f"{context}: gateway ports", ports == [("mc-probe", 80, 8080), ("https", 443, 8443), ("mc-gateway", 4143, 4143)], ports)
    notes = service["metadata"]["annotations"]
    expected = {
        "mirror.linkerd.io/gateway-identity": IDENTITY,
        "mirror.linkerd.io/multicluster-gateway": "true",
        "mirror.linkerd.io/probe-path": PROBE_PATH,
        "mirror.linkerd.io/probe-period": "3",
    }
    check(f"{context}: gateway annotations", expected.items() <= notes.items(), notes)
    host = get(context, "hosts.getambassador.io", "-n", namespace, upstream.GATEWAY_HOST_NAME)
    check(f"{context}: Host routes insecure", host["spec"]["requestPolicy"]["insecure"]["action"] == "Route", host["spec"])
    health = get(context, "mappings.getambassador.io", "-n", namespace, upstream.HEALTH_MAPPING_NAME)["spec"]
    check(
        f"{context}: health Mapping",
        (health["prefix"], health["rewrite"], health["service"], health["bypass_auth"])
        == (PROBE_PATH, "/ambassador/v0/check_ready", "localhost:8877", True),
        health,
    )
    qotm = get(context, "deploy", "qotm")
    check(f"{context}: QOTM ready", qotm and qotm["status"].get("readyReplicas") == 1)
    injected(context, "default", upstream.QOTM_NAME, skipped_ports=set(), identity_ports=set())
    service = get(context, "svc", "qotm-linkerd2")
    check(f"{context}: QOTM exported", service["metadata"]["labels"].get("mirror.linkerd.io/exported") == "true")
    mapping = get(context, "mappings.getambassador.io", "linkerd2-qotm")["spec"]
    check(f"{context}: QOTM Mapping", (mapping["prefix"], mapping["service"]) == ("/qotm-linkerd2/", "qotm-linkerd2"), mapping)


def link(context: str, target_server: str) -> None:
    found = get(context, "links.multicluster.linkerd.io", "-n", "linkerd-multicluster", "target")
    check(f"{context}: Link target", found is not None)
    spec = found["spec"]
    check(f"{context}: Link gateway port", spec["gatewayPort"] == "4143", spec)
    check(f"{context}: Link gateway address", GATEWAY_ADDRESS in ("any", spec["gatewayAddress"]), spec)
    check(
        f"{context}: Link identity",
        spec["gatewayIdentity"] == IDENTITY,
    )
    check(f"{context}: Link probe", (spec["probeSpec"]["path"], spec["probeSpec"]["port"]) == (PROBE_PATH, "80"), spec)
    credentials = get(context, "secret", "-n", "linkerd-multicluster", "cluster-credentials-target")
    kubeconfig = yaml.safe_load(base64.b64decode(credentials["data"]["kubeconfig"]))
    check(f"{context}: Link credentials reach the target", kubeconfig["clusters"][0]["cluster"]["server"] == target_server)
    check(f"{context}: the link's service mirror", get(context, "deploy", "-n", "linkerd-multicluster", "controller-target"))


def server(context: str) -> str:
    view = subprocess.run([KUBECTL, "config", "view", "--raw", "-o", "yaml"], capture_output=True, text=True, check=True)
    config = yaml.safe_load(view.stdout)
    cluster = next(c for c in config["contexts"] if c["name"] == PREFIX + context)["context"]["cluster"]
    return str(next(c for c in config["clusters"] if c["name"] == cluster)["cluster"]["server"])


def after_up() -> None:
    target_anchor, target_issuer = control_plane("target")
    source_anchor, source_issuer = control_plane("source")
    check("one trust anchor for both clusters", target_anchor == source_anchor)
    check("an issuer per cluster", target_issuer != source_issuer)
    check("the anchor's key in its Secret in the target", anchor_secrets() == {"linkerd-trust-anchor": target_anchor})
    ours = {
        c: sorted(x["metadata"]["name"] for x in get(c, "secret", "-A", "-l", MANAGED)["items"]) for c in ("target", "source")
    }
    check(
        "the keys' Secrets: anchor and issuer in the target, the issuer alone in the source",
        ours == {"target": ["linkerd-identity-issuer", "linkerd-trust-anchor"], "source": ["linkerd-identity-issuer"]},
        ours,
    )
    edge_stack("target", gateway=True)
    edge_stack("source", gateway=False)
    gateway("target")
    link("source", os.environ.get("E2E_TARGET_API_SERVER") or server("target"))


KEEP = "helm.sh/resource-policy"
GATEWAY_API_KEPT = sorted(f"{kind}.gateway.networking.k8s.io" for kind in ("grpcroutes", "httproutes", "tcproutes", "tlsroutes"))


def after_destroy() -> None:
    for context in ("target", "source"):
        for namespace in ("linkerd", "linkerd-multicluster", GATEWAY.namespace, "emissary-system"):
            check(f"{context}: namespace {namespace} gone", get(context, "ns", namespace) is None)
        # What upstream keeps on uninstall (helm.sh/resource-policy: keep) outlives destroy: the Gateway API
        # CRDs Linkerd's render carries, which other teams' routes need. Nothing else is left.
        crds = get(context, "crd")["items"]
        kept = sorted(c["metadata"]["name"] for c in crds if (c["metadata"].get("annotations") or {}).get(KEEP) == "keep")
        others = sorted(c["metadata"]["name"] for c in crds if c["metadata"]["name"] not in kept)
        check(f"{context}: no CRDs left but those upstream keeps", others == [], others)
        check(f"{context}: the Gateway API CRDs upstream keeps are left", kept == GATEWAY_API_KEPT, kept)
        hooks = get(context, "mutatingwebhookconfigurations,validatingwebhookconfigurations")["items"]
        check(f"{context}: no webhooks left", hooks == [], [h["metadata"]["name"] for h in hooks])
        default = get(context, "ns", "default")["metadata"].get("annotations") or {}
        check(f"{context}: default as it was", "linkerd.io/inject" not in default, default)
        left = [d["metadata"]["name"] for d in get(context, "deploy,svc", "-n", "default")["items"]]
        check(f"{context}: nothing of ours in default", left == ["kubernetes"], left)
        keys = [s["metadata"]["name"] for s in get(context, "secret", "-A", "-l", MANAGED)["items"]]
        check(f"{context}: no Secret of ours left (anchors, issuer)", keys == [], keys)


def issuers() -> dict[str, str]:
    """Each cluster's live issuer certificate (PEM)."""
    return {
        context: base64.b64decode(get(context, "secret", "-n", "linkerd", "linkerd-identity-issuer")["data"]["tls.crt"]).decode()
        for context in ("target", "source")
    }


def after_renewal() -> None:
    """The source's issuer was due and is new, signed by the same anchor; the target's is as it was."""
    before = json.loads(Path(sys.argv[2]).read_text())
    now = issuers()
    anchor, _ = control_plane("source")
    check("source: a new issuer", now["source"] != before["source"])
    check("source: the new issuer chains to the same anchor", _signed(certificate(now["source"]), anchor))
    check("target: its issuer, not due, kept", now["target"] == before["target"])
    control_plane("target")


def roots(context: str) -> list[str]:
    """The live trust roots (linkerd-identity-trust-roots), one PEM per anchor."""
    bundle = get(context, "configmap", "-n", "linkerd", "linkerd-identity-trust-roots")["data"]["ca-bundle.crt"]
    marker = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + marker + "\n" for part in bundle.split(marker) if part.strip()]


def identity() -> dict[str, Any]:
    """Each cluster's live trust roots and issuer."""
    return {"roots": {context: roots(context) for context in ("target", "source")}, "issuers": issuers()}


def after_rotation() -> None:
    """One step of a trust anchor rotation, on both clusters, against what the step before left.

    bundle: the roots carry the old anchor and a new one; the issuers are as they were (old-signed).
    issuers: the same two roots; each cluster's issuer is new and signed by the new anchor.
    drop-old: only the new anchor; the issuers as the last step left them.
    """
    step, before = sys.argv[2], json.loads(Path(sys.argv[3]).read_text())
    now = identity()
    for context in ("target", "source"):
        old, trusted, issuer = before["roots"][context], now["roots"][context], certificate(now["issuers"][context])
        if step == "bundle":
            check(
                f"{context}: the roots carry the old anchor and a new one",
                len(old) == 1 and trusted[0] == old[0] and len(trusted) == 2,
            )
            signer = trusted[0]
        else:
            check(f"{context}: the roots carried two anchors before {step}", len(old) == 2)
            expected = old if step == "issuers" else old[1:]
            check(f"{context}: the roots after {step}", trusted == expected, [common_name(certificate(p)) for p in trusted])
            signer = old[1]
        check(
            f"{context}: the issuer is {'new' if step == 'issuers' else 'kept'}",
            (issuer != certificate(before["issuers"][context])) is (step == "issuers"),
        )
        check(
            f"{context}: the issuer is signed by the {'old' if step == 'bundle' else 'new'} anchor",
            _signed(issuer, certificate(signer)),
        )
        values = yaml.safe_load(get(context, "configmap", "-n", "linkerd", "linkerd-config")["data"]["values"])
        check(
            f"{context}: linkerd-config carries the same roots",
            values["identityTrustAnchorsPEM"].strip() == "".join(trusted).strip(),
        )
        external_issuer(context, values)
        live_issuer, ca = issuer_secret(context)
        check(f"{context}: the issuer Secret is the one read", live_issuer == issuer)
        check(f"{context}: the issuer Secret's ca.crt is its signer", ca == certificate(signer))
        # Linkerd annotates its pods with the sha256 of the anchors file as read: the roots, one newline each.
        digest = hashlib.sha256("".join(trusted).encode()).hexdigest()
        for name in CONTROLLERS:
            notes = get(context, "deploy", "-n", "linkerd", name)["spec"]["template"]["metadata"]["annotations"]
            check(f"{context}: {name} rolls to the roots' hash", notes.get("linkerd.io/trust-root-sha256") == digest, notes)
    check("both clusters trust the same roots", now["roots"]["target"] == now["roots"]["source"])
    # The anchors' keys: both Secrets while both anchors are trusted; after drop-old, only the new one's.
    anchors = anchor_secrets()
    expected = {"linkerd-trust-anchor": certificate(now["roots"]["target"][0])} if step != "drop-old" else {}
    expected["linkerd-trust-anchor-1"] = certificate(now["roots"]["target"][-1])
    check(f"target: the anchor Secrets after {step}", anchors == expected, sorted(anchors))
    print(json.dumps(now))


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


def no_keys_in_state() -> None:
    """No identity key in either stack's state, decrypted (`--show-secrets`), as PEM or base64, nor any other key
    but the webhooks' own serving keys, which the CLI renders (secret in state; they sign no identity)."""
    keys = []
    for context in ("target", "source"):
        for secret in get(context, "secret", "-n", "linkerd", "-l", MANAGED)["items"]:
            pem = base64.b64decode(secret["data"]["tls.key"]).decode()
            keys.append("".join(line for line in pem.strip().splitlines()[1:-1]))  # the key's base64 body
    check("identity keys found live to look for", len(keys) >= 3, len(keys))
    for path in sys.argv[2:]:
        state = json.loads(Path(path).read_text())
        text = json.dumps(state)
        compact = "".join(text.replace("\\n", "").split())
        check(f"{path}: no identity key (PEM body)", not any(k in compact for k in keys))
        holders, identity = set(), set()
        for resource in state["deployment"].get("resources") or []:
            name = resource["urn"].rsplit("::", 1)[1]
            for _, value in _texts(resource.get("inputs") or {}, "inputs") + _texts(resource.get("outputs") or {}, "outputs"):
                decoded = _decoded(value)
                if "PRIVATE KEY" in value or "PRIVATE KEY" in decoded:
                    holders.add(name)
                if any(k in "".join(value.replace("\\n", "").split()) or k in "".join(decoded.split()) for k in keys):
                    identity.add(name)
        check(f"{path}: no identity key, as PEM or base64, in any resource", not identity, sorted(identity))
        webhook_keys = {
            f"linkerd:linkerd/{name}"
            for name in ("linkerd-proxy-injector-k8s-tls", "linkerd-sp-validator-k8s-tls", "linkerd-policy-validator-k8s-tls")
        }
        check(f"{path}: no private key but the webhooks' serving keys", holders <= webhook_keys, sorted(holders - webhook_keys))
        print(f"[live] {path}: private keys in state (decrypted): {sorted(holders) or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] in ("issuers", "identity"):
        print(json.dumps(issuers() if sys.argv[1] == "issuers" else identity()))
        sys.exit(0)
    {
        "after-up": after_up,
        "after-destroy": after_destroy,
        "after-renewal": after_renewal,
        "after-rotation": after_rotation,
        "no-keys-in-state": no_keys_in_state,
    }[sys.argv[1]]()
    print(f"[live] {sys.argv[1]}: {len(CHECKED)} checks passed on the live objects", file=sys.stderr)
