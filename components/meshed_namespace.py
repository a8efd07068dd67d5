"""A namespace whose pods Linkerd's proxy injector meshes: `linkerd.io/inject: enabled`.

A namespace that already exists (the page's `default`) is patched server-side instead of created:
the patch owns only the annotation, and `destroy` removes only that. A namespace the program creates
is marked as this stack's (the pre-flight refuses to create one that exists unmarked) and is retained
when the program lets go of it (removed from meshedNamespaces, listed as existing, `destroy`): it is
where users put their workloads, and deleting a namespace deletes everything in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from support import upstream


@dataclass(frozen=True, kw_only=True)
class MeshedNamespaceArgs:
    name: str
    exists: bool
    # `<project>/<stack>`: the stack that created the namespace, written on it.
    owner: str
    # The proxy injector must be running before a pod lands here, or it runs unmeshed.
    control_plane: Sequence[pulumi.Resource]


class MeshedNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]
    namespace: k8s.core.v1.Namespace | k8s.core.v1.NamespacePatch

    def __init__(self, name: str, args: MeshedNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:MeshedNamespace", name, None, opts)
        annotations = {upstream.INJECT_ANNOTATION: upstream.INJECT_ENABLED}
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.control_plane))
        if args.exists:
            self.namespace = k8s.core.v1.NamespacePatch(
                name, metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=args.name, annotations=annotations), opts=child
            )
        else:
            self.namespace = k8s.core.v1.Namespace(
                name,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.name,
                    labels={upstream.MANAGED_BY_LABEL: upstream.MANAGED_BY},
                    annotations={**annotations, upstream.OWNER_STACK_ANNOTATION: args.owner},
                ),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
            )
        # The name, once the namespace (or its annotation) is in place.
        self.name = self.namespace.id.apply(lambda _: args.name)
        self.register_outputs({"name": self.name})
