"""Edge Stack (or Emissary): CRDs first, then the deployment, the `ambassador` Module, and the mesh.

Edge Stack is meshed with the page's command: the pinned `linkerd inject --skip-inbound-ports 80,443
--require-identity-on-inbound-ports <gateway port>` decides the pod-template annotations. Its
Deployment is written once with its final pod template (those annotations, the gateway's
`enable-gateway` on the target, a trust rotation's mark), after the proxy injector serves: one
rollout, where the page's kubectl patches roll it three times.

I/O while it is built: on the current line the offline inject runs then (started before the
manifests are registered), so the preview shows the annotations; the page's release cannot inject
offline, so there it runs at `up`, as a Command against the live control plane.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from support import ambassador, manifests, upstream
from support.config_model import Tls
from support.linkerd_cli import LinkerdCli, PendingRender
from support.project import PROJECT


@dataclass(frozen=True, kw_only=True)
class EdgeStackArgs:
    line: upstream.VersionLine
    product: upstream.EdgeStackProduct
    crds_yaml: str
    manifest_yaml: str
    license_key: pulumi.Input[str] | None
    add_linkerd_headers: bool
    cli: LinkerdCli
    gateway_port: int
    # What says the proxy injector serves: Edge Stack's meshed pods are created only after it.
    control_plane: Sequence[pulumi.Resource]
    # More pod-template annotations for the same single write (the target's `enable-gateway`).
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    tls: Tls | None = None
    # Names this stack gives ports of Edge Stack's Service, by port number (the multicluster
    # gateway's mc-probe): the Service declares them itself, so the gateway patch that sets the
    # same name shares the field instead of fighting over it at every `up` after a refresh.
    service_port_names: Mapping[int, str] = field(default_factory=dict)
    # The namespace of the product this stack ran until `edgeStackProduct` switched: retained, never deleted.
    retired_namespace: str | None = None
    # A trust rotation's mark (the anchors in the roots) on the pod template: a new one restarts Edge Stack.
    restart_mark: str | None = None


def inject_flags(gateway_port: int) -> list[str]:
    """The page's flags: Edge Stack keeps its own public ports; identity is required on the gateway port."""
    return [
        "--skip-inbound-ports",
        ",".join(str(port) for port in upstream.EDGE_STACK_PUBLIC_PORTS),
        "--require-identity-on-inbound-ports",
        str(gateway_port),
    ]


def _pod_annotations(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"].get("metadata", {}).get("annotations") or {})


def added_annotations(deployment: dict[str, Any], injected_yaml: str) -> dict[str, str]:
    """The pod-template annotations `linkerd inject` added to `deployment` (its output is `injected_yaml`)."""
    objects = manifests.parse(injected_yaml)
    if len(objects) != 1 or objects[0].kind != "Deployment":
        raise manifests.ManifestError(f"`linkerd inject` printed {[o.key for o in objects]}, not the one Deployment it was given")
    before, after = _pod_annotations(deployment), _pod_annotations(objects[0].body)
    return {key: value for key, value in sorted(after.items()) if before.get(key) != value}


def prepare_object(body: dict[str, Any], product: upstream.EdgeStackProduct, port_names: Mapping[int, str]) -> dict[str, Any]:
    """A manifest object as this program applies it.

    Services are not awaited, their ports named as the stack gives them, aggregated roles left to
    their controller.
    """
    body = copy.deepcopy(body)
    if body["kind"] == "ClusterRole" and "aggregationRule" in body:
        # The aggregation controller owns an aggregated role's rules: applying them (even `[]`)
        # conflicts with it at the next `up` (found on the real engine: Emissary's agent roles).
        body.pop("rules", None)
    if body["kind"] != "Service":
        return body
    # Not awaited (manifests.not_awaited_if_service): the admin Service's 10 s ended the target's `up`, and a
    # LoadBalancer one would wait for an address a cluster without a load balancer never gives.
    body["metadata"].setdefault("annotations", {})[upstream.SKIP_AWAIT_ANNOTATION] = "true"
    if body["metadata"]["name"] == product.service:
        for port in body["spec"]["ports"]:
            port["name"] = port_names.get(port["port"], port.get("name"))
    return body


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The manifest's `kind` called `name` (the manifest's shape was checked when it was read)."""
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _set_module_option(objects: list[dict[str, Any]], line: upstream.VersionLine, namespace: str, value: bool) -> None:
    """`add_linkerd_headers` on the `ambassador` Module: the manifest's own where it brings one, else a Module of ours."""
    modules = [o for o in objects if o["kind"] == "Module" and o["metadata"]["name"] == upstream.MODULE_NAME]
    if modules:
        # Set the option there rather than own a second Module.
        modules[0]["spec"].setdefault("config", {})["add_linkerd_headers"] = value
    else:
        objects.append(ambassador.module_object(line, namespace, value))


