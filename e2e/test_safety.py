"""Nothing that is not ours is deleted, nothing of ours is replaced by surprise: shown on the real engine.

One story on one live cluster (e2e/clusters.py), the target stack alone, each step a test, in this
order (a failed step skips the ones after it, which build on it):

1. a namespace that exists before `up` and is not in `existingNamespaces` stops `preview` and `up`,
   naming the key, before anything changes on the cluster;
2. listed there, `up` applies without deleting it: same uid, the owner's ConfigMap untouched, annotated;
3. a namespace the program created, holding someone else's workload, removed from `meshedNamespaces`:
   `up` leaves the namespace and the workload, and nothing of the program's is left in it; in the same
   `up`, another one listed in `existingNamespaces` (its `Namespace` becomes a `NamespacePatch`) keeps
   its uid and workload too;
4. the same stack through a second kubeconfig file for the same cluster (same context name, then
   another) previews no change;
5. `destroy` leaves the Gateway API CRDs that were there before the first `up`, and a route of theirs.

Step 1 holds for plain `pulumi preview` too (no driver, no pre-flight: the program asks the cluster itself).
Step 4: the provider reads its kubeconfig through the project's `.kubeconfig/<stack>` link, so another file for
the same context previews no change at all; a renamed context is a changed `context` key, an update of the
provider alone.

Every check reads the live objects with kubectl, never what Pulumi reports.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusters import LiveCluster

# What the program writes on objects it creates (support/upstream.py: MANAGED_BY_LABEL, OWNER_STACK_ANNOTATION).
MANAGED_BY = ("app.kubernetes.io/managed-by", "aes-linkerd2")
OWNER = ("aes-linkerd2.io/stack", "aes-linkerd2/target")
INJECT = ("linkerd.io/inject", "enabled")
USERS = "team-a"  # the user's namespace, there before the first `up`
CREATED = "team-b"  # created by the program, then given someone else's workload, then unlisted
SWAPPED = "team-c"  # created by the program, given a workload, then listed in existingNamespaces
ROUTES = "routes"  # another team's HTTPRoute lives here
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# Changes of churn the controllers make on their own, not by anyone's `up`.
CHURN = {"Event", "Lease"}


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["metadata"]
    return found


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return metadata(obj).get("annotations") or {}


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return metadata(obj).get("labels") or {}


def inventory(cluster: LiveCluster, namespace: str | None = None) -> dict[str, str]:
    """Every object of every listable kind (in NAMESPACE, else everywhere): `Kind ns/name` -> uid."""
    scope = ["--namespaced=true"] if namespace else []
    kinds = cluster.kubectl("api-resources", "--verbs=list", "-o", "name", *scope).stdout.split()
    where = ["-n", namespace] if namespace else ["-A"]
    items = json.loads(cluster.kubectl("get", ",".join(kinds), *where, "-o", "json").stdout)["items"]
    return {key(item): metadata(item).get("uid", "") for item in items if item["kind"] not in CHURN}  # ComponentStatus: no uid


def key(item: dict[str, Any]) -> str:
    return f"{item['kind']} {metadata(item).get('namespace', '')}/{metadata(item)['name']}"


def gateway_api_crds(cluster: LiveCluster) -> list[dict[str, Any]]:
    """The Gateway API CRDs the pinned linkerd CLI renders (upstream marks them `keep`), as another team applied them."""
    done = cluster.run([cluster.linkerd, "install", "--crds", "--ignore-cluster", "--set", "installGatewayAPI=true"], timeout=120)
    assert done.returncode == 0, done.said()
    crds = [d for d in yaml.safe_load_all(done.stdout) if d and d["spec"]["group"] == GATEWAY_API_GROUP]
    assert {c["metadata"]["name"] for c in crds} >= {f"httproutes.{GATEWAY_API_GROUP}"}, [c["metadata"]["name"] for c in crds]
    return crds


def established(cluster: LiveCluster, names: list[str], timeout: float = 60) -> None:
    """Until each CRD is Established (`kubectl wait` fails on one whose status has no conditions yet)."""
    deadline = time.monotonic() + timeout
    while True:
        conditions = [
            {c["type"]: c["status"] for c in (cluster.get("crd", name).get("status") or {}).get("conditions") or []}
            for name in names
        ]
        if all(found.get("Established") == "True" for found in conditions):
            return
        assert time.monotonic() < deadline, dict(zip(names, conditions, strict=True))
        time.sleep(1)


@pytest.fixture(scope="module")
def before(cluster: LiveCluster) -> dict[str, str]:
    """Others' objects, made with kubectl before the first `up`; their uids, by `Kind ns/name`."""
    crds = gateway_api_crds(cluster)
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": USERS}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": USERS},
            "data": {"owner": "team a"},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ROUTES}},
        *crds,
    )
    established(cluster, [c["metadata"]["name"] for c in crds])
    cluster.apply(
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": ROUTES},
            "spec": {
                "parentRefs": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": "edge"}],
                "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
            },
        }
    )
    return inventory(cluster)


