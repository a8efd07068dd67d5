"""Linkerd's own service mirror, live, for each multicluster mode: what it writes after `up`, read back with kubectl.

Two local clusters (e2e/clusters.py, `clusters` fixture): `up` of both stacks through the driver, the target
exporting one Service per mode (QOTM's `default/qotm-linkerd2` through the gateway, `shop/cart` remote-discovery,
`shop/ledger` federated: small Deployments and Services of someone else's, made with kubectl in the meshed
namespace `shop`), the source with `flatNetwork: true`. Meanwhile e2e/mirror.sh's watcher starts the real
`service-mirror` (the hand-built edge-26.8.3 controller) for the Link `target`, with the source's
`controller-target` Deployment's own arguments, as its ServiceAccount, on loopback only. Each step is a test, in
order (a failed step skips the ones after it):

1. `up` of both stacks;
2. the service mirror runs, listening only on 127.0.0.1, connected only to 127.0.0.0/8;
3. the mirrored Services on the source: `qotm-linkerd2-target` and `cart-target` (its remote-discovery labels),
   `ledger-federated` (its remote-discovery annotation `ledger@target`);
4. their Endpoints: see GATEWAY_ENDPOINTS below for why the gateway mirror's hold no address here;
5. the Link's status: each export `Mirrored` by this controller;
6. `linkerd multicluster gateways`: the real CLI scrapes the real mirror's metrics (through the API server's
   port-forward and kwok, to the admin port on 127.0.0.1): the gateway is listed, NOT alive;
7. the probe Service's port is the Link's probe port (the target's `probePort`; this tier found it on the chart's
   4191 while the Link dialled 80, fixed since);
8. `./aes-linkerd2 status --json`: every line the service mirror answers is its answer, not "has it run?".
9. the PR preview's identity (deploy/preview-rbac.yaml on both clusters, docs/pull-requests.md) is refused the
   identity Secrets of both clusters (the anchor's, each issuer's), and plain `pulumi preview` of the source with it
   (link-gen against the target included) plans what admin's plans: no change;
10. a rotation of the Link's token (`linkCredentials: 1` on the target, one `./aes-linkerd2 up`): the source's
   credentials now authenticate as the new account; the old token is refused by the target's API server; the
   source's destination controller (which reads the credentials for the pod-to-pod exports, and only when it
   starts) has a pod template carrying the new generation and a new pod, made after its credentials Secret;
11. the next rotation (`linkCredentials: 2`), the target's `up` alone, then plain `pulumi preview` of the source:
   on the destination controller it plans one change, the reload patch's annotation, and none to the control
   plane's Deployment; the PR preview's identity plans the same diff; the source's `up` then rolls it again.

What cannot be shown here (kwok's pods run no container, there is no proxy and no kube-proxy): traffic, a
gateway the probe finds alive, and the destination controller's own lookups (its new pod runs no process: that it
reads the Secret on start and ignores its update is upstream's code, cited in components/multicluster_source.py).
The probe dials the probe Service by name, which the mirror's /etc/hosts gives as its ClusterIP (as cluster DNS
would); nothing listens there, so every probe fails.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from clusters import LiveCluster, wait_for

TARGET, SOURCE, LINK = "target", "source", "target"
MULTICLUSTER = "linkerd-multicluster"
CONTROL_PLANE = "linkerd"
DESTINATION, DESTINATION_PODS = "linkerd-destination", "linkerd.io/control-plane-component=destination"
# The program's mark on the destination controller's pod template: the Link credentials' generation it reads.
CREDENTIALS_ANNOTATION = "aes-linkerd2.io/link-credentials"
SHOP = "shop"
GATEWAY = ("default", "qotm-linkerd2")
REMOTE_DISCOVERY = (SHOP, "cart")
FEDERATED = (SHOP, "ledger")
MIRRORED = "mirror.linkerd.io/mirrored-service"
CLUSTER_NAME = "mirror.linkerd.io/cluster-name"
# GATEWAY_ENDPOINTS: the gateway mirror's Endpoints get the Link's gateway address only while the exported Service
# has ready addresses on the target, and kwok's pods have loopback IPs, which the API server refuses in Endpoints
# ("may not be in the loopback range"): the target's are empty, so the mirror's are too, as upstream does for an
# empty export. The probe Service's Endpoints, which the mirror always writes with the gateway's address
# (`gatewayAddresses: ["127.0.0.1"]` here), are refused by the API server for the same rule: the mirror logs it.
LOOPBACK_REFUSED = "may not be in the loopback range"
# The PR preview's kube identity (docs/pull-requests.md): deploy/preview-rbac.yaml binds it, e2e/cluster.sh gives
# each cluster a token for it.
PREVIEW_RBAC = Path(__file__).resolve().parent.parent / "deploy" / "preview-rbac.yaml"
SOURCE_PREVIEW = ["pulumi", "preview", "--stack", "source", "--json", "--non-interactive"]


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def notes(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def mirror_log(clusters: LiveCluster) -> str:
    return (clusters.work / SOURCE / "mirror" / "service-mirror.log").read_text(errors="replace")


def workload(namespace: str, name: str) -> list[dict[str, Any]]:
    """Someone else's Deployment and Service (kwok runs the pods; no image is pulled)."""
    selector = {"app": name}
    container = {"name": name, "image": f"example.invalid/{name}:1", "ports": [{"containerPort": 8080}]}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": selector},
                    "spec": {"containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]},
        },
    ]


