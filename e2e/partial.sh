#!/usr/bin/env bash
# The components that need neither the linkerd CLI nor pulumi-command, on the real Pulumi engine and
# Kubernetes provider against a local API server (e2e/cluster.sh): a quick check of the Edge Stack
# gateway patches alone. The whole program runs in e2e/full.sh. Checks the live objects, not what
# Pulumi reports: up, no-change preview, second up, refresh, destroy.
#   e2e/partial.sh            (about 3 minutes; needs: E2E_TOOLS="pulumi pulumi-python kubernetes kube etcd kwok")
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${E2E_CACHE:-$HOME/.cache/linkerd-aes-e2e}
E2E_TOOLS="pulumi pulumi-python kubernetes kube etcd kwok" e2e/build-tools.sh --check >/dev/null \
  || { echo "e2e/partial.sh: the tool cache is incomplete: run E2E_TOOLS=\"pulumi pulumi-python kubernetes kube etcd kwok\" e2e/build-tools.sh" >&2; exit 2; }
scripts/setup
# shellcheck disable=SC1091
. "$CACHE/versions.env"
B=$E2E_BIN
WORK=$(mktemp -d /tmp/aes-linkerd2-partial.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK" "$ROOT/e2e/partial/Pulumi.partial.yaml"
}
trap cleanup EXIT
say() { printf '[partial] %s\n' "$*" >&2; }
export KUBECONFIG=$WORK/kubeconfig
# shellcheck source=e2e/cluster.sh
. "$ROOT/e2e/cluster.sh"
start_cluster partial 127.0.102.0/24 127.3.0.0/16
check_loopback partial
say "cluster up: $("$B/kubectl" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), 3 kwok nodes"

# --- the program on the real engine --------------------------------------------------------
# The language host built here predates Pulumi.yaml's virtualenv option: venv/bin goes first on PATH.
export PATH="$ROOT/venv/bin:$B:$PATH" PULUMI_HOME="$WORK/home" PULUMI_BACKEND_URL="file://$WORK/state"
export PULUMI_CONFIG_PASSPHRASE=partial PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$WORK/state"
cd "$ROOT/e2e/partial"
pulumi stack init partial --non-interactive >/dev/null
pulumi config set context partial --stack partial
timed() { local started=$SECONDS; "$@" > "$WORK/last.log" 2>&1 || { tail -40 "$WORK/last.log" >&2; exit 1; }; echo $((SECONDS - started)); }
live() { "$B/kubectl" get "$@" -o json; }

t_up=$(timed pulumi up --yes --skip-preview --stack partial)
say "up: ${t_up}s"
live svc -n ambassador edge-stack | python3 -c '
import json, sys
service = json.load(sys.stdin)
ports = [(p["name"], p["port"], p.get("targetPort")) for p in service["spec"]["ports"]]
assert ports == [("mc-probe", 80, 8080), ("https", 443, 8443), ("mc-gateway", 4143, 4143)], ports
notes = service["metadata"]["annotations"]
assert notes["mirror.linkerd.io/gateway-identity"] == "edge-stack.ambassador.serviceaccount.identity.linkerd.cluster.local", notes
assert notes["mirror.linkerd.io/probe-path"] == "/-/ambassador/ready" and notes["mirror.linkerd.io/probe-period"] == "3", notes
'
live deploy -n ambassador edge-stack | python3 -c '
import json, sys
notes = json.load(sys.stdin)["spec"]["template"]["metadata"]["annotations"]
expected = {"linkerd.io/inject": "enabled", "config.linkerd.io/skip-inbound-ports": "80,443",
            "config.linkerd.io/proxy-require-identity-inbound-ports": "4143", "config.linkerd.io/enable-gateway": "true"}
assert expected.items() <= notes.items(), notes
'
live ns default | python3 -c 'import json,sys; assert json.load(sys.stdin)["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}'
live svc qotm-linkerd2 | python3 -c 'import json,sys; assert json.load(sys.stdin)["metadata"]["labels"]["mirror.linkerd.io/exported"] == "true"'
live deploy qotm | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"].get("readyReplicas") == 1, d["status"]'
live mappings.getambassador.io -n ambassador public-health-check | python3 -c '
import json, sys
spec = json.load(sys.stdin)["spec"]
assert spec["rewrite"] == "/ambassador/v0/check_ready" and spec["service"] == "localhost:8877" and spec["bypass_auth"] is True, spec
'
say "live objects after up: as the page leaves them"
t_preview=$(timed pulumi preview --expect-no-changes --stack partial)
say "no-change preview: ${t_preview}s"
t_up2=$(timed pulumi up --yes --expect-no-changes --stack partial)
say "second up, no changes: ${t_up2}s"
t_refresh=$(timed pulumi refresh --yes --stack partial)
t_up3=$(timed pulumi up --yes --expect-no-changes --stack partial)
say "refresh (${t_refresh}s), then up without changes: ${t_up3}s"
t_destroy=$(timed pulumi destroy --yes --stack partial)
say "destroy: ${t_destroy}s"
live ns default | python3 -c 'import json,sys; assert not json.load(sys.stdin)["metadata"].get("annotations"), "default keeps an annotation"'
left=$("$B/kubectl" get deploy,svc,crd,mutatingwebhookconfigurations -A -o name | grep -v '^service/kubernetes$' || true)
[ -z "$left" ] || { echo "left behind: $left" >&2; exit 1; }
"$B/kubectl" get ns ambassador >/dev/null 2>&1 && { echo "namespace ambassador left behind" >&2; exit 1; }
say "after destroy: none of the objects left, the default namespace as it was"
say "passed: up ${t_up}s, no-change preview ${t_preview}s, second up ${t_up2}s, refresh ${t_refresh}s, destroy ${t_destroy}s"
