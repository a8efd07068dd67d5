#!/usr/bin/env bash
# The performance half of e2e/full.sh alone, on one cluster: `up` of the target stack on the real engine
# (driver, Pulumi CLI, providers, language host, linkerd CLI) against the same objects applied with
# `kubectl apply --server-side` + wait on a fresh API server, and a no-change `preview` against
# `kubectl diff`, in the same run. Prints each resource step's start and end (from the driver's progress)
# so the slow chain can be read off. The tools, clusters and forced config are full.sh's.
#
#   e2e/perf.sh                          about 5 minutes on 2 cores
#   PERF_LOG=up.log e2e/perf.sh          keeps the driver's progress of `up` there
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${E2E_CACHE:-$HOME/.cache/linkerd-aes-e2e}
B=$CACHE/bin
SKIP_IF_MISSING=false
[ "${1:-}" = --skip-if-missing ] && SKIP_IF_MISSING=true
say() { printf '[perf] %s\n' "$*" >&2; }

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
    echo "PERFORMANCE TIER NOT RUN (e2e/perf.sh): these tools are missing:"
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
check_loopback target
say "cluster up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), 3 kwok nodes each, services on 127.0.100.0/24 and 127.0.101.0/24"

# --- a copy of the project with the committed stacks, changed only where the local servers force it ---
PROJECT=$WORK/project
mkdir -p "$PROJECT"
git ls-files -co --exclude-standard -z -- . ":(exclude)venv" | tar --null -T - -cf - | tar -xf - -C "$PROJECT"
ln -s "$ROOT/venv" "$PROJECT/venv"
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
"$ROOT/venv/bin/python" - "$PROJECT" "$WORK/emissary-crds.no-webhook.yaml" "$EMISSARY_MANIFEST" "$WORK" <<'EOF'
import sys, yaml
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
    values.update({"linkerdHa": False, "edgeStackCrds": crds, "edgeStackManifest": manifest})
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

t_up=$(driver up --stack target)
target_up_s=$(awk '$1 == "target" && $2 == "ok" {print $NF}' "$WORK/up.log" | tail -1)
check_loopback target
[ -z "${PERF_LOG:-}" ] || cp "$WORK/up.log" "$PERF_LOG"  # the driver's progress, one line per step
say "the slowest steps of up (seconds from the stack's start; objects of one name, of any kind, are one line; components last as long as their children):"
python3 - "$WORK/up.log" <<'EOF' >&2
import re, sys
start, end, done_before = {}, {}, 0
for line in open(sys.argv[1]):
    m = re.match(r"\[target\] up: (\d+) done, (\d+):(\d+)  \w+ (.*)", line.strip())
    if m:
        done, at, name = int(m[1]), int(m[2]) * 60 + int(m[3]), m[4]
        if done > done_before:
            end[name] = at
        else:
            start.setdefault(name, at)
        done_before = done
for took, began, name in sorted(((end.get(n, began) - began, began, n) for n, began in start.items()), reverse=True)[:15]:
    print(f"    {took:4d}s  {began:4d} -> {began + took:4d}  {name}")
EOF
say "each Deployment: seconds from its creation until the API server had it Available (and its last rollout done), against how long up awaited it:"
"$B/kubectl" --context target get deploy -A -o json | python3 -c '
import datetime, json, re, sys
start, end, done_before = {}, {}, 0
for line in open(sys.argv[1]):
    m = re.match(r"\[target\] up: (\d+) done, (\d+):(\d+)  create (.*)", line.strip())
    if m:
        done, at, name = int(m[1]), int(m[2]) * 60 + int(m[3]), m[4]
        if done > done_before:
            end[name] = at
        else:
            start.setdefault(name, at)
        done_before = done
def seconds(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
for item in json.load(sys.stdin)["items"]:
    meta = item["metadata"]
    created = seconds(meta["creationTimestamp"])
    conditions = {c["type"]: c for c in item.get("status", {}).get("conditions", [])}
    available = seconds(conditions["Available"]["lastTransitionTime"]) - created if "Available" in conditions else -1
    rollout = seconds(conditions["Progressing"]["lastUpdateTime"]) - created if "Progressing" in conditions else -1
    names = [n for n in start if n.endswith(":" + meta["namespace"] + "/" + meta["name"])]
    awaited = max((end.get(n, start[n]) - start[n] for n in names), default=-1)
    where = meta["namespace"] + "/" + meta["name"]
    print(f"    {where}: Available after {available:.0f}s, last rollout done after {rollout:.0f}s; up awaited {awaited}s")
' "$WORK/up.log" >&2
t_preview=$(driver preview --stack target --expect-no-changes)
target_preview_s=$(awk '$1 == "target" && $2 == "ok" {print $NF}' "$WORK/preview.log" | tail -1)
# --- the same objects with kubectl, on a fresh API server -------------------------------------------
# `up` of the target against `kubectl apply --server-side` of what it applies (render's YAML, in the
# page's order: namespaces and CRDs, then the rest, then the custom resources, then waiting for every
# Deployment, as `up` waits), and the no-change preview against `kubectl diff --server-side`.
kubectl_bench() {
  local k=("$B/kubectl" --context bench) began
  start_cluster bench 127.0.105.0/24 127.5.0.0/16 && check_loopback bench || return 1
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
  exit 1
fi
