"""A stand-in for the linkerd CLI, for what the real one cannot be made to do in a unit test.

It answers another release's version, a failure on demand, and the Link (`link-gen` needs the
target's live API server; the end-to-end tier runs the real one). Everything else is the real CLI's
(tests/conftest.py `real_linkerd`): no test asserts on what gets applied from this fake's output.
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

import yaml

GLOBAL_FLAGS_WITH_VALUE = {"--kubeconfig", "--context"}
PAGE_VERSION = "stable-2.8.1"
CURRENT_VERSION = "edge-26.8.3"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def _option(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


class FakeLinkerd:
    def __init__(
        self,
        version: str = CURRENT_VERSION,
        binary: str = "linkerd",
        fail: dict[str, str] | None = None,
        *,
        answers_all: bool = True,
    ) -> None:
        self.version = version
        self.binary = binary
        # False: the real CLI answers, and this only what needs a live cluster (the Link).
        self.answers_all = answers_all
        self.fail = fail or {}
        self.calls: list[list[str]] = []
        self.commands: list[str] = []
        self.stdins: list[str | None] = []

    @property
    def page(self) -> bool:
        return self.version == PAGE_VERSION

    def run(self, command: str, stdin: str | None) -> str:
        self.commands.append(command)
        argv = shlex.split(command)
        if argv[0] != self.binary:
            raise RuntimeError(f"exec: {argv[0]!r}: executable file not found in $PATH")
        args, index = [], 1
        while index < len(argv):
            if argv[index] in GLOBAL_FLAGS_WITH_VALUE:
                index += 2
                continue
            args.append(argv[index])
            index += 1
        self.calls.append(args)
        self.stdins.append(stdin)
        for prefix, message in self.fail.items():
            if " ".join(args).startswith(prefix):
                raise RuntimeError(message)
        if args[:3] == ["version", "--client", "--short"]:
            return self.version + "\n"
        if args[:2] in (["multicluster", "link"], ["multicluster", "link-gen"]):
            return self._link(args)
        raise RuntimeError(f"fake linkerd: it answers only versions, failures and the Link, not {args}")

    def _link(self, args: list[str]) -> str:
        name = _option(args, "--cluster-name")
        ns = "linkerd-multicluster"
        # Each remote-access account its own token, as each has its own token Secret on the target.
        account = _option(args, "--service-account-name")
        token = f"{account}-token" if account else "target-service-account-token"
        kubeconfig = yaml.safe_dump({"users": [{"name": account or "mirror", "user": {"token": token}}]})
        credentials = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "mirror.linkerd.io/remote-kubeconfig",
            "metadata": {"name": f"cluster-credentials-{name}", "namespace": ns},
            "data": {"kubeconfig": _b64(kubeconfig)},
        }
        objects: list[dict[str, Any]] = [credentials]
        if args[1] == "link-gen":
            # The same credentials for the destination controller, in the control plane's namespace (the real link-gen's).
            objects.append(
                {
                    **credentials,
                    "metadata": {
                        "name": f"cluster-credentials-{name}",
                        "namespace": "linkerd",
                        "labels": {"multicluster.linkerd.io/cluster-name": name},
                        "annotations": {
                            "multicluster.linkerd.io/cluster-domain": "cluster.local",
                            "multicluster.linkerd.io/trust-domain": "cluster.local",
                        },
                    },
                }
            )
            objects.append(
                {
                    "apiVersion": "multicluster.linkerd.io/v1alpha3",
                    "kind": "Link",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"targetClusterName": name, **self._gateway(args)},
                }
            )
        return _dump(objects)

    @staticmethod
    def _gateway(args: list[str]) -> dict[str, Any]:
        """What link-gen reads off the gateway Service; none with --gateway=false (test_link_live.py runs the real CLI)."""
        if "--gateway=false" in args:
            return {}
        return {
            "gatewayAddress": _option(args, "--gateway-addresses") or "203.0.113.10",
            "gatewayIdentity": f"{_option(args, '--gateway-name')}.{_option(args, '--gateway-namespace')}"
            ".serviceaccount.identity.linkerd.cluster.local",
            "gatewayPort": "4143",
            "probeSpec": {"path": "/-/ambassador/ready", "port": "80", "period": "3s"},
        }
