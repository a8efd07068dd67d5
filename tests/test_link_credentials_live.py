"""A Link credentials rotation on a live API server: the real multicluster render's remote-access account for a
generation (components/linkerd_control_plane, `linkCredentials`), its token filled by the real token controller,
the real `link-gen --service-account-name` finding it, its rights those of upstream's default account, and the
token refused once its generation's objects go (what the target's next rotation does).

One etcd and kube-apiserver on loopback (tests/api_server.py), and kube-controller-manager running only the
service-account token controller, on loopback too and serving nothing. Skipped, naming the tools, when not built.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.linkerd_control_plane import ControlPlaneIdentity, LinkerdControlPlane, LinkerdControlPlaneArgs
from components.multicluster_source import link_args
from support import tools, upstream
from support.config_model import ClusterAccess
from support.linkerd_cli import LinkerdCli
from tests.api_server import ApiServer, api_server
from tests.conftest import real_linkerd

LINE = upstream.CURRENT
NAMESPACE = upstream.MULTICLUSTER_NAMESPACE
DEFAULT = upstream.remote_access_account(0)
ROTATED = upstream.remote_access_account(2)


def _no_identity(namespace: object) -> ControlPlaneIdentity:
    raise AssertionError("the multicluster arguments need no identity")


def remote_access_objects(account: str | None) -> list[dict[str, Any]]:
    """What the program's multicluster install renders for this account (None: upstream's default), by the real CLI."""
    args = LinkerdControlPlaneArgs(
        cli=LinkerdCli(binary=real_linkerd(), cluster=ClusterAccess(context="admin")),
        kubectl="kubectl",
        line=LINE,
        ha=False,
        trust_domain="cluster.local",
        identity=_no_identity,
        multicluster=True,
        remote_access_account=account,
    )
    done = subprocess.run(
        [real_linkerd(), *LinkerdControlPlane._multicluster_args(args, offline=True)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    name = account or DEFAULT
    return [
        o for o in yaml.safe_load_all(done.stdout)
        if o and (o["metadata"]["name"] in (name, f"{name}-token") or o["kind"] == "Namespace")
    ]  # fmt: skip


def token_controller(server: ApiServer, folder: Path) -> subprocess.Popen[bytes]:
    manager = tools.tools_dir() / "kube-controller-manager"
    if not manager.exists():
        pytest.skip("REAL kube-controller-manager NOT FOUND (~/.cache/aes-linkerd2/bin): test NOT RUN")
    return subprocess.Popen(
        [str(manager), "--kubeconfig", server.kubeconfig, "--controllers", "serviceaccount-token",
         "--service-account-private-key-file", str(folder / "sa.key"), "--leader-elect=false",
         "--secure-port", "0", "--bind-address", "127.0.0.1"],
        stdout=(folder / "controller-manager.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    folder = tmp_path_factory.mktemp("link-credentials")
    with api_server(folder) as server:
        controller = token_controller(server, folder)
        try:
            linkerd_config = {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "linkerd-config", "namespace": "linkerd"},
                "data": {"values": "clusterDomain: cluster.local\nidentityTrustDomain: cluster.local\n"},
            }  # fmt: skip
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "linkerd"}}
            objects = [namespace, linkerd_config, *remote_access_objects(None), *remote_access_objects(ROTATED)]
            server.run("admin", "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))
            yield server
        finally:
            controller.terminate()
            controller.wait(timeout=60)


def filled_token(server: ApiServer, account: str) -> str:
    """The token the controller writes into the account's token Secret (the program never sees or writes one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = server.run("admin", "-n", NAMESPACE, "get", "secret", f"{account}-token", "-o", "jsonpath={.data.token}")
        if done.stdout:
            return base64.b64decode(done.stdout).decode()
        time.sleep(0.5)
    raise AssertionError(f"the token controller did not fill {account}-token")


