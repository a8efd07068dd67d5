#!/usr/bin/env bash
# The page line's inject on the real engine against a live Linkerd stable-2.8.1 control plane.
#
# On the page line `linkerd inject --ignore-cluster` refuses --require-identity-on-inbound-ports, so
# the program runs the page's inject at `up`, as a pulumi-command Command against the live control
# plane (components/edge_stack.py). 2.8.1's inject reads the proxy config from the control plane's
# public API: healthchecks (the linkerd namespace, linkerd-config, a running controller pod), then a
# port-forward through the API server to the linkerd-controller pod's port 8085 and its Config RPC.
# Here every piece of that path is real:
#   - a local API server with kwok nodes (e2e/cluster.sh, loopback only);
#   - the control plane objects of `linkerd-stable-2.8.1 install`, applied with kubectl; kwok runs
#     their pods;
#   - the port-forward: the API server dials kwok's kubelet server at the node's address (127.0.0.1)
#     and kubelet port; kwok forwards the controller pod's port 8085 (a ClusterPortForward in its
#     config) to 2.8.1's own public-api, hand-built from the tag (CONTRIBUTING.md) and run here as a
#     local process on 127.0.0.1, reading linkerd-config's keys where the pod mounts them;
#   - the program's EdgeStack component (its page-line branch, unchanged) on the real engine, kubernetes
#     and command providers and language host, with Edge Stack 1.14.4's manifest; its inject Command
#     runs the real linkerd-stable-2.8.1 CLI and the Deployment is written once, as inject printed it.
# Then the live Deployment is read with kubectl: the annotations inject wrote, 80,443 skipped,
# identity required on 4143; a second `up` changes nothing, `destroy` takes the annotations back.
#
# STAND-INS, forced by Kubernetes 1.34 (the page's releases need 1.21 or older):
#   - Linkerd 2.8.1's and Edge Stack 1.14.4's CRDs are apiextensions.k8s.io/v1beta1 (gone in 1.22): the
#     same CRDs as v1, with schemas that keep every field (the CRD validation is not shown);
#   - Edge Stack 1.14.4's RBAC is rbac.authorization.k8s.io/v1beta1 (gone in 1.22): the same objects as v1;
#   - 2.8.1's PodSecurityPolicy (policy/v1beta1, gone in 1.25), its admission webhooks
#     (admissionregistration v1beta1, gone in 1.22) and its tap APIService (nothing serves it here) are
#     left out: inject reads none of them;
#   - no proxy injector runs (kwok has no containers), so the sidecar is not added to the pods: what is
#     shown is what inject writes, the annotations the injector acts on.
# Why the whole page-line stack does not run here: `./aes-linkerd2 up --stack target` with versionLine
# page on this API server stops at Edge Stack 1.14.4's CRDs ("apiVersion apiextensions.k8s.io/v1beta1/
# CustomResourceDefinition was removed in Kubernetes 1.22"); given the v1 stand-ins above through
# edgeStackCrds/edgeStackManifest, it stops at the same error for the CRDs `linkerd install` renders
# (serviceprofiles.linkerd.io, trafficsplits.split.smi-spec.io), which no config replaces.
#
#   e2e/page-line.sh                      exits 2 when a tool is missing
#   e2e/page-line.sh --skip-if-missing    exits 0 instead, after saying loudly what did not run (CI)
set -euo pipefail
# shellcheck source=e2e/tier.sh
. "$(dirname "$0")/tier.sh"
tier_init page-line "$@"
LINKERD=$B/linkerd-stable-2.8.1
CONTROLLER=$B/linkerd-controller-stable-2.8.1
find_tools "$LINKERD" "$CONTROLLER"
# The public-api reads linkerd-config's keys at a fixed path (/var/run/linkerd/config): it gets them
# in a mount namespace of its own, so nothing is written outside the scratch folder.
unshare --mount --propagation private true 2>/dev/null || MISSING+=("unshare --mount (root, for the public-api's config path)")
REFERENCE=${E2E_REFERENCE:-$ROOT/../shared/reference/emissary}
AES_CRDS=$REFERENCE/aes-crds.v1.14.4.yaml
AES_MANIFEST=$REFERENCE/aes.v1.14.4.yaml
for file in "$AES_CRDS" "$AES_MANIFEST"; do
  [ -f "$file" ] || MISSING+=("$file (E2E_REFERENCE: a folder with Edge Stack 1.14.4's release files)")