def uids(found: dict[str, str], *keys: str) -> dict[str, str | None]:
    return {key: found.get(key) for key in keys}


def others(before: dict[str, str]) -> list[str]:
    """The keys of the objects others made before the first `up`: theirs, never the program's."""
    made = {f"Namespace /{USERS}", f"ConfigMap {USERS}/settings", f"Namespace /{ROUTES}", f"HTTPRoute {ROUTES}/web"}
    return [k for k in before if k in made or (k.startswith("CustomResourceDefinition ") and k.endswith(GATEWAY_API_GROUP))]


def test_1_an_existing_namespace_not_listed_stops_preview_and_up_before_anything_changes(
    cluster: LiveCluster, before: dict[str, str]
) -> None:
    cluster.set_config(meshedNamespaces=["default", USERS, CREATED, SWAPPED], existingNamespaces=["default"])
    for verb in ("preview", "up"):
        run = cluster.driver(verb, "--stack", "target")
        said = run.stdout + run.stderr
        assert run.returncode != 0, run.said()
        assert f"meshedNamespaces on target: {USERS}" in said, run.said()
        assert "exists and was not created by this stack: add it to existingNamespaces in Pulumi.target.yaml" in said, run.said()
        assert "Traceback" not in said, run.said()
    after = inventory(cluster)
    assert sorted(set(after) ^ set(before)) == [], "objects appeared or went"
    assert after == before, "an object was replaced (same name, new uid)"
    assert INJECT[0] not in annotations_of(cluster.get("namespace", USERS))


def test_1_plain_pulumi_preview_refuses_it_too(cluster: LiveCluster) -> None:
    init = cluster.run(["pulumi", "stack", "init", "target", "--non-interactive"], cwd=cluster.project, timeout=120)
    if init.returncode != 0:
        raise RuntimeError(init.said())
    run = cluster.run(["pulumi", "preview", "--stack", "target", "--json", "--non-interactive"], cwd=cluster.project, timeout=600)
    planned = [
        step["op"]
        for step in json.loads(run.stdout).get("steps", [])
        if step["urn"].split("::")[2].endswith("core/v1:Namespace")
        and step.get("newState", {}).get("inputs", {}).get("metadata", {}).get("name") == USERS
    ]
    print(f"\n[safety] plain pulumi preview: exit {run.returncode}, planned for {USERS}: {planned}")
    assert run.returncode != 0 and "existingNamespaces" in run.stdout + run.stderr, (
        f"planned for {USERS}: {planned}\n{run.said()[-2000:]}"
    )


def test_2_listed_in_existing_namespaces_it_is_annotated_not_taken_over(cluster: LiveCluster, before: dict[str, str]) -> None:
    cluster.set_config(existingNamespaces=["default", USERS])
    run = cluster.driver("up", "--stack", "target")
    assert run.returncode == 0, run.said()
    print(f"\n[safety] first up of the target: {run.seconds:.0f}s")
    after = inventory(cluster)
    assert uids(after, *others(before)) == uids(before, *others(before))
    users = cluster.get("namespace", USERS)
    assert annotations_of(users).get(INJECT[0]) == INJECT[1]
    # Patched, not adopted: the program did not mark it as its own, so it never deletes it.
    assert OWNER[0] not in annotations_of(users) and MANAGED_BY[0] not in labels_of(users), metadata(users)
    assert cluster.get("configmap", "settings", "-n", USERS)["data"] == {"owner": "team a"}
    for name in (CREATED, SWAPPED):
        created = cluster.get("namespace", name)
        assert annotations_of(created).get(OWNER[0]) == OWNER[1] and labels_of(created).get(MANAGED_BY[0]) == MANAGED_BY[1]
        assert annotations_of(created).get(INJECT[0]) == INJECT[1]


