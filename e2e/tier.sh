# e2e/tier.sh - sourced first by the end-to-end launcher and scripts (clusters.sh, perf.sh, page-line.sh): what they
# share, from the tool check to the PERFORMANCE line. It sources e2e/cluster.sh, e2e/webhooks.sh (and through it
# e2e/identity.sh) and
# e2e/mirror.sh (Linkerd's service mirror as a local process).
#
#   tier_init NAME [--skip-if-missing]  from the repository's root: ROOT, CACHE ($E2E_CACHE or the tool
#                                      cache), B (its bin); `say` prints "[NAME] ..." on stderr
#   find_tools TOOL...                 MISSING: the engine's, providers' and clusters' tools, and the TOOLs,
#                                      that are not there; PYTHON_HOST_DIR (the hand-built language host,
#                                      else the v3.68.0 fallback, said so), COMMAND_DIR
#   stop_if_missing HEADING [LINE...]  with anything in MISSING: a loud banner (HEADING, what is missing,
#                                      the LINEs, by default how to build the tools), then exit 2 (0 with
#                                      --skip-if-missing); else reads the cache's versions.env
#   emissary_files                     EMISSARY_VERSION ($E2E_EMISSARY: 4.1.0, the current line's default, or
#                                      3.9.1), EMISSARY_CRDS, EMISSARY_MANIFEST: 4.1.0's two chart folders (and
#                                      HELM, the cache's helm-4.3.2) or 3.9.1's release files, in $E2E_REFERENCE
#                                      (default ../shared/reference/emissary); exits 2 without
#   start_work                         scripts/setup; WORK (a scratch folder), the PIDS array (killed on exit,
#                                      then WORK removed unless KEEP_WORK is set), KUBECONFIG
#   webhook_servers NAME...            e2e/webhooks.sh's servers for the clusters NAME, where they are built
#   force_config DIR                   a copy of the project in DIR gets the local servers' values (copy_project's)
#   copy_project                       PROJECT: a copy of the repository whose committed stacks are changed
#                                      only where the local servers force it (each is listed at copy_project);
#                                      Emissary's own CRDs where webhook_servers found apiext, else a stand-in
#   use_engine                         PATH and PULUMI_*: the cache's engine, providers and language host, a
#                                      file backend in WORK
#   say_engine                         which engine, language host, providers and linkerd CLI ($LINKERD) run
#   driver VERB [ARGS...]              ./aes-linkerd2 VERB in PROJECT; prints its seconds, keeps WORK/VERB.log;
#                                      on failure prints its errors and exits 1
#   stack_seconds STACK LOG            STACK's own seconds in a driver log
#   slowest_steps STACK LOG            the 15 slowest steps of STACK's up, from the driver's progress in LOG
#   deployment_times STACK LOG         each Deployment on cluster STACK: seconds until the API server had it
#                                      Available (and its last rollout done), beside how long up awaited it
#   critical_path STACK LOG           the dependency graph's critical path of STACK's up (its state's dependencies,
#                                      timed by LOG)
#   upgrade_check REV                  on a fresh target cluster (TARGET_PIDS stopped): the target made by git REV's
#                                      program, then previewed and updated by this one
#   load_now                           the load average (1, 5, 15 minutes), printed beside each figure
#   start_rounds COUNT NAME            ROUNDS (COUNT, default 1; NAME is its variable, named when refused), start_work,
#                                      BASE: the run's folder (each round sets WORK below it), RESULTS=(); the whole
#                                      folder removed at the end
#   end_round                          stops every process of the round, so the next cluster runs alone
#   kubectl_bench STACK                STACK's objects with kubectl on fresh API servers (stopped once measured): all
#                                      at once, until every rollout is done, `kubectl diff`, in the page's order
#   performance UP_S PREVIEW_S         the target's objects with kubectl on fresh API servers (all at once, and
#                                      in the page's order with its waits) against up's UP_S and the no-change
#                                      preview's PREVIEW_S: the PERFORMANCE line; says
#                                      PERFORMANCE NOT MEASURED and returns 1 when the comparison fails
#
# Each function after start_work needs what the ones before it set; e2e/cluster.sh's and
# e2e/webhooks.sh's functions are there for the caller too.
# shellcheck source=e2e/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# shellcheck source=e2e/webhooks.sh
. "$(dirname "${BASH_SOURCE[0]}")/webhooks.sh"
# shellcheck source=e2e/mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/mirror.sh"