@pytest.fixture(scope="module")
def link(clusters: LiveCluster) -> dict[str, Any]:
    found: dict[str, Any] = clusters.get("links.multicluster.linkerd.io", LINK, "-n", MULTICLUSTER, context=SOURCE)
    assert found is not None, "no Link on the source"
    return found


def test_up_both_stacks(clusters: LiveCluster) -> None:
    clusters.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SHOP}}, context=TARGET)
    clusters.apply(*workload(*REMOTE_DISCOVERY), *workload(*FEDERATED), context=TARGET)
    clusters.set_config(
        "target",
        meshedNamespaces=["default", SHOP],
        existingNamespaces=["default", SHOP],
        exportedServices=[
            "/".join(GATEWAY),
            {"/".join(REMOTE_DISCOVERY): "remote-discovery"},
            {"/".join(FEDERATED): "federated"},
        ],
    )
    clusters.set_config("source", flatNetwork=True, meshedNamespaces=["default", SHOP], existingNamespaces=["default"])
    up = clusters.driver("up", timeout=900)
    print(f"\n[mirror] up (target, then source): {up.seconds:.0f}s")
    assert up.returncode == 0, up.said()


def test_service_mirror_runs_on_loopback(clusters: LiveCluster) -> None:
    state = clusters.work / SOURCE / "mirror" / "state"
    wait_for("the service mirror's watcher started it", lambda: state.read_text().strip() != "waiting", timeout=90)
    assert state.read_text().strip() == "started", mirror_log(clusters)[-3000:]
    pid = (clusters.work / SOURCE / "mirror" / "service-mirror.pid").read_text().strip()
    plan = (clusters.work / SOURCE / "mirror" / "plan.env").read_text()
    print(f"\n[mirror] the service mirror (pid {pid}) runs with:\n{plan}")
    wait_for("its controller loop", lambda: "Starting controller loop" in mirror_log(clusters), timeout=90)
    sockets = clusters.run(["ss", "-tanpH"], timeout=30).stdout.splitlines()
    own = [line.split() for line in sockets if f"pid={pid}," in line]
    listening = sorted({fields[3] for fields in own if fields[0] == "LISTEN"})
    assert listening == [f"127.0.0.1:{clusters.mirror_port}"], own
    peers = {fields[4] for fields in own if fields[0] != "LISTEN"}
    assert peers and all(peer.startswith("127.") for peer in peers), peers
    print(f"[mirror] it listens on {listening} only; its connections: {sorted(peers)}")


