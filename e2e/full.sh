#!/usr/bin/env bash
# The whole program on the real engine: two local clusters (target and source), the Pulumi CLI, the
# kubernetes and command providers, the Python language host and the linkerd CLI, all real, driven
# through ./aes-linkerd2 as a user runs it: up (target, then source, with the Link made by the real
# link-gen against the target's API server), no-change preview, second up, refresh, an issuer renewal,
# a trust anchor rotation (three ups), destroy (source first). Every check reads the live objects with kubectl, not what Pulumi reports.
#
#   e2e/full.sh                      needs the tool cache (CONTRIBUTING.md); exits 2 when a tool is missing
#   e2e/full.sh --skip-if-missing    exits 0 instead, after saying loudly what did not run (CI)
#
# What the local servers force, each a config value of a copy of the committed stacks (nothing in the
# program changes for the test):
#   context/targetContext   the local clusters' contexts, `target` and `source`, each in its own
#   kubeconfig/targetKubeconfig  kubeconfig file (with one file holding both contexts, the source's
#                            provider awaited the source's proxy injector for ever: still open)
#   linkerdHa                true (the page's HA control plane: 3 replicas of each controller, required pod
#                            anti-affinity over the 3 kwok nodes, PodDisruptionBudgets) when all three of
#                            Linkerd's webhook servers are served here (e2e/webhooks.sh: the proxy injector,
#                            the ServiceProfile validator and the policy validator, the Rust policy controller):
#                            HA's webhooks fail closed (failurePolicy Fail) and the multicluster extension
#                            creates policy Servers. With any one missing, false, and the run says LOUDLY which
#                            (without HA they are Ignore, and a call to an unserved loopback ClusterIP ends at once)
#   gatewayAddresses         the gateway Service has no load balancer here: 127.0.0.1
#   verify=false             `linkerd multicluster check` and `gateways` probe running proxies; both run
#                            after `up` anyway, and what they report is printed, not asserted
#   edgeStackCrds            only without the hand-built apiext (e2e/webhooks.sh --check): Emissary's own
#                            CRDs store v2 and convert v3alpha1 through the emissary-apiext webhook; with
#                            no server, the same CRDs with v3alpha1 stored and no conversion (STAND-IN)
# The real webhook servers, where built: Linkerd's proxy injector, ServiceProfile and policy validators and
# Emissary's apiext run as local processes on their Services' loopback ClusterIPs (e2e/webhooks.sh);
# missing, the run says so loudly.
# STAND-IN: an empty Endpoints object for a Service the endpoints controller gave none (kwok's loopback pod
# IPs are refused in Endpoints; pulumi-kubernetes would await such a Service for 10 minutes; e2e/webhooks.sh).
#   edgeStackManifest        Emissary 3.9.1's release manifest, read from a file (no internet here)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${E2E_CACHE:-$HOME/.cache/linkerd-aes-e2e}
B=$CACHE/bin
SKIP_IF_MISSING=false
[ "${1:-}" = --skip-if-missing ] && SKIP_IF_MISSING=true
say() { printf '[full] %s\n' "$*" >&2; }

# --- the tools --------------------------------------------------------------------------------
LINKERD=$B/linkerd-edge-26.8.3
PYTHON_HOST_DIR=$CACHE/plugins/python   # hand-built from pulumi/pulumi's source (CONTRIBUTING.md)
COMMAND_DIR=$CACHE/plugins/command
missing=()
for tool in "$B/pulumi" "$B/pulumi-resource-kubernetes" "$COMMAND_DIR/pulumi-resource-command" \
  "$B/kube-apiserver" "$B/kube-controller-manager" "$B/kube-scheduler" "$B/kubectl" "$B/etcd" "$B/kwok" "$LINKERD"; do
  [ -x "$tool" ] || missing+=("$tool")
done
if [ ! -x "$PYTHON_HOST_DIR/pulumi-language-python" ]; then
  if [ -x "$B/pulumi-language-python" ]; then
    PYTHON_HOST_DIR=$B
    say "WARNING: the hand-built Python language host is missing; using the v3.68.0 fallback in $B"
  else
    missing+=("$PYTHON_HOST_DIR/pulumi-language-python")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "==========================================================================================="
    echo "END-TO-END TIER NOT RUN (e2e/full.sh): these tools are missing:"
    printf '  %s\n' "${missing[@]}"
    echo "Build them as CONTRIBUTING.md says (e2e/build-tools.sh, and the hand-built linkerd CLI,"
    echo "pulumi-command provider and Python language host)."
    echo "==========================================================================================="
  } >&2
  $SKIP_IF_MISSING && exit 0
  exit 2
