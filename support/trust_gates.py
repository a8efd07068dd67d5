"""The gates of a trust anchor rotation: pure answers over live objects, with what is missing named.

Each gate takes the objects as the API server returned them (plain mappings) and the time now; none
reads a cluster or a clock. Linkerd edge-26.8.3's source says what they rely on:

- A proxy is given the trust roots when its pod is admitted: the injector copies the roots file it
  mounts (the `linkerd-identity-trust-roots` ConfigMap) into the proxy's environment and stamps the
  pod with `linkerd.io/trust-root-sha256`, the sha256 of that text (`pkg/inject/inject.go`). The
  control plane's own proxies read the ConfigMap when their container starts, and their pod template
  carries the same annotation, hashed by the chart. So the annotation says exactly which roots a pod
  holds; a pod without it is judged by when its proxy started against the ConfigMap's last write.
- Every meshed pod carries the label `linkerd.io/control-plane-ns` and a container (or, as a native
  sidecar, an init container) named `linkerd-proxy` (`pkg/k8s/labels.go`).
- The identity controller loads its issuer when it starts, and again whenever the files of the
  Secret it mounts change, then records an Event `IssuerUpdated` ("Updated identity issuer"), or
  `IssuerUpdateSkipped` (Warning) when it could not read or verify them, against the Deployment
  `linkerd/linkerd-identity` (`pkg/identity/service.go`, `controller/cmd/identity/main.go`). A
  certificate it signs lives `-identity-issuance-lifetime` (24h by default) plus
  `-identity-clock-skew-allowance` (10s by default) (`pkg/tls/ca.go`).

"Written" is the newest `metadata.managedFields[].time`: the API server stamps the entry of the
manager that changed the object, on its own clock, to the second. It is the right clock for "the
roots (or the issuer) were applied": it moves on every write that changes the object and on nothing
else. Its limits: a write that changed only a label moves it too (the gate then asks for more
restarts than needed, never fewer); an object whose managedFields were cleared has none (unknown);
pod start times come from the nodes' clocks, not the API server's.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NAMESPACE = "linkerd"
ROOTS_CONFIGMAP = "linkerd-identity-trust-roots"
ROOTS_KEY = "ca-bundle.crt"
ISSUER_SECRET = "linkerd-identity-issuer"
IDENTITY_DEPLOYMENT = "linkerd-identity"
IDENTITY_CONTAINER = "identity"
# What the identity controller records its issuer Events against.
IDENTITY_REF = ("Deployment", NAMESPACE, IDENTITY_DEPLOYMENT)
PROXY_CONTAINER = "linkerd-proxy"
MESHED_LABEL = "linkerd.io/control-plane-ns"
COMPONENT_LABEL = "linkerd.io/control-plane-component"
TRUST_ROOT_ANNOTATION = "linkerd.io/trust-root-sha256"
ISSUER_UPDATED = "IssuerUpdated"
ISSUER_SKIPPED = "IssuerUpdateSkipped"
ISSUER_FAILED = "IssuerValidationFailed"
# The identity controller's defaults when its flags are absent or unreadable.
DEFAULT_LIFETIME = datetime.timedelta(hours=24)
DEFAULT_SKEW = datetime.timedelta(seconds=10)
# The kubelet projects a changed Secret into the pod within its sync period and cache delay (about a
# minute each by default): past this, an issuer not reported loaded is a failure.
LOAD_GRACE = datetime.timedelta(minutes=5)
# The API server keeps Events an hour by default (--event-ttl): past that, their absence says nothing.
EVENT_TTL = datetime.timedelta(hours=1)

Obj = Mapping[str, Any]


class Verdict(StrEnum):
    PASS = "pass"
    WAIT = "wait"  # not yet: the step has not taken hold
    FAIL = "fail"  # it will not take hold by itself
    UNKNOWN = "unknown"  # what is read cannot tell


# --- reading times off objects ---------------------------------------------------------------------


def parse_time(raw: Any) -> datetime.datetime | None:
    if not raw or not isinstance(raw, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def stamp(moment: datetime.datetime | None) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "unknown"


def last_written(obj: Obj | None) -> datetime.datetime | None:
    """The newest `managedFields[].time`: when the object was last changed (None: no such entry)."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    times = [t for t in (parse_time(e.get("time")) for e in entries if isinstance(e, Mapping)) if t]
    return max(times, default=None)


def _name(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]


def container_started(pod: Obj, container: str) -> datetime.datetime | None:
    """When `container` last started (its running state), else when the pod started; None: not started."""
    for found in _statuses(pod):
        if found.get("name") == container:
            running = (found.get("state") or {}).get("running") or {}
            started = parse_time(running.get("startedAt"))
            if started:
                return started
    return parse_time((pod.get("status") or {}).get("startTime"))


