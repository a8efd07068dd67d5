"""Linkerd's CRDs, its control plane (HA by default) and, where the stack needs it, the multicluster extension.

The objects are rendered by the pinned linkerd CLI at program time (`install --ignore-cluster`, so a
preview needs no cluster) and registered one by one, so a preview lists every object and field.
The CLI never sees a real key: it renders with a fixed stand-in anchor and issuer (see
`certificates.placeholder_identity`), and every occurrence is replaced by the shared anchor and
this cluster's issuer, which stay secret in state.

I/O while it is built, where it cannot be avoided: the CLI renders run then (started together, read
where needed), because a preview can only list objects the program knows at program time; the
stand-in certificate files the CLI reads live in a private temporary directory for those runs only.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from support import manifests, stand_ins, upstream
from support.certificates import decoys_for, expiry, placeholder_identity
from support.linkerd_cli import LinkerdCli, PendingRender


@dataclass(frozen=True, kw_only=True)
class LinkerdControlPlaneArgs:
    cli: LinkerdCli
    kubectl: str
    line: upstream.VersionLine
    ha: bool
    trust_domain: str
    trust_anchor_pem: pulumi.Input[str]
    issuer_cert_pem: pulumi.Input[str]
    issuer_key_pem: pulumi.Input[str]
    multicluster: bool
    # Links whose service mirror the multicluster install declares (lines that need it).
    links: tuple[str, ...] = ()


@contextlib.contextmanager
def _stand_in_files(files: dict[str, str]) -> Iterator[dict[str, str]]:
    """The stand-in PEMs as files for the CLI, in a private directory that is gone afterwards.

    Never a shared, predictable path: another local user could plant their own anchor there.
    """
    with tempfile.TemporaryDirectory(prefix="aes-linkerd2-") as folder:  # mode 0700
        paths = {}
        for name, text in files.items():
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            paths[name] = str(path)
        yield paths


# What says Linkerd runs: its Deployments, the webhooks they serve, the CRDs of what a stack applies
# next (the Link), and 2.8's extension step.
_READINESS_KINDS = (
    "CustomResourceDefinition",
    "Deployment",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
    "Command",
)


def _readiness(registered: Mapping[str, pulumi.Resource]) -> list[pulumi.Resource]:
    kinds = {key.split("/")[0] for key in registered}
    # Webhooks and API services wait for every Deployment of their manifest (`manifests.register`):
    # where there are any, they stand for the Deployments too (each edge costs the SDK a graph walk).
    served = bool(kinds & manifests.SERVED_BY_DEPLOYMENTS)
    return [
        resource
        for key, resource in registered.items()
        if key.split("/")[0] in _READINESS_KINDS and not (served and key.startswith("Deployment/"))
    ]


class LinkerdControlPlane(pulumi.ComponentResource):
    crds: list[pulumi.Resource]
    control_plane: list[pulumi.Resource]
    multicluster: list[pulumi.Resource]
    # What a meshed workload waits for: the webhooks (which wait for the Deployments that serve them)
    # or the Deployments. Those wait for the rest in turn; depending on every object instead costs
    # ~90 edges per dependent, each a walk of the graph in the SDK.
    ready: list[pulumi.Resource]
    # What the gateway and the Link wait for: the extension too (each of its objects waits for `ready`).
    multicluster_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: LinkerdControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:LinkerdControlPlane", name, None, opts)
        line = args.line
        anchor, issuer = placeholder_identity(args.trust_domain)
        self._decoys = decoys_for(anchor, issuer)
        replacements: dict[str, pulumi.Input[str]] = {
            anchor.cert_pem: args.trust_anchor_pem,
            issuer.cert_pem: args.issuer_cert_pem,
            issuer.key_pem: args.issuer_key_pem,
            expiry(issuer.cert_pem): pulumi.Output.from_input(args.issuer_cert_pem).apply(expiry),
        }

        # Every render starts at once (the CLI runs beside the program) and is read where it is needed.
        crds_render = args.cli.start("install", "--crds", "--ignore-cluster", *line.crds_args) if line.separate_crds else None
        extension_render = (
            args.cli.start(*self._multicluster_args(args, offline=True))
            if args.multicluster and line.multicluster_offline
            else None
        )
        stand_in_pems = {"ca.crt": anchor.cert_pem, "issuer.crt": issuer.cert_pem, "issuer.key": issuer.key_pem}
        with _stand_in_files(stand_in_pems) as files:
            install_render = args.cli.start(
                "install",
                "--ignore-cluster",
                *(["--ha"] if args.ha else []),
                "--identity-trust-domain",
                args.trust_domain,
                "--identity-trust-anchors-file",
                files["ca.crt"],
                "--identity-issuer-certificate-file",
                files["issuer.crt"],
                "--identity-issuer-key-file",
                files["issuer.key"],
                *line.install_args,
            )
            self.crds = []
            if crds_render is not None:
                crds = self._objects(args, name, crds_render)
                self.crds = list(
                    manifests.register(crds, prefix=f"{name}-crds", opts=pulumi.ResourceOptions(parent=self)).values()
                )
            # Read before the stand-in files go.
            install = self._objects(args, name, install_render)
        registered = manifests.register(
            install,
            prefix=name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.crds),
            replacements=replacements,
            ignore_changes=line.generated_fields,
        )
        self.control_plane = list(registered.values())
        self.ready = _readiness(registered)

        self.multicluster = []
        self.multicluster_ready = self.ready
        if args.multicluster:
            extension = self._multicluster(name, args, replacements, extension_render)
            self.multicluster = list(extension.values())
            # Every object of the extension waits for `ready`: its own stand for both. Meshed
            # workloads need only the control plane, so they do not wait for the extension.
            self.multicluster_ready = _readiness(extension) or self.ready

        self.register_outputs({})

    def _objects(self, args: LinkerdControlPlaneArgs, name: str, render: PendingRender) -> list[manifests.ManifestObject]:
        """The objects a render printed, refused where a stand-in certificate would survive."""
        objects = [obj for obj in manifests.parse(render.stdout()) if obj.key not in args.line.dropped_objects]
        stuck = stand_ins.leftovers({obj.key: obj.body for obj in objects}, self._decoys)
        if stuck:
            raise manifests.ManifestError(
                f"{name}: `linkerd {' '.join(render.args[:2])}` put the identity certificates into {', '.join(stuck)} "
                "in a form this program cannot replace; refusing to apply stand-in certificates"
            )
        return objects

    @staticmethod
    def _multicluster_args(args: LinkerdControlPlaneArgs, *, offline: bool) -> tuple[str, ...]:
        line = args.line
        controllers = [
            arg for index, link in enumerate(args.links) for arg in ("--set", f"controllers[{index}].link.ref.name={link}")
        ]
        offline_flag = ["--ignore-cluster"] if offline else []
        return ("multicluster", "install", *offline_flag, *line.multicluster_install_args, *controllers)

    def _multicluster(
        self,
        name: str,
        args: LinkerdControlPlaneArgs,
        replacements: dict[str, pulumi.Input[str]],
        render: PendingRender | None,
    ) -> dict[str, pulumi.Resource]:
        line = args.line
        after = pulumi.ResourceOptions(parent=self, depends_on=[*self.crds, *self.ready])
        if render is not None:
            extension = self._objects(args, name, render)
            link_controllers = {
                f"Deployment/{upstream.MULTICLUSTER_NAMESPACE}/{upstream.LINK_CONTROLLER_DEPLOYMENT.format(link=link)}"
                for link in args.links
            }
            # A link's service mirror is Ready only once its Link exists, which the source applies
            # after the extension: it is not awaited here; the multicluster check verifies it.
            extension = [
                manifests.with_annotations(obj, {upstream.SKIP_AWAIT_ANNOTATION: "true"}) if obj.key in link_controllers else obj
                for obj in extension
            ]
            return dict(
                manifests.register(
                    extension,
                    prefix=f"{name}-multicluster",
                    opts=after,
                    replacements=replacements,
                    ignore_changes=line.generated_fields,
                )
            )
        # This release renders the extension only from a live control plane: apply it at `up` time.
        # Rendered whole first, so a failing CLI never applies half an extension.
        render_line = args.cli.command_line(*self._multicluster_args(args, offline=False))
        kubectl = args.cli.cluster.kubectl_line(args.kubectl)
        return {
            "Command/linkerd-multicluster": command.local.Command(
                f"{name}-multicluster",
                create=f'manifest="$({render_line})" && printf "%s\\n" "$manifest" | {kubectl} apply -f -',
                delete=f'manifest="$({render_line})" && printf "%s\\n" "$manifest" | {kubectl} delete --ignore-not-found -f -',
                logging=command.local.Logging.STDERR,
                opts=after,
            )
        }
