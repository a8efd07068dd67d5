"""The trust rotation's gates (support/trust_gates) on constructed objects: every branch, exact messages.

The objects have the shapes the API server returns (a pod's status as the kubelet, or kwok, writes it;
managedFields as the API server stamps them); tests/test_status.py reads the same shapes live.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from support import trust_gates as gates
from support.trust_gates import Verdict

T0 = datetime.datetime(2026, 12, 7, 10, 0, 0, tzinfo=datetime.UTC)
ROOTS = (
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"
)


def at(minutes: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def z(minutes: float) -> str:
    return gates.stamp(at(minutes))


def written(minutes: float, *more: float) -> list[dict[str, Any]]:
    return [
        {"manager": "aes-linkerd2", "operation": "Apply", "apiVersion": "v1", "time": z(m), "fieldsType": "FieldsV1"}
        for m in (minutes, *more)
    ]


def roots_configmap(minutes: float, pem: str = ROOTS) -> dict[str, Any]:
    meta = {"name": gates.ROOTS_CONFIGMAP, "namespace": "linkerd", "managedFields": written(minutes - 30, minutes)}
    return {"kind": "ConfigMap", "metadata": meta, "data": {gates.ROOTS_KEY: pem}}


def pod(
    namespace: str,
    name: str,
    proxy_started: float | None,
    *,
    roots: str | None = None,
    labels: dict[str, str] | None = None,
    container: str = gates.PROXY_CONTAINER,
    native_sidecar: bool = False,
    created: float = -100,
) -> dict[str, Any]:
    """A meshed pod as the injector leaves it (its roots' hash when `roots`), started as kwok starts it."""
    annotations = {gates.TRUST_ROOT_ANNOTATION: hashlib.sha256(roots.encode()).hexdigest()} if roots is not None else {}
    proxy = {"name": gates.PROXY_CONTAINER, "image": "cr.l5d.io/linkerd/proxy:edge-26.8.3"}
    main = {"name": container if container != gates.PROXY_CONTAINER else "main", "image": "example.invalid/app:1"}
    spec = {"initContainers": [proxy], "containers": [main]} if native_sidecar else {"containers": [main, proxy]}
    status: dict[str, Any] = {"phase": "Pending"}
    if proxy_started is not None:
        key = "initContainerStatuses" if native_sidecar else "containerStatuses"
        running = {"name": gates.PROXY_CONTAINER, "state": {"running": {"startedAt": z(proxy_started)}}}
        status = {"phase": "Running", "startTime": z(proxy_started - 1), key: [running]}
    meta = {
        "name": name,
        "namespace": namespace,
        "labels": {gates.MESHED_LABEL: "linkerd", **(labels or {})},
        "annotations": annotations,
        "creationTimestamp": z(created),
    }
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def identity_pod(name: str, started: float) -> dict[str, Any]:
    made = pod("linkerd", name, started - 0.5, labels={gates.COMPONENT_LABEL: "identity"})
    made["spec"]["containers"][0]["name"] = gates.IDENTITY_CONTAINER
    made["status"]["containerStatuses"].append({"name": "identity", "state": {"running": {"startedAt": z(started)}}})
    return made


def issuer_secret(minutes: float | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": gates.ISSUER_SECRET, "namespace": "linkerd"}
    if minutes is not None:
        meta["managedFields"] = written(minutes - 60 * 24 * 300, minutes)
    return {"metadata": meta}


def event(reason: str, minutes: float, message: str = "Updated identity issuer", name: str = "a") -> dict[str, Any]:
    """An Event as client-go's recorder writes the identity controller's (core/v1, against its Deployment)."""
    return {
        "kind": "Event",
        "metadata": {"name": f"linkerd-identity.{name}", "namespace": "linkerd", "creationTimestamp": z(minutes)},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "linkerd", "name": "linkerd-identity"},
        "reason": reason,
        "message": message,
        "source": {"component": "linkerd-identity"},
        "firstTimestamp": z(minutes),
        "lastTimestamp": z(minutes),
        "count": 1,
        "type": "Normal" if reason == gates.ISSUER_UPDATED else "Warning",
    }


# --- reading times ------------------------------------------------------------------------------------------


def test_times_read_off_objects() -> None:
    assert gates.last_written(roots_configmap(5)) == at(5)
    assert gates.last_written({"metadata": {"managedFields": []}}) is None
    assert gates.last_written(None) is None
    started = pod("default", "a", 3)
    assert gates.container_started(started, gates.PROXY_CONTAINER) == at(3)
    # No status of that container: the pod's startTime; not started at all: None.
    assert gates.container_started(started, "other") == at(2)
    assert gates.container_started(pod("default", "b", None), gates.PROXY_CONTAINER) is None
    assert gates.container_started(pod("default", "c", 4, native_sidecar=True), gates.PROXY_CONTAINER) == at(4)
    assert gates.is_meshed(pod("default", "c", 4, native_sidecar=True))
    assert not gates.is_meshed({"spec": {"containers": [{"name": "main"}]}})
    finished = pod("default", "job-1", 3)
    finished["status"]["phase"] = "Succeeded"
    assert not gates.is_meshed(finished)
    later = {**event("IssuerUpdated", 1), "lastTimestamp": z(9), "count": 3}
    assert gates.event_time(later) == at(9)
    assert gates.event_time({"eventTime": "2026-12-07T10:02:00.123456Z"}) == at(2) + datetime.timedelta(microseconds=123456)
    assert gates.event_time({"metadata": {"creationTimestamp": z(7)}}) == at(7)


def test_go_durations_and_the_certificate_lifetime() -> None:
    assert gates.go_duration("24h0m0s") == datetime.timedelta(hours=24)
    assert gates.go_duration("1.5h") == datetime.timedelta(minutes=90)
    assert gates.go_duration("20s") == datetime.timedelta(seconds=20)
    assert gates.go_duration("300ms") == datetime.timedelta(milliseconds=300)
    assert gates.go_duration("1d") is None
    assert gates.go_duration("") is None
    identity = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "identity",
                            "args": ["identity", "-identity-issuance-lifetime=2h0m0s", "-identity-clock-skew-allowance=20s"],
                        }
                    ]
                }
            }
        }
    }
    assert gates.certificate_lifetime(identity) == (
        datetime.timedelta(hours=2, seconds=20),
        "2:00:00 + 0:00:20 clock skew (flags of linkerd/linkerd-identity)",
    )
    assert gates.certificate_lifetime(None) == (
        datetime.timedelta(hours=24, seconds=10),
        "1 day, 0:00:00 + 0:00:10 clock skew (defaults, no flag on linkerd/linkerd-identity)",
    )


