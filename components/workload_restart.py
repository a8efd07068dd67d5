"""The trust rotation's restart of the meshed workloads the program does not own (support/restarts.py says which).

Each gets `aes-linkerd2.io/trust-anchors` on its pod template by a server-side patch of its kind, under the
field manager `aes-linkerd2-restart`, not forced, retained on delete: the patch owns that one annotation,
never the workload, and dropping it never rolls the workload back or again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from support import upstream
from support.restarts import Workload

# Each kind's patch resource and the args of its spec.
_PATCHES: dict[str, tuple[Any, Any]] = {
    "Deployment": (k8s.apps.v1.DeploymentPatch, k8s.apps.v1.DeploymentSpecPatchArgs),
    "StatefulSet": (k8s.apps.v1.StatefulSetPatch, k8s.apps.v1.StatefulSetSpecPatchArgs),
    "DaemonSet": (k8s.apps.v1.DaemonSetPatch, k8s.apps.v1.DaemonSetSpecPatchArgs),
}


@dataclass(frozen=True, kw_only=True)
class WorkloadRestartArgs:
    workloads: tuple[Workload, ...]
    # The anchors the roots carry (AnchorPlan.restart_mark).
    mark: str
    # A restarted pod must be admitted by an injector that holds the new roots: after the control plane's rollout.
    control_plane: Sequence[pulumi.Resource]


class WorkloadRestart(pulumi.ComponentResource):
    patches: dict[str, pulumi.CustomResource]

    def __init__(self, name: str, args: WorkloadRestartArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aes-linkerd2:index:WorkloadRestart", name, None, opts)
        self.patches = {}
        for workload in args.workloads:
            patch, spec = _PATCHES[workload.kind]
            self.patches[workload.key] = patch(
                f"{name}-{workload.kind.lower()}-{workload.namespace}-{workload.name}",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name=workload.name,
                    namespace=workload.namespace,
                    annotations={upstream.PATCH_FIELD_MANAGER_ANNOTATION: upstream.RESTART_FIELD_MANAGER},
                ),
                spec=spec(
                    template=k8s.core.v1.PodTemplateSpecPatchArgs(
                        metadata=k8s.meta.v1.ObjectMetaPatchArgs(annotations={upstream.TRUST_ANCHORS_ANNOTATION: args.mark})
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.control_plane), retain_on_delete=True),
            )
        self.register_outputs({})
