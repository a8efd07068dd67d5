"""The project's components that need neither the linkerd CLI nor pulumi-command, as they are used
on the target: Edge Stack's objects (from the test fixture manifest), the mesh patch, the meshed
namespace, QOTM and MulticlusterTarget; plus a webhook, a Secret and a Deployment carrying random
material under the ignore_changes paths the control plane uses. Run by e2e/partial.sh.
"""

import base64
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
import pulumi_kubernetes as k8s  # noqa: E402

from components import manifests, upstream  # noqa: E402
from components.edge_stack import prepare_object  # noqa: E402
from components.meshed_namespace import MeshedNamespace, MeshedNamespaceArgs  # noqa: E402
from components.multicluster_target import GatewayRef, MulticlusterTarget, MulticlusterTargetArgs  # noqa: E402
from components.qotm_demo import QotmDemo, QotmDemoArgs  # noqa: E402

line = upstream.CURRENT
product = line.edge_stack["edge-stack"]
provider = k8s.Provider("cluster", context=pulumi.Config().require("context"))
on = pulumi.ResourceOptions(providers={"kubernetes": provider})


def also(**options: object) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(**options))  # type: ignore[arg-type]


def crd(kind: str) -> manifests.ManifestObject:
    """A stand-in getambassador.io CRD storing v3alpha1: the real ones convert through Emissary's
    webhook, which cannot run without real pods."""
    plural = kind.lower() + "s"
    return manifests.ManifestObject(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.getambassador.io"},
            "spec": {
                "group": "getambassador.io",
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                "versions": [
                    {
                        "name": "v3alpha1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                ],
            },
        }
    )


crds = list(manifests.register([crd(k) for k in ("Mapping", "Host", "Module", "Listener")], prefix="crds", opts=on).values())
fixture = (ROOT / "tests" / "fixtures" / "edge-stack-3.yaml").read_text()
probe_names = {upstream.PROBE_SERVICE_PORT: upstream.PROBE_PORT_NAME}
edge_objects = [manifests.ManifestObject(prepare_object(o.body, product, probe_names)) for o in manifests.parse(fixture)]
edge = manifests.register(
    edge_objects, prefix="edge-stack", opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=crds))
)

# Random at every run, as the control plane's webhook material is; kept as first applied.
material = base64.b64encode(secrets.token_hex(16).encode()).decode()
k8s.core.v1.Secret(
    "webhook-tls",
    metadata={"name": "webhook-tls", "namespace": "default"},
    data={"tls.crt": material},
    opts=also(ignore_changes=["data"]),
)
k8s.admissionregistration.v1.MutatingWebhookConfiguration(
    "webhook",
    metadata={"name": "partial-webhook"},
    webhooks=[
        {
            "name": "partial.example.com",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Ignore",
            "clientConfig": {"url": "https://127.0.0.1:1/never", "caBundle": material},
            "objectSelector": {"matchLabels": {"never": "matches"}},
        }
    ],
    opts=also(ignore_changes=["webhooks[*].clientConfig.caBundle"]),
)
k8s.apps.v1.Deployment(
    "checksummed",
    metadata={"name": "checksummed", "namespace": "default"},
    spec={
        "replicas": 1,
        "selector": {"matchLabels": {"app": "checksummed"}},
        "template": {
            "metadata": {"labels": {"app": "checksummed"}, "annotations": {"checksum/config": secrets.token_hex(8)}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    },
    opts=pulumi.ResourceOptions.merge(
        on, pulumi.ResourceOptions(ignore_changes=['spec.template.metadata.annotations["checksum/config"]'])
    ),
)

# What EdgeStack's inject step applies for the page's flags.
mesh = k8s.apps.v1.DeploymentPatch(
    "edge-stack-linkerd-inject",
    metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=product.deployment, namespace=product.namespace),
    spec=k8s.apps.v1.DeploymentSpecPatchArgs(
        template=k8s.core.v1.PodTemplateSpecPatchArgs(
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                annotations={
                    upstream.INJECT_ANNOTATION: upstream.INJECT_ENABLED,
                    "config.linkerd.io/skip-inbound-ports": "80,443",
                    "config.linkerd.io/proxy-require-identity-inbound-ports": str(upstream.PROXY_INBOUND_PORT),
                }
            )
        )
    ),
    opts=pulumi.ResourceOptions.merge(
        on, pulumi.ResourceOptions(depends_on=[edge[f"Deployment/{product.namespace}/{product.deployment}"]])
    ),
)
namespace = MeshedNamespace("ns-default", MeshedNamespaceArgs(name="default", exists=True, control_plane=[]), opts=on)
qotm = QotmDemo("qotm", QotmDemoArgs(line=line, namespace=namespace.name, depends_on=[namespace, *crds]), opts=on)
service = next(o for o in edge_objects if o.kind == "Service" and o.name == product.service)
MulticlusterTarget(
    "multicluster-target",
    MulticlusterTargetArgs(
        line=line,
        gateway=GatewayRef(
            namespace=product.namespace,
            deployment=product.deployment,
            service=product.service,
            service_account=product.service_account,
            service_ports=tuple(service.body["spec"]["ports"]),
        ),
        hostname="gateway.example.com",
        gateway_port=upstream.PROXY_INBOUND_PORT,
        probe_port=upstream.PROBE_SERVICE_PORT,
        probe_target_port=upstream.HTTP_LISTENER_PORT,
        probe_path=upstream.DEFAULT_PROBE_PATH,
        probe_period_seconds=upstream.DEFAULT_PROBE_PERIOD_SECONDS,
        trust_domain=upstream.DEFAULT_TRUST_DOMAIN,
        exported_services=[("default", upstream.QOTM_SERVICE)],
        depends_on=[mesh, qotm.service, *crds],
        service_resource=edge[f"Service/{product.namespace}/{product.service}"],
    ),
    opts=on,
)
