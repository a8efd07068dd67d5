"""The page's demo: QOTM Deployment, Service `qotm-linkerd2` and Mapping `/qotm-linkerd2/`, as written there.

An optional smoke step then asks Edge Stack for `/qotm-linkerd2/` (the page's `curl`) and fails the
update unless a quote comes back.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from support import ambassador, upstream

# The readiness probe starts after 60 s (the page's value); give the route that long and more.
SMOKE_ATTEMPTS = 40
SMOKE_INTERVAL_SECONDS = 5


@dataclass(frozen=True, kw_only=True)
class QotmDemoArgs:
    line: upstream.VersionLine
    namespace: pulumi.Input[str]
    # The Mapping's own add_linkerd_headers; None inherits the Module's.
    add_linkerd_headers: bool | None = None
    # The meshed namespace (its inject annotation waits for the proxy injector): the Deployment's pods are meshed.
    depends_on: Sequence[pulumi.Resource] = ()
    # What the Mapping waits for besides: Edge Stack's CRDs (and on 3.9.1 the conversion webhook).
    mapping_after: Sequence[pulumi.Resource] = ()
    # What the smoke test routes through: Edge Stack's Deployment, meshed.
    gateway: Sequence[pulumi.Resource] = ()
    smoke_test_url: str | None = None
    # A trust rotation's mark (the anchors in the roots) on the pod template: a new one restarts QOTM.
    restart_mark: str | None = None


def smoke_command(base_url: str, attempts: int = SMOKE_ATTEMPTS, interval_seconds: int = SMOKE_INTERVAL_SECONDS) -> str:
    """The page's `curl`, retried. The URL is validated by config and quoted here wherever it appears."""
    url = shlex.quote(base_url.rstrip("/") + upstream.QOTM_PREFIX)
    probe = f"curl -fsSL --max-time 10 {url} | grep -q '\"quote\"'"
    return (
        f"for attempt in $(seq {attempts}); do {probe} && exit 0; sleep {interval_seconds}; done; "
        f"echo no quote from {url} after {attempts} attempts >&2; exit 1"
    )


class QotmDemo(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    mapping: k8s.apiextensions.CustomResource
    smoke_test: command.local.Command | None

    def __init__(self, name: str, args: QotmDemoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:QotmDemo", name, None, opts)
        labels = {"app": upstream.QOTM_NAME}
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=upstream.QOTM_NAME, namespace=args.namespace),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels,
                        annotations={upstream.TRUST_ANCHORS_ANNOTATION: args.restart_mark} if args.restart_mark else None,
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=upstream.QOTM_NAME,
                                image=upstream.QOTM_IMAGE,
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name=upstream.QOTM_PORT_NAME, container_port=upstream.QOTM_CONTAINER_PORT
                                    )
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="POD_IP",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="status.podIP")
                                        ),
                                    )
                                ],
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port=upstream.QOTM_CONTAINER_PORT),
                                    initial_delay_seconds=60,
                                    period_seconds=3,
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(limits={"cpu": "0.1", "memory": "100Mi"}),
                            )
                        ]
                    ),
                ),
            ),
            opts=after,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            # Not awaited: the provider would hold it until its endpoints settle for 10 seconds, and the Deployment
            # behind it is awaited itself (the exports only label it).
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=upstream.QOTM_SERVICE, namespace=args.namespace, annotations={upstream.SKIP_AWAIT_ANNOTATION: "true"}
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=upstream.QOTM_SERVICE_PORT, target_port=upstream.QOTM_CONTAINER_PORT
                    )
                ],
                selector=labels,
            ),
            opts=after,
        )
        mapping_spec = ambassador.mapping_spec(
            args.line,
            prefix=upstream.QOTM_PREFIX,
            service=upstream.QOTM_SERVICE,
            add_linkerd_headers=args.add_linkerd_headers,
        )
        self.mapping = ambassador.custom_resource(
            f"{name}-mapping",
            args.line,
            "Mapping",
            name=upstream.QOTM_MAPPING,
            namespace=args.namespace,
            spec=mapping_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *args.mapping_after]),
        )
        self.smoke_test = None
        if args.smoke_test_url is not None:
            self.smoke_test = command.local.Command(
                f"{name}-smoke-test",
                create=smoke_command(args.smoke_test_url),
                # Asked again whenever what it tests changes.
                triggers=[self.deployment.metadata.generation, json.dumps(mapping_spec, sort_keys=True)],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment, self.service, self.mapping, *args.gateway]),
            )
        self.service_name = self.service.id.apply(lambda _: upstream.QOTM_SERVICE)
        self.register_outputs({"serviceName": self.service_name})
