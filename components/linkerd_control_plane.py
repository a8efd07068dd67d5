"""Linkerd's CRDs, its control plane (HA by default) and, where the stack needs it, the multicluster extension.

The objects are rendered by the pinned linkerd CLI at program time (`install --ignore-cluster`, so a
preview needs no cluster) and registered one by one, so a preview lists every object and field.
The CLI never sees a real key: it renders with a fixed public stand-in anchor and issuer (see
`certificates.placeholder_identity`). The render is then turned into what `install
--identity-external-issuer` renders (which needs a live cluster): the issuer Secret is not applied
(the identity's Command writes the real one into the cluster) and the identity controller reads it
as `kubernetes.io/tls`. The stand-in anchor is replaced by the real, public, trust roots.

I/O while it is built, where it cannot be avoided: the CLI renders run then (started together, read
where needed), because a preview can only list objects the program knows at program time; the
stand-in certificate files the CLI reads live in a private temporary directory for those runs only.
"""

from __future__ import annotations

import contextlib
import copy
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from support import manifests, stand_ins, upstream
from support.certificates import ISSUER_SECRET, SCHEME_LINKERD, placeholder_identity
from support.linkerd_cli import LinkerdCli, PendingRender


@dataclass(frozen=True, kw_only=True)
class LinkerdControlPlaneArgs:
    cli: LinkerdCli
    kubectl: str
    line: upstream.VersionLine
    ha: bool
    trust_domain: str
    # Made once the render's `linkerd` Namespace is registered (the identity's Secrets go there).
    identity: Callable[[pulumi.Resource | None], ControlPlaneIdentity]
    multicluster: bool
    # Links whose service mirror the multicluster install declares (lines that need it).
    links: tuple[str, ...] = ()
    # The target gateway's probe port (its `probePort`), which each Link's probe dials: the probe Service
    # the install renders for a link must listen there, not on the chart's 4191 (None: the chart's).
    link_probe_port: int | None = None
    # The target's remote-access account whose token Links carry (linkCredentials); None: upstream's default.
    remote_access_account: str | None = None
    # What the cluster has outside this stack's state (support/retained.py): CRDs upstream keeps are used as they are.
    already_there: frozenset[str] = frozenset()
    # A trust rotation's mark for the workloads the injector meshes (the extension's): a new one restarts them. The
    # control plane's own pods roll by themselves (their template carries the roots' hash).
    restart_mark: str | None = None
    # The same mark on the control plane's own Deployments, set only at the rotation's `restart` step (the roots do
    # not change then); the identity controller's then rolls first, the others after it.
    control_plane_mark: str | None = None


@dataclass(frozen=True)
class ControlPlaneIdentity:
    """What the control plane takes from the identity: public roots, and the Command that writes its issuer."""

    trust_roots_pem: pulumi.Input[str]
    issuer: pulumi.Resource


_IDENTITY_DEPLOYMENT = f"Deployment/{upstream.CONTROL_PLANE_NAMESPACE}/linkerd-identity"
_DESTINATION_DEPLOYMENT = f"Deployment/{upstream.CONTROL_PLANE_NAMESPACE}/{upstream.DESTINATION_DEPLOYMENT}"
_CONFIG = f"ConfigMap/{upstream.CONTROL_PLANE_NAMESPACE}/linkerd-config"
_TRUST_ROOTS = f"ConfigMap/{upstream.CONTROL_PLANE_NAMESPACE}/linkerd-identity-trust-roots"
_NAMESPACE = f"Namespace/{upstream.CONTROL_PLANE_NAMESPACE}"
_ISSUER_SECRET_KEY = f"Secret/{upstream.CONTROL_PLANE_NAMESPACE}/{ISSUER_SECRET}"
# In linkerd-config's values: the issuer's scheme, and its certificate as a block scalar.
_SCHEME_VALUE = re.compile(rf"^(\s+scheme: ){re.escape(SCHEME_LINKERD)}$", re.MULTILINE)
_ISSUER_CERT_VALUE = re.compile(r"^(?P<indent>\s+)crtPEM: \|\n(?:(?P=indent)\s+.*\n)+", re.MULTILINE)


def _exactly_once(pattern: re.Pattern[str], replacement: str, text: str, what: str) -> str:
    changed, count = pattern.subn(replacement, text)
    if count != 1:
        raise manifests.ManifestError(f"linkerd-config's values hold {count} {what}, not one: cannot make it an external issuer")
    return changed


def external_issuer(objects: list[manifests.ManifestObject], scheme: str) -> list[manifests.ManifestObject]:
    """The render without its issuer Secret; with `kubernetes.io/tls`, as `install --identity-external-issuer` renders it.

    Linkerd's chart (templates/identity.yaml, config.yaml): the Secret is rendered only for the
    `linkerd.io/tls` scheme, the identity controller is told the scheme, and linkerd-config's values
    carry it with an empty issuer certificate. tests/test_identity_live.py compares this with the
    real CLI's `--identity-external-issuer` render against a live API server.
    """
    kept = [obj for obj in objects if obj.key != _ISSUER_SECRET_KEY]
    if scheme == SCHEME_LINKERD:  # the 2.8 line: the Command writes the Secret in the chart's own format
        return kept
    return [_external(obj, scheme) for obj in kept]