def test_mirrored_services(clusters: LiveCluster) -> None:
    def mirrors() -> dict[str, Any] | None:
        found = {
            name: clusters.get("service", name, "-n", namespace, context=SOURCE)
            for namespace, name in (
                (GATEWAY[0], f"{GATEWAY[1]}-{LINK}"),
                (REMOTE_DISCOVERY[0], f"{REMOTE_DISCOVERY[1]}-{LINK}"),
                (FEDERATED[0], f"{FEDERATED[1]}-federated"),
            )
        }
        return found if all(found.values()) else None

    found = wait_for("the three mirrored Services on the source", mirrors)
    for name, service in found.items():
        print(f"\n[mirror] source Service {service['metadata']['namespace']}/{name}: labels {labels(service)}")
        print(f"    annotations {notes(service)}; ports {service['spec']['ports']}")
    gateway = found[f"{GATEWAY[1]}-{LINK}"]
    assert labels(gateway)[MIRRORED] == "true" and labels(gateway)[CLUSTER_NAME] == LINK
    assert "multicluster.linkerd.io/remote-discovery" not in labels(gateway)
    assert "selector" not in gateway["spec"]
    remote = found[f"{REMOTE_DISCOVERY[1]}-{LINK}"]
    assert labels(remote)[MIRRORED] == "true" and labels(remote)[CLUSTER_NAME] == LINK
    assert labels(remote)["multicluster.linkerd.io/remote-discovery"] == LINK
    assert labels(remote)["multicluster.linkerd.io/remote-service"] == REMOTE_DISCOVERY[1]
    federated = found[f"{FEDERATED[1]}-federated"]
    assert labels(federated)[MIRRORED] == "true"
    assert notes(federated)["multicluster.linkerd.io/remote-discovery"] == f"{FEDERATED[1]}@{LINK}"
    # The mirrors carry the exports' own ports.
    assert [p["port"] for p in remote["spec"]["ports"]] == [8080] == [p["port"] for p in federated["spec"]["ports"]]


def test_mirror_endpoints(clusters: LiveCluster, link: dict[str, Any]) -> None:
    exported = clusters.get("endpoints", GATEWAY[1], "-n", GATEWAY[0], context=TARGET)
    assert exported is not None and not any(s.get("addresses") for s in exported.get("subsets") or []), exported
    name = f"{GATEWAY[1]}-{LINK}"
    mirrored = clusters.get("endpoints", name, "-n", GATEWAY[0], context=SOURCE)
    assert mirrored is not None, "the gateway mirror has no Endpoints object"
    shown = {k: mirrored[k] for k in ("metadata", "subsets") if k in mirrored}
    print(f"\n[mirror] source Endpoints {GATEWAY[0]}/{name}: {json.dumps(shown)[:1200]}")
    assert notes(mirrored)["mirror.linkerd.io/remote-gateway-identity"] == link["spec"]["gatewayIdentity"]
    assert notes(mirrored)["mirror.linkerd.io/remote-svc-fq-name"] == f"{GATEWAY[1]}.{GATEWAY[0]}.svc.cluster.local"
    assert labels(mirrored)[CLUSTER_NAME] == LINK
    # GATEWAY_ENDPOINTS: the target's export is empty (kwok), so is its mirror.
    assert not any(s.get("addresses") or s.get("notReadyAddresses") for s in mirrored.get("subsets") or []), mirrored
    assert f"exported service {'/'.join(GATEWAY)} is empty" in mirror_log(clusters)
    # What the mirror writes once the target has ready pods: the API server refuses it here, as it refuses the probe's.
    address, port = link["spec"]["gatewayAddress"], int(link["spec"]["gatewayPort"])
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e2e-gateway-address", "namespace": GATEWAY[0]},
        "subsets": [{"addresses": [{"ip": address}], "ports": [{"port": port}]}],
    }
    refused = clusters.kubectl("create", "--dry-run=server", "-f", "-", check=False, context=SOURCE, stdin=json.dumps(endpoints))
    assert refused.returncode != 0 and LOOPBACK_REFUSED in refused.stderr, refused.said()
    print(f"[mirror] the API server refuses Endpoints at {address}:{port}: {refused.stderr.strip()[-200:]}")

    def refused_probe() -> list[str]:
        lines = mirror_log(clusters).splitlines()
        return [line for line in lines if "gateway mirror endpoints" in line and LOOPBACK_REFUSED in line]

    probe = wait_for("the mirror's write of the probe Service's Endpoints, refused", refused_probe)
    print(f"[mirror] its log: {probe[0][:400]}")
    probe_endpoints = clusters.get("endpoints", f"probe-{LINK}", "-n", MULTICLUSTER, context=SOURCE)
    assert probe_endpoints is None, probe_endpoints
    # Pod to pod: no Endpoints of their own (meshed callers resolve the target's pods through the destination service).
    assert clusters.get("endpoints", f"{REMOTE_DISCOVERY[1]}-{LINK}", "-n", SHOP, context=SOURCE) is None
    assert clusters.get("endpoints", f"{FEDERATED[1]}-federated", "-n", SHOP, context=SOURCE) is None