done
stop_if_missing "PAGE-LINE TIER NOT RUN (e2e/page-line.sh): these are missing:" \
  "So the page line's inject against a live stable-2.8.1 control plane was NOT shown." \
  "Build them as CONTRIBUTING.md says (e2e/build-tools.sh, the hand-built linkerd CLI and" \
  "controller of stable-2.8.1, the pulumi-command provider and the Python language host)."
start_work
k=("$B/kubectl" --context target)
started=$SECONDS

# --- the cluster, with kwok forwarding the controller pod's port 8085 to the local public-api ------
PUBLIC_API_PORT=$(free_port)
slow_stages
cat >> "$WORK/kwok-stages.yaml" <<EOF
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {name: linkerd-public-api}
spec:
  selector: {matchNamespaces: [linkerd]}
  forwards:
  - ports: [8085]
    target: {address: 127.0.0.1, port: $PUBLIC_API_PORT}
EOF
start_cluster target 127.0.100.0/24 127.1.0.0/16
check_loopback target
# The API server reaches a node's kubelet at its address and status.daemonEndpoints' port; kwok
# serves the kubelet API on a free port (cluster.sh: --server-address 127.0.0.1:0), which the nodes
# are told here.
kwok_pid=${PIDS[-1]}
kubelet_port=""
for _ in $(seq 30); do
  kubelet_port=$(ss -ltnpH | awk -v pid="pid=$kwok_pid," '!found && index($0, pid) {split($4, a, ":"); print a[2]; found = 1}')
  [ -n "$kubelet_port" ] && break
  sleep 1
done
[ -n "$kubelet_port" ] || { say "FAILED: kwok (pid $kwok_pid) listens on no port"; exit 1; }
for node in $("${k[@]}" get nodes -o name); do
  "${k[@]}" patch "$node" --subresource=status --type=merge \
    -p "{\"status\":{\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":$kubelet_port}}}}" >/dev/null
done
say "cluster up in $((SECONDS - started))s: $("$B/kube-apiserver" --version), kwok's kubelet API on 127.0.0.1:$kubelet_port"

# --- the real API server's /version refuses the page line before anything is applied ----------------
# The program and the driver read it through the kubeconfig (support/config.py); here 1.34 answers.
(cd "$ROOT" && venv/bin/python - "$KUBECONFIG") <<'EOF' || { say "FAILED: the page line was not refused on Kubernetes 1.34"; exit 1; }
import sys
from support import clusters, errors, upstream
version = clusters.check_cluster("context", "target", "kubeconfig", sys.argv[1])
assert version == (1, 34), version
clusters.check_line_fits(upstream.CURRENT, version, "target")
try:
    clusters.check_line_fits(upstream.VERSION_LINES["linkerd-2.8"], version, "target")
except errors.ConfigError as error:
    print(f"[page-line] refused before anything is applied: {error}", file=sys.stderr)
else:
    raise SystemExit("the page line was accepted on 1.34")
EOF

# --- the stand-ins Kubernetes 1.34 forces (see the top) ----------------------------------------------
cat > "$WORK/for_1_34.py" <<'EOF'
"""for_1_34.py IN OUT: IN's objects as Kubernetes 1.34 serves them; says what it changed or left out."""
import sys, yaml