def test_2b_the_pr_previews_identity_reads_no_key_and_still_previews(cluster: LiveCluster) -> None:
    """docs/pull-requests.md: bound by deploy/preview-rbac.yaml, the preview's identity cannot read the anchor's or
    the issuer's Secret, and plain `pulumi preview` with it still plans the stack: no change, then a change."""
    cluster.kubectl("apply", "-f", str(Path(__file__).resolve().parent.parent / "deploy" / "preview-rbac.yaml"))
    admin = cluster.stack_config()["config"]["aes-linkerd2:kubeconfig"]
    reviewer = cluster.work / "preview.kubeconfig"
    shutil.copy(admin, reviewer)
    set_token = [cluster.kubectl_binary, "--kubeconfig", str(reviewer), "config", "set-credentials", "target"]
    assert cluster.run([*set_token, "--token", "target-preview-token"], timeout=30).returncode == 0
    as_reviewer = [cluster.kubectl_binary, "--kubeconfig", str(reviewer), "--context", "target"]
    for denied in (["get", "secrets", "-n", "linkerd"], ["list", "secrets", "-A"], ["create", "configmaps"]):
        answer = cluster.run([*as_reviewer, "auth", "can-i", *denied], timeout=30)
        assert answer.stdout.strip() == "no", (denied, answer.said())
    for secret in ("linkerd-trust-anchor", "linkerd-identity-issuer"):
        read = cluster.run([*as_reviewer, "get", "secret", "-n", "linkerd", secret, "-o", "json"], timeout=30)
        assert read.returncode != 0 and "forbidden" in read.stderr.lower(), read.said()
    preview = ["pulumi", "preview", "--stack", "target", "--json", "--non-interactive"]
    cluster.set_config(kubeconfig=str(reviewer))
    try:
        unchanged = cluster.run(preview, cwd=cluster.project, timeout=600)
        assert unchanged.returncode == 0, unchanged.said()[-3000:]
        assert set(json.loads(unchanged.stdout)["changeSummary"]) == {"same"}, unchanged.stdout[-2000:]
        cluster.set_config(probePeriodSeconds=7)
        changed = cluster.run(preview, cwd=cluster.project, timeout=600)
        assert changed.returncode == 0, changed.said()[-3000:]
        steps = [s for s in json.loads(changed.stdout)["steps"] if s["op"] != "same"]
        planned = [(s["op"], s["urn"].rsplit("::", 1)[-1]) for s in steps]
        # Exactly the gateway Service's patch, with the new probe period: the diff a reviewer needs.
        assert planned == [("update", "multicluster-target-gateway-service")], planned
        assert '"mirror.linkerd.io/probe-period": "7"' in json.dumps(steps[0]["newState"]["inputs"]), steps[0]["newState"]
        print(f"\n[safety] the preview's identity reads no Secret of linkerd and previews {planned}")
    finally:
        cluster.set_config(kubeconfig=admin, probePeriodSeconds=None)


def workload(namespace: str) -> list[dict[str, Any]]:
    """Someone else's ConfigMap and Deployment, made with kubectl."""
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "orders", "namespace": namespace}, "data": {"a": "1"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "orders", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "orders"}},
                "template": {
                    "metadata": {"labels": {"app": "orders"}},
                    "spec": {"containers": [{"name": "orders", "image": "registry.invalid/orders:1"}]},
                },
            },
        },
    ]