def _external(obj: manifests.ManifestObject, scheme: str) -> manifests.ManifestObject:
    if obj.key not in {_IDENTITY_DEPLOYMENT, _CONFIG}:
        return obj
    body = copy.deepcopy(obj.body)
    if obj.key == _IDENTITY_DEPLOYMENT:
        for container in body["spec"]["template"]["spec"]["containers"]:
            if "args" in container:  # the proxy has none, and must not get an empty list
                container["args"] = [
                    f"-identity-scheme={scheme}" if arg == f"-identity-scheme={SCHEME_LINKERD}" else arg
                    for arg in container["args"]
                ]
    else:
        values = _exactly_once(_SCHEME_VALUE, rf"\g<1>{scheme}", body["data"]["values"], "issuer schemes")
        body["data"]["values"] = _exactly_once(_ISSUER_CERT_VALUE, '\\g<indent>crtPEM: ""\n', values, "issuer certificates")
    return manifests.ManifestObject(body)


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


def _install_args(args: LinkerdControlPlaneArgs, files: Mapping[str, str]) -> list[str]:
    """`linkerd install`, offline, with the stand-in identity's files."""
    return [
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
        *args.line.install_args,
    ]


class LinkerdControlPlane(pulumi.ComponentResource):
    crds: list[pulumi.Resource]
    # The keys of the registered objects that outlive `destroy` (the CRDs upstream keeps).
    retained: list[str]
    control_plane: list[pulumi.Resource]
    multicluster: list[pulumi.Resource]
    # What a meshed workload waits for: the webhooks (which wait for the Deployments that serve them)
    # or the Deployments. Those wait for the rest in turn; depending on every object instead costs
    # ~90 edges per dependent, each a walk of the graph in the SDK.
    ready: list[pulumi.Resource]
    # What the gateway and the Link wait for: the extension too (each of its objects waits for `ready`).
    multicluster_ready: list[pulumi.Resource]
    # The destination controller's Deployment (None when nothing was rendered): a rotated Link rolls it.
    destination: pulumi.Resource | None

    def __init__(self, name: str, args: LinkerdControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:LinkerdControlPlane", name, None, opts)
        line = args.line
        anchor, issuer = placeholder_identity(args.trust_domain)
        self._stand_in = anchor.cert_pem
        self._decoy = placeholder_identity("decoy.invalid")[0].cert_pem

        # Every render starts at once (the CLI runs beside the program) and is read where it is needed.
        crds_render = args.cli.start("install", "--crds", "--ignore-cluster", *line.crds_args) if line.separate_crds else None
        extension_render = (
            args.cli.start(*self._multicluster_args(args, offline=True))
            if args.multicluster and line.multicluster_offline
            else None
        )
        stand_in_pems = {"ca.crt": anchor.cert_pem, "issuer.crt": issuer.cert_pem, "issuer.key": issuer.key_pem}
        with _stand_in_files(stand_in_pems) as files:
            install_render = args.cli.start(*_install_args(args, files))
            self.crds, self.retained = self._register_crds(name, args, crds_render)
            # Read before the stand-in files go.
            install = external_issuer(self._objects(args, name, install_render), line.issuer_scheme)
        if args.control_plane_mark is not None:
            mark = {upstream.TRUST_ANCHORS_ANNOTATION: args.control_plane_mark}
            install = [manifests.with_pod_annotations(o, mark) if o.kind in manifests.POD_TEMPLATE_KINDS else o for o in install]
        # The namespace first: the identity's Commands write their Secrets into it. It needs no CRD: made beside them.
        namespace = manifests.register(
            [obj for obj in install if obj.key == _NAMESPACE],
            prefix=name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # None where nothing was rendered (`render` without the CLI).
        identity = args.identity(namespace.get(_NAMESPACE))
        replacements: dict[str, pulumi.Input[str]] = {anchor.cert_pem: identity.trust_roots_pem}
        registered = self._register_install(
            name, args, install, namespace=namespace, issuer=identity.issuer, replacements=replacements
        )
        self.control_plane = list(registered.values())
        self.ready = _readiness(registered)
        self.destination = registered.get(_DESTINATION_DEPLOYMENT)

        self.multicluster = []
        self.multicluster_ready = self.ready
        if args.multicluster:
            extension = self._multicluster(name, args, replacements, extension_render)
            self.multicluster = list(extension.values())
            # Every object of the extension waits for `ready`: its own stand for both. Meshed
            # workloads need only the control plane, so they do not wait for the extension.
            self.multicluster_ready = _readiness(extension) or self.ready

        self.register_outputs({})

    def _register_install(
        self,
        name: str,
        args: LinkerdControlPlaneArgs,
        install: list[manifests.ManifestObject],
        *,
        namespace: Mapping[str, pulumi.CustomResource],
        issuer: pulumi.Resource,
        replacements: Mapping[str, pulumi.Input[str]],
    ) -> dict[str, pulumi.CustomResource]:
        """The install's objects but its namespace: the trust roots first, then the rest, every Deployment after the
        roots (the identity controller reads them once, at its start: a pod started before a rotation's write keeps
        the old roots and refuses the new-chain issuer), the identity controller also after its issuer's Secret.
        At a rotation's `restart` step the identity controller's rollout comes first, the other Deployments after it:
        gate (c) counts from the identity controller's start, so every other proxy must start later."""
        opts = pulumi.ResourceOptions(parent=self, depends_on=self.crds)
        roots_objects = [obj for obj in install if obj.key == _TRUST_ROOTS]
        roots = manifests.register(roots_objects, prefix=name, opts=opts, replacements=replacements, before=namespace)
        after: dict[str, list[pulumi.Resource]] = {obj.key: list(roots.values()) for obj in install if obj.kind == "Deployment"}
        after[_IDENTITY_DEPLOYMENT] = [*after.get(_IDENTITY_DEPLOYMENT, []), issuer]
        rest = [obj for obj in install if obj.key not in (_NAMESPACE, _TRUST_ROOTS)]

        def register(
            objects: list[manifests.ManifestObject], depends: Mapping[str, list[pulumi.Resource]]
        ) -> dict[str, pulumi.CustomResource]:
            return manifests.register(
                objects,
                prefix=name,
                opts=opts,
                replacements=replacements,
                ignore_changes=args.line.generated_fields,
                before=namespace,
                depends=depends,
            )

        first: dict[str, pulumi.CustomResource] = {}
        if args.control_plane_mark is not None:
            first = register([obj for obj in rest if obj.key == _IDENTITY_DEPLOYMENT], after)
            rest = [obj for obj in rest if obj.key not in first]
            after = {key: [*waits, *first.values()] for key, waits in after.items() if key not in first}
        return roots | first | register(rest, after)

    def _register_crds(
        self, name: str, args: LinkerdControlPlaneArgs, render: PendingRender | None
    ) -> tuple[list[pulumi.Resource], list[str]]:
        """Linkerd's CRDs, registered first (lines that render them apart), and the keys of those that outlive `destroy`."""
        if render is None:
            return [], []
        crds = self._objects(args, name, render)
        registered = manifests.register(
            crds, prefix=f"{name}-crds", opts=pulumi.ResourceOptions(parent=self), already_there=args.already_there
        )
        return list(registered.values()), manifests.retained(crds, registered)

    def _objects(self, args: LinkerdControlPlaneArgs, name: str, render: PendingRender) -> list[manifests.ManifestObject]:
        """The objects a render printed, refused where the stand-in anchor would survive; its Services not awaited
        (their Deployments are, and what needs the control plane waits for those and the webhooks)."""
        objects = [
            manifests.not_awaited_if_service(obj)
            for obj in manifests.parse(render.stdout())
            if obj.key not in args.line.dropped_objects
        ]
        if args.restart_mark is not None:
            mark = {upstream.TRUST_ANCHORS_ANNOTATION: args.restart_mark}
            objects = [manifests.with_pod_annotations(o, mark) if manifests.injected_at_admission(o) else o for o in objects]
        stuck = stand_ins.leftovers(
            {obj.key: obj.body for obj in objects if obj.key != _ISSUER_SECRET_KEY}, {self._stand_in: self._decoy}
        )
        if stuck:
            raise manifests.ManifestError(
                f"{name}: `linkerd {' '.join(render.args[:2])}` put the trust anchor into {', '.join(stuck)} "
                "in a form this program cannot replace; refusing to apply a stand-in anchor"
            )
        return objects

    @staticmethod
    def _multicluster_args(args: LinkerdControlPlaneArgs, *, offline: bool) -> tuple[str, ...]:
        line = args.line
        controllers = [
            arg for index, link in enumerate(args.links) for arg in ("--set", f"controllers[{index}].link.ref.name={link}")
        ]
        if args.link_probe_port is not None:
            controllers += [
                arg
                for index in range(len(args.links))
                for arg in ("--set", f"controllers[{index}].gateway.probe.port={args.link_probe_port}")
            ]
        offline_flag = ["--ignore-cluster"] if offline else []
        # The chart renders this account, its token Secret, ClusterRole and binding in place of the default's.
        account = ["--set", f"{upstream.REMOTE_ACCESS_VALUE}={args.remote_access_account}"] if args.remote_access_account else []
        return ("multicluster", "install", *offline_flag, *line.multicluster_install_args, *controllers, *account)

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
            # Only the extension's pods are meshed by the proxy injector: its workloads wait for it to serve, the rest
            # (accounts, the remote-access token, roles, the Link CRD, policy) for Linkerd's CRDs alone.
            extension = self._objects(args, name, render)
            workloads = {obj.key: list(self.ready) for obj in extension if obj.kind in manifests.POD_TEMPLATE_KINDS}
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
                    opts=pulumi.ResourceOptions(parent=self, depends_on=self.crds),
                    replacements=replacements,
                    ignore_changes=line.generated_fields,
                    depends=workloads,
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