fi
# shellcheck disable=SC1091
. "$CACHE/versions.env"

REFERENCE=${E2E_REFERENCE:-$ROOT/../shared/reference/emissary}
EMISSARY_CRDS=$REFERENCE/emissary-crds.v3.9.1.yaml
EMISSARY_MANIFEST=$REFERENCE/emissary-emissaryns.v3.9.1.yaml
for file in "$EMISSARY_CRDS" "$EMISSARY_MANIFEST"; do
  [ -f "$file" ] || { say "missing $file (set E2E_REFERENCE to a folder with Emissary 3.9.1's release files)"; exit 2; }
done

scripts/setup
WORK=$(mktemp -d /tmp/aes-linkerd2-full.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
export KUBECONFIG=$WORK/kubeconfig
# shellcheck source=e2e/cluster.sh
. "$ROOT/e2e/cluster.sh"

started=$SECONDS
start_cluster target 127.0.100.0/24 127.1.0.0/16
start_cluster source 127.0.101.0/24 127.2.0.0/16
check_loopback target; check_loopback source
say "two clusters up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), 3 kwok nodes each, services on 127.0.100.0/24 and 127.0.101.0/24"
# shellcheck source=e2e/webhooks.sh
. "$ROOT/e2e/webhooks.sh"
webhooks_check
serve_webhooks target; serve_webhooks source
export E2E_INJECTOR_SERVED=${WEBHOOK_INJECTOR:+1} E2E_APIEXT_SERVED=${WEBHOOK_APIEXT:+1}
export E2E_LINKERD_HA=$WEBHOOK_LINKERD_HA  # webhooks_check: true only when all three of Linkerd's are served
STACK_CRDS=$EMISSARY_CRDS
[ -n "$WEBHOOK_APIEXT" ] || STACK_CRDS=$WORK/emissary-crds.no-webhook.yaml

# --- a copy of the project with the committed stacks, changed only where the local servers force it ---
PROJECT=$WORK/project
mkdir -p "$PROJECT"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$PROJECT"
ln -sfn "$ROOT/venv" "$PROJECT/venv"  # -n: a worktree whose venv is itself a link (git lists it) copied one
python3 - "$EMISSARY_CRDS" "$WORK/emissary-crds.no-webhook.yaml" <<'EOF'
import sys, yaml
documents = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for document in documents:
    if document["kind"] == "CustomResourceDefinition" and document["spec"].get("conversion", {}).get("strategy") == "Webhook":
        names = [v["name"] for v in document["spec"]["versions"]]
        for version in document["spec"]["versions"]:
            version["storage"] = version["name"] == ("v3alpha1" if "v3alpha1" in names else names[-1])
        document["spec"]["conversion"] = {"strategy": "None"}
yaml.safe_dump_all(documents, open(sys.argv[2], "w"), sort_keys=False)
EOF
"$ROOT/venv/bin/python" - "$PROJECT" "$STACK_CRDS" "$EMISSARY_MANIFEST" "$WORK" <<'EOF'
import os, sys, yaml
project, crds, manifest = sys.argv[1:4]
work = sys.argv[4]
forced = {
    "target": {"context": "target", "kubeconfig": f"{work}/target/kubeconfig"},
    "source": {
        "context": "source",
        "kubeconfig": f"{work}/source/kubeconfig",
        "targetContext": "target",
        "targetKubeconfig": f"{work}/target/kubeconfig",
        "gatewayAddresses": ["127.0.0.1"],
        "verify": False,
    },
}
for stack, values in forced.items():
    path = f"{project}/Pulumi.{stack}.yaml"
    document = yaml.safe_load(open(path))
    ha = os.environ["E2E_LINKERD_HA"] == "true"
    values.update({"linkerdHa": ha, "edgeStackCrds": crds, "edgeStackManifest": manifest})
    document["config"].update({f"aes-linkerd2:{key}": value for key, value in values.items()})
    yaml.safe_dump(document, open(path, "w"), sort_keys=False)
EOF

# --- the real engine, providers and language host -------------------------------------------
export PATH="$PYTHON_HOST_DIR:$COMMAND_DIR:$B:$ROOT/venv/bin:$PATH"
export PULUMI_HOME=$WORK/pulumi-home PULUMI_BACKEND_URL=file://$WORK/state
export PULUMI_CONFIG_PASSPHRASE=full-e2e PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$WORK/state"
say "engine $(pulumi version), language host $(pulumi-language-python -version 2>&1 | head -1) ($PYTHON_HOST_DIR),"
say "  kubernetes provider $PULUMI_KUBERNETES_VERSION, command provider $(pulumi-resource-command -version 2>/dev/null || echo 1.2.1), linkerd $("$LINKERD" version --client --short)"

driver() {  # driver VERB [ARGS...]: ./aes-linkerd2 in the copy; prints its seconds, keeps its log
  local verb=$1 began=$SECONDS; shift
  if ! (cd "$PROJECT" && ./aes-linkerd2 "$verb" "$@") > "$WORK/$verb.log" 2>&1; then
    grep -E "error|failed|\\* " "$WORK/$verb.log" | grep -v "pulumi-language-python" | head -60 >&2
    tail -20 "$WORK/$verb.log" >&2
    say "FAILED: ./aes-linkerd2 $verb $*"
    exit 1
  fi
  echo $((SECONDS - began))
}
live() { "$ROOT/venv/bin/python" "$ROOT/e2e/live.py" "$@"; }

t_up=$(driver up)
stack_seconds() { awk -v stack="$1" '$1 == stack && $2 == "ok" {print $NF}' "$2" | tail -1; }
target_up_s=$(stack_seconds target "$WORK/up.log")
say "up (target, then source): ${t_up}s"
check_loopback target; check_loopback source
live after-up
# `status` answers from the live clusters. Where nothing real runs, its lines fail, and only those:
# no Service has endpoints here (the API server refuses kwok's loopback pod IPs in Endpoints), so
# Linkerd's webhooks show none, and no service mirror runs, so nothing is mirrored; whether the
# gateway is alive, and its latency, is "unknown" (only the service mirror's probe knows).
status_rc=0
(cd "$PROJECT" && ./aes-linkerd2 status --svg "$WORK/status.svg") > "$WORK/status.txt" 2>&1 || status_rc=$?
sed 's/^/    /' "$WORK/status.txt" >&2
(cd "$PROJECT" && ./aes-linkerd2 status --json) > "$WORK/status.json" 2>/dev/null || true
"$ROOT/venv/bin/python" - "$WORK/status.json" "$status_rc" <<'EOF' || { say "FAILED: status"; exit 1; }
import json, sys
report, rc = json.load(open(sys.argv[1])), int(sys.argv[2])
clusters = {c["stack"]: c for c in report["clusters"]}
assert [(c["stack"], c["context"]) for c in report["clusters"]] == [("target", "target"), ("source", "source")], clusters
def states(stack):
    return {check["name"]: (check["state"], check["detail"]) for check in clusters[stack]["checks"]}
target, source = states("target"), states("source")
for stack, checks in (("target", target), ("source", source)):
    for name in ("linkerd/linkerd-identity", "linkerd/linkerd-destination", "linkerd/linkerd-proxy-injector",
                 "emissary/emissary-ingress", "meshed", "namespace default"):
        assert checks[name][0] == "ok", (stack, name, checks[name])
    for name, (state, detail) in checks.items():
        needs_pods = name.startswith("webhook ") and "0 endpoint(s)" in detail
        needs_mirror = name == "gateway mirror" or name.startswith("mirror ")
        assert state == "ok" or needs_pods or needs_mirror or name == "gateway alive, latency", (stack, name, state, detail)
for name in ("gateway ports", "gateway annotations", "default/qotm-linkerd2"):
    assert target[name][0] == "ok", (name, target[name])
assert source["Link target"][0] == "ok" and "127.0.0.1:4143" in source["Link target"][1], source["Link target"]
assert source["gateway alive, latency"][0] == "unknown"
assert clusters["target"]["gatewayPorts"] == ["mc-probe 80->8080", "https 443->8443", "mc-gateway 4143->4143"]
assert rc == (0 if report["healthy"] else 1), (rc, report["healthy"])
print(f"[full] status: {sum(len(c['checks']) for c in clusters.values())} checks read live, exit {rc}", file=sys.stderr)
EOF
[ -z "${E2E_STATUS_SVG:-}" ] || cp "$WORK/status.svg" "$E2E_STATUS_SVG"
webhooks_served target; webhooks_served source
t_preview=$(driver preview --expect-no-changes)
target_preview_s=$(stack_seconds target "$WORK/preview.log")
say "preview of both, no changes: ${t_preview}s"
t_up2=$(driver up --expect-no-changes)
say "second up, no changes: ${t_up2}s"
t_refresh=$(driver refresh --expect-no-changes)
say "refresh, no drift: ${t_refresh}s"
say "what the linkerd CLI says from the source (needs running proxies for its probes; shown, not asserted;"
say "its version check of versioncheck.linkerd.io is sent to a dead loopback proxy, so it leaves nothing):"
HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.0/8 timeout 120 "$LINKERD" --kubeconfig "$WORK/source/kubeconfig" --context source multicluster check --wait 30s 2>&1 \
  | sed 's/^/    /' | tail -30 >&2 || true
HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.0/8 timeout 60 "$LINKERD" --kubeconfig "$WORK/source/kubeconfig" --context source multicluster gateways --wait 10s 2>&1 \
  | sed 's/^/    /' >&2 || true
# Certificates over time, on the clock moved to 30 days before the source's issuer expires (it is
# the first due: the peer issuer lives 90 days less). The target re-issues it; the source applies it.
(cd "$PROJECT" && ./aes-linkerd2 certs) 2>/dev/null | sed 's/^/    /' >&2
due_day=$( (cd "$PROJECT" && ./aes-linkerd2 outputs --stack target) 2>/dev/null | python3 -c '
import datetime, json, sys
peer = json.load(sys.stdin)["target"]["identityIssuers"]["peer"]["notAfter"]
print((datetime.datetime.fromisoformat(peer.replace("Z", "+00:00")) - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
live issuers > "$WORK/issuers-before.json"
export AES_LINKERD2_NOW=$due_day
if (cd "$PROJECT" && ./aes-linkerd2 certs) > "$WORK/certs-due.txt" 2>&1; then
  cat "$WORK/certs-due.txt" >&2; say "FAILED: certs did not mark the due issuer on $due_day"; exit 1
fi
sed 's/^/    /' "$WORK/certs-due.txt" >&2
t_renew=$(driver up)
grep -q "the peer issuer expires" "$WORK/up.log" || { say "FAILED: up did not say it renews the peer issuer"; exit 1; }
live after-renewal "$WORK/issuers-before.json"
# Back on today's clock: the new issuer (made today, as certificates always are) is far from due.
unset AES_LINKERD2_NOW
t_renew_again=$(driver preview --expect-no-changes)
say "renewal on $due_day: up ${t_renew}s re-issued the source's issuer (said so first); then no changes (${t_renew_again}s)"
# Trust anchor rotation: one up per step of trustAnchorRotation on the target (bundle, issuers,
# drop-old); each preview says its step first, each up reaches both clusters (the source follows the
# target's outputs), checked on the live ConfigMaps and Secrets; then keeping or removing the value
# changes nothing, and a skipped step is refused before anything is registered.
rotation() {  # rotation VALUE|"": sets (or removes) trustAnchorRotation in the target's stack file
  "$ROOT/venv/bin/python" - "$PROJECT/Pulumi.target.yaml" "$1" <<'EOF'
import sys, yaml
path, value = sys.argv[1:3]
document = yaml.safe_load(open(path))
document["config"].pop("aes-linkerd2:trustAnchorRotation", None)
if value:
    document["config"]["aes-linkerd2:trustAnchorRotation"] = value
yaml.safe_dump(document, open(path, "w"), sort_keys=False)
EOF
}
live identity > "$WORK/identity-before-bundle.json"
t_rotation=()
before=$WORK/identity-before-bundle.json
for step in bundle issuers drop-old; do
  rotation "$step"
  driver preview --stack target > /dev/null
  grep -q "trust anchor rotation, step $step" "$WORK/preview.log" || { say "FAILED: the preview did not say step $step"; exit 1; }
  t_rotation+=("$step $(driver up)s")
  grep -q "trust anchor rotation, step $step" "$WORK/up.log" || { say "FAILED: up did not say step $step"; exit 1; }
  live after-rotation "$step" "$before" > "$WORK/identity-after-$step.json"
  before=$WORK/identity-after-$step.json
done
(cd "$PROJECT" && ./aes-linkerd2 certs) 2>/dev/null | sed 's/^/    /' >&2
t_kept=$(driver preview --expect-no-changes)
rotation ""
t_removed=$(driver preview --expect-no-changes)
rotation issuers
if (cd "$PROJECT" && ./aes-linkerd2 preview --stack target) > "$WORK/skipped.log" 2>&1; then
  say "FAILED: issuers without bundle was not refused"; exit 1
fi
grep -q "config aes-linkerd2:trustAnchorRotation = 'issuers': skips a step or goes back" "$WORK/skipped.log" \
  || { tail -20 "$WORK/skipped.log" >&2; say "FAILED: the skipped step's error does not name the key"; exit 1; }
rotation ""
say "rotation: ${t_rotation[*]}; then no changes with drop-old kept (${t_kept}s) and removed (${t_removed}s); a skipped step refused"
t_destroy=$(driver destroy)
say "destroy (source, then target): ${t_destroy}s"
live after-destroy
# --- the same objects with kubectl, on a fresh API server -------------------------------------------
# `up` of the target against `kubectl apply --server-side` of what it applies (render's YAML, in the
# page's order: namespaces and CRDs, then the rest, then the custom resources, then waiting for every
# Deployment, as `up` waits), and the no-change preview against `kubectl diff --server-side`.
kubectl_bench() {
  local k=("$B/kubectl" --context bench) began
  start_cluster bench 127.0.105.0/24 127.5.0.0/16 && check_loopback bench && serve_webhooks bench || return 1
  (cd "$PROJECT" && ./aes-linkerd2 render --stack target --out "$WORK/rendered") > "$WORK/render.log" 2>&1 || return 1
  "$ROOT/venv/bin/python" - "$WORK/rendered/target" "$WORK/bench-objects" <<'EOF' || return 1
import pathlib, sys, yaml
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir()
groups = {"1-namespaces": [], "2-crds": [], "3-objects": [], "4-custom": [], "5-patches": []}
for path in sorted(source.glob("*.yaml")):
    if path.name == "steps.yaml":
        continue
    body = yaml.safe_load(path.read_text())
    if body["kind"] == "Secret":  # render masks secret values; any valid ones apply the same way
        keys = ["tls.crt", "tls.key"] if body.get("type") == "kubernetes.io/tls" else ["masked"]
        for field, value in (("data", "eA=="), ("stringData", "x")):
            if body.get(field) == "[secret]":
                body[field] = dict.fromkeys(keys, value)
            elif isinstance(body.get(field), dict):
                body[field] = {k: value if v == "[secret]" else v for k, v in body[field].items()}
    if path.name.split("-", 1)[0].endswith("patch"):  # the page's `kubectl patch`es, after what they patch
        group = "5-patches"
    elif body["kind"] in ("Namespace", "CustomResourceDefinition"):
        group = "1-namespaces" if body["kind"] == "Namespace" else "2-crds"
    else:
        group = "4-custom" if "getambassador.io" in body["apiVersion"] or ".linkerd.io" in body["apiVersion"] else "3-objects"
    if body["kind"].endswith("WebhookConfiguration"):  # masked certs: no server can answer; HA's fail closed
        body["webhooks"] = [{**hook, "failurePolicy": "Ignore"} for hook in body["webhooks"]]
    groups[group].append(body)
for name, bodies in groups.items():
    (out / f"{name}.yaml").write_text(yaml.safe_dump_all(bodies))
EOF
  began=$(date +%s.%N)
  for group in 1-namespaces 2-crds; do
    "${k[@]}" apply --server-side --force-conflicts -f "$WORK/bench-objects/$group.yaml" >/dev/null || return 1
  done
  "${k[@]}" wait --for=condition=Established crd --all --timeout=120s >/dev/null || return 1
  for group in 3-objects 4-custom; do
    [ "$group" = 3-objects ] || webhooks_ready bench || return 1
    "${k[@]}" apply --server-side --force-conflicts -f "$WORK/bench-objects/$group.yaml" >/dev/null || return 1
  done
  "${k[@]}" apply --server-side --force-conflicts --field-manager page-patches -f "$WORK/bench-objects/5-patches.yaml" \
    >/dev/null || return 1
  "${k[@]}" wait --for=condition=Available deploy --all -A --timeout=600s >/dev/null || return 1
  kubectl_apply_s=$(python3 -c "import time; print(f'{time.time() - $began:.1f}')")
  # What `up` awaits of each Deployment, its rollout complete (the patched template's too), where
  # Available above is already true while the old pods still serve: the same objects, kubectl's way.
  "${k[@]}" get deploy -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' \
    | while read -r namespace deployment; do
        "${k[@]}" -n "$namespace" rollout status "deploy/$deployment" --timeout=600s >/dev/null || exit 1
      done || return 1
  kubectl_rollout_s=$(python3 -c "import time; print(f'{time.time() - $began:.1f}')")
  began=$(date +%s.%N)
  local group status=0
  for group in 1-namespaces 2-crds 3-objects 4-custom; do
    "${k[@]}" diff --server-side --force-conflicts -f "$WORK/bench-objects/$group.yaml" >/dev/null 2>&1 || status=$?
    [ "$status" -le 1 ] || return 1
  done
  "${k[@]}" diff --server-side --force-conflicts --field-manager page-patches -f "$WORK/bench-objects/5-patches.yaml" \
    >/dev/null 2>&1 || status=$?
  [ "$status" -le 1 ] || return 1
  kubectl_diff_s=$(python3 -c "import time; print(f'{time.time() - $began:.1f}')")
}
if kubectl_bench; then
  read -r up_ratio rollout_ratio preview_ratio < <(python3 -c "
print(f'{$target_up_s / $kubectl_apply_s:.2f}x', f'{$target_up_s / $kubectl_rollout_s:.2f}x', f'{$target_preview_s / $kubectl_diff_s:.2f}x')")
  say "PERFORMANCE: target up ${target_up_s}s vs kubectl apply --server-side + wait ${kubectl_apply_s}s (${up_ratio});" \
    "+ every rollout done ${kubectl_rollout_s}s (${rollout_ratio}); no-change preview ${target_preview_s}s vs kubectl diff ${kubectl_diff_s}s (${preview_ratio})"
else
  say "PERFORMANCE NOT MEASURED: the kubectl comparison failed (see $WORK/render.log and the bench cluster's logs)"
fi
say "passed in $((SECONDS - started))s: up ${t_up}s, no-change preview ${t_preview}s, second up ${t_up2}s, refresh ${t_refresh}s, renewal ${t_renew}s, rotation ${t_rotation[*]}, destroy ${t_destroy}s"
[ -n "$WEBHOOK_INJECTOR" ] && say "SHOWN: the real proxy injector served both clusters; the meshed pods carry its proxy"
[ -n "$WEBHOOK_APIEXT" ] && say "SHOWN: Emissary's real CRDs (v2 stored), v3alpha1 written through the real apiext conversion"
$WEBHOOK_LINKERD_HA && say "SHOWN: Linkerd in HA: 3 replicas on distinct nodes, PDBs, its three webhooks fail closed, each served by the real server"
say "NOT SHOWN here (no real pods):"
$WEBHOOK_LINKERD_HA || say "  Linkerd in HA (linkerdHa forced false: not every webhook server is built, e2e/webhooks.sh --check),"
[ -n "$WEBHOOK_INJECTOR" ] || say "  the proxy injector serving its webhook (not built: e2e/webhooks.sh --check),"
[ -n "$WEBHOOK_APIEXT" ] || say "  Emissary's v3alpha1 conversion webhook (not built; a stand-in CRD stores v3alpha1),"
say "  the data-plane probes of \`linkerd multicluster check\`/\`gateways\`, traffic through the gateway."
say "  The kind job in .github/workflows runs those."