@pytest.fixture(scope="module")
def let_go(cluster: LiveCluster) -> dict[str, dict[str, str]]:
    """One `up` that lets go of CREATED (unlisted) and switches SWAPPED from created to patched (listed as
    existing), each holding someone else's workload; what was in each namespace before it, by key."""
    for namespace in (CREATED, SWAPPED):
        cluster.apply(*workload(namespace))
    everything = inventory(cluster)
    theirs = {
        namespace: {k: uid for k, uid in everything.items() if k == f"Namespace /{namespace}" or f" {namespace}/" in k}
        for namespace in (CREATED, SWAPPED)
    }
    cluster.set_config(meshedNamespaces=["default", USERS, SWAPPED], existingNamespaces=["default", USERS, SWAPPED])
    run = cluster.driver("up", "--stack", "target")
    assert run.returncode == 0, run.said()
    return theirs


def still_there(cluster: LiveCluster, namespace: str, theirs: dict[str, str]) -> dict[str, Any]:
    """The namespace, the same one, active, with the workload's objects the same ones."""
    found = cluster.get("namespace", namespace)
    assert found is not None and metadata(found)["uid"] == theirs[f"Namespace /{namespace}"]
    assert "deletionTimestamp" not in metadata(found) and found["status"]["phase"] == "Active"
    left = inventory(cluster, namespace)
    for name in (f"ConfigMap {namespace}/orders", f"Deployment {namespace}/orders"):
        assert left.get(name) == theirs[name], (name, left)
    return dict(found)


def test_3_a_created_namespace_let_go_of_keeps_someone_elses_workload(
    cluster: LiveCluster, let_go: dict[str, dict[str, str]]
) -> None:
    namespace = still_there(cluster, CREATED, let_go[CREATED])
    # Nothing the program made is left inside it: the objects there are the workload's and Kubernetes' own.
    inside = json.loads(cluster.kubectl("get", "all,configmaps,secrets,serviceaccounts", "-n", CREATED, "-o", "json").stdout)
    ours = [
        key(item)
        for item in inside["items"]
        if labels_of(item).get(MANAGED_BY[0]) == MANAGED_BY[1] or OWNER[0] in annotations_of(item)
    ]
    assert ours == []
    print(f"\n[safety] {CREATED} after it was let go of: annotations {annotations_of(namespace)}, labels {labels_of(namespace)}")


def test_3_a_created_namespace_listed_as_existing_is_patched_not_deleted(
    cluster: LiveCluster, let_go: dict[str, dict[str, str]]
) -> None:
    """Namespace -> NamespacePatch: the engine's delete of the first would delete the namespace with the workload."""
    namespace = still_there(cluster, SWAPPED, let_go[SWAPPED])
    assert annotations_of(namespace).get(INJECT[0]) == INJECT[1]


# The two ways a second kubeconfig reaches the same cluster: a copy at another path (a CI runner's), and
# one whose context for it has another name (a colleague's).
SECOND_KUBECONFIGS = ["same-context-name", "other-context-name"]


@pytest.fixture(params=SECOND_KUBECONFIGS)
def second_kubeconfig(request: pytest.FixtureRequest, cluster: LiveCluster) -> Iterator[str]:
    """The target stack's file pointed at a copy of its kubeconfig (renamed context or not); put back afterwards."""
    first = cluster.stack_config()["config"]["aes-linkerd2:kubeconfig"]
    context = "target" if request.param == "same-context-name" else "ci-runner"
    elsewhere = cluster.work / f"{request.param}.kubeconfig"
    shutil.copy(first, elsewhere)
    if context != "target":
        renamed = cluster.run(
            [cluster.kubectl_binary, "config", "rename-context", "target", context, "--kubeconfig", str(elsewhere)], timeout=30
        )
        assert renamed.returncode == 0, renamed.said()
    cluster.set_config(kubeconfig=str(elsewhere), context=context)
    try:
        yield context
    finally:
        cluster.set_config(kubeconfig=first, context="target")


def test_3_a_namespace_let_go_of_is_no_longer_meshed(cluster: LiveCluster, let_go: dict[str, dict[str, str]]) -> None:
    assert INJECT[0] not in annotations_of(cluster.get("namespace", CREATED)), metadata(cluster.get("namespace", CREATED))


