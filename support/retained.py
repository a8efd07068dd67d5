"""What this stack creates and never deletes, and which of that the cluster already has outside its state.

Two kinds of object outlive the program (`retain_on_delete`): the namespaces it makes for workloads
(users put theirs there) and the CRDs upstream marks `keep` (Gateway API's in Linkerd's render: other
teams' objects are of those kinds). After `destroy`, or where another team installed those CRDs first, they
exist with no record in this stack's state. pulumi-kubernetes (4.29 on) then refuses to create them
again (AlreadyExists, half way through an `up`); older providers took them over. So the program uses
them as they are: an object of those kinds that is live and not in this stack's state is not
registered. Which ones the state holds, the stack's own `retainedObjects` output says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from support.live_cluster import LiveCluster
from support.namespaces import made_by

OUTPUT = "retainedObjects"


def held(last_outputs: Mapping[str, Any]) -> frozenset[str] | None:
    """The retained objects (by key) this stack's state holds: none for a new (or destroyed) stack.

    None for a stack last updated before the output existed: it holds all it declares, as before.
    """
    if not last_outputs:
        return frozenset()
    value = last_outputs.get(OUTPUT)
    return None if value is None else frozenset(str(key) for key in value)


def already_there(live: LiveCluster | None, stack: str, holds: frozenset[str] | None) -> frozenset[str]:
    """Keys of what the program uses as it is: live in the cluster and not in this stack's state.

    CRDs by any owner (only the `keep` ones are ever left out: the others would be refused by the API
    server, which is the right answer); namespaces only with this stack's mark (someone else's is
    refused before, by `namespaces.check_live` or the pre-flight).
    """
    if live is None or holds is None:
        return frozenset()
    found = {f"CustomResourceDefinition/{name}" for name in live.crds}
    found |= {f"Namespace/{name}" for name, metadata in live.namespaces.items() if made_by(stack, metadata)}
    return frozenset(found - holds)


def keys(*groups: Iterable[str]) -> list[str]:
    """The `retainedObjects` output: every retained key this update registers, sorted."""
    return sorted({key for group in groups for key in group})
