"""A namespace whose pods Linkerd's proxy injector meshes: `linkerd.io/inject: enabled`.

The annotation is always a server-side patch of its own, so letting go of a namespace (removing it
from meshedNamespaces, `destroy`) removes exactly that annotation: new pods there are no longer meshed.
A namespace that already exists (the page's `default`) gets only that patch. A namespace the program
creates is marked as this stack's (the pre-flight refuses to create one that exists unmarked) and is
retained when the program lets go of it: it is where users put their workloads, and deleting a
namespace deletes everything in it. The mark stays on it, saying which stack made it; found again
after a `destroy`, a namespace with this stack's mark is used as it is (support/retained.py).
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
    # Listed in existingNamespaces: someone else's, only annotated.
    exists: bool
    # `<project>/<stack>`: the stack that created the namespace, written on it.
    owner: str
    # The proxy injector must be running before a pod lands here, or it runs unmeshed.
    control_plane: Sequence[pulumi.Resource]
    # Made by this stack before, outside its state now (kept by an earlier `destroy`): not created again.
    reused: bool = False


class MeshedNamespace(pulumi.ComponentResource):
    name: pulumi.Output[str]
    # The namespace the program made (retained on delete); None for one that already existed.
    created: k8s.core.v1.Namespace | None
    # The inject annotation: once it is in place, new pods here are meshed.
    meshed: k8s.core.v1.NamespacePatch

    def __init__(self, name: str, args: MeshedNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:MeshedNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.control_plane))
        self.created = None
        if not args.exists and not args.reused:
            self.created = k8s.core.v1.Namespace(
                name,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.name,
                    labels={upstream.MANAGED_BY_LABEL: upstream.MANAGED_BY},
                    annotations={upstream.OWNER_STACK_ANNOTATION: args.owner},
                ),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
            )
        # An existing namespace's patch keeps the name it always had (a new name would delete and re-add it).
        self.meshed = k8s.core.v1.NamespacePatch(
            name if args.exists else f"{name}-inject",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=args.name, annotations={upstream.INJECT_ANNOTATION: upstream.INJECT_ENABLED}
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.created] if self.created else [])),
        )
        # The name, once the namespace and its annotation are in place.
        self.name = self.meshed.id.apply(lambda _: args.name)
        self.register_outputs({"name": self.name})