def is_meshed(pod: Obj) -> bool:
    """A live pod with Linkerd's proxy: a container or native-sidecar init container named `linkerd-proxy`.

    A pod that has finished (a Job's, `Succeeded` or `Failed`) runs no proxy any more: it holds nothing.
    """
    spec = pod.get("spec") or {}
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return any(c.get("name") == PROXY_CONTAINER for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])])


def roots_digests(roots_pem: str) -> frozenset[str]:
    """The hashes a pod may carry of these roots: the injector hashes the ConfigMap's text as mounted, the
    chart the PEM it was given (the ConfigMap holds it trimmed, the values with a final newline)."""
    text = roots_pem.strip()
    return frozenset(hashlib.sha256(form.encode()).hexdigest() for form in (roots_pem, text, text + "\n"))


def _by_namespace(refs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for namespace, name in sorted(refs):
        grouped.setdefault(namespace, []).append(name)
    return grouped


def named(grouped: Mapping[str, list[str]], limit: int = 8) -> str:
    """`ns: a, b; ns2: c` with at most `limit` names, then how many more."""
    shown, parts, more = 0, [], 0
    for namespace, names in grouped.items():
        room = max(limit - shown, 0)
        if room:
            parts.append(f"{namespace}: {', '.join(names[:room])}")
        shown += min(room, len(names))
        more += max(len(names) - room, 0)
    return "; ".join(parts) + (f" (and {more} more)" if more else "")


# --- gate (a): every meshed pod holds the live roots -------------------------------------------------


@dataclass(frozen=True)
class Restarted:
    verdict: Verdict
    detail: str
    roots_written: datetime.datetime | None = None
    meshed: int = 0
    # namespace -> pod names still holding other roots (sorted), and why, by "namespace/name".
    to_restart: dict[str, list[str]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


def restarted(pods: Iterable[Obj], roots: Obj | None) -> Restarted:
    """Gate (a): every meshed pod holds the roots the ConfigMap holds now."""
    if roots is None:
        return Restarted(Verdict.UNKNOWN, f"no ConfigMap {NAMESPACE}/{ROOTS_CONFIGMAP}")
    pem = str((roots.get("data") or {}).get(ROOTS_KEY) or "")
    digests, written = roots_digests(pem) if pem else frozenset(), last_written(roots)
    meshed = [pod for pod in pods if is_meshed(pod)]
    why, unknown = _sort_pods(meshed, digests, written)
    grouped = _by_namespace((ref.partition("/")[0], ref.partition("/")[2]) for ref in why)
    if why:
        detail = f"{len(why)} of {len(meshed)} meshed pod(s) to restart (roots written {stamp(written)}): {named(grouped)}"
        return Restarted(Verdict.WAIT, detail, written, len(meshed), grouped, why)
    if unknown:
        shown = ", ".join(unknown[:8])
        detail = f"{len(unknown)} meshed pod(s) without {TRUST_ROOT_ANNOTATION}, and the roots without a write time: {shown}"
        return Restarted(Verdict.UNKNOWN, detail, written, len(meshed))
    return Restarted(
        Verdict.PASS, f"all {len(meshed)} meshed pod(s) hold the live roots (written {stamp(written)})", written, len(meshed)
    )


def _sort_pods(meshed: list[Obj], digests: frozenset[str], written: datetime.datetime | None) -> tuple[dict[str, str], list[str]]:
    """The pods holding other roots ("namespace/name" -> why), and those that cannot be told."""
    why: dict[str, str] = {}
    unknown: list[str] = []
    for pod in meshed:
        reason = _stale(pod, digests, written)
        if reason is None:
            unknown.append("/".join(_name(pod)))
        elif reason:
            why["/".join(_name(pod))] = reason
    return why, unknown


def _stale(pod: Obj, digests: frozenset[str], written: datetime.datetime | None) -> str | None:
    """Why the pod holds other roots; "" when it holds these; None when it cannot be told."""
    held = ((pod.get("metadata") or {}).get("annotations") or {}).get(TRUST_ROOT_ANNOTATION)
    if held and digests:
        return "" if held in digests else f"holds roots {held[:12]}, not the live roots'"
    return _stale_by_time(pod, written)


def _stale_by_time(pod: Obj, written: datetime.datetime | None) -> str | None:
    """Without the annotation: the proxy's start against the roots' write."""
    started = container_started(pod, PROXY_CONTAINER)
    if started is None:
        return "" if written is not None and _created(pod, written) else "proxy not started"
    if written is None:
        return None
    return "" if started >= written else f"proxy started {stamp(started)}, before the roots' write"


def _created(pod: Obj, written: datetime.datetime) -> bool:
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    return created is not None and created >= written


# --- gate (b): the identity controller loaded the issuer that was applied ------------------------------


@dataclass(frozen=True)
class IssuerLoaded:
    verdict: Verdict
    detail: str
    written: datetime.datetime | None = None
    # When the last identity pod that had to load the issuer did (its Event, or its start).
    loaded_at: datetime.datetime | None = None


def event_time(event: Obj) -> datetime.datetime | None:
    """When an Event last happened: lastTimestamp (core/v1), else eventTime, the series', firstTimestamp, creation."""
    series = event.get("series") or {}
    for raw in (event.get("lastTimestamp"), series.get("lastObservedTime"), event.get("eventTime"), event.get("firstTimestamp")):
        moment = parse_time(raw)
        if moment:
            return moment
    return parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def _identity_events(events: Iterable[Obj], since: datetime.datetime) -> list[tuple[datetime.datetime, Obj]]:
    """The identity controller's issuer Events at or after `since`, oldest first."""
    found = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if (involved.get("kind"), involved.get("namespace"), involved.get("name")) != (
            "Deployment",
            NAMESPACE,
            IDENTITY_DEPLOYMENT,
        ):
            continue
        moment = event_time(event)
        if moment is not None and moment >= since and event.get("reason") in (ISSUER_UPDATED, ISSUER_SKIPPED, ISSUER_FAILED):
            found.append((moment, event))
    return sorted(found, key=lambda pair: pair[0])


def identity_pods(pods: Iterable[Obj]) -> list[Obj]:
    return [
        pod
        for pod in pods
        if _name(pod)[0] == NAMESPACE and ((pod.get("metadata") or {}).get("labels") or {}).get(COMPONENT_LABEL) == "identity"
    ]


def issuer_loaded(
    issuer: Obj | None,
    events: Iterable[Obj],
    pods: Iterable[Obj],
    now: datetime.datetime,
    grace: datetime.timedelta = LOAD_GRACE,
) -> IssuerLoaded:
    """Gate (b): each identity controller has loaded the issuer Secret as last written.

    A pod started after the write loaded it at start (no Event); each one started before needs an
    `IssuerUpdated` at or after the write. Each replica records its own Event object (the source names
    the component, not the pod), so they are counted, not told apart.
    """
    if issuer is None:
        return IssuerLoaded(Verdict.UNKNOWN, f"no Secret {NAMESPACE}/{ISSUER_SECRET}")
    written = last_written(issuer)
    if written is None:
        return IssuerLoaded(Verdict.UNKNOWN, f"Secret {NAMESPACE}/{ISSUER_SECRET} carries no write time (managedFields)")
    stale, fresh = _identity_starts(pods, written)
    if not stale and not fresh:
        return IssuerLoaded(Verdict.UNKNOWN, f"no {IDENTITY_DEPLOYMENT} pod has started", written)
    found = _identity_events(events, written)
    refused = _refused(found, written)
    if refused is not None:
        return refused
    updated = [moment for moment, event in found if event.get("reason") == ISSUER_UPDATED]
    if len(updated) >= len(stale):
        loaded_at = max([*updated, *fresh], default=written)
        how = f"{len(updated)} {ISSUER_UPDATED} event(s)" if stale else "every identity pod started after it"
        return IssuerLoaded(Verdict.PASS, f"loaded: written {stamp(written)}; {how}", written, loaded_at)
    missing = f"{len(stale) - len(updated)} of {len(stale)} identity pod(s) started before it without {ISSUER_UPDATED}"
    return _not_loaded(written, now - written, missing, grace)


def _identity_starts(pods: Iterable[Obj], written: datetime.datetime) -> tuple[list[datetime.datetime], list[datetime.datetime]]:
    """When each started identity pod's controller started: before the write, and at or after it."""
    running = [moment for moment in (container_started(pod, IDENTITY_CONTAINER) for pod in identity_pods(pods)) if moment]
    return [m for m in running if m < written], [m for m in running if m >= written]


def _refused(found: list[tuple[datetime.datetime, Obj]], written: datetime.datetime) -> IssuerLoaded | None:
    """A failure when the newest issuer Event since the write is a Warning (skipped, or failed validation)."""
    if not found or found[-1][1].get("reason") == ISSUER_UPDATED:
        return None
    moment, event = found[-1]
    return IssuerLoaded(
        Verdict.FAIL, f"{event.get('reason')} at {stamp(moment)}: {str(event.get('message') or '')[:200]}", written
    )


def _not_loaded(written: datetime.datetime, age: datetime.timedelta, missing: str, grace: datetime.timedelta) -> IssuerLoaded:
    """No word yet: waiting within the grace, unknown past the Events' lifetime, else a failure."""
    restart = f"`kubectl rollout restart deploy/{IDENTITY_DEPLOYMENT} -n {NAMESPACE}`"
    if age < grace:
        detail = f"not yet: written {stamp(written)} ({int(age.total_seconds())}s ago); {missing}"
        return IssuerLoaded(Verdict.WAIT, detail, written)
    if age > EVENT_TTL:
        detail = f"written {stamp(written)}, longer ago than Events are kept (1h by default); {missing}: {restart} makes sure"
        return IssuerLoaded(Verdict.UNKNOWN, detail, written)
    detail = (
        f"not loaded: written {stamp(written)}, {int(age.total_seconds() // 60)} min ago; {missing} (linkerd2#15109): {restart}"
    )
    return IssuerLoaded(Verdict.FAIL, detail, written)


# --- gate (c): no live proxy certificate from an old-chain issuer ------------------------------------------


@dataclass(frozen=True)
class DropOld:
    verdict: Verdict
    detail: str
    # namespace -> meshed pods whose proxy started before the new issuer was in force.
    pending: dict[str, list[str]] = field(default_factory=dict)
    # When the certificate lifetime will have passed (None: not known yet).
    ready_at: datetime.datetime | None = None


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration(text: str) -> datetime.timedelta | None:
    """A Go duration (`24h0m0s`, `20s`, `1.5h`); None when it is not one."""
    if not text or _DURATION.sub("", text) != "":
        return None
    return datetime.timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text)))