LEFT_OUT = {"PodSecurityPolicy", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService"}
out, changed, dropped = [], [], []
for body in yaml.safe_load_all(open(sys.argv[1])):
    if not body:
        continue
    where = f"{body['kind']}/{body['metadata']['name']}"
    if body["kind"] in LEFT_OUT:
        dropped.append(where)
        continue
    if body["apiVersion"] == "rbac.authorization.k8s.io/v1beta1":
        body["apiVersion"] = "rbac.authorization.k8s.io/v1"
        changed.append(where)
    if body["apiVersion"] == "apiextensions.k8s.io/v1beta1":
        spec = body["spec"]
        versions = spec.get("versions") or [{"name": spec["version"], "served": True, "storage": True}]
        body["apiVersion"] = "apiextensions.k8s.io/v1"
        body["spec"] = {
            "group": spec["group"],
            "names": spec["names"],
            "scope": spec.get("scope", "Namespaced"),
            "versions": [
                {"name": v["name"], "served": v.get("served", True), "storage": v.get("storage", False),
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                for v in versions
            ],
        }
        changed.append(where)
    out.append(body)
yaml.safe_dump_all(out, open(sys.argv[2], "w"), sort_keys=False)
print(f"STAND-IN: {len(changed)} objects moved to v1 ({', '.join(changed)}); left out: {', '.join(dropped) or 'none'}")
EOF
for_1_34() { "$ROOT/venv/bin/python" "$WORK/for_1_34.py" "$1" "$2" | sed 's/^/    /' >&2; }

# --- Linkerd stable-2.8.1's control plane, as its install renders it ---------------------------------
"$LINKERD" install --ignore-cluster --disable-heartbeat > "$WORK/linkerd-install.yaml" 2> "$WORK/linkerd-install.err"
for_1_34 "$WORK/linkerd-install.yaml" "$WORK/linkerd.yaml"
"${k[@]}" apply --server-side -f "$WORK/linkerd.yaml" > "$WORK/linkerd-apply.log"
"${k[@]}" -n linkerd wait --for=condition=Available deploy --all --timeout=300s >/dev/null
"${k[@]}" -n linkerd wait --for=condition=Ready pod -l linkerd.io/control-plane-component=controller --timeout=120s >/dev/null

# --- 2.8.1's public-api, on loopback, reading linkerd-config as its pod mounts it --------------------
# STAND-IN: 2.8.1's public-api watches batch/v1beta1 CronJobs (gone in Kubernetes 1.25) and does not
# start until that watch syncs; it reaches the API server through this shim, which answers those
# alone (an empty list) and passes every other request through.
cat > "$WORK/shim.py" <<'EOF'
"""shim.py PORT UPSTREAM TOKEN: plain HTTP on 127.0.0.1:PORT in front of the API server at UPSTREAM (https).

Only the public-api talks to it. batch/v1beta1 CronJobs (served until Kubernetes 1.24; 2.8.1's public-api
watches them and will not start without) are answered as an empty list and an idle watch; every other
request goes to the API server unchanged, streamed both ways.
"""
import http.client, http.server, json, ssl, sys, time, urllib.parse

PORT, UPSTREAM, TOKEN = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), sys.argv[3]
CRONJOBS = "/apis/batch/v1beta1/"
CONTEXT = ssl._create_unverified_context()  # the local API server's self-signed certificate, on loopback


class Shim(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _cronjobs(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("watch") == ["true"]:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            time.sleep(int(query.get("timeoutSeconds", ["300"])[0]))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.split("?")[0].rstrip("/") == CRONJOBS.rstrip("/"):
            body = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "batch/v1beta1", "resources": [
                {"name": "cronjobs", "singularName": "", "namespaced": True, "kind": "CronJob",
                 "verbs": ["get", "list", "watch"]}]}
        else:
            body = {"kind": "CronJobList", "apiVersion": "batch/v1beta1", "metadata": {"resourceVersion": "1"}, "items": []}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self):
        if self.path.startswith(CRONJOBS) or self.path.split("?")[0] == CRONJOBS.rstrip("/"):
            return self._cronjobs()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPSConnection(UPSTREAM.hostname, UPSTREAM.port, context=CONTEXT, timeout=600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "accept-encoding")}
        headers["Authorization"] = f"Bearer {TOKEN}"  # client-go sends no token over plain HTTP
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while chunk := response.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Shim).serve_forever()
EOF
SHIM_PORT=$(free_port)
"$ROOT/venv/bin/python" "$WORK/shim.py" "$SHIM_PORT" "$("${k[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')" target-token \
  > "$WORK/shim.log" 2>&1 & PIDS+=($!)
KUBECONFIG=$WORK/public-api.kubeconfig "$B/kubectl" config set-cluster shim --server "http://127.0.0.1:$SHIM_PORT" >/dev/null
KUBECONFIG=$WORK/public-api.kubeconfig "$B/kubectl" config set-credentials shim >/dev/null
KUBECONFIG=$WORK/public-api.kubeconfig "$B/kubectl" config set-context shim --cluster shim --user shim >/dev/null
KUBECONFIG=$WORK/public-api.kubeconfig "$B/kubectl" config use-context shim >/dev/null
mkdir -p "$WORK/linkerd-config"
for key in global proxy install; do
  "${k[@]}" -n linkerd get configmap linkerd-config -o "jsonpath={.data.$key}" > "$WORK/linkerd-config/$key"
done
unshare --mount --propagation private sh -c '
  mount -t tmpfs tmpfs /run && mkdir -p /run/linkerd/config && cp "$1"/* /run/linkerd/config/ && shift && exec "$@"' \
  public-api "$WORK/linkerd-config" "$CONTROLLER" public-api -addr "127.0.0.1:$PUBLIC_API_PORT" \
  -metrics-addr "127.0.0.1:$(free_port)" -kubeconfig "$WORK/public-api.kubeconfig" -controller-namespace linkerd \
  -destination-addr 127.0.0.1:9 -prometheus-url http://127.0.0.1:9 > "$WORK/public-api.log" 2>&1 & PIDS+=($!)
for _ in $(seq 60); do grep -qs "starting HTTP server" "$WORK/public-api.log" && break; sleep 1; done
grep -q "starting HTTP server" "$WORK/public-api.log" || { cat "$WORK/public-api.log" >&2; say "FAILED: the public-api did not start"; exit 1; }
# The CLI's own way in: its healthchecks, then the port-forward through the API server and kwok.
version=$(HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.0/8 timeout 120 "$LINKERD" --context target version --short 2>&1) || true
printf '%s\n' "$version" | sed 's/^/    /' >&2
[ "$(printf '%s\n' "$version" | tail -1)" = stable-2.8.1 ] || { say "FAILED: linkerd version did not reach the control plane"; exit 1; }
say "linkerd-stable-2.8.1 reaches its live control plane's public API (port-forward via the API server and kwok)"

# --- the program's EdgeStack component on the real engine: the page line's inject Command at `up` ------
for_1_34 "$AES_CRDS" "$WORK/aes-crds.yaml"
for_1_34 "$AES_MANIFEST" "$WORK/aes.yaml"
PROJECT=$WORK/project
mkdir -p "$PROJECT"
cat > "$PROJECT/Pulumi.yaml" <<EOF
name: page-inject
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: $ROOT/venv
EOF
cat > "$PROJECT/__main__.py" <<'EOF'
"""The program's EdgeStack, page line, as __main__.py builds it (the control plane is already there)."""
import os
import sys

sys.path.insert(0, os.environ["AES_LINKERD2_ROOT"])
import pulumi
import pulumi_kubernetes as k8s

from components.edge_stack import EdgeStack, EdgeStackArgs
from support import upstream
from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli

config = pulumi.Config()
line = upstream.PAGE
access = ClusterAccess(context="target", kubeconfig=config.require("kubeconfig"))
cli = LinkerdCli(binary=config.require("linkerdCli"), cluster=access)
cli.require_version(line.linkerd_versions[0])
provider = k8s.Provider("cluster", kubeconfig=access.kubeconfig, context=access.context)
EdgeStack(
    "edge-stack",
    EdgeStackArgs(
        line=line,
        product=line.edge_stack[line.default_product],
        crds_yaml=open(config.require("edgeStackCrds")).read(),
        manifest_yaml=open(config.require("edgeStackManifest")).read(),
        license_key=None,
        add_linkerd_headers=True,
        cli=cli,
        gateway_port=upstream.PROXY_INBOUND_PORT,
        control_plane=[],
    ),
    opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
)
EOF
use_engine
export AES_LINKERD2_ROOT=$ROOT
# 2.8.1's CLI asks versioncheck.linkerd.io for nothing here, but keep anything it might dial on loopback.
export HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.0/8
pulumi_() {  # pulumi_ VERB [ARGS...]: prints its seconds, keeps its log
  local verb=$1 began=$SECONDS; shift
  if ! (cd "$PROJECT" && pulumi "$verb" --stack target --non-interactive "$@") > "$WORK/$verb.log" 2>&1; then
    grep -E "error|failed|\\* " "$WORK/$verb.log" | head -40 >&2
    tail -20 "$WORK/$verb.log" >&2
    say "FAILED: pulumi $verb $*"
    exit 1
  fi
  echo $((SECONDS - began))
}
(cd "$PROJECT" && pulumi stack init target --non-interactive >/dev/null \
  && pulumi config set kubeconfig "$WORK/target/kubeconfig" && pulumi config set linkerdCli "$LINKERD" \
  && pulumi config set edgeStackCrds "$WORK/aes-crds.yaml" && pulumi config set edgeStackManifest "$WORK/aes.yaml")
say "engine $(pulumi version), language host $(pulumi-language-python -version 2>&1 | head -1), kubernetes provider $PULUMI_KUBERNETES_VERSION"
t_up=$(pulumi_ up --yes --skip-preview)
say "up: ${t_up}s"
(cd "$PROJECT" && pulumi stack export --stack target) > "$WORK/state.json"
"$ROOT/venv/bin/python" - "$WORK/state.json" "$B/kubectl" "$LINKERD" <<'EOF'
import json, shlex, subprocess, sys
sys.path.insert(0, ".")
from support import upstream

state, kubectl, linkerd = sys.argv[1:]
product = upstream.PAGE.edge_stack[upstream.PAGE.default_product]
checked = []
def check(what, condition, detail=""):
    if not condition:
        sys.exit(f"[page-line] FAILED: {what} {detail}")
    checked.append(what)

resources = json.load(open(state))["deployment"]["resources"]
commands = [r for r in resources if r["type"] == "command:local:Command"]
check("one inject Command in state", len(commands) == 1, [r["urn"] for r in commands])
argv = shlex.split(commands[0]["inputs"]["create"])
check("it ran the pinned 2.8.1 CLI against the target, without --ignore-cluster",
      argv[0] == linkerd and argv[1:] == ["--kubeconfig", argv[2], "--context", "target", "inject",
      "--skip-inbound-ports", "80,443", "--require-identity-on-inbound-ports", "4143", "-"], argv)
check("its stdout (kept in state) is the injected Deployment", "linkerd.io/inject: enabled" in commands[0]["outputs"]["stdout"])

live = json.loads(subprocess.run([kubectl, "--context", "target", "-n", product.namespace, "get", "deployment",
                                  product.deployment, "-o", "json", "--show-managed-fields"],
                                 capture_output=True, text=True, check=True).stdout)
annotations = live["spec"]["template"]["metadata"].get("annotations", {})
wanted = {
    "linkerd.io/inject": "enabled",
    "config.linkerd.io/skip-inbound-ports": "80,443",
    "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
}
check("the live pod template carries exactly what inject added (identity not disabled)",
      {k: v for k, v in annotations.items() if "linkerd.io" in k} == wanted, annotations)
owners = {}
for entry in live["metadata"]["managedFields"]:
    fields = entry.get("fieldsV1", {}).get("f:spec", {}).get("f:template", {}).get("f:metadata", {})
    owners[entry["manager"]] = {key[2:] for key in fields.get("f:annotations", {})}
# The program writes the Deployment once, as inject printed it (one rollout): the provider's own field manager
# owns those annotations, and nobody else does.
owning = [manager for manager, keys in owners.items() if keys & set(wanted)]
check("one field manager (the program's, writing the Deployment inject printed) owns those annotations",
      owning == ["pulumi-kubernetes"] and set(wanted) <= owners["pulumi-kubernetes"], owners)
print(f"[page-line] live Deployment {product.namespace}/{product.deployment}: " + "; ".join(checked), file=sys.stderr)
print(f"[page-line]   pod-template annotations: {json.dumps(wanted)}", file=sys.stderr)
EOF
t_preview=$(pulumi_ preview --expect-no-changes)
say "preview, no changes: ${t_preview}s"
t_up2=$(pulumi_ up --yes --skip-preview --expect-no-changes)
say "second up, no changes (inject not run again): ${t_up2}s"
t_destroy=$(pulumi_ destroy --yes --skip-preview)
if "${k[@]}" -n ambassador get deployment ambassador >/dev/null 2>&1; then say "FAILED: destroy left the Deployment"; exit 1; fi
say "destroy: ${t_destroy}s"
say "passed in $((SECONDS - started))s: up ${t_up}s, no-change preview ${t_preview}s and up ${t_up2}s, destroy ${t_destroy}s"
say "NOT SHOWN here: the sidecar the proxy injector adds from these annotations (no webhook server, no pods),"
say "  and the page line's whole stack through ./aes-linkerd2 (Edge Stack 1.14.4's and \`linkerd install\`'s CRDs"
say "  are apiextensions.k8s.io/v1beta1, which Kubernetes 1.22 and later refuse); the stand-ins are at the top of this script."
