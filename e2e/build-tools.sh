#!/usr/bin/env bash
# e2e/build-tools.sh - build the tools the end-to-end test tier needs, from Go
# modules fetched through the Go module proxy, into a cache OUTSIDE the repo.
#
# Usage:
#   e2e/build-tools.sh                 build every default tool that is missing or stale
#   e2e/build-tools.sh TOOL...         build only these tools (see --list)
#   e2e/build-tools.sh --force TOOL... rebuild these tools even if they look current
#   e2e/build-tools.sh --check [TOOL...]
#                                      report (offline) whether the cache is complete;
#                                      exit 0 when it is, 1 when something is missing
#   e2e/build-tools.sh --list          print the known tools and the default set
#   e2e/build-tools.sh --help
#
# Environment (all optional):
#   E2E_CACHE      cache root (default: $HOME/.cache/aes-linkerd2)
#                  binaries: $E2E_CACHE/bin, logs: $E2E_CACHE/logs,
#                  generated wrapper modules: $E2E_CACHE/src,
#                  summary of what is there: $E2E_CACHE/versions.env
#   E2E_TOOLS      the default tool set (space separated, see --list)
#   E2E_GO_P       value for `go build -p` (default 1: this is a 2-core machine and
#                  other work must stay responsive; every go command also runs
#                  under `nice -n 19`)
#   GOTOOLCHAIN    default "local" (Go 1.26 here); set go1.27.3 only if a module
#                  demands a newer Go (the proxy serves that toolchain)
#   Versions:      PULUMI_VERSION, PULUMI_PYTHON_HOST_VERSION, PULUMI_PYTHON_FALLBACK_SDK,
#                  K8S_PROVIDER_MODULE_VERSION, K8S_PROVIDER_VERSION, COMMAND_VERSION,
#                  KUBE_VERSION, KWOK_VERSION, LINKERD_VERSION, LINKERD_STABLE_VERSION,
#                  ETCD_SOURCE (debian|go), ETCD_GO_VERSION - defaults below.
#
# Nothing here writes into the repository: upstream sources stay in the Go module
# cache, wrapper modules and build outputs live under $E2E_CACHE.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions (override through the environment).
# ---------------------------------------------------------------------------
# The one Pulumi CLI version of the project (the PR workflow reads the same file).
PULUMI_VERSION=${PULUMI_VERSION:-v$(tr -d '[:space:]' < "$(dirname "$0")/../.pulumi-version")}
# The Python language host is its own Go module (pseudo-versions only). When the
# proxy refuses it, fall back to the newest sdk/v3 release that still carried the
# host as a package inside sdk/v3 (v3.68.0, the last one with python/cmd/pulumi-language-python).
PULUMI_PYTHON_HOST_MODULE=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
PULUMI_PYTHON_HOST_VERSION=${PULUMI_PYTHON_HOST_VERSION:-auto}
PULUMI_PYTHON_FALLBACK_SDK=${PULUMI_PYTHON_FALLBACK_SDK:-v3.68.0}
# pulumi-kubernetes provider/v4 is only served as a pseudo-version; this one is the v4.25.0 commit.
K8S_PROVIDER_MODULE_VERSION=${K8S_PROVIDER_MODULE_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}
K8S_PROVIDER_VERSION=${K8S_PROVIDER_VERSION:-4.25.0}
COMMAND_VERSION=${COMMAND_VERSION:-latest-v1}      # newest served v1.x
KUBE_VERSION=${KUBE_VERSION:-v1.34.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
LINKERD_VERSION=${LINKERD_VERSION:-latest}         # newest edge-* the proxy serves
LINKERD_STABLE_VERSION=${LINKERD_STABLE_VERSION:-stable-2.8.1}
ETCD_SOURCE=${ETCD_SOURCE:-go}                     # go: build go.etcd.io/etcd/server/v3; debian: apt's etcd-server (3.4, too old: see step 6)
ETCD_GO_VERSION=${ETCD_GO_VERSION:-v3.6.16}

ALL_TOOLS="linkerd command pulumi pulumi-python kubernetes kube etcd kwok linkerd-stable"
# Cheapest / most important first. linkerd-stable (the old 2.8 line) is opt-in.
DEFAULT_TOOLS="linkerd command pulumi pulumi-python kubernetes kube etcd kwok"
E2E_TOOLS=${E2E_TOOLS:-$DEFAULT_TOOLS}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${E2E_CACHE:-$HOME/.cache/aes-linkerd2}
BIN=$CACHE/bin
LOGS=$CACHE/logs
SRC=$CACHE/src
STAMPS=$CACHE/stamps
VERSIONS_ENV=$CACHE/versions.env

# Keep the machine responsive: one package compiled at a time, lowest priority.
export GOFLAGS="-p=${E2E_GO_P:-1} -buildvcs=false -trimpath"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
# Static binaries: nothing here needs cgo and the results must run on any machine of the kind.
export CGO_ENABLED=0
export GOWORK=off

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
say() { printf '[build-tools] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Every go invocation goes through here: niced, and logged to the current tool's log.
gocmd() { nice -n 19 go "$@"; }

# run CMD...: echo the command into the tool's log and run it there.
run() {
  printf '+ %s\n' "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

# module_json MOD@VER: resolve and download a module; prints `go mod download -json`.
# On refusal (the proxy only serves some modules/versions) the exact command and error
# go to the log and stderr, and we return 1.
module_json() {
  local out
  printf '+ go mod download -json %s\n' "$1" >>"$LOG"
  # stdout only: it is JSON (with an "Error" field on failure); stderr goes to the log.
  if ! out=$(cd "$SRC" && gocmd mod download -json "$1" 2>>"$LOG"); then
    printf '%s\n' "$out" >>"$LOG"
    say "the Go module proxy refused: go mod download -json $1"
    say "  -> $(printf '%s' "$out" | python3 -c 'import json,sys
t=sys.stdin.read()
try: print(json.loads(t).get("Error", t).strip())
except Exception: print(t.strip())' | tr '\n' ' ')"
    return 1
  fi
  printf '%s\n' "$out"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
module_dir() { module_json "$1" | json_field Dir; }
module_gomod() { module_json "$1" | json_field GoMod; }

# list_versions MOD: tagged versions the proxy lists (fails clearly when refused).
list_versions() {
  local out
  printf '+ go list -m -versions %s\n' "$1" >>"$LOG"
  if ! out=$(cd "$SRC" && gocmd list -m -versions "$1" 2>&1); then
    printf '%s\n' "$out" >>"$LOG"
    say "the Go module proxy refused: go list -m -versions $1"
    say "  -> $(printf '%s' "$out" | tr '\n' ' ')"
    return 1
  fi
  printf '%s\n' "$out" | tr ' ' '\n' | tail -n +2
}

# replaces GOMOD KIND: print "old[@v] new[@v]" for each replace directive of a go.mod.
#   KIND=remote: replacements by another module version (copied into wrappers, because
#                replace directives of dependencies are ignored by Go)
#   KIND=local:  replacements by a directory (old path only; only for modules the
#                go.mod requires - e.g. etcd's "=> ./FORBIDDEN_DEPENDENCY" guards are skipped)
replaces() {
  gocmd mod edit -json "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin); kind = sys.argv[1]
req = {r["Path"] for r in m.get("Require") or []}
for r in m.get("Replace") or []:
    old, new = r["Old"], r["New"]
    o = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    if kind == "remote" and new.get("Version"):
        print(o, new["Path"] + "@" + new["Version"])
    elif kind == "local" and not new.get("Version") and old["Path"] in req:
        print(old["Path"])
' "$2"
}

# new_wrapper NAME: fresh, empty wrapper module under $SRC (never in the repo).
new_wrapper() {
  WRAP=$SRC/$1
  rm -rf "$WRAP"
  mkdir -p "$WRAP"
  (cd "$WRAP" && run gocmd mod init "e2e.local/$1")
}
# copy_remote_replaces GOMOD: apply a dependency's non-local replaces to the wrapper.
copy_remote_replaces() {
  local old new
  while read -r old new; do
    [ -n "$old" ] || continue
    (cd "$WRAP" && run gocmd mod edit -replace "$old=$new")
  done < <(replaces "$1" remote)
}
# map_local_replaces GOMOD VERSION: a dependency's "mod => ../dir" replaces become
# "mod => mod@VERSION" (the published module built from that same directory).
map_local_replaces() {
  local old
  while read -r old; do
    [ -n "$old" ] || continue
    (cd "$WRAP" && run gocmd mod edit -replace "$old=$old@$2")
  done < <(replaces "$1" local)
}

# Stamps record what was built with which inputs, so reruns skip finished tools.
# stamp file: line 1 "spec=<inputs>", then KEY=VALUE lines merged into versions.env.
stamp_ok() { # TOOL SPEC BIN...
  local tool=$1 spec=$2 b; shift 2
  [ -f "$STAMPS/$tool" ] && [ "$(head -n1 "$STAMPS/$tool")" = "spec=$spec" ] || return 1
  for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done
  for b in $(tool_files "$tool"); do [ -f "$CACHE/$b" ] || return 1; done
}
# tool_files TOOL: non-binary files a tool also needs (paths relative to $CACHE), if any.
tool_files() { if declare -F "$1_files" >/dev/null; then "$1_files"; fi; }
write_stamp() { # TOOL SPEC KEY=VALUE...
  local tool=$1 spec=$2; shift 2
  { echo "spec=$spec"; printf '%s\n' "$@"; } >"$STAMPS/$tool"
}
write_versions_env() {
  local t
  {
    echo "# Generated by e2e/build-tools.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); source this file."
    echo "E2E_BIN=$BIN"
    for t in $ALL_TOOLS; do
      [ -f "$STAMPS/$t" ] && tail -n +2 "$STAMPS/$t"
    done
  } >"$VERSIONS_ENV.tmp"
  mv "$VERSIONS_ENV.tmp" "$VERSIONS_ENV"
}

# ---------------------------------------------------------------------------
# Per-tool: <tool>_bins (binaries it provides), <tool>_spec (inputs that must
# match for a skip), build_<tool>.
# ---------------------------------------------------------------------------

# 1. linkerd CLI ------------------------------------------------------------
# The CLI lives in the root module github.com/linkerd/linkerd2 (package ./cli).
# Release tags (edge-YY.M.N, stable-2.x.y) are not semver, so the proxy can only
# serve them as pseudo-versions. Its charts are NOT embedded in the source: the
# default (!prod) build reads them from the source tree at run time, and the
# release build (-tags prod) needs vfsgen's generated_*_templates.gogen.go from
# `go generate` in each */static package, so we build from a writable copy.
linkerd_bins() { echo linkerd; }
linkerd_spec() { echo "$LINKERD_VERSION"; }
build_linkerd() { build_linkerd_at "$LINKERD_VERSION" linkerd LINKERD; }
linkerd-stable_bins() { echo linkerd-stable; }
linkerd-stable_spec() { echo "$LINKERD_STABLE_VERSION"; }
build_linkerd-stable() { build_linkerd_at "$LINKERD_STABLE_VERSION" linkerd-stable LINKERD_STABLE; }

build_linkerd_at() { # REF OUTNAME ENVPREFIX
  local ref=$1 out=$2 key=$3 info dir ver copy d
  info=$(module_json "github.com/linkerd/linkerd2@$ref") || return 1
  ver=$(json_field Version <<<"$info"); dir=$(json_field Dir <<<"$info")
  copy=$SRC/$out-src
  rm -rf "$copy"; cp -r "$dir" "$copy"; chmod -R u+w "$copy"
  # Generate the embedded charts (vfsgen) that release builds compile with -tags prod.
  for d in "$copy"/pkg/charts/static "$copy"/*/static; do
    [ -f "$d/generate.go" ] || continue
    (cd "$d" && run gocmd generate .) || return 1
  done
  (cd "$copy" && run gocmd build -tags prod -o "$BIN/$out" \
    -ldflags "-s -w -X github.com/linkerd/linkerd2/pkg/version.Version=$ref" ./cli) || return 1
  write_stamp "$out" "$ref" "${key}_VERSION=$ref" "${key}_MODULE_VERSION=$ver"
}

# 2. pulumi-command provider ------------------------------------------------
command_bins() { echo pulumi-resource-command; }
command_spec() { echo "$COMMAND_VERSION"; }
build_command() {
  local mod=github.com/pulumi/pulumi-command/provider ver gomod
  ver=$COMMAND_VERSION
  if [ "$ver" = latest-v1 ]; then
    ver=$(list_versions "$mod" | grep -E '^v1\.[0-9]+\.[0-9]+$' | sort -V | tail -n1) || return 1
    [ -n "$ver" ] || { say "no v1.x of $mod is served"; return 1; }
  fi
  gomod=$(module_gomod "$mod@$ver") || return 1
  new_wrapper pulumi-resource-command
  copy_remote_replaces "$gomod"
  (cd "$WRAP" && run gocmd get -tool "$mod/cmd/pulumi-resource-command@$ver" &&
    run gocmd mod tidy &&
    run gocmd build -o "$BIN/pulumi-resource-command" \
      -ldflags "-s -w -X $mod/pkg/version.Version=${ver#v}" "$mod/cmd/pulumi-resource-command") || return 1
  write_stamp command "$COMMAND_VERSION" "PULUMI_COMMAND_VERSION=${ver#v}"
}

# 3. Pulumi CLI ------------------------------------------------------------
# `go install .../pkg/v3/cmd/pulumi@v3.x` is refused because pkg/go.mod has replace
# directives, so a wrapper module requires pkg/v3 + sdk/v3 at the same tag (pkg's
# local "sdk/v3 => ../sdk" becomes the published sdk/v3) and copies pkg's
# non-local replaces (e.g. the atotto/clipboard fork).
pulumi_bins() { echo pulumi; }
pulumi_spec() { echo "$PULUMI_VERSION"; }
build_pulumi() {
  local pkg=github.com/pulumi/pulumi/pkg/v3 sdk=github.com/pulumi/pulumi/sdk/v3 gomod
  gomod=$(module_gomod "$pkg@$PULUMI_VERSION") || return 1
  new_wrapper pulumi-cli
  copy_remote_replaces "$gomod"
  (cd "$WRAP" && run gocmd get "$sdk@$PULUMI_VERSION" "$pkg@$PULUMI_VERSION" &&
    run gocmd get -tool "$pkg/cmd/pulumi@$PULUMI_VERSION" &&
    run gocmd mod tidy &&
    run gocmd build -o "$BIN/pulumi" \
      -ldflags "-s -w -X $sdk/go/common/version.Version=$PULUMI_VERSION" "$pkg/cmd/pulumi") || return 1
  run "$BIN/pulumi" version || return 1
  write_stamp pulumi "$PULUMI_VERSION" "PULUMI_VERSION=$PULUMI_VERSION"
}

# 3b. Python language host + its helper scripts ----------------------------
# The host (Go) is its own module; pulumi-language-python-exec (the Python shim the
# host runs) and pulumi-resource-pulumi-python (dynamic provider launcher) are
# scripts inside sdk/v3 (python/cmd, python/dist): copied from the module cache.
# Caveat of the v3.68.0 fallback host: it reads Pulumi.yaml's runtime options from
# command-line flags that CLI v3.274 no longer passes, so `options.virtualenv` /
# `toolchain` are ignored and it runs the `python` found on PATH: put the project's
# venv/bin first on PATH when running pulumi (verified: up/destroy with a dynamic
# provider resource works that way).
pulumi-python_bins() { echo pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; }
pulumi-python_spec() { echo "$PULUMI_PYTHON_HOST_VERSION/$PULUMI_PYTHON_FALLBACK_SDK/$PULUMI_VERSION"; }
build_pulumi-python() {
  local sdk=github.com/pulumi/pulumi/sdk/v3 ver="$PULUMI_PYTHON_HOST_VERSION" info hostver sdkdir pkgpath f
  # Try the dedicated module first ("auto": whatever @latest resolves to).
  [ "$ver" = auto ] && ver=latest
  new_wrapper pulumi-language-python
  if info=$(module_json "$PULUMI_PYTHON_HOST_MODULE@$ver"); then
    hostver=$(json_field Version <<<"$info")
    copy_remote_replaces "$(json_field GoMod <<<"$info")"
    pkgpath=$PULUMI_PYTHON_HOST_MODULE
    (cd "$WRAP" && run gocmd get -tool "$pkgpath@$hostver") || return 1
  else
    # Fallback: sdk/v3 <= v3.68.0 still had the host as a package inside sdk/v3.
    say "falling back to the language host inside $sdk@$PULUMI_PYTHON_FALLBACK_SDK"
    hostver=$PULUMI_PYTHON_FALLBACK_SDK
    pkgpath=$sdk/python/cmd/pulumi-language-python
    (cd "$WRAP" && run gocmd get -tool "$pkgpath@$hostver") || return 1
  fi
  (cd "$WRAP" && run gocmd mod tidy &&
    run gocmd build -o "$BIN/pulumi-language-python" \
      -ldflags "-s -w -X $sdk/go/common/version.Version=$hostver" "$pkgpath") || return 1
  # Scripts from the sdk/v3 release that matches the CLI (and the Python SDK it pairs with).
  sdkdir=$(module_dir "$sdk@$PULUMI_VERSION") || return 1
  for f in cmd/pulumi-language-python-exec dist/pulumi-resource-pulumi-python; do
    [ -f "$sdkdir/python/$f" ] || { say "missing $f in $sdk@$PULUMI_VERSION"; return 1; }
    install -m 0755 "$sdkdir/python/$f" "$BIN/"
  done
  write_stamp pulumi-python "$(pulumi-python_spec)" \
    "PULUMI_LANGUAGE_PYTHON_VERSION=$hostver" "PULUMI_LANGUAGE_PYTHON_SOURCE=${pkgpath}"
}

# 4. pulumi-kubernetes provider --------------------------------------------
# cmd/pulumi-resource-kubernetes embeds schema-embed.json / terraform-mapping-embed.json,
# which `go generate` writes and the module does not ship; so a generated main embeds
# the module's schema.json (version stamped, compacted) and calls provider.Serve.
kubernetes_bins() { echo pulumi-resource-kubernetes; }
# The release requirements.lock pins; the proxy cannot build it (see above), so a provider hand-built at
# that release (CONTRIBUTING.md, "The kubernetes provider"; stamp "spec=hand-built/<version>") is kept.
locked_kubernetes() { sed -n 's/^pulumi-kubernetes==\([0-9.]*\).*/\1/p' "$ROOT/requirements.lock"; }
kubernetes_spec() {
  if [ "$(head -n1 "$STAMPS/kubernetes" 2>/dev/null)" = "spec=hand-built/$(locked_kubernetes)" ]; then
    echo "hand-built/$(locked_kubernetes)"
  else
    echo "$K8S_PROVIDER_MODULE_VERSION/$K8S_PROVIDER_VERSION"
  fi
}
build_kubernetes() {
  local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 info dir gomod
  info=$(module_json "$mod@$K8S_PROVIDER_MODULE_VERSION") || return 1
  dir=$(json_field Dir <<<"$info"); gomod=$(json_field GoMod <<<"$info")
  new_wrapper pulumi-resource-kubernetes
  copy_remote_replaces "$gomod"
  # "sdk/v4 => ../sdk": the published sdk/v4 of the same release.
  map_local_replaces "$gomod" "v$K8S_PROVIDER_VERSION"
  python3 - "$dir/cmd/pulumi-resource-kubernetes" "$WRAP" "$K8S_PROVIDER_VERSION" <<'EOF' || return 1
import json, sys
src, dst, version = sys.argv[1:4]
schema = json.load(open(src + "/schema.json"))
schema["version"] = version          # what upstream's generate.go does
json.dump(schema, open(dst + "/schema-embed.json", "w"), separators=(",", ":"))
mapping = json.load(open(src + "/terraform-mapping.json"))
json.dump(mapping, open(dst + "/terraform-mapping-embed.json", "w"), separators=(",", ":"))
EOF
  cat >"$WRAP/main.go" <<'EOF'
// Generated by e2e/build-tools.sh: upstream's cmd/pulumi-resource-kubernetes main,
// with the go:generate'd embed files produced by the build script instead.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
EOF
  (cd "$WRAP" && run gocmd get "$mod@$K8S_PROVIDER_MODULE_VERSION" &&
    run gocmd mod tidy &&
    run gocmd build -o "$BIN/pulumi-resource-kubernetes" \
      -ldflags "-s -w -X $mod/pkg/version.Version=$K8S_PROVIDER_VERSION" .) || return 1
  write_stamp kubernetes "$(kubernetes_spec)" "PULUMI_KUBERNETES_VERSION=$K8S_PROVIDER_VERSION" \
    "PULUMI_KUBERNETES_MODULE_VERSION=$K8S_PROVIDER_MODULE_VERSION"
  if [ "$K8S_PROVIDER_VERSION" != "$(locked_kubernetes)" ]; then
    say "WARNING: built pulumi-kubernetes $K8S_PROVIDER_VERSION, but requirements.lock pins $(locked_kubernetes):" \
      "the e2e tiers refuse it; build $(locked_kubernetes) by hand (CONTRIBUTING.md, 'The kubernetes provider')"
  fi
}

# 5+7a. kube-apiserver, kube-controller-manager, kube-scheduler, kubectl -----
# (kube-scheduler too: without it no pod is ever bound to a kwok node.)
# k8s.io/kubernetes requires its staging modules at v0.0.0 with "=> ./staging/src/..."
# replaces; the wrapper points each at the published v0.<minor>.<patch> instead.
kube_bins() { echo kube-apiserver kube-controller-manager kube-scheduler kubectl; }
kube_spec() { echo "$KUBE_VERSION"; }
build_kube() {
  local mod=k8s.io/kubernetes gomod staging major minor cmd now
  gomod=$(module_gomod "$mod@$KUBE_VERSION") || return 1
  staging="v0.${KUBE_VERSION#v1.}"
  major=${KUBE_VERSION#v}; major=${major%%.*}
  minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  new_wrapper kube
  copy_remote_replaces "$gomod"
  map_local_replaces "$gomod" "$staging"
  (cd "$WRAP" && run gocmd get "$mod@$KUBE_VERSION" &&
    run gocmd mod edit -tool="$mod/cmd/kube-apiserver" -tool="$mod/cmd/kube-controller-manager" \
      -tool="$mod/cmd/kube-scheduler" -tool="$mod/cmd/kubectl" &&
    run gocmd mod tidy) || return 1
  # (`go mod edit -tool`, not `go get -tool PKG`: without @version go get upgrades
  # k8s.io/kubernetes to the newest release, whose code needs newer staging modules.)
  # The same -X flags as hack/lib/version.sh, so `--version` reports e.g. v1.34.3.
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local ld="-s -w" p kv
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    for kv in "gitVersion=$KUBE_VERSION" "gitMajor=$major" "gitMinor=$minor" \
      "gitTreeState=clean" "gitCommit=" "buildDate=$now"; do
      ld="$ld -X $p.$kv"
    done
  done
  for cmd in $(kube_bins); do
    (cd "$WRAP" && run gocmd build -o "$BIN/$cmd" -ldflags "$ld" "$mod/cmd/$cmd") || return 1
  done
  run "$BIN/kube-apiserver" --version || return 1
  write_stamp kube "$KUBE_VERSION" "KUBE_VERSION=$KUBE_VERSION"
}

# 6. etcd -------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 (its main package), built through a wrapper in under a minute. Debian's
# etcd-server (ETCD_SOURCE=debian) is 3.4.23: it lacks the watch progress requests kube-apiserver 1.34
# needs for streaming lists, so every informer of the controllers and kwok (client-go's WatchListClient)
# has its watches ended and backs off, up to a minute between lists. Measured here: a 3-replica rollout
# took 36-40 s on 3.4.23 and 5.9 s on 3.6.16; the target's `up` 195 s and 56 s.
etcd_bins() { echo etcd; }
etcd_spec() { [ "$ETCD_SOURCE" = go ] && echo "go/$ETCD_GO_VERSION" || echo debian; }
build_etcd() {
  local ver
  if [ "$ETCD_SOURCE" = debian ]; then
    if [ ! -x /usr/bin/etcd ]; then
      [ "$(id -u)" = 0 ] || { say "etcd-server is not installed and we are not root: apt-get install -y etcd-server"; return 1; }
      run apt-get update || return 1
      # Debian's postinst would start a system etcd; ask policy-rc.d not to (no init here anyway).
      DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 run apt-get install -y --no-install-recommends etcd-server || return 1
    fi
    ln -sf /usr/bin/etcd "$BIN/etcd"
    ver=$("$BIN/etcd" --version | sed -n 's/^etcd Version: //p')
    write_stamp etcd debian "ETCD_VERSION=$ver" "ETCD_SOURCE=debian"
    return 0
  fi
  local mod=go.etcd.io/etcd/server/v3 gomod
  gomod=$(module_gomod "$mod@$ETCD_GO_VERSION") || return 1
  new_wrapper etcd
  copy_remote_replaces "$gomod"
  map_local_replaces "$gomod" "$ETCD_GO_VERSION"   # api/v3, client/v3, pkg/v3 ... of the same release
  (cd "$WRAP" && run gocmd get -tool "$mod@$ETCD_GO_VERSION" && run gocmd mod tidy &&
    run gocmd build -o "$BIN/etcd" -ldflags "-s -w" "$mod") || return 1
  write_stamp etcd "go/$ETCD_GO_VERSION" "ETCD_VERSION=${ETCD_GO_VERSION#v}" "ETCD_SOURCE=go"
}

# 7b. kwok ------------------------------------------------------------------
# Fake kubelets: lets Deployments become Ready with no real nodes. No replace
# directives, so a plain `go install pkg@version` works. kwok refuses to start
# without Stage objects ("no stages found"), so we also assemble upstream's
# "stage-fast" set (what its release asset stage-fast.yaml contains) from the
# module's kustomize/stage files: run `kwok --config $KWOK_STAGES --manage-all-nodes`.
# (Verified: with kube-apiserver + kube-controller-manager (default controllers,
# nodelifecycle lifts the not-ready taint) + kube-scheduler, a Deployment on a
# kwok node rolls out.)
kwok_bins() { echo kwok; }
kwok_files() { echo share/kwok/stage-fast.yaml; }
kwok_spec() { echo "$KWOK_VERSION"; }
build_kwok() {
  local dir f out=$CACHE/share/kwok/stage-fast.yaml
  (cd "$SRC" && GOBIN=$BIN run gocmd install \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || return 1
  dir=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION") || return 1
  mkdir -p "${out%/*}"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$dir/kustomize/stage/$f" || return 1
  done >"$out.tmp"
  mv "$out.tmp" "$out"
  write_stamp kwok "$KWOK_VERSION" "KWOK_VERSION=$KWOK_VERSION" "KWOK_STAGES=$out"
}

# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
known_tool() { case " $ALL_TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }

check() {
  local t missing=0 b
  for t in "$@"; do
    if stamp_ok "$t" "$("${t}_spec")" $("${t}_bins"); then
      printf '  ok       %-15s %s\n' "$t" "$(tail -n +2 "$STAMPS/$t" | tr '\n' ' ')"
    else
      missing=1
      for b in $("${t}_bins"); do [ -x "$BIN/$b" ] || printf '  MISSING  %-15s %s\n' "$t" "$BIN/$b"; done
      for b in $(tool_files "$t"); do [ -f "$CACHE/$b" ] || printf '  MISSING  %-15s %s\n' "$t" "$CACHE/$b"; done
      [ -f "$STAMPS/$t" ] && [ "$(head -n1 "$STAMPS/$t")" != "spec=$("${t}_spec")" ] &&
        printf '  STALE    %-15s built as %s, wanted spec=%s\n' "$t" "$(head -n1 "$STAMPS/$t")" "$("${t}_spec")"
      [ -f "$STAMPS/$t" ] || printf '  NOTBUILT %-15s (no stamp)\n' "$t"
    fi
  done
  if [ $missing = 0 ]; then echo "cache complete: $CACHE (source $VERSIONS_ENV)"; return 0; fi
  echo "cache INCOMPLETE: $CACHE - run e2e/build-tools.sh"
  return 1
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

main() {
  local mode=build force=0 tools=() t
  while [ $# -gt 0 ]; do
    case $1 in
      --check) mode=check ;;
      --force) force=1 ;;
      --list) echo "known:   $ALL_TOOLS"; echo "default: $E2E_TOOLS"; return 0 ;;
      -h|--help) usage; return 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) known_tool "$1" || die "unknown tool '$1' (known: $ALL_TOOLS)"; tools+=("$1") ;;
    esac
    shift
  done
  [ ${#tools[@]} -gt 0 ] || read -r -a tools <<<"$E2E_TOOLS"
  for t in "${tools[@]}"; do known_tool "$t" || die "unknown tool '$t' in E2E_TOOLS"; done

  if [ $mode = check ]; then check "${tools[@]}"; return; fi

  command -v go >/dev/null || die "go is not installed"
  mkdir -p "$BIN" "$LOGS" "$SRC" "$STAMPS"
  # One build at a time per cache.
  exec 9>"$CACHE/.lock"
  flock -n 9 || die "another build-tools.sh is running on $CACHE"

  local failed=() start rc total=$SECONDS
  for t in "${tools[@]}"; do
    if [ $force = 0 ] && stamp_ok "$t" "$("${t}_spec")" $("${t}_bins"); then
      say "$t: up to date ($(tail -n +2 "$STAMPS/$t" | tr '\n' ' '))"
      continue
    fi
    LOG=$LOGS/$t.log
    : >"$LOG"
    say "$t: building (log: $LOG)"
    start=$SECONDS
    # A subshell with errexit on (an `if build_x` would silently disable -e inside it).
    set +e
    (set -e; "build_$t")
    rc=$?
    set -e
    if [ $rc = 0 ]; then
      say "$t: done in $((SECONDS - start))s"
    else
      say "$t: FAILED after $((SECONDS - start))s (exit $rc); last lines of $LOG:"
      tail -n 15 "$LOG" | sed 's/^/    /' >&2
      failed+=("$t")
    fi
    write_versions_env
  done
  write_versions_env
  say "total $((SECONDS - total))s; versions in $VERSIONS_ENV"
  if [ ${#failed[@]} -gt 0 ]; then
    say "FAILED tools: ${failed[*]} (logs in $LOGS)"
    return 1
  fi
}

# Braces + exit: bash reads scripts as it goes, so never run past main (safe to edit while running).
{ main "$@"; exit $?; }