def test_roots_digests_cover_the_injectors_and_the_charts_forms() -> None:
    digests = gates.roots_digests(ROOTS)
    assert hashlib.sha256(ROOTS.encode()).hexdigest() in digests
    assert hashlib.sha256((ROOTS + "\n").encode()).hexdigest() in digests
    assert len(digests) == 2


# --- gate (a) -------------------------------------------------------------------------------------------------


def test_restarted_passes_when_every_meshed_pod_holds_the_live_roots() -> None:
    pods = [
        pod("default", "qotm-1", -50, roots=ROOTS),  # started before the write, but admitted with these roots
        pod("default", "qotm-2", 2, roots=ROOTS + "\n"),  # the chart's form
        pod("emissary", "edge-1", 3),  # no annotation: started after the write
        {"kind": "Pod", "metadata": {"name": "plain", "namespace": "default"}, "spec": {"containers": [{"name": "x"}]}},
    ]
    gate = gates.restarted(pods, roots_configmap(0))
    assert gate == gates.Restarted(
        Verdict.PASS, "all 3 meshed pod(s) hold the live roots (written 2026-12-07T10:00:00Z)", at(0), 3, {}, {}
    )


def test_restarted_names_every_pod_still_holding_other_roots() -> None:
    pods = [
        pod("emissary", "edge-1", -5, roots="old roots"),
        pod("default", "qotm-1", 1, roots="old roots"),  # started after, yet admitted by an injector with the old roots
        pod("default", "qotm-2", -1),  # no annotation: started before the write
        pod("default", "qotm-3", None, created=-2),  # made before the write, not started
        pod("default", "qotm-4", None, created=1),  # made after the write: it will start with them
        pod("shop", "cart-1", 4, roots=ROOTS),
    ]
    gate = gates.restarted(pods, roots_configmap(0))
    assert gate.verdict is Verdict.WAIT
    assert gate.to_restart == {"default": ["qotm-1", "qotm-2", "qotm-3"], "emissary": ["edge-1"]}
    old = hashlib.sha256(b"old roots").hexdigest()[:12]
    assert gate.why == {
        "emissary/edge-1": f"holds roots {old}, not the live roots'",
        "default/qotm-1": f"holds roots {old}, not the live roots'",
        "default/qotm-2": "proxy started 2026-12-07T09:59:00Z, before the roots' write",
        "default/qotm-3": "proxy not started",
    }
    assert gate.detail == (
        "4 of 6 meshed pod(s) to restart (roots written 2026-12-07T10:00:00Z): default: qotm-1, qotm-2, qotm-3; emissary: edge-1"
    )


