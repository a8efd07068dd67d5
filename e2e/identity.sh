# e2e/identity.sh - sourced by e2e/webhooks.sh: Linkerd's identity controller as a local process, one per
# running `linkerd-identity` pod, as the webhook servers run (so that the issuer it loads, and the
# IssuerUpdated Events it records, are the real controller's).
#
#   e2e/identity.sh --check      says whether the controller binary and `unshare --mount` are there; exit 1 if not
#
#   identity_check               WEBHOOK_IDENTITY: the hand-built edge-26.8.3 controller (its `identity` subcommand,
#                                controller/cmd/identity at the tag), or "" and a LOUD line saying what is missing.
#                                A tier turns the controller on by calling it (e2e/clusters.sh --trust); webhooks_check
#                                does not: the other tiers run without it.
#   identity_tick NAME           called by e2e/webhooks.sh's watcher: the kubelet stand-in (e2e/identity_volumes.py)
#                                projects the issuer Secret and the trust roots ConfigMap for each running identity
#                                pod, then a process is started for each pod that has none, and stopped for each pod
#                                that is gone. Log, pid, volumes and the roots it read at its start (roots-at-start.crt)
#                                in $WORK/NAME/identity/POD
#   identity_stop_all NAME       stops every process started for NAME (the watcher's exit)
#
# What each process is given, and why:
#   the pod's arguments          the live Deployment's identity container's (the chart's); an argument not in the
#                                chart at the tag is refused (anything new could name something to dial)
#   -addr IP:8080, -admin-addr IP:9990   its pod's IP, from kwok's loopback pod range (refused off 127.0.0.0/8):
#                                gRPC and admin listen there only (its defaults are every interface). No proxy here
#                                dials it: its gRPC answers nobody; it is run for what it reads and records
#   -kubeconfig                  the cluster's admin kubeconfig (e2e/cluster.sh: a token of group system:masters,
#                                checked with `auth can-i` first): the controller creates TokenReviews and Events,
#                                and dials only that API server, on 127.0.0.1
#   /var/run/linkerd             a private mount namespace in which $WORK/NAME/identity/POD/run is bind-mounted on /run
#                                (/var/run is /run): the controller reads the trust roots at the fixed path
#                                /var/run/linkerd/identity/trust-roots/ca-bundle.crt once, when it starts, and
#                                watches /var/run/linkerd/identity/issuer. The host's /run is never written.
# A pod replaced by a rollout (the bundle and drop-old steps change the identity pod template's
# linkerd.io/trust-root-sha256) gets a new process reading the new roots, as its container would.

IDENTITY_NAMESPACE=linkerd

identity_check() {
  WEBHOOK_IDENTITY=${CACHE:-$HOME/.cache/aes-linkerd2}/bin/linkerd-controller-edge-26.8.3
  if [ ! -x "$WEBHOOK_IDENTITY" ]; then
    printf '[identity] MISSING %s: NOT SHOWN: Linkerd'"'"'s identity controller loading the issuer (no IssuerUpdated Event)\n' \
      "$WEBHOOK_IDENTITY" >&2
    WEBHOOK_IDENTITY=""
  elif ! unshare --mount --propagation private true 2>/dev/null; then
    printf '[identity] MISSING unshare --mount (root): NOT SHOWN: Linkerd'"'"'s identity controller (it reads fixed paths under /var/run/linkerd)\n' >&2
    WEBHOOK_IDENTITY=""
  fi
  return 0
}

_identity_start() {  # _identity_start NAME POD IP
  local name=$1 pod=$2 ip=$3 dir=$WORK/$1/identity/$2 args=() can
  for can in "create events -n $IDENTITY_NAMESPACE" "create tokenreviews.authentication.k8s.io"; do
    # shellcheck disable=SC2086  # the verb, resource and namespace are separate words
    if [ "$("$B/kubectl" --kubeconfig "$WORK/$name/kubeconfig" auth can-i $can 2>/dev/null)" != yes ]; then
      printf '[identity] REFUSING: %s'"'"'s kubeconfig may not %s (the controller needs it)\n' "$name" "$can" >&2
      return 1
    fi
  done
  mapfile -d '' args < "$dir/args"
  # What it reads at its start, and only then (the tests compare it with the live roots): nothing projects in between,
  # this watcher does both, one after the other.
  cp "$dir/run/linkerd/identity/trust-roots/ca-bundle.crt" "$dir/roots-at-start.crt"
  unshare --mount --propagation private -- /bin/sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh \
    "$dir/run" "$WEBHOOK_IDENTITY" "${args[@]}" -addr "$ip:8080" -admin-addr "$ip:9990" \
    -kubeconfig "$WORK/$name/kubeconfig" >> "$dir/identity.log" 2>&1 &
  echo $! > "$dir/pid"
  printf '[identity] %s: Linkerd'"'"'s identity controller (pid %s) for pod %s/%s on %s:8080 (admin %s:9990): %s\n' \
    "$name" "$!" "$IDENTITY_NAMESPACE" "$pod" "$ip" "$ip" "${args[*]}" >&2
}

_identity_stop() {  # _identity_stop NAME POD
  local dir=$WORK/$1/identity/$2 pid
  pid=$(cat "$dir/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  rm -rf "$dir/run"  # the issuer's key goes with the pod's volumes
  printf '[identity] %s: pod %s/%s is gone: its identity controller (pid %s) stopped\n' "$1" "$IDENTITY_NAMESPACE" "$2" "$pid" >&2
}

identity_tick() {
  local name=$1 base=$WORK/$1/identity rc=0 action pod ip
  mkdir -p "$base"
  [ "$(cat "$base/state" 2>/dev/null)" = refused ] && return 0
  "$B/kubectl" --kubeconfig "$WORK/$name/kubeconfig" get -n "$IDENTITY_NAMESPACE" secrets,configmaps,deployments,pods \
    -o json 2>/dev/null | python3 "$(dirname "${BASH_SOURCE[0]}")/identity_volumes.py" "$base" > "$base/actions" || rc=$?
  while read -r action pod ip; do
    case $action in
      start) _identity_start "$name" "$pod" "$ip" || rc=2 ;;
      stop) _identity_stop "$name" "$pod" ;;
    esac
  done < "$base/actions"
  case $rc in 0) echo serving > "$base/state" ;; 2) echo refused > "$base/state" ;; *) [ -f "$base/state" ] || echo waiting > "$base/state" ;; esac
  return 0
}

identity_stop_all() {
  local pid_file
  for pid_file in "$WORK/$1"/identity/*/pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null
  done
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ "${1:-}" = --check ] || { echo "usage: $0 --check" >&2; exit 2; }
  identity_check
  [ -n "$WEBHOOK_IDENTITY" ] && echo "identity controller: $WEBHOOK_IDENTITY"
  [ -n "$WEBHOOK_IDENTITY" ]
fi
