"""A stand-in for the linkerd CLI, answering as the two pinned releases do (per FACTS.md and linkerd2's
code at stable-2.8.1 and edge-26.8.3), so the program can be tested without the binary.

It renders small but telling manifests: the trust anchor where Linkerd puts it (raw in a ConfigMap
and in env, JSON-escaped in 2.8's linkerd-config), the issuer key base64-encoded in a Secret and,
on the current line, inside the base64 YAML of linkerd-config-overrides; random webhook material at
every render, as the real charts do.
"""

from __future__ import annotations

import base64
import json
import secrets
import shlex
from pathlib import Path
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
        if args[:2] == ["install", "--crds"]:
            return self._crds(args)
        if args[0] == "install":
            return self._install(args)
        if args[:2] == ["multicluster", "install"]:
            return self._multicluster(args)
        if args[:2] in (["multicluster", "link"], ["multicluster", "link-gen"]):
            return self._link(args)
        if args[0] == "inject":
            return self._inject(args, stdin or "")
        raise RuntimeError(f"fake linkerd: unexpected command {args}")

    def _crd(self, name: str, group: str, kind: str) -> dict[str, Any]:
        return {
            "apiVersion": "apiextensions.k8s.io/v1beta1" if self.page else "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "annotations": {"linkerd.io/created-by": f"linkerd/cli {self.version}"}},
            "spec": {"group": group, "names": {"kind": kind, "plural": name.split(".", maxsplit=1)[0]}, "scope": "Namespaced"},
        }

    def _crds(self, args: list[str]) -> str:
        objects = [self._crd("serviceprofiles.linkerd.io", "linkerd.io", "ServiceProfile")]
        if "installGatewayAPI=true" in args:
            objects.append(self._crd("httproutes.gateway.networking.k8s.io", "gateway.networking.k8s.io", "HTTPRoute"))
        return _dump(objects)

    def _install(self, args: list[str]) -> str:
        anchor = Path(_option(args, "--identity-trust-anchors-file") or "").read_text()
        issuer_crt = Path(_option(args, "--identity-issuer-certificate-file") or "").read_text()
        issuer_key = Path(_option(args, "--identity-issuer-key-file") or "").read_text()
        ha = "--ha" in args
        webhook_ca = f"-----BEGIN CERTIFICATE-----\n{secrets.token_hex(24)}\n-----END CERTIFICATE-----\n"
        ns = "linkerd"
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"config.linkerd.io/admission-webhooks": "disabled"}},
            },
        ]
        if self.page:
            objects.append(self._crd("serviceprofiles.linkerd.io", "linkerd.io", "ServiceProfile"))
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "linkerd-config", "namespace": ns},
                    "data": {"global": json.dumps({"identityContext": {"trustAnchorsPem": anchor}})},
                }
            )
            tls_secret, webhook_keys = (
                "linkerd-proxy-injector-tls",
                {"crt.pem": _b64(webhook_ca), "key.pem": _b64(secrets.token_hex(16))},
            )
        else:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "linkerd-identity-trust-roots", "namespace": ns},
                    "data": {"ca-bundle.crt": anchor},
                }
            )
            overrides = yaml.safe_dump(
                {"identity": {"issuer": {"tls": {"crtPEM": issuer_crt, "keyPEM": issuer_key}}}}, default_style="|"
            )
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "linkerd-config-overrides", "namespace": ns},
                    "data": {"linkerd-config-overrides": _b64(overrides)},
                }
            )
            tls_secret, webhook_keys = (
                "linkerd-proxy-injector-k8s-tls",
                {"tls.crt": _b64(webhook_ca), "tls.key": _b64(secrets.token_hex(16))},
            )
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "linkerd-identity-issuer", "namespace": ns},
                "data": {"crt.pem": _b64(issuer_crt), "key.pem": _b64(issuer_key)},
            },
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "linkerd-identity", "namespace": ns}},
            self._deployment("linkerd-identity", ns, 3 if ha else 1, anchor, {}),
            self._deployment(
                "linkerd-destination", ns, 3 if ha else 1, anchor, {} if self.page else {"checksum/config": secrets.token_hex(8)}
            ),
            self._deployment(
                "linkerd-proxy-injector",
                ns,
                3 if ha else 1,
                anchor,
                {} if self.page else {"checksum/config": secrets.token_hex(8)},
            ),
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": tls_secret, "namespace": ns},
                "type": "kubernetes.io/tls",
                "data": webhook_keys,
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1beta1" if self.page else "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "linkerd-proxy-injector-webhook-config"},
                "webhooks": [
                    {
                        "name": "linkerd-proxy-injector.linkerd.io",
                        "failurePolicy": "Fail" if ha else "Ignore",
                        "clientConfig": {
                            "service": {"name": "linkerd-proxy-injector", "namespace": ns, "path": "/"},
                            "caBundle": _b64(webhook_ca),
                        },
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1", "v1beta1"],
                    }
                ],
            },
        ]
        if ha and not self.page:
            objects.append(
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": "linkerd-identity", "namespace": ns},
                    "spec": {
                        "maxUnavailable": 1,
                        "selector": {"matchLabels": {"linkerd.io/control-plane-component": "identity"}},
                    },
                }
            )
        if "--disable-heartbeat" not in args:
            objects.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "metadata": {"name": "linkerd-heartbeat", "namespace": ns},
                    "spec": {
                        "schedule": f"{secrets.randbelow(60)} {secrets.randbelow(24)} * * *",
                        "jobTemplate": {
                            "spec": {
                                "template": {
                                    "spec": {
                                        "containers": [{"name": "heartbeat", "image": "heartbeat"}],
                                        "restartPolicy": "Never",
                                    }
                                }
                            }
                        },
                    },
                }
            )
        return _dump(objects)

    @staticmethod
    def _deployment(name: str, ns: str, replicas: int, anchor: str, annotations: dict[str, str]) -> dict[str, Any]:
        labels = {"linkerd.io/control-plane-component": name.removeprefix("linkerd-")}
        affinity = (
            {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            }
            if replicas > 1
            else None
        )
        spec: dict[str, Any] = {
            "containers": [
                {
                    "name": "linkerd-proxy",
                    "image": "cr.l5d.io/linkerd/proxy",
                    "env": [{"name": "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", "value": anchor}],
                }
            ]
        }
        if affinity:
            spec["affinity"] = affinity
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec},
            },
        }

    def _multicluster(self, args: list[str]) -> str:
        ns = "linkerd-multicluster"
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"linkerd.io/extension": "multicluster"}},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "linkerd-service-mirror-remote-access-default", "namespace": ns},
            },
        ]
        if not self.page:
            objects.insert(1, self._crd("links.multicluster.linkerd.io", "multicluster.linkerd.io", "Link"))
        if "--gateway=false" not in args:
            objects.append(self._deployment("linkerd-gateway", ns, 1, "", {}))
        for index, value in enumerate(args):
            if value == "--set" and args[index + 1].startswith("controllers["):
                link = args[index + 1].split("=", 1)[1]
                objects.append(self._deployment(f"controller-{link}", ns, 1, "", {}))
        return _dump(objects)

    def _link(self, args: list[str]) -> str:
        name = _option(args, "--cluster-name")
        ns = "linkerd-multicluster"
        kubeconfig = yaml.safe_dump({"users": [{"name": "mirror", "user": {"token": "target-service-account-token"}}]})
        objects: list[dict[str, Any]] = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "mirror.linkerd.io/remote-kubeconfig",
                "metadata": {"name": f"cluster-credentials-{name}", "namespace": ns},
                "data": {"kubeconfig": _b64(kubeconfig)},
            }
        ]
        if args[1] == "link-gen":
            objects.append(
                {
                    "apiVersion": "multicluster.linkerd.io/v1alpha3",
                    "kind": "Link",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {
                        "targetClusterName": name,
                        "gatewayAddress": _option(args, "--gateway-addresses") or "203.0.113.10",
                        "gatewayIdentity": f"{_option(args, '--gateway-name')}.{_option(args, '--gateway-namespace')}"
                        ".serviceaccount.identity.linkerd.cluster.local",
                        "gatewayPort": "4143",
                        "probeSpec": {"path": "/-/ambassador/ready", "port": "80", "period": "3s"},
                    },
                }
            )
        return _dump(objects)

    def _inject(self, args: list[str], stdin: str) -> str:
        if self.page and "--ignore-cluster" in args and "--disable-identity" not in args:
            raise RuntimeError("--ignore-cluster requires --disable-identity")
        deployment = yaml.safe_load(stdin)
        metadata = deployment["spec"]["template"].setdefault("metadata", {})
        annotations = metadata.setdefault("annotations", {}) or {}
        annotations["linkerd.io/inject"] = "enabled"
        for flag, annotation in (
            ("--skip-inbound-ports", "config.linkerd.io/skip-inbound-ports"),
            ("--require-identity-on-inbound-ports", "config.linkerd.io/proxy-require-identity-inbound-ports"),
        ):
            if flag in args:
                annotations[annotation] = _option(args, flag)
        if "--disable-identity" in args:
            annotations["config.linkerd.io/disable-identity"] = "true"
        metadata["annotations"] = annotations
        return yaml.safe_dump(deployment)
