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
# The local servers force a few config values of a copy of the committed stacks (nothing in the
# program changes for the test): e2e/tier.sh lists them at copy_project. The real webhook servers,
# where built: Linkerd's proxy injector, ServiceProfile and policy validators (then Linkerd runs in HA) and
# Emissary's apiext run as local processes on their Services' loopback ClusterIPs (e2e/webhooks.sh);
# missing, the run says so loudly. After up it prints how long
# each of the target's Deployments took on the API server against how long up awaited it; at the end,
# the PERFORMANCE line of e2e/perf.sh (the target's objects with kubectl on a fresh API server).
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
tier_init full "$@"
LINKERD=$B/linkerd-edge-26.8.3
find_tools "$LINKERD"
stop_if_missing "END-TO-END TIER NOT RUN (e2e/full.sh): these tools are missing:"
emissary_files
start_work

started=$SECONDS
start_cluster target 127.0.100.0/24 127.1.0.0/16
start_cluster source 127.0.101.0/24 127.2.0.0/16
check_loopback target; check_loopback source
say "two clusters up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), 3 kwok nodes each, services on 127.0.100.0/24 and 127.0.101.0/24"
webhook_servers target source
export E2E_INJECTOR_SERVED=${WEBHOOK_INJECTOR:+1} E2E_APIEXT_SERVED=${WEBHOOK_APIEXT:+1}
export E2E_LINKERD_HA=$WEBHOOK_LINKERD_HA  # webhooks_check: true only when all three of Linkerd's are served
copy_project
use_engine
say_engine

live() { "$ROOT/venv/bin/python" "$ROOT/e2e/live.py" "$@"; }
# Both stacks' whole state, decrypted: no identity key in it, in any form (e2e/live.py no-keys-in-state).
no_keys_in_state() {
  local stack
  for stack in target source; do
    (cd "$PROJECT" && pulumi stack export --stack "$stack" --show-secrets) > "$WORK/state-$stack.json"
  done
  live no-keys-in-state "$WORK/state-target.json" "$WORK/state-source.json"
}

t_up=$(driver up)
target_up_s=$(stack_seconds target "$WORK/up.log")
say "up (target, then source): ${t_up}s"
deployment_times target "$WORK/up.log"
check_loopback target; check_loopback source
live after-up
no_keys_in_state
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
# the first due: it lives 90 days less). The source re-issues it from the anchor in the target cluster.
(cd "$PROJECT" && ./aes-linkerd2 certs) 2>/dev/null | sed 's/^/    /' >&2
due_day=$( (cd "$PROJECT" && ./aes-linkerd2 outputs --stack source) 2>/dev/null | python3 -c '
import datetime, json, sys
own = json.load(sys.stdin)["source"]["identityIssuers"]["source"]["notAfter"]
print((datetime.datetime.fromisoformat(own.replace("Z", "+00:00")) - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
live issuers > "$WORK/issuers-before.json"
export AES_LINKERD2_NOW=$due_day
if (cd "$PROJECT" && ./aes-linkerd2 certs) > "$WORK/certs-due.txt" 2>&1; then
  cat "$WORK/certs-due.txt" >&2; say "FAILED: certs did not mark the due issuer on $due_day"; exit 1
fi
sed 's/^/    /' "$WORK/certs-due.txt" >&2
t_renew=$(driver up)
grep -q "the source issuer expires" "$WORK/up.log" || { say "FAILED: up did not say it renews the source's issuer"; exit 1; }
live after-renewal "$WORK/issuers-before.json"
no_keys_in_state
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
  no_keys_in_state
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
t_destroy=$(driver destroy --delete-trust-anchor)
say "destroy (source, then target): ${t_destroy}s"
live after-destroy
performance "$target_up_s" "$target_preview_s" || true
say "passed in $((SECONDS - started))s (Emissary $EMISSARY_VERSION): up ${t_up}s, no-change preview ${t_preview}s, second up ${t_up2}s, refresh ${t_refresh}s, renewal ${t_renew}s, rotation ${t_rotation[*]}, destroy ${t_destroy}s"
[ -n "$WEBHOOK_INJECTOR" ] && say "SHOWN: the real proxy injector served both clusters; the meshed pods carry its proxy"
[ -n "$WEBHOOK_APIEXT" ] && say "SHOWN: Emissary's real CRDs (v2 stored), v3alpha1 written through the real apiext conversion"
[ "$EMISSARY_VERSION" = 4.1.0 ] && say "SHOWN: Emissary 4.1.0 from its two real charts (rendered by the real helm): v3alpha1 CRDs alone, no apiext"
$WEBHOOK_LINKERD_HA && say "SHOWN: Linkerd in HA: 3 replicas on distinct nodes, PDBs, its three webhooks fail closed, each served by the real server"
say "NOT SHOWN here (no real pods):"
$WEBHOOK_LINKERD_HA || say "  Linkerd in HA (linkerdHa forced false: not every webhook server is built, e2e/webhooks.sh --check),"
[ -n "$WEBHOOK_INJECTOR" ] || say "  the proxy injector serving its webhook (not built: e2e/webhooks.sh --check),"
[ -n "$WEBHOOK_APIEXT" ] || [ "$EMISSARY_VERSION" = 4.1.0 ] || say "  Emissary's v3alpha1 conversion webhook (not built; a stand-in CRD stores v3alpha1),"
say "  the data-plane probes of \`linkerd multicluster check\`/\`gateways\`, traffic through the gateway."
say "  The kind job in .github/workflows runs those."