def test_restarted_shortens_a_long_list_and_says_what_it_cannot_tell() -> None:
    many = [pod("default", f"web-{n:02}", -5) for n in range(11)]
    assert gates.restarted(many, roots_configmap(0)).detail.endswith(
        "default: web-00, web-01, web-02, web-03, web-04, web-05, web-06, web-07 (and 3 more)"
    )
    assert gates.restarted(many, None) == gates.Restarted(Verdict.UNKNOWN, "no ConfigMap linkerd/linkerd-identity-trust-roots")
    unstamped = {**roots_configmap(0), "metadata": {"name": gates.ROOTS_CONFIGMAP, "namespace": "linkerd"}}
    gate = gates.restarted([pod("default", "a", 5), pod("default", "b", 5, roots=ROOTS)], unstamped)
    assert (gate.verdict, gate.detail) == (
        Verdict.UNKNOWN,
        "1 meshed pod(s) without linkerd.io/trust-root-sha256, and the roots without a write time: default/a",
    )


# --- gate (b) -------------------------------------------------------------------------------------------------


def test_issuer_loaded_by_events_or_at_start() -> None:
    pods = [
        identity_pod("linkerd-identity-a", -30),
        identity_pod("linkerd-identity-b", -20),
        identity_pod("linkerd-identity-c", 3),
    ]
    events = [event("IssuerUpdated", 1, name="a"), event("IssuerUpdated", 2, name="b"), event("IssuerUpdated", -40, name="old")]
    gate = gates.issuer_loaded(issuer_secret(0), events, pods, at(10))
    assert gate == gates.IssuerLoaded(
        Verdict.PASS, "loaded: written 2026-12-07T10:00:00Z; 2 IssuerUpdated event(s)", at(0), at(3)
    )
    fresh = [identity_pod("linkerd-identity-a", 1), identity_pod("linkerd-identity-b", 2)]
    gate = gates.issuer_loaded(issuer_secret(0), [], fresh, at(10))
    assert gate == gates.IssuerLoaded(
        Verdict.PASS, "loaded: written 2026-12-07T10:00:00Z; every identity pod started after it", at(0), at(2)
    )
    # Another Deployment's Event of the same reason does not count.
    other = {**event("IssuerUpdated", 1), "involvedObject": {"kind": "Deployment", "namespace": "linkerd", "name": "x"}}
    assert gates.issuer_loaded(issuer_secret(0), [other], pods[:1], at(3)).verdict is Verdict.WAIT


def test_issuer_not_loaded_waits_then_fails_then_cannot_tell() -> None:
    pods = [identity_pod("linkerd-identity-a", -30), identity_pod("linkerd-identity-b", -20)]
    one = [event("IssuerUpdated", 1)]
    assert gates.issuer_loaded(issuer_secret(0), one, pods, at(2)) == gates.IssuerLoaded(
        Verdict.WAIT,
        "not yet: written 2026-12-07T10:00:00Z (120s ago); 1 of 2 identity pod(s) started before it without IssuerUpdated",
        at(0),
    )
    restart = "`kubectl rollout restart deploy/linkerd-identity -n linkerd`"
    assert gates.issuer_loaded(issuer_secret(0), one, pods, at(12)) == gates.IssuerLoaded(
        Verdict.FAIL,
        "not loaded: written 2026-12-07T10:00:00Z, 12 min ago; 1 of 2 identity pod(s) started before it without "
        f"IssuerUpdated (linkerd2#15109): {restart}",
        at(0),
    )
    assert gates.issuer_loaded(issuer_secret(0), [], pods, at(90)) == gates.IssuerLoaded(
        Verdict.UNKNOWN,
        "written 2026-12-07T10:00:00Z, longer ago than Events are kept (1h by default); 2 of 2 identity pod(s) started "
        f"before it without IssuerUpdated: {restart} makes sure",
        at(0),
    )


