"""A stand-in of the kubelet's volumes for Linkerd's identity controller, one set per identity pod (e2e/identity.sh).

Reads `kubectl get -n linkerd secrets,configmaps,deployments,pods -o json` on stdin. For every running
`linkerd-identity` pod (kwok's: no container runs) it projects, as the kubelet does for that pod, the Secret
`linkerd-identity-issuer` into `<base>/<pod>/run/linkerd/identity/issuer` and the ConfigMap
`linkerd-identity-trust-roots` into `<base>/<pod>/run/linkerd/identity/trust-roots` (the chart's mounts,
under /var/run/linkerd, which the process sees as /run in its own mount namespace), and prints what the
caller must do, one line each:

    start POD IP     a pod without its process: its arguments are in <base>/POD/args (NUL-separated)
    stop POD         a process whose pod is gone (deleted, or no longer running)

Each volume is written as the kubelet's AtomicWriter writes it: the files in a new timestamped folder, then
the symlink `..data` swapped to it by a rename. The controller's fsnotify watcher reloads the issuer on the
create of `..data` in its folder (pkg/tls/creds_watcher.go); a rename onto it is one. A volume is written
only when its content changed, so the controller sees a renewal and nothing else.

A kubelet projects a changed Secret at its next sync of the pod (a minute or more on a real node; this stand-in, every
other second). While `<base>/hold-issuer` exists, a running controller's issuer volume is left as it is, as a slow
sync would leave it: a tier shows with it what waits for gate (b). A pod that starts gets its volumes at once.

Exit 1 while the objects are not all there (the caller polls again); 2 when something is refused (said on
stderr): an argument of the identity container it does not know (anything new could name something to dial),
or a pod IP off 127.0.0.0/8 (the process listens on its pod's IP).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

NAMESPACE = "linkerd"
DEPLOYMENT = "linkerd-identity"
ISSUER = "linkerd-identity-issuer"
ROOTS = "linkerd-identity-trust-roots"
COMPONENT = "linkerd.io/control-plane-component"
# The chart's identity container arguments at edge-26.8.3 (charts/linkerd-control-plane/templates/identity.yaml).
KNOWN = {
    "-log-level",
    "-log-format",
    "-controller-namespace",
    "-identity-trust-domain",
    "-identity-issuance-lifetime",
    "-identity-clock-skew-allowance",
    "-identity-scheme",
    "-enable-pprof",
    "-kube-apiclient-qps",
    "-kube-apiclient-burst",
}
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HOLD = "hold-issuer"


def refuse(message: str) -> None:
    print(f"[identity] REFUSING the identity controller: {message}", file=sys.stderr)
    sys.exit(2)


def project(folder: Path, files: dict[str, bytes]) -> bool:
    """FILES into FOLDER the kubelet's way; False when they are already there as they are."""
    data = folder / "..data"
    if (
        data.is_dir()
        and {p.name for p in data.iterdir()} == set(files)
        and all((data / name).read_bytes() == body for name, body in files.items())
    ):
        return False
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    old = os.readlink(data) if data.is_symlink() else None
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    fresh = folder / stamp
    fresh.mkdir(mode=0o700)
    for name, body in files.items():
        with open(fresh / name, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
            out.write(body)
    swap = folder / "..data_tmp"
    swap.unlink(missing_ok=True)
    swap.symlink_to(stamp)
    swap.rename(data)  # the create of ..data the controller's watcher reloads on
    for name in files:
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for link in folder.iterdir():  # keys that left the object, as the kubelet removes them
        if link.is_symlink() and not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old is not None:
        shutil.rmtree(folder / old, ignore_errors=True)
    return True


def arguments(deployment: dict[str, Any]) -> list[str]:
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    if "identity" not in containers:
        refuse(f"{DEPLOYMENT} has no identity container")
    args = [str(a) for a in containers["identity"].get("args") or []]
    if args[:1] != ["identity"]:
        refuse(f"unexpected arguments {args!r}")
    for arg in args[1:]:
        if arg.partition("=")[0] not in KNOWN:
            refuse(f"unknown argument {arg!r}")
    return args


def alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def main(base: Path) -> int:
    try:
        items = json.load(sys.stdin)["items"]
    except (ValueError, KeyError):
        return 1  # the API server did not answer
    found = {(i["kind"], i["metadata"]["name"]): i for i in items}
    deployment, secret, roots = (
        found.get(("Deployment", DEPLOYMENT)),
        found.get(("Secret", ISSUER)),
        found.get(("ConfigMap", ROOTS)),
    )
    pods = [
        i
        for i in items
        if i["kind"] == "Pod"
        and (i["metadata"].get("labels") or {}).get(COMPONENT) == "identity"
        and "deletionTimestamp" not in i["metadata"]
        and (i.get("status") or {}).get("phase") == "Running"
        and (i.get("status") or {}).get("podIP")
    ]
    running = {p["metadata"]["name"] for p in pods}
    for pid_file in sorted(base.glob("*/pid")):
        if pid_file.parent.name not in running:
            print(f"stop {pid_file.parent.name}")
    if deployment is None or secret is None or roots is None:
        return 1
    args = arguments(deployment)
    issuer_files = {name: base64.b64decode(value) for name, value in (secret.get("data") or {}).items()}
    roots_files = {name: str(value).encode() for name, value in (roots.get("data") or {}).items()}
    for pod in pods:
        name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
        if ipaddress.ip_address(ip) not in LOOPBACK:
            refuse(f"pod {name} has IP {ip}, off loopback")
        folder = base / name
        volumes = folder / "run" / "linkerd" / "identity"
        running_already = alive(folder / "pid")
        if not (running_already and (base / HOLD).exists()):
            project(volumes / "issuer", issuer_files)
        project(volumes / "trust-roots", roots_files)
        if not running_already:
            (folder / "args").write_text("\0".join(args) + "\0")
            print(f"start {name} {ip}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