def link_gen(server: ApiServer, account: str) -> list[dict[str, Any]]:
    """The objects the real link-gen writes for the program's arguments."""
    args = link_args(LINE, "target", "", "", (), gateway=False, service_account=account)
    done = subprocess.run(
        [real_linkerd(), "--kubeconfig", server.kubeconfig, "--context", "admin", *args],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def credentials(server: ApiServer, account: str) -> str:
    """The Link's credentials kubeconfig as the real link-gen writes it for the program's arguments."""
    secret = next(o for o in link_gen(server, account) if o["kind"] == "Secret")
    return base64.b64decode(secret["data"]["kubeconfig"]).decode()


def as_link(server: ApiServer, kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as handle:
        handle.write(kubeconfig)
        handle.flush()
        return subprocess.run(
            [server.kubectl, "--kubeconfig", handle.name, *args], check=False, capture_output=True, text=True, timeout=60
        )


def rights(server: ApiServer, account: str) -> str:
    listed = server.run("admin", "auth", "can-i", "--list", "--as", f"system:serviceaccount:{NAMESPACE}:{account}")
    return listed.stdout


def test_link_gen_finds_the_rotated_accounts_token_and_it_works(target: ApiServer) -> None:
    token = filled_token(target, ROTATED)
    kubeconfig = credentials(target, ROTATED)
    assert yaml.safe_load(kubeconfig)["users"] == [{"name": ROTATED, "user": {"token": token}}]
    assert token != filled_token(target, DEFAULT)
    # What the service mirror does with it: read services across the target, as that account.
    assert as_link(target, kubeconfig, "get", "services", "--all-namespaces").returncode == 0
    assert as_link(target, kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == (
        f"system:serviceaccount:{NAMESPACE}:{ROTATED}"
    )


def test_the_destination_controllers_copy_carries_the_rotated_token_too(target: ApiServer) -> None:
    """link-gen writes the credentials twice: the service mirror's, and the one the destination controller's cluster
    store watches for pod-to-pod exports (a `mirror.linkerd.io/remote-kubeconfig` Secret in `linkerd`, labelled with
    the cluster; watcher/cluster_store.go). Both change with a rotation; the store handles no update of its copy,
    which is why the source rolls the destination controller after it (multicluster_source.py, reload-destination)."""
    secrets = {o["metadata"]["namespace"]: o for o in link_gen(target, ROTATED) if o["kind"] == "Secret"}
    assert sorted(secrets) == ["linkerd", NAMESPACE]
    destination = secrets["linkerd"]
    assert destination["type"] == "mirror.linkerd.io/remote-kubeconfig"
    assert destination["metadata"]["name"] == "cluster-credentials-target"
    assert destination["metadata"]["labels"] == {"multicluster.linkerd.io/cluster-name": "target"}
    assert destination["data"] == secrets[NAMESPACE]["data"]
    kubeconfig = yaml.safe_load(base64.b64decode(destination["data"]["kubeconfig"]))
    assert kubeconfig["users"] == [{"name": ROTATED, "user": {"token": filled_token(target, ROTATED)}}]


def test_the_rotated_account_has_exactly_the_default_accounts_rights(target: ApiServer) -> None:
    rotated, default = rights(target, ROTATED), rights(target, DEFAULT)
    assert rotated == default
    assert "services " in rotated and "configmaps " in rotated and "secrets" not in rotated


def test_the_old_generations_token_is_refused_once_its_objects_go(target: ApiServer) -> None:
    """The next rotation deletes this generation's objects: its Link credentials stop working at once."""
    kubeconfig = credentials(target, ROTATED)
    assert as_link(target, kubeconfig, "get", "services").returncode == 0
    generation = [o for o in remote_access_objects(ROTATED) if o["kind"] != "Namespace"]
    assert sorted(o["kind"] for o in generation) == ["ClusterRole", "ClusterRoleBinding", "Secret", "ServiceAccount"]
    # The token controller deletes an account's token Secrets with it: the Secret may be gone already.
    target.run("admin", "delete", "--ignore-not-found", "-f", "-", stdin=yaml.safe_dump_all(generation))
    # Its rights go with its binding at once; the token itself as soon as the API server sees its Secret gone.
    refused = as_link(target, kubeconfig, "get", "services")
    assert refused.returncode != 0 and ("Forbidden" in refused.stderr or "Unauthorized" in refused.stderr), refused.stderr
    started = time.monotonic()
    while "Unauthorized" not in refused.stderr and time.monotonic() < started + 30:
        time.sleep(0.5)
        refused = as_link(target, kubeconfig, "get", "services")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr
    print(f"token refused {time.monotonic() - started:.1f} s after its objects were deleted")