def final_annotations(
    own: Mapping[str, str], added: dict[str, str] | pulumi.Output[dict[str, str]], extra: Mapping[str, str], mark: str | None
) -> pulumi.Input[dict[str, str]]:
    """The pod template's annotations as first written: the manifest's own, what `linkerd inject` added, the
    stack's extra ones and, during and after a trust rotation, its mark."""
    more = {**extra, **({upstream.TRUST_ANCHORS_ANNOTATION: mark} if mark is not None else {})}
    if isinstance(added, dict):
        return {**own, **added, **more}
    return added.apply(lambda found: {**own, **found, **more})


def _with_template_annotations(body: dict[str, Any], annotations: pulumi.Input[dict[str, str]]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["spec"]["template"].setdefault("metadata", {})["annotations"] = annotations
    return body


class EdgeStack(pulumi.ComponentResource):
    # The Service's ports as the manifest declares them, in order.
    service_ports: tuple[dict[str, Any], ...]
    crds: list[pulumi.Resource]
    resources: dict[str, pulumi.CustomResource]
    # Edge Stack's Deployment, meshed as first written.
    deployment: pulumi.CustomResource
    service: pulumi.CustomResource
    # The previous product's namespace after an `edgeStackProduct` switch, retained (None otherwise).
    retained: k8s.core.v1.Namespace | None

    def __init__(self, name: str, args: EdgeStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:EdgeStack", name, None, opts)
        product, namespace = args.product, args.product.namespace
        objects = [prepare_object(obj.body, product, args.service_port_names) for obj in manifests.parse(args.manifest_yaml)]
        deployment_body = _named(objects, "Deployment", product.deployment)
        # JSON: every string stays a string (the CLI reads YAML 1.1, where a bare `y` is true).
        inject_input = json.dumps(deployment_body)
        # Started before the rest is registered, so the CLI runs beside it.
        inject_render = (
            args.cli.start("inject", "--ignore-cluster", *inject_flags(args.gateway_port), "-", stdin=inject_input)
            if args.line.inject_offline
            else None
        )
        self.crds = list(
            manifests.register(
                [manifests.not_awaited_if_service(obj) for obj in manifests.parse(args.crds_yaml)],
                prefix=f"{name}-crds",
                opts=pulumi.ResourceOptions(parent=self),
            ).values()
        )
        objects = self._with_own_objects(objects, args)
        deployment_key = f"Deployment/{namespace}/{product.deployment}"
        rest = manifests.register(
            [obj for obj in map(manifests.ManifestObject, objects) if obj.key != deployment_key],
            prefix=name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.crds),
        )
        # Read once the rest is registered: the CLI ran meanwhile.
        added = self._inject(name, args, deployment_body, inject_input, inject_render)
        annotations = final_annotations(_pod_annotations(deployment_body), added, args.pod_annotations, args.restart_mark)
        # Its pods are meshed at their creation: the injector must serve first (a pod admitted before would run
        # without a proxy, or be refused by HA's failing-closed webhook).
        deployment = manifests.register(
            [manifests.ManifestObject(_with_template_annotations(deployment_body, annotations))],
            prefix=name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.crds),
            before=rest,
            depends={deployment_key: list(args.control_plane)},
        )
        self.resources = rest | deployment
        self.deployment = deployment[deployment_key]
        self.service = self.resources[f"Service/{namespace}/{product.service}"]
        self.service_ports = tuple(_named(objects, "Service", product.service)["spec"]["ports"])
        self.retained = self._retain(name, args.retired_namespace)
        self.register_outputs({})

    def _retain(self, name: str, namespace: str | None) -> k8s.core.v1.Namespace | None:
        """The old product's namespace, declared once more under its old name and retained on delete.

        Dropping it would make the engine delete it with everything users put there. Declared with
        retain_on_delete, the next `up` (which no longer declares it) only forgets it: the namespace
        is left on the cluster, for its owners to empty and delete. The old product's own objects in
        it are deleted as usual: they are the program's.
        """
        if namespace is None:
            return None
        pulumi.log.warn(
            f"config {PROJECT}:edgeStackProduct switched: namespace {namespace!r} of the previous product is kept on "
            "the cluster (retained, no longer managed); delete it yourself once nothing of yours is in it",
            self,
        )
        return k8s.core.v1.Namespace(
            f"{name}:{namespace}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _inject(
        self, name: str, args: EdgeStackArgs, deployment: dict[str, Any], manifest: str, render: PendingRender | None
    ) -> dict[str, str] | pulumi.Output[dict[str, str]]:
        """The annotations the pinned `linkerd inject` gives Edge Stack's pod template, with the page's flags."""
        if render is not None:
            return added_annotations(deployment, render.stdout())
        # This release injects only against the live control plane (as the page pipes it): asked at `up`,
        # kept in state, and asked again when the flags or the manifest change.
        injected = command.local.Command(
            f"{name}-linkerd-inject-render",
            create=args.cli.command_line("inject", *inject_flags(args.gateway_port), "-"),
            stdin=manifest,
            logging=command.local.Logging.STDERR,
            # It reads the live control plane; the Deployment it decides for is written after it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.control_plane)),
        )
        return injected.stdout.apply(lambda text: added_annotations(deployment, text))

    @classmethod
    def _with_own_objects(cls, objects: list[dict[str, Any]], args: EdgeStackArgs) -> list[dict[str, Any]]:
        """The manifest's objects and the program's own: its namespace where the manifest has none, the
        `ambassador` Module's option, the Listeners, the licence Secret and the TLS Host."""
        line, product, namespace = args.line, args.product, args.product.namespace
        objects = list(objects)
        if not any(o["kind"] == "Namespace" and o["metadata"]["name"] == namespace for o in objects):
            objects.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        _set_module_option(objects, line, namespace, args.add_linkerd_headers)
        if line.needs_listeners:
            objects.extend(ambassador.listener_objects(line, namespace, product.deployment))
        if args.license_key is not None:
            objects.append(cls._license_secret(product, args.license_key))
        if args.tls is not None:
            objects.extend(cls._tls_objects(line, namespace, args.tls))
        return objects

    @staticmethod
    def _license_secret(product: upstream.EdgeStackProduct, license_key: pulumi.Input[str]) -> dict[str, Any]:
        if product.license_secret is None or product.license_secret_key is None:
            raise ValueError(f"{product.name} takes no licence key")
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": product.license_secret, "namespace": product.namespace},
            "type": "Opaque",
            "stringData": {product.license_secret_key: license_key},
        }

    @staticmethod
    def _tls_objects(line: upstream.VersionLine, namespace: str, tls: Tls) -> list[dict[str, Any]]:
        """A Host that terminates TLS for `tls.hostname`, from a given certificate or from ACME."""
        secret_name = f"{tls.hostname.replace('.', '-')}-tls"
        spec: dict[str, Any] = {
            "hostname": tls.hostname,
            "tlsSecret": {"name": secret_name},
            "requestPolicy": {"insecure": {"action": "Redirect"}},
        }
        objects: list[dict[str, Any]] = []
        if tls.acme_email is not None:
            spec["acmeProvider"] = {"email": tls.acme_email}
        else:
            spec["acmeProvider"] = {"authority": "none"}
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name, "namespace": namespace},
                    "type": "kubernetes.io/tls",
                    "stringData": {"tls.crt": tls.certificate, "tls.key": tls.private_key},
                }
            )
        objects.append(
            {
                "apiVersion": line.ambassador_api,
                "kind": "Host",
                "metadata": {"name": "tls-host", "namespace": namespace},
                "spec": spec,
            }
        )
        return objects