def certificate_lifetime(identity: Obj | None) -> tuple[datetime.timedelta, str]:
    """How long a proxy certificate lives, from the identity controller's flags (what it parses), and where from."""
    flags = _identity_flags(identity)
    lifetime = go_duration(flags.get("identity-issuance-lifetime", "")) or DEFAULT_LIFETIME
    skew = go_duration(flags.get("identity-clock-skew-allowance", "")) or DEFAULT_SKEW
    said = "flags of" if "identity-issuance-lifetime" in flags else "defaults, no flag on"
    return lifetime + skew, f"{lifetime} + {skew} clock skew ({said} {NAMESPACE}/{IDENTITY_DEPLOYMENT})"


def _identity_flags(identity: Obj | None) -> dict[str, str]:
    """The identity container's `-name=value` flags."""
    containers = _dig(identity, "spec", "template", "spec", "containers") or []
    args = [str(a) for c in containers if c.get("name") == IDENTITY_CONTAINER for a in c.get("args") or []]
    return dict(arg.lstrip("-").partition("=")[::2] for arg in args if arg.startswith("-"))


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _started_before(pods: Iterable[Obj], since: datetime.datetime) -> dict[str, list[str]]:
    """The meshed pods whose proxy started before `since`, by namespace."""
    refs = []
    for pod in pods:
        started = container_started(pod, PROXY_CONTAINER) if is_meshed(pod) else None
        if started is not None and started < since:
            refs.append(_name(pod))
    return _by_namespace(refs)