tier_init() {
  TIER=$1
  cd "$(dirname "$0")/.."
  ROOT=$PWD
  CACHE=${E2E_CACHE:-$HOME/.cache/aes-linkerd2}
  B=$CACHE/bin
  SKIP_IF_MISSING=false
  [ "${2:-}" = --skip-if-missing ] && SKIP_IF_MISSING=true
  return 0
}
say() { printf '[%s] %s\n' "$TIER" "$*" >&2; }

# --- the tools --------------------------------------------------------------------------------
find_tools() {
  local tool
  PYTHON_HOST_DIR=$CACHE/plugins/python   # hand-built from pulumi/pulumi's source (CONTRIBUTING.md)
  COMMAND_DIR=$CACHE/plugins/command
  MISSING=()
  for tool in "$B/pulumi" "$B/pulumi-resource-kubernetes" "$COMMAND_DIR/pulumi-resource-command" \
    "$B/kube-apiserver" "$B/kube-controller-manager" "$B/kube-scheduler" "$B/kubectl" "$B/etcd" "$B/kwok" "$@"; do
    [ -x "$tool" ] || MISSING+=("$tool")
  done
  # The provider must be the release the lock's SDK asks for: its creates and awaits are what users get.
  local wanted have
  wanted=$(sed -n 's/^pulumi-kubernetes==\([0-9.]*\).*/\1/p' "$ROOT/requirements.lock")
  have=$(sed -n 's/^PULUMI_KUBERNETES_VERSION=//p' "$CACHE/versions.env" 2>/dev/null || true)  # no cache yet: found missing below, not a silent exit
  if [ -x "$B/pulumi-resource-kubernetes" ] && [ "$have" != "$wanted" ]; then
    MISSING+=("$B/pulumi-resource-kubernetes $wanted (the cache has ${have:-an unknown release}; the Go module proxy serves only 4.25.0's commit: build $wanted by hand, CONTRIBUTING.md 'The kubernetes provider')")
  fi
  if [ ! -x "$PYTHON_HOST_DIR/pulumi-language-python" ]; then
    if [ -x "$B/pulumi-language-python" ]; then
      PYTHON_HOST_DIR=$B
      say "WARNING: the hand-built Python language host is missing; using the v3.68.0 fallback in $B"
    else
      MISSING+=("$PYTHON_HOST_DIR/pulumi-language-python")
    fi
  fi
}

stop_if_missing() {
  if [ ${#MISSING[@]} -gt 0 ]; then
    local heading=$1; shift
    [ $# -gt 0 ] || set -- "Build them as CONTRIBUTING.md says (e2e/build-tools.sh, and the hand-built linkerd CLI," \
      "pulumi-command provider and Python language host)."
    {
      echo "==========================================================================================="
      echo "$heading"
      printf '  %s\n' "${MISSING[@]}"
      printf '%s\n' "$@"
      echo "==========================================================================================="
    } >&2
    $SKIP_IF_MISSING && exit 0
    exit 2
  fi
  # shellcheck disable=SC1091
  . "$CACHE/versions.env"
}

emissary_files() {
  local reference=${E2E_REFERENCE:-$ROOT/../shared/reference/emissary} file
  EMISSARY_VERSION=${E2E_EMISSARY:-4.1.0}
  HELM=""
  case $EMISSARY_VERSION in
    4.1.0)  # its two charts, rendered by the real helm; v3alpha1 alone, no apiext to serve
      EMISSARY_CRDS=$reference/charts-4.1.0/emissary-crds
      EMISSARY_MANIFEST=$reference/charts-4.1.0/emissary-ingress
      HELM=$B/helm-4.3.2
      for file in "$EMISSARY_CRDS/Chart.yaml" "$EMISSARY_MANIFEST/Chart.yaml" "$HELM"; do
        [ -e "$file" ] || { say "missing $file (set E2E_REFERENCE to a folder with Emissary 4.1.0's charts; helm: go install helm.sh/helm/v4/cmd/helm@v4.3.2), or E2E_EMISSARY=3.9.1"; exit 2; }
      done ;;
    3.9.1)  # its release YAML: v2 stored, v3alpha1 converted by the real apiext where it is built
      EMISSARY_CRDS=$reference/emissary-crds.v3.9.1.yaml
      EMISSARY_MANIFEST=$reference/emissary-emissaryns.v3.9.1.yaml
      for file in "$EMISSARY_CRDS" "$EMISSARY_MANIFEST"; do
        [ -f "$file" ] || { say "missing $file (set E2E_REFERENCE to a folder with Emissary 3.9.1's release files)"; exit 2; }
      done ;;
    *) say "E2E_EMISSARY must be 4.1.0 or 3.9.1, not $EMISSARY_VERSION"; exit 2 ;;
  esac
}