def test_link_status(clusters: LiveCluster) -> None:
    def mirrored(part: str) -> dict[str, dict[str, Any]]:
        found = clusters.get("links.multicluster.linkerd.io", LINK, "-n", MULTICLUSTER, context=SOURCE)
        return {
            f"{s['remoteRef']['namespace']}/{s['remoteRef']['name']}": c
            for s in (found.get("status") or {}).get(part) or []
            for c in s.get("conditions") or []
            if c.get("type") == "Mirrored"
        }

    def both() -> dict[str, dict[str, Any]] | None:
        found = mirrored("mirrorServices")
        return found if len(found) >= 2 else None

    services = wait_for("the Link's mirrorServices", both)
    federated = wait_for("the Link's federatedServices", lambda: mirrored("federatedServices") or None)
    print(f"\n[mirror] Link {LINK} status.mirrorServices: {json.dumps(services)}\n    federatedServices: {json.dumps(federated)}")
    expected = {
        "/".join(GATEWAY): f"{GATEWAY[1]}-{LINK}",
        "/".join(REMOTE_DISCOVERY): f"{REMOTE_DISCOVERY[1]}-{LINK}",
    }
    assert set(services) == set(expected), services
    for remote, local in expected.items():
        assert (services[remote]["status"], services[remote]["reason"]) == ("True", "Mirrored"), services[remote]
        assert services[remote]["localRef"]["name"] == local
    ledger = federated["/".join(FEDERATED)]
    assert (ledger["status"], ledger["reason"], ledger["localRef"]["name"]) == ("True", "Mirrored", f"{FEDERATED[1]}-federated")