def drop_old_allowed(pods: Iterable[Obj], loaded: IssuerLoaded, lifetime: datetime.timedelta, now: datetime.datetime) -> DropOld:
    """Gate (c), after the `issuers` step: every proxy certificate comes from the new issuer, because every
    meshed proxy started after the identity controller loaded it, or because the lifetime of a certificate
    has passed since then. `loaded` is gate (b) for the issuer the `issuers` step wrote."""
    if loaded.verdict is not Verdict.PASS or loaded.loaded_at is None:
        return DropOld(Verdict.WAIT if loaded.verdict is not Verdict.FAIL else Verdict.FAIL, f"the new issuer: {loaded.detail}")
    since = loaded.loaded_at
    pending, ready_at = _started_before(pods, since), since + lifetime
    if not pending:
        return DropOld(Verdict.PASS, f"every meshed proxy started after the new issuer was loaded ({stamp(since)})", {}, ready_at)
    if now >= ready_at:
        detail = f"a certificate's lifetime has passed since the new issuer was loaded ({stamp(since)}): every one was re-issued"
        return DropOld(Verdict.PASS, detail, pending, ready_at)
    detail = (
        f"{sum(len(v) for v in pending.values())} meshed proxy(ies) started before the new issuer was loaded ({stamp(since)}), "
        f"restart them or wait until {stamp(ready_at)}: {named(pending)}"
    )
    return DropOld(Verdict.WAIT, detail, pending, ready_at)