def test_4_a_second_kubeconfig_for_the_same_cluster_replaces_nothing(cluster: LiveCluster, second_kubeconfig: str) -> None:
    """The provider reads its kubeconfig through the project's `.kubeconfig/<stack>` link (the same path on every
    machine) and its identity is the cluster's name: another file changes nothing; a renamed context (a changed
    `context` key) updates the provider alone."""
    run = cluster.run(["pulumi", "preview", "--stack", "target", "--json", "--non-interactive"], cwd=cluster.project, timeout=600)
    assert run.returncode == 0, run.said()
    plan = json.loads(run.stdout)
    changed = {step["urn"].rsplit("::", 1)[-1]: step["op"] for step in plan["steps"] if step["op"] != "same"}
    summary = plan["changeSummary"]
    if second_kubeconfig == "target":
        assert changed == {} and set(summary) == {"same"} and summary["same"] > 100, (changed, summary)
        print(f"\n[safety] {second_kubeconfig}: {summary}")
        return
    assert changed == {"cluster": "update"}, changed
    assert set(summary) == {"same", "update"} and summary["update"] == 1 and summary["same"] > 100, summary
    (provider,) = [step for step in plan["steps"] if step["urn"].endswith("pulumi:providers:kubernetes::cluster")]
    before_inputs, after_inputs = provider["oldState"]["inputs"], provider["newState"]["inputs"]
    differ = {key for key in {*before_inputs, *after_inputs} if before_inputs.get(key) != after_inputs.get(key)}
    assert differ == {"context"}, {key: (before_inputs.get(key), after_inputs.get(key)) for key in differ}
    assert after_inputs["kubeconfig"] == ".kubeconfig/target" and after_inputs["clusterIdentifier"] == "target"
    print(f"\n[safety] {second_kubeconfig}: {summary}, the provider's inputs that differ: {sorted(differ)}")


@pytest.mark.parametrize("second_kubeconfig", ["same-context-name"], indirect=True)
def test_4_a_second_kubeconfig_for_the_same_cluster_previews_no_change(cluster: LiveCluster, second_kubeconfig: str) -> None:
    run = cluster.driver("preview", "--stack", "target", "--expect-no-changes", "--json")
    stacks = json.loads(run.stdout).get("stacks")
    if not stacks:  # stopped before the engine ran: not what this test is about
        raise RuntimeError(run.said())
    (stack,) = stacks
    assert run.returncode == 0 and stack["succeeded"] and set(stack["changes"]) == {"same"}, stack


def test_5_destroy_leaves_the_gateway_api_crds_and_routes_that_were_there(cluster: LiveCluster, before: dict[str, str]) -> None:
    run = cluster.driver("destroy", "--stack", "target", "--delete-trust-anchor")
    assert run.returncode == 0, run.said()
    after = inventory(cluster)
    # It did destroy: the control plane's namespace and Linkerd's own CRDs (not marked `keep`) are going or gone.
    for namespace in ("linkerd", "emissary"):
        found = cluster.get("namespace", namespace)
        assert found is None or "deletionTimestamp" in metadata(found), (namespace, metadata(found))
    crds = cluster.get("crd")["items"]
    assert [
        metadata(c)["name"] for c in crds if c["spec"]["group"].endswith("linkerd.io") and "deletionTimestamp" not in metadata(c)
    ] == []
    kept = [key for key in others(before) if key.startswith(("CustomResourceDefinition ", "HTTPRoute "))]
    assert f"HTTPRoute {ROUTES}/web" in kept and len(kept) >= 2, others(before)
    assert uids(after, *kept) == uids(before, *kept)
    users = cluster.get("namespace", USERS)
    assert metadata(users)["uid"] == before[f"Namespace /{USERS}"] and INJECT[0] not in annotations_of(users)
    assert cluster.get("configmap", "settings", "-n", USERS)["data"] == {"owner": "team a"}
    assert cluster.get("namespace", CREATED) is not None, "the namespace let go of in step 3 went with destroy"
    swapped = cluster.get("namespace", SWAPPED)
    assert swapped is not None and "deletionTimestamp" not in metadata(swapped), (
        "the namespace listed as existing went with destroy"
    )
    assert cluster.get("deployment", "orders", "-n", SWAPPED) is not None