def test_multicluster_gateways(clusters: LiveCluster) -> None:
    # Every probe fails (nothing serves the probe Service's loopback ClusterIP): wait for the mirror to say so.
    failed = wait_for(
        "the probe's failure threshold",
        lambda: [line for line in mirror_log(clusters).splitlines() if "Failure threshold" in line],
        timeout=90,
    )
    print(f"\n[mirror] the gateway probe (no proxy, no gateway here): {failed[0][:300]}")
    with urllib.request.urlopen(f"http://127.0.0.1:{clusters.mirror_port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    scraped = [line for line in metrics.splitlines() if line.startswith(("gateway_enabled", "gateway_alive", "gateway_probes"))]
    print("[mirror] its metrics: " + "; ".join(scraped))
    assert f'gateway_enabled{{target_cluster_name="{LINK}"}} 1' in scraped
    assert f'gateway_alive{{target_cluster_name="{LINK}"}} 0' in scraped
    cli = [clusters.linkerd, "multicluster", "gateways", "--context", SOURCE, "--cluster-name", LINK, "--wait", "30s"]
    table = clusters.run(cli, timeout=90)
    print(f"[mirror] $ linkerd multicluster gateways --context {SOURCE}  (exit {table.returncode})\n{table.stdout}{table.stderr}")
    listed = clusters.run([*cli, "-o", "json"], timeout=90)
    assert listed.returncode == 0, listed.said()
    services = clusters.get("services", "-A", "-l", f"{MIRRORED}=true,{CLUSTER_NAME}={LINK}", context=SOURCE)["items"]
    assert json.loads(listed.stdout) == [
        {"clusterName": LINK, "alive": False, "numberOfServices": len(services), "latency": 0}
    ], listed.said()


def test_probe_service_port_is_the_links(clusters: LiveCluster, link: dict[str, Any]) -> None:
    service = clusters.get("service", f"probe-{LINK}", "-n", MULTICLUSTER, context=SOURCE)
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    dialled = [line for line in mirror_log(clusters).splitlines() if "problem connecting with gateway" in line]
    print(f"\n[mirror] Link probeSpec {link['spec']['probeSpec']}; Service probe-{LINK} ports {ports}")
    print(f"[mirror] the probe dials: {dialled[0][:300] if dialled else 'nothing yet'}")
    assert ports.get("mc-probe") == int(link["spec"]["probeSpec"]["port"]), (ports, link["spec"]["probeSpec"])


def test_status_reads_what_the_mirror_wrote(clusters: LiveCluster) -> None:
    done = clusters.driver("status", "--json", timeout=300)
    report = json.loads(done.stdout)
    checks = {(c["stack"], check["name"]): (check["state"], check["detail"]) for c in report["clusters"] for check in c["checks"]}
    shown = "\n".join(f"    {stack:6} {state:7} {name}: {detail}" for (stack, name), (state, detail) in sorted(checks.items()))
    print(f"\n[mirror] ./aes-linkerd2 status --json (exit {done.returncode}):\n{shown}")
    # Nothing says the service mirror has not run: each line it answers is its answer.
    assert not [k for k, (_, detail) in checks.items() if "has not run" in detail or "service mirror running" in detail], shown
    assert checks[(SOURCE, f"Link {LINK}")][0] == "ok"
    for name in (f"mirror {SHOP}/{REMOTE_DISCOVERY[1]}-{LINK}", f"mirror {SHOP}/{FEDERATED[1]}-federated"):
        state, detail = checks[(SOURCE, name)]
        assert state == "ok" and "pod to pod" in detail and "Mirrored=True" in detail, (name, state, detail)
    # Red, as the mirror answers them here (GATEWAY_ENDPOINTS; the probe, above): no address, NOT alive.
    red = {
        f"mirror {'/'.join(GATEWAY)}-{LINK}": "endpoints none; Link status Mirrored=True Mirrored",
        "gateway mirror": f"{MULTICLUSTER}/probe-{LINK} -> no endpoints",
        "gateway alive, latency": "NOT alive, latency 0 ms",
    }
    for name, detail in red.items():
        state, said = checks[(SOURCE, name)]
        assert state == "FAIL" and said.startswith(detail), (name, state, said)
    others = {
        k: v
        for k, v in checks.items()
        if v[0] != "ok" and k[1] not in red and not (k[1].startswith("webhook ") and "0 endpoint(s)" in v[1])
    }
    assert others == {}, shown
    assert done.returncode == 1 and report["healthy"] is False


@pytest.fixture(scope="module")
def reviewer(clusters: LiveCluster) -> dict[str, str]:
    """What a PR preview of the source is given: deploy/preview-rbac.yaml bound on both clusters, and copies of the
    source's two kubeconfigs whose users are the preview's identity. The source stack keys they go under."""
    config = clusters.stack_config("source")["config"]
    kubeconfigs = {}
    for key, cluster in (("kubeconfig", SOURCE), ("targetKubeconfig", TARGET)):
        clusters.kubectl("apply", "-f", str(PREVIEW_RBAC), context=cluster)
        copy = clusters.work / f"preview-{cluster}.kubeconfig"
        shutil.copy(config[f"aes-linkerd2:{key}"], copy)
        as_preview = ["config", "set-credentials", cluster, "--token", f"{cluster}-preview-token"]
        done = clusters.run([clusters.kubectl_binary, "--kubeconfig", str(copy), *as_preview], timeout=30)
        assert done.returncode == 0, done.said()
        kubeconfigs[key] = str(copy)
    return kubeconfigs


def preview_source(clusters: LiveCluster, kubeconfigs: dict[str, str] | None = None) -> dict[str, Any]:
    """Plain `pulumi preview --json` of the source (what the PR workflow runs), as KUBECONFIGS' identity when given."""
    admin = {key: clusters.stack_config("source")["config"][f"aes-linkerd2:{key}"] for key in kubeconfigs or {}}
    clusters.set_config("source", **(kubeconfigs or {}))
    try:
        run = clusters.run(SOURCE_PREVIEW, cwd=clusters.project, timeout=600)
    finally:
        clusters.set_config("source", **admin)
    assert run.returncode == 0, run.said()[-4000:]
    plan: dict[str, Any] = json.loads(run.stdout)
    return plan


def changes(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((step["op"], step["urn"]) for step in plan["steps"] if step["op"] != "same")


def test_the_sources_pr_preview_reads_no_identity_key_on_either_cluster_and_still_previews(
    clusters: LiveCluster, reviewer: dict[str, str]
) -> None:
    """Issue 18 item 4 for the source, whose preview runs link-gen against the target: the preview's identity is
    refused every Secret that holds an identity key, on both clusters, and plans the source as admin does."""
    for key, cluster in (("kubeconfig", SOURCE), ("targetKubeconfig", TARGET)):
        kubectl = [clusters.kubectl_binary, "--kubeconfig", reviewer[key], "--context", cluster]
        for denied in (["get", "secrets", "-n", CONTROL_PLANE], ["list", "secrets", "-A"], ["create", "configmaps"]):
            answer = clusters.run([*kubectl, "auth", "can-i", *denied], timeout=30)
            assert answer.stdout.strip() == "no", (cluster, denied, answer.said())
        keys = ["linkerd-identity-issuer", *(["linkerd-trust-anchor"] if cluster == TARGET else [])]
        for secret in keys:
            read = clusters.run([*kubectl, "get", "secret", "-n", CONTROL_PLANE, secret, "-o", "json"], timeout=30)
            assert read.returncode != 0 and "forbidden" in read.stderr.lower(), (cluster, read.said())
            # The Secret is there: the refusal is RBAC's, not a missing object.
            assert clusters.get("secret", secret, "-n", CONTROL_PLANE, context=cluster) is not None, (cluster, secret)
    as_admin = preview_source(clusters)
    as_preview = preview_source(clusters, reviewer)
    # The control: the same files with a token the target does not know, and the same preview fails, so the plan
    # above was made with the preview's credentials.
    unknown = clusters.work / "preview-unknown.kubeconfig"
    shutil.copy(reviewer["targetKubeconfig"], unknown)
    as_unknown = ["config", "set-credentials", TARGET, "--token", "nobody-knows-this-token"]
    assert clusters.run([clusters.kubectl_binary, "--kubeconfig", str(unknown), *as_unknown], timeout=30).returncode == 0
    admin = clusters.stack_config("source")["config"]["aes-linkerd2:targetKubeconfig"]
    clusters.set_config("source", targetKubeconfig=str(unknown))
    try:
        refused = clusters.run(SOURCE_PREVIEW, cwd=clusters.project, timeout=600)
    finally:
        clusters.set_config("source", targetKubeconfig=admin)
    assert refused.returncode != 0 and "Unauthorized" in refused.stdout + refused.stderr, refused.said()[-3000:]
    print(f"\n[mirror] the source's preview as the PR preview's identity: {as_preview['changeSummary']}")
    assert set(as_admin["changeSummary"]) == {"same"}, changes(as_admin)
    assert as_preview["changeSummary"] == as_admin["changeSummary"], (changes(as_preview), changes(as_admin))


def link_kubeconfig(clusters: LiveCluster) -> str:
    """The kubeconfig the source's Link carries (the target's API server and the remote-access token)."""
    secrets = clusters.get("secrets", "-n", MULTICLUSTER, context=SOURCE)["items"]
    [secret] = [s for s in secrets if "kubeconfig" in (s.get("data") or {}) and s["metadata"]["name"].endswith(LINK)]
    return base64.b64decode(secret["data"]["kubeconfig"]).decode()


def as_link(clusters: LiveCluster, kubeconfig: str, *args: str) -> Any:
    """kubectl ARGS against the target, with the Link's own credentials (loopback: the Link's server is the target's)."""
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig", dir=clusters.work) as handle:
        handle.write(kubeconfig)
        handle.flush()
        return clusters.run([clusters.kubectl_binary, "--kubeconfig", handle.name, *args], timeout=60)


def destination_pods(clusters: LiveCluster) -> dict[str, dict[str, Any]]:
    """The source's destination controller pods (kwok runs them), by name."""
    pods = clusters.get("pods", "-n", CONTROL_PLANE, "-l", DESTINATION_PODS, context=SOURCE)["items"]
    return {pod["metadata"]["name"]: pod for pod in pods}


def destination_template(clusters: LiveCluster) -> dict[str, str]:
    deployment = clusters.get("deployment", DESTINATION, "-n", CONTROL_PLANE, context=SOURCE)
    return dict(deployment["spec"]["template"]["metadata"].get("annotations") or {})


def generation_of(account: str, generation: int) -> str:
    return f"{LINK}: generation {generation}, {account}"


def assert_destination_rolled(clusters: LiveCluster, before: dict[str, dict[str, Any]], generation: str) -> None:
    """A new destination pod with GENERATION on its template, Running, made after the credentials Secret it reads."""
    assert destination_template(clusters).get(CREDENTIALS_ANNOTATION) == generation, destination_template(clusters)

    def rolled() -> list[dict[str, Any]]:
        pods = destination_pods(clusters)
        new = [
            pod
            for name, pod in pods.items()
            if name not in before
            and notes(pod).get(CREDENTIALS_ANNOTATION) == generation
            and pod["status"].get("phase") == "Running"
        ]
        return new if new and not set(before) & set(pods) else []

    new = wait_for(f"a new {DESTINATION} pod carrying {generation!r}, the old ones gone", rolled, timeout=120)
    secret = clusters.get("secret", f"cluster-credentials-{LINK}", "-n", CONTROL_PLANE, "--show-managed-fields", context=SOURCE)
    written = max(entry["time"] for entry in secret["metadata"]["managedFields"])
    made = [pod["metadata"]["creationTimestamp"] for pod in new]
    print(f"[mirror] {DESTINATION}: pods {sorted(before)} -> {[p['metadata']['name'] for p in new]} made {made}; "
          f"its credentials Secret last written {written}")  # fmt: skip
    # RFC 3339 UTC timestamps of one clock, to the second: they order as text.
    assert all(time_made >= written for time_made in made), (made, written)


def test_a_token_rotation_moves_the_link_to_the_new_account_and_revokes_the_old(clusters: LiveCluster) -> None:
    """Issue 19 item 3, live: one config change on the target, one `up` of both stacks."""
    old = link_kubeconfig(clusters)
    whoami = ("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    before = as_link(clusters, old, *whoami)
    assert before.returncode == 0 and before.stdout.endswith(":linkerd-service-mirror-remote-access-default"), before.said()
    # Never rotated: the destination controller is the control plane's, untouched.
    assert CREDENTIALS_ANNOTATION not in destination_template(clusters)
    pods = destination_pods(clusters)
    assert pods, "no destination pod on the source"
    clusters.set_config("target", linkCredentials=1)
    up = clusters.driver("up", timeout=900)
    print(f"\n[mirror] rotation up (target, then source): {up.seconds:.0f}s")
    assert up.returncode == 0, up.said()
    assert_destination_rolled(clusters, pods, generation_of("linkerd-service-mirror-remote-access-1", 1))
    # The copy the destination controller reads is the new account's too.
    destination_copy = clusters.get("secret", f"cluster-credentials-{LINK}", "-n", CONTROL_PLANE, context=SOURCE)
    assert base64.b64decode(destination_copy["data"]["kubeconfig"]).decode() == link_kubeconfig(clusters)
    new = link_kubeconfig(clusters)
    assert new != old
    after = as_link(clusters, new, *whoami)
    assert after.returncode == 0 and after.stdout.endswith(":linkerd-service-mirror-remote-access-1"), after.said()
    default = "linkerd-service-mirror-remote-access-default"
    assert clusters.get("serviceaccount", default, "-n", MULTICLUSTER, context=TARGET) is None

    def refused() -> Any:
        done = as_link(clusters, old, "get", "services", "-n", "default")
        return done if done.returncode != 0 and "Unauthorized" in done.stderr else None

    said = wait_for("the old token refused as Unauthorized", refused, timeout=60)
    print(f"[mirror] the old token now: {said.stderr.strip()[:200]}")
    listed = as_link(clusters, new, "get", "services", "-n", "default", "-o", "name")
    assert listed.returncode == 0 and "service/qotm-linkerd2" in listed.stdout.split(), listed.said()


def test_the_next_rotations_preview_changes_one_field_of_the_destination_controller(
    clusters: LiveCluster, reviewer: dict[str, str]
) -> None:
    """The target's `up` alone, then plain `pulumi preview` of the source: the reload patch's annotation, nothing else
    of the destination controller; the source's `up` then rolls it."""
    clusters.set_config("target", linkCredentials=2)
    target_up = clusters.driver("up", "--stack", "target", timeout=900)
    assert target_up.returncode == 0, target_up.said()
    plan = preview_source(clusters)
    steps = {step["urn"].rsplit("::", 1)[-1]: step for step in plan["steps"]}
    changed = sorted(name for name, step in steps.items() if step["op"] != "same")
    print(f"\n[mirror] the source's preview after the target's rotation to generation 2: {changed}")
    # The PR preview's identity (no Secret but link-gen's) plans the same diff, the new credentials included.
    as_preview = preview_source(clusters, reviewer)
    assert changes(as_preview) == changes(plan), (changes(as_preview), changes(plan))
    reload = [s for s in as_preview["steps"] if s["urn"].endswith("::multicluster-source-reload-destination")]
    assert [s["newState"]["inputs"] for s in reload] == [steps["multicluster-source-reload-destination"]["newState"]["inputs"]]
    # `--json` lists the steps that change something: the control plane's Deployment, in the state, is not among them.
    deployment = f"linkerd:{CONTROL_PLANE}/{DESTINATION}"
    state = clusters.run(["pulumi", "stack", "export", "--stack", "source"], cwd=clusters.project, timeout=120)
    assert state.returncode == 0, state.said()
    held = [
        r["urn"]
        for r in json.loads(state.stdout)["deployment"]["resources"]
        if r["urn"].endswith(f"$kubernetes:apps/v1:Deployment::{deployment}")
    ]
    assert len(held) == 1, held
    planned = [step["op"] for step in plan["steps"] if step["urn"] == held[0] and step["op"] != "same"]
    assert planned == [], planned
    patch = steps["multicluster-source-reload-destination"]
    assert patch["op"] == "update", patch["op"]
    old, new = patch["oldState"]["inputs"], patch["newState"]["inputs"]
    account = "linkerd-service-mirror-remote-access-{}"
    assert old["spec"] == {
        "template": {"metadata": {"annotations": {CREDENTIALS_ANNOTATION: generation_of(account.format(1), 1)}}}
    }
    assert new["spec"] == {
        "template": {"metadata": {"annotations": {CREDENTIALS_ANNOTATION: generation_of(account.format(2), 2)}}}
    }
    assert {k: v for k, v in old.items() if k != "spec"} == {k: v for k, v in new.items() if k != "spec"}
    # The rest a rotation changes: the Link's two credentials Secrets and the service mirror's restart (the checks,
    # when `verify` is on, ask again).
    credentials = {
        f"multicluster-source-link:{namespace}/cluster-credentials-{LINK}" for namespace in (MULTICLUSTER, CONTROL_PLANE)
    }
    must = {*credentials, "multicluster-source-reload-mirror", "multicluster-source-reload-destination"}
    assert must <= set(changed) <= {*must, "multicluster-source-multicluster-check"}, changed
    pods = destination_pods(clusters)
    up = clusters.driver("up", "--stack", "source", timeout=900)
    print(f"[mirror] target up {target_up.seconds:.0f}s, source up {up.seconds:.0f}s")
    assert up.returncode == 0, up.said()
    assert_destination_rolled(clusters, pods, generation_of(account.format(2), 2))