# --- the scratch folder, and what is killed when the script ends --------------------------------
start_work() {
  scripts/setup
  WORK=$(mktemp -d "/tmp/aes-linkerd2-$TIER.XXXXXX")
  PIDS=()
  trap cleanup EXIT
  export KUBECONFIG=$WORK/kubeconfig
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

webhook_servers() {
  local name
  webhooks_check
  if [ "${EMISSARY_VERSION:-}" = 4.1.0 ] && [ -n "$WEBHOOK_APIEXT" ]; then
    say "Emissary 4.1.0's CRDs serve v3alpha1 alone: no conversion webhook, so no apiext to serve"
    WEBHOOK_APIEXT=""
  fi
  for name in "$@"; do serve_webhooks "$name"; done
}

# --- a copy of the project with the committed stacks, changed only where the local servers force it ---
# Each a config value (nothing in the program changes for the test):
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
#   edgeStackVersion         EMISSARY_VERSION (emissary_files; 4.1.0 is also the stacks' default)
#   edgeStackCrds            4.1.0: its CRD chart's folder (ghcr.io is out of reach here). 3.9.1: its CRD
#                            manifest; only without the hand-built apiext (e2e/webhooks.sh --check): Emissary's own
#                            CRDs store v2 and convert v3alpha1 through the emissary-apiext webhook; with
#                            no server, the same CRDs with v3alpha1 stored and no conversion (STAND-IN)
#   edgeStackManifest        4.1.0: its main chart's folder; 3.9.1: its release manifest, read from a file
#   helm                     4.1.0: the cache's hand-built helm-4.3.2 (get.helm.sh is out of reach here)
# STAND-IN: an empty Endpoints object for a Service the endpoints controller gave none (kwok's loopback pod
# IPs are refused in Endpoints; pulumi-kubernetes would await such a Service for 10 minutes; e2e/webhooks.sh).
copy_project() {
  PROJECT=$WORK/project
  mkdir -p "$PROJECT"
  git ls-files -co --exclude-standard -z -- . ":(exclude)venv" | tar --null -T - -cf - | tar -xf - -C "$PROJECT"
  force_config "$PROJECT"
}
# force_config DIR: a project's copy (DIR) with the local servers' values in its stack files, and the venv linked.
force_config() {
  local crds=$EMISSARY_CRDS
  ln -sfn "$ROOT/venv" "$1/venv"
  if [ -z "$WEBHOOK_APIEXT" ] && [ "$EMISSARY_VERSION" = 3.9.1 ]; then
    crds=$WORK/emissary-crds.no-webhook.yaml
    python3 - "$EMISSARY_CRDS" "$crds" <<'EOF'
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
  fi
  "$ROOT/venv/bin/python" - "$1" "$crds" "$EMISSARY_MANIFEST" "$WORK" "${WEBHOOK_LINKERD_HA:-false}" \
    "$EMISSARY_VERSION" "$HELM" <<'EOF'
import sys, yaml
project, crds, manifest = sys.argv[1:4]
ha = sys.argv[5] == "true"  # webhooks_check: true only when all three of Linkerd's webhooks are served
work = sys.argv[4]
emissary = {"edgeStackVersion": sys.argv[6], **({"helm": sys.argv[7]} if sys.argv[7] else {})}
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
    values.update({"linkerdHa": ha, "edgeStackCrds": crds, "edgeStackManifest": manifest, **emissary})
    document["config"].update({f"aes-linkerd2:{key}": value for key, value in values.items()})
    yaml.safe_dump(document, open(path, "w"), sort_keys=False)
EOF
}

# --- the real engine, providers and language host -------------------------------------------
use_engine() {
  export PATH="$PYTHON_HOST_DIR:$COMMAND_DIR:$B:$ROOT/venv/bin:$PATH"
  export PULUMI_HOME=$WORK/pulumi-home PULUMI_BACKEND_URL=file://$WORK/state
  export PULUMI_CONFIG_PASSPHRASE=$TIER-e2e PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
  mkdir -p "$WORK/state"
}
say_engine() {
  say "engine $(pulumi version), language host $(pulumi-language-python -version 2>&1 | head -1) ($PYTHON_HOST_DIR),"
  say "  kubernetes provider $PULUMI_KUBERNETES_VERSION, command provider $(pulumi-resource-command -version 2>/dev/null || echo 1.2.1), linkerd $("$LINKERD" version --client --short)"
}

driver() {
  local verb=$1 began=$SECONDS; shift
  if ! (cd "$PROJECT" && ./aes-linkerd2 "$verb" "$@") > "$WORK/$verb.log" 2>&1; then
    grep -E "error|failed|\\* " "$WORK/$verb.log" | grep -v "pulumi-language-python" | head -60 >&2
    tail -20 "$WORK/$verb.log" >&2
    say "FAILED: ./aes-linkerd2 $verb $*"
    exit 1
  fi
  echo $((SECONDS - began))
}
stack_seconds() { awk -v stack="$1" '$1 == stack && $2 == "ok" {print $NF}' "$2" | tail -1; }

# --- where up's time went, from the driver's progress (e2e/timings.py) -------------------------------
slowest_steps() {
  say "the slowest steps of up (seconds from the stack's start; objects of one name, of any kind, are one line; components last as long as their children):"
  "$ROOT/venv/bin/python" "$ROOT/e2e/timings.py" slowest "$@"
}
deployment_times() {
  say "each Deployment: seconds from its creation until the API server had it Available (and its last rollout done), against how long up awaited it:"
  "$B/kubectl" --context "$1" get deploy -A -o json > "$WORK/deployments.json"
  "$ROOT/venv/bin/python" "$ROOT/e2e/timings.py" deployments "$@" "$WORK/deployments.json"
}

# The dependency graph's critical path of STACK's up: its registered dependencies (`pulumi stack export`) timed by
# the driver's progress in LOG.
critical_path() {
  say "the critical path of $1's up (seconds from the stack's start: each step waited on the one before it, the dependency that finished last):"
  (cd "$PROJECT" && pulumi stack export --stack "$1") > "$WORK/state-$1.json"
  "$ROOT/venv/bin/python" "$ROOT/e2e/timings.py" critical "$1" "$2" "$WORK/state-$1.json"
}

# upgrade_check REV: the target made again by the program at git REV, then previewed and updated by this one, on a
# fresh target cluster (the webhook servers follow their first Services only: TARGET_PIDS, the cluster's processes and
# its webhook watcher, are stopped first). Says which steps the plan replaces or deletes, and whether the update
# rolled Edge Stack.
upgrade_check() {
  local old=$WORK/project-old k=("$B/kubectl" --context target -n emissary) before after i first
  for ((i = ${#TARGET_PIDS[@]} - 1; i >= 0; i--)); do
    kill "${TARGET_PIDS[i]}" 2>/dev/null && wait "${TARGET_PIDS[i]}" 2>/dev/null || true
  done
  rm -rf "$WORK/target"
  first=${#PIDS[@]}
  start_cluster target 127.0.100.0/24 127.1.0.0/16 && check_loopback target && serve_webhooks target || return 1
  mkdir -p "$old"
  git -C "$ROOT" archive "$1" | tar -x -C "$old"
  force_config "$old"
  PROJECT=$old driver up --stack target > /dev/null
  before=$("${k[@]}" get deploy emissary-ingress -o jsonpath='{.metadata.generation}')
  driver preview --stack target > /dev/null
  say "UPGRADE from $1: what the preview updates, replaces or deletes (none when empty):"
  grep -E '^\[target\] preview: [0-9]+ done, [0-9:]+  (update|replace|create-replacement|delete-replaced|delete) ' "$WORK/preview.log" \
    | awk '{print "    " $6 " " $7}' | sort -u >&2 || true
  tail -4 "$WORK/preview.log" >&2
  driver up --stack target > /dev/null
  after=$("${k[@]}" get deploy emissary-ingress -o jsonpath='{.metadata.generation}')
  say "UPGRADE from $1: Edge Stack's Deployment generation $before before the update, $after after; its pod template's annotations:"
  "${k[@]}" get deploy emissary-ingress -o jsonpath='{.spec.template.metadata.annotations}' >&2
  echo >&2
  _stop_from "$first"  # the API server before its etcd: stopped the other way round, it hung in its shutdown
}

# --- the same objects with kubectl, on a fresh API server -------------------------------------------
# `up` of the target against `kubectl apply --server-side` of what it applies (render's YAML, in the
# page's order: namespaces and CRDs, then the rest, then the custom resources, then waiting for every
# Deployment, as `up` waits), and the no-change preview against `kubectl diff --server-side`.
# Helpers of the two benches; the arguments are kubectl and its --context.
_seconds_since() { python3 -c "import time; print(f'{time.time() - $1:.1f}')"; }
_crds_established() { "$@" wait --for=condition=Established crd --all --timeout=120s >/dev/null; }
_every_rollout_done() {  # what `up` awaits of each Deployment: its rollout complete, the patched template's too
  local namespace deployment
  "$@" get deploy -A -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' \
    | while read -r namespace deployment; do
        "$@" -n "$namespace" rollout status "deploy/$deployment" --timeout=600s >/dev/null || exit 1
      done
}

# The machine's load average (1, 5, 15 minutes), printed beside each figure: the machine is shared.
load_now() { cut -d' ' -f1-3 /proc/loadavg; }
start_rounds() {
  ROUNDS=${1:-1}
  [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { say "$2 must be a positive whole number, not '$ROUNDS'"; exit 2; }
  start_work
  BASE=$WORK
  trap 'WORK=$BASE; cleanup' EXIT
  RESULTS=()
}
end_round() { _stop_from 0; }
# Stops what was started after PIDS held N entries (a bench cluster, its webhooks): no idle cluster shares
# the machine with the next figure.
_stop_from() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= $1; i--)); do kill "${PIDS[i]}" 2>/dev/null && wait "${PIDS[i]}" 2>/dev/null || true; done
  PIDS=("${PIDS[@]:0:$1}")
}

# The same objects in the page's order, each step applied when the page applies it and waited for
# where the page waits (`linkerd check` after each install, the CRDs established and emissary-apiext
# available before Edge Stack, Edge Stack available, the QOTM pods watched), on a cluster of its own;
# then every rollout done, as `up` ends. NAME SERVICE_CIDR POD_CIDR: the cluster; DIR the page's steps.
kubectl_page_bench() {
  local k=("$B/kubectl" --context "$1") began dir=$4 file cluster=$1
  start_cluster "$1" "$2" "$3" && check_loopback "$1" && serve_webhooks "$1" || return 1
  apply_step() {  # apply_step STEP: its objects, then its patches under their own field manager
    for file in "$dir/$1.yaml" "$dir/$1-patches.yaml"; do
      [ -f "$file" ] || continue
      "${k[@]}" apply --server-side --force-conflicts --field-manager "page-$1" -f "$file" >/dev/null || return 1
    done
  }
  available() { "${k[@]}" wait --for=condition=Available deploy --all -A --timeout=600s >/dev/null; }
  began=$(date +%s.%N)
  apply_step 1-linkerd-crds && _crds_established "${k[@]}" || return 1
  apply_step 2-linkerd && available || return 1
  apply_step 3-edge-stack-crds && _crds_established "${k[@]}" \
    && available && webhooks_ready "$cluster" || return 1
  apply_step 4-edge-stack && available || return 1
  apply_step 5-namespaces && apply_step 5-qotm && available || return 1
  apply_step 6-inject || return 1
  apply_step 7-multicluster && available || return 1
  apply_step 8-gateway || return 1
  _every_rollout_done "${k[@]}" || return 1
  kubectl_page_s=$(_seconds_since "$began") kubectl_page_load=$(load_now)
}

performance() {
  local up_s=$1 preview_s=$2 up_ratio rollout_ratio page_ratio preview_ratio
  if kubectl_bench target; then
    read -r up_ratio rollout_ratio page_ratio preview_ratio < <(python3 -c "
print(f'{$up_s / $kubectl_apply_s:.2f}x', f'{$up_s / $kubectl_rollout_s:.2f}x', f'{$up_s / $kubectl_page_s:.2f}x', f'{$preview_s / $kubectl_diff_s:.2f}x')")
    say "PERFORMANCE: target up ${up_s}s vs kubectl apply --server-side + wait ${kubectl_apply_s}s (${up_ratio});" \
      "+ every rollout done ${kubectl_rollout_s}s (${rollout_ratio}); in the page's order with its waits ${kubectl_page_s}s (${page_ratio});" \
      "no-change preview ${preview_s}s vs kubectl diff ${kubectl_diff_s}s (${preview_ratio})"
  else
    say "PERFORMANCE NOT MEASURED: the kubectl comparison failed (see $WORK/render.log and the bench cluster's logs)"
    return 1
  fi
}

# kubectl_bench STACK: the stack's objects (render's YAML) with kubectl on fresh API servers, each stopped once
# measured: all at once until Available (kubectl_apply_s) and until every rollout is done (kubectl_rollout_s), the
# no-change diff (kubectl_diff_s), then in the page's order (kubectl_page_s); each *_load the load average then.
# The source's Link and its credentials are made at `up` from the live target (render lists them in
# NOT-RENDERED.md): its baselines lack them.
kubectl_bench() {
  local stack=${1:-target} bench=bench page=page range=5 began group status=0 first=${#PIDS[@]}
  [ "$stack" = target ] || { bench=bench-$stack page=page-$stack range=7; }
  local k=("$B/kubectl" --context "$bench") objects="$WORK/bench-objects-$stack"
  start_cluster "$bench" "127.0.10$range.0/24" "127.$range.0.0/16" && check_loopback "$bench" && serve_webhooks "$bench" || return 1
  (cd "$PROJECT" && ./aes-linkerd2 render --stack "$stack" --out "$WORK/rendered-$stack") > "$WORK/render-$stack.log" 2>&1 || return 1
  "$ROOT/venv/bin/python" - "$WORK/rendered-$stack/$stack" "$objects" <<'EOF' || return 1
import pathlib, sys, yaml
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir()
groups = {"1-namespaces": [], "2-crds": [], "3-objects": [], "4-custom": [], "5-patches": []}
# The page's steps, by the prefix of the program's resource names (the longest prefixes first).
PAGE_STEPS = [
    ("linkerd-crds:", "1-linkerd-crds"), ("linkerd-multicluster:", "7-multicluster"), ("linkerd:", "2-linkerd"),
    ("edge-stack-crds:", "3-edge-stack-crds"), ("edge-stack-linkerd-inject", "6-inject"), ("edge-stack:", "4-edge-stack"),
    ("ns-", "5-namespaces"), ("qotm", "5-qotm"), ("multicluster-target", "8-gateway"), ("multicluster-source", "8-gateway"),
]
# What the page's `linkerd inject` (step 6) and `enable-gateway` patch (step 8) add to Edge Stack's pod template,
# where the program writes them with the Deployment itself: the page's person patches them in, each a rollout.
GATEWAY = "config.linkerd.io/enable-gateway"
def page_annotations(key):
    return key == GATEWAY or key.startswith(("linkerd.io/", "config.linkerd.io/"))
page = {}
for path in sorted(source.glob("*.yaml")):
    if path.name == "steps.yaml":
        continue
    body = yaml.safe_load(path.read_text())
    def valid_bytes(value, key=""):  # render writes [generated] for fresh certificates: any base64 applies the same way
        if isinstance(value, dict):
            return {k: valid_bytes(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [valid_bytes(v, key) for v in value]
        if value == "[generated]" and key in ("data", "stringData"):
            return "[secret]"  # a whole map masked: filled in below as a masked secret is
        return "eA==" if value == "[generated]" and (key == "caBundle" or body["kind"] == "Secret") else value
    body = valid_bytes(body)
    if body["kind"] == "Secret":  # render masks secret values; any valid ones apply the same way
        keys = ["tls.crt", "tls.key"] if body.get("type") == "kubernetes.io/tls" else ["masked"]
        for field, value in (("data", "eA=="), ("stringData", "x")):
            if body.get(field) == "[secret]":
                body[field] = dict.fromkeys(keys, value)
            elif isinstance(body.get(field), dict):
                body[field] = {k: value if v == "[secret]" else v for k, v in body[field].items()}
    patch = path.name.split("-", 1)[0].endswith("patch")
    if patch:  # the page's `kubectl patch`es, after what they patch
        group = "5-patches"
    elif body["kind"] in ("Namespace", "CustomResourceDefinition"):
        group = "1-namespaces" if body["kind"] == "Namespace" else "2-crds"
    else:
        group = "4-custom" if "getambassador.io" in body["apiVersion"] or ".linkerd.io" in body["apiVersion"] else "3-objects"
    if body["kind"].endswith("WebhookConfiguration"):  # masked certs: no server can answer; HA's fail closed
        body["webhooks"] = [{**hook, "failurePolicy": "Ignore"} for hook in body["webhooks"]]
    groups[group].append(body)
    # The same objects by the page's steps, from the resource name render writes on the first line.
    resource = path.read_text().splitlines()[0].split(" ", 2)[2]
    step = next((s for prefix, s in PAGE_STEPS if resource.startswith(prefix)), None)
    if step is None:
        sys.exit(f"kubectl_bench: no page step for {resource} ({path.name})")
    if step == "4-edge-stack" and body["kind"] == "Deployment":
        template = body["spec"]["template"].setdefault("metadata", {})
        annotations = template.get("annotations") or {}
        moved = {k: v for k, v in annotations.items() if page_annotations(k)}
        template["annotations"] = {k: v for k, v in annotations.items() if k not in moved} or None
        meta = {"name": body["metadata"]["name"], "namespace": body["metadata"]["namespace"]}
        for later, keys in (("6-inject", {k for k in moved if k != GATEWAY}), ("8-gateway", {k for k in moved if k == GATEWAY})):
            if keys:
                page.setdefault(later + "-patches", []).append({
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"template": {"metadata": {"annotations": {k: moved[k] for k in sorted(keys)}}}},
                })
    page.setdefault(step + ("-patches" if patch else ""), []).append(body)
for name, bodies in groups.items():
    (out / f"{name}.yaml").write_text(yaml.safe_dump_all(bodies))
(out / "page").mkdir()
for name, bodies in page.items():  # kubectl applies in file order: namespaces and CRDs first
    bodies.sort(key=lambda b: {"Namespace": 0, "CustomResourceDefinition": 1}.get(b["kind"], 2))
    (out / "page" / f"{name}.yaml").write_text(yaml.safe_dump_all(bodies))
EOF
  began=$(date +%s.%N)
  for group in 1-namespaces 2-crds; do
    "${k[@]}" apply --server-side --force-conflicts -f "$objects/$group.yaml" >/dev/null || return 1
  done
  _crds_established "${k[@]}" || return 1
  for group in 3-objects 4-custom; do
    [ "$group" = 3-objects ] || webhooks_ready "$bench" || return 1
    "${k[@]}" apply --server-side --force-conflicts -f "$objects/$group.yaml" >/dev/null || return 1
  done
  "${k[@]}" apply --server-side --force-conflicts --field-manager page-patches -f "$objects/5-patches.yaml" \
    >/dev/null || return 1
  "${k[@]}" wait --for=condition=Available deploy --all -A --timeout=600s >/dev/null || return 1
  kubectl_apply_s=$(_seconds_since "$began") kubectl_apply_load=$(load_now)
  # What `up` awaits of each Deployment, its rollout complete (the patched template's too), where
  # Available above is already true while the old pods still serve: the same objects, kubectl's way.
  _every_rollout_done "${k[@]}" || return 1
  kubectl_rollout_s=$(_seconds_since "$began") kubectl_rollout_load=$(load_now)
  began=$(date +%s.%N)
  for group in 1-namespaces 2-crds 3-objects 4-custom; do
    "${k[@]}" diff --server-side --force-conflicts -f "$objects/$group.yaml" >/dev/null 2>&1 || status=$?
    [ "$status" -le 1 ] || return 1
  done
  "${k[@]}" diff --server-side --force-conflicts --field-manager page-patches -f "$objects/5-patches.yaml" \
    >/dev/null 2>&1 || status=$?
  [ "$status" -le 1 ] || return 1
  kubectl_diff_s=$(_seconds_since "$began") kubectl_diff_load=$(load_now)
  _stop_from "$first"
  # Last: its cluster's controllers would share the machine with the timings above.
  kubectl_page_bench "$page" "127.0.10$((range + 1)).0/24" "127.$((range + 1)).0.0/16" "$objects/page" || return 1
  _stop_from "$first"
}