def test_issuer_refused_by_the_controller_fails_with_its_message() -> None:
    pods = [identity_pod("linkerd-identity-a", -30)]
    skipped = event(
        "IssuerUpdateSkipped", 1, "Skipping issuer update as certs could not be read from disk: failed to verify issuer"
    )
    assert gates.issuer_loaded(issuer_secret(0), [skipped], pods, at(2)) == gates.IssuerLoaded(
        Verdict.FAIL,
        "IssuerUpdateSkipped at 2026-12-07T10:01:00Z: Skipping issuer update as certs could not be read from disk: "
        "failed to verify issuer",
        at(0),
    )
    # A later IssuerUpdated supersedes it; an IssuerValidationFailed after that fails again.
    assert gates.issuer_loaded(issuer_secret(0), [skipped, event("IssuerUpdated", 2)], pods, at(3)).verdict is Verdict.PASS
    failed = event("IssuerValidationFailed", 4, "x509: certificate has expired - CSR Identity : web.default")
    gate = gates.issuer_loaded(issuer_secret(0), [skipped, event("IssuerUpdated", 2), failed], pods, at(5))
    assert (gate.verdict, gate.detail) == (
        Verdict.FAIL,
        "IssuerValidationFailed at 2026-12-07T10:04:00Z: x509: certificate has expired - CSR Identity : web.default",
    )


def test_issuer_loaded_unknown_without_what_it_reads() -> None:
    pods = [identity_pod("linkerd-identity-a", -30)]
    assert gates.issuer_loaded(None, [], pods, at(1)) == gates.IssuerLoaded(
        Verdict.UNKNOWN, "no Secret linkerd/linkerd-identity-issuer"
    )
    assert gates.issuer_loaded(issuer_secret(None), [], pods, at(1)) == gates.IssuerLoaded(
        Verdict.UNKNOWN, "Secret linkerd/linkerd-identity-issuer carries no write time (managedFields)"
    )
    pending = pod("linkerd", "linkerd-identity-x", None, labels={gates.COMPONENT_LABEL: "identity"})
    assert gates.issuer_loaded(issuer_secret(0), [], [pending], at(1)) == gates.IssuerLoaded(
        Verdict.UNKNOWN, "no linkerd-identity pod has started", at(0)
    )


# --- gate (c) -------------------------------------------------------------------------------------------------

LIFETIME = datetime.timedelta(hours=24, seconds=10)


def loaded_at(minutes: float) -> gates.IssuerLoaded:
    return gates.IssuerLoaded(Verdict.PASS, "loaded", at(0), at(minutes))


def test_drop_old_allowed_once_every_proxy_restarted() -> None:
    pods = [pod("default", "qotm-1", 5), pod("emissary", "edge-1", 6), pod("default", "qotm-2", None)]
    assert gates.drop_old_allowed(pods, loaded_at(3), LIFETIME, at(7)) == gates.DropOld(
        Verdict.PASS,
        "every meshed proxy started after the new issuer was loaded (2026-12-07T10:03:00Z)",
        {},
        at(3) + LIFETIME,
    )


def test_drop_old_waits_for_the_lifetime_naming_the_proxies() -> None:
    pods = [pod("default", "qotm-1", 5), pod("emissary", "edge-1", 1), pod("default", "qotm-2", -100)]
    gate = gates.drop_old_allowed(pods, loaded_at(3), LIFETIME, at(60))
    assert gate == gates.DropOld(
        Verdict.WAIT,
        "2 meshed proxy(ies) started before the new issuer was loaded (2026-12-07T10:03:00Z), restart them or wait until "
        "2026-12-08T10:03:10Z: default: qotm-2; emissary: edge-1",
        {"default": ["qotm-2"], "emissary": ["edge-1"]},
        at(3) + LIFETIME,
    )
    later = gates.drop_old_allowed(pods, loaded_at(3), LIFETIME, at(3) + LIFETIME)
    assert (later.verdict, later.detail) == (
        Verdict.PASS,
        "a certificate's lifetime has passed since the new issuer was loaded (2026-12-07T10:03:00Z): every one was re-issued",
    )


def test_drop_old_follows_the_issuer_gate() -> None:
    waiting = gates.IssuerLoaded(Verdict.WAIT, "not yet: written 2026-12-07T10:00:00Z (60s ago)", at(0))
    assert gates.drop_old_allowed([], waiting, LIFETIME, at(1)) == gates.DropOld(
        Verdict.WAIT, "the new issuer: not yet: written 2026-12-07T10:00:00Z (60s ago)"
    )
    failed = gates.IssuerLoaded(Verdict.FAIL, "IssuerUpdateSkipped at 2026-12-07T10:01:00Z: x", at(0))
    assert gates.drop_old_allowed([], failed, LIFETIME, at(1)).verdict is Verdict.FAIL
