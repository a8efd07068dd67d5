"""Trust anchor rotation: one `up` per step (`trustAnchorRotation`), decoded from what each step would apply.

Each step runs the real program under mocks with the real linkerd CLI rendering Linkerd's objects;
the stack's last `identityAnchors` output is what the step before it exported. The certificate
Commands run for real on folders standing in for the clusters' `linkerd` namespaces, so an anchor's
Secret made by one step is the one the next step finds and reuses, as in a cluster; that the engine
keeps each Command across steps (and deletes the old anchor's Secret) is shown by e2e/test_full.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from components.linkerd_identity import AnchorPlan, Phase, anchor_plan, current_anchors
from driver.offline import offline_cluster
from support.certificates import RotationStep, anchor_secret, bundle, new_trust_anchor, split_bundle
from support.errors import ConfigError
from tests import certificate_audit
from tests.conftest import TARGET_CONTEXT, run_refused, run_stack, source_config, target_config, target_outputs
from tests.harness import Run

OWN = "organization/aes-linkerd2/target"


def anchors(generation: int, phase: str) -> dict[str, Any]:
    return {"generation": generation, "phase": phase}


@pytest.mark.parametrize(
    ("previous", "step", "expected"),
    [
        # expected: newest generation, phase, generations trusted, generation signing, whether the preview says a step
        (None, None, (0, Phase.STABLE, (0,), 0, False)),
        (anchors(0, "stable"), RotationStep.DROP_OLD, (0, Phase.STABLE, (0,), 0, False)),
        (anchors(0, "stable"), RotationStep.BUNDLE, (1, Phase.BUNDLE, (0, 1), 0, True)),
        (anchors(1, "bundle"), RotationStep.BUNDLE, (1, Phase.BUNDLE, (0, 1), 0, False)),
        (anchors(1, "bundle"), RotationStep.ISSUERS, (1, Phase.ISSUERS, (0, 1), 1, True)),
        (anchors(1, "issuers"), RotationStep.ISSUERS, (1, Phase.ISSUERS, (0, 1), 1, False)),
        (anchors(1, "issuers"), RotationStep.DROP_OLD, (1, Phase.STABLE, (1,), 1, True)),
        # restart: the anchors of issuers, kept; only the restart mark differs (below).
        (anchors(1, "issuers"), RotationStep.RESTART, (1, Phase.RESTART, (0, 1), 1, True)),
        (anchors(1, "restart"), RotationStep.RESTART, (1, Phase.RESTART, (0, 1), 1, False)),
        (anchors(1, "restart"), RotationStep.DROP_OLD, (1, Phase.STABLE, (1,), 1, True)),
        (anchors(1, "stable"), RotationStep.DROP_OLD, (1, Phase.STABLE, (1,), 1, False)),
        (anchors(1, "stable"), None, (1, Phase.STABLE, (1,), 1, False)),
        # The real engine gives numbers back as floats.
        ({"generation": 1.0, "phase": "stable"}, RotationStep.BUNDLE, (2, Phase.BUNDLE, (1, 2), 1, True)),
    ],
)
def test_each_step_keeps_the_anchors_it_needs(
    previous: dict[str, Any] | None, step: RotationStep | None, expected: tuple[int, Phase, tuple[int, ...], int, bool]
) -> None:
    plan = anchor_plan(previous, step)
    # Only a step that changes something says so in the preview; repeating or keeping the value says nothing.
    assert (plan.generation, plan.phase, plan.trusted, plan.signing, plan.preview_warning is not None) == expected


@pytest.mark.parametrize(
    ("previous", "step", "message"),
    [
        (
            anchors(0, "stable"),
            RotationStep.ISSUERS,
            "skips a step or goes back: no rotation is under way; the next step is bundle",
        ),
        (
            anchors(1, "bundle"),
            RotationStep.DROP_OLD,
            "skips a step or goes back: the last update did step bundle; the next step is issuers",
        ),
        (
            anchors(1, "issuers"),
            RotationStep.BUNDLE,
            "skips a step or goes back: the last update did step issuers; the next step is restart (or drop-old, a "
            "certificate lifetime after issuers)",
        ),
        (
            anchors(1, "restart"),
            RotationStep.ISSUERS,
            "skips a step or goes back: the last update did step restart; the next step is drop-old",
        ),
        (
            anchors(1, "bundle"),
            RotationStep.RESTART,
            "skips a step or goes back: the last update did step bundle; the next step is issuers",
        ),
        (
            anchors(0, "stable"),
            RotationStep.RESTART,
            "skips a step or goes back: no rotation is under way; the next step is bundle",
        ),
        (anchors(1, "restart"), None, "removed while a rotation is under way: the last update did step restart"),
        (
            anchors(1, "bundle"),
            None,
            "removed while a rotation is under way: the last update did step bundle; the next step is issuers",
        ),
        (anchors(1, "issuers"), None, "removed while a rotation is under way: the last update did step issuers"),
    ],
)
def test_a_skipped_step_a_step_back_or_a_removed_value_is_refused(
    previous: dict[str, Any], step: RotationStep | None, message: str
) -> None:
    with pytest.raises(ConfigError, match="trustAnchorRotation") as raised:
        anchor_plan(previous, step)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("phase", "mark", "control_plane"),
    [
        ("stable", None, None),  # never rotated: no mark anywhere
        ("bundle", "0 1", None),
        ("issuers", "0 1", None),  # the issuers step restarts nothing: the identity controllers reload the issuer
        ("restart", "0 1 after issuers", "0 1 after issuers"),  # every meshed workload, Linkerd's own too
    ],
)
def test_the_restart_mark_changes_with_the_roots_and_at_the_restart_step(
    phase: str, mark: str | None, control_plane: str | None
) -> None:
    plan = current_anchors(anchors(1 if phase != "stable" else 0, phase))
    assert (plan.restart_mark, plan.control_plane_mark) == (mark, control_plane)
    # After the rotation: the new anchor alone, and Linkerd's own Deployments without a mark (their roots hash rolls them).
    done = anchor_plan(anchors(1, "restart"), RotationStep.DROP_OLD)
    assert (done.restart_mark, done.control_plane_mark) == ("1", None)


def step(value: str | None, previous: dict[str, Any] | None, *, preview: bool = False) -> Run:
    """One `up` (or preview) of the target with trustAnchorRotation=value, after an update that exported `previous`."""
    config = target_config(**({"trustAnchorRotation": value} if value else {}))
    references = {OWN: {"identityAnchors": previous}} if previous is not None else None
    return run_stack("target", config, preview=preview, stack_references=references)


def made(run: Run) -> dict[str, str]:
    """The certificate each identity Command printed (public: the keys stay in the clusters' Secrets)."""
    return {name: text for name, text in run.mocks.command_stdouts.items() if name.startswith("identity-")}


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def applied_roots(run: Run) -> str:
    return str(run.one("ConfigMap", "linkerd-identity-trust-roots").inputs["data"]["ca-bundle.crt"])


def written_issuer(context: str, signer: str) -> x509.Certificate:
    """The issuer Secret in a cluster: the new format, its key matching, signed by `signer`."""
    secret = certificate_audit.cluster_secret(context, "linkerd-identity-issuer")
    return certificate_audit.assert_issuer_secret(secret, signer, "kubernetes.io/tls")


def assert_applied(run: Run, roots: list[str], signer: str) -> None:
    """What the target would apply: exactly `roots` trusted everywhere, its issuer signed by `signer`."""
    expected = bundle(roots)
    # The ConfigMap proxies and the injector read (the chart trims the final newline) ...
    assert applied_roots(run) == expected.strip()
    # ... every certificate decoded from every object: the roots, nothing else; the issuer is in the cluster ...
    certificate_audit.assert_only_the_real_identity(run, roots)
    assert written_issuer(TARGET_CONTEXT, signer) == cert(made(run)["identity-target-issuer"])
    # ... and the pods' linkerd.io/trust-root-sha256 is Linkerd's: the sha256 of the anchors file as read
    # (pkg/charts/linkerd2 `identityTrustAnchorsPEM | sha256sum`), here the bundle `cat old new` makes.
    digest = hashlib.sha256(expected.encode()).hexdigest()
    for deployment in run.find("Deployment", namespace="linkerd"):
        annotations = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
        assert annotations["linkerd.io/trust-root-sha256"] == digest, deployment.name


def anchor_commands(run: Run) -> list[str]:
    return sorted(r.name for r in run.find("Command") if "trust-anchor" in r.name)


@pytest.fixture
def warnings_said() -> Iterator[list[str]]:
    """What the program warns (pulumi.log.warn reaches Python's logging under mocks), with or without pytest's log capture."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logging.getLogger().addHandler(handler)
    yield said
    logging.getLogger().removeHandler(handler)


def test_a_rotation_walks_bundle_issuers_drop_old_with_both_anchors_trusted_while_either_signs(
    warnings_said: list[str],
) -> None:
    # Step 1, bundle: a new anchor (a new resource), trusted beside the old one; the old one still signs.
    run = step("bundle", anchors(0, "stable"))
    assert run.error is None, run.error
    assert anchor_commands(run) == ["identity-trust-anchor", "identity-trust-anchor-1"]
    old, new = made(run)["identity-trust-anchor"], made(run)["identity-trust-anchor-1"]
    assert cert(old) != cert(new) and cert(new).subject == cert(old).subject
    assert_applied(run, [old, new], signer=old)
    assert run.outputs["identityAnchors"] == {"generation": 1, "phase": "bundle"}
    assert run.outputs["trustAnchorPem"] == old and run.outputs["trustRootsPem"] == bundle([old, new])
    assert [(r["name"], r["role"]) for r in run.outputs["identityCertificates"]][:2] == [
        ("trust-anchor", "anchor"),
        ("new-trust-anchor", "anchor"),
    ]
    issuer_triggers = {r.name: r.inputs["triggers"][0] for r in run.find("Command") if r.name.endswith("-issuer")}
    assert set(issuer_triggers.values()) == {old}, "the bundle step leaves the issuers as they are"
    assert any("step bundle: makes trust anchor 1" in said for said in warnings_said)
    warnings_said.clear()

    # Step 2, issuers: every issuer re-issued by the new anchor; the roots still carry both.
    run = step("issuers", anchors(1, "bundle"))
    assert run.error is None, run.error
    assert anchor_commands(run) == ["identity-trust-anchor", "identity-trust-anchor-1"]
    # The anchors' Secrets made by the bundle step, found and kept (no new key).
    assert (made(run)["identity-trust-anchor"], made(run)["identity-trust-anchor-1"]) == (old, new)
    assert_applied(run, [old, new], signer=new)
    issuer_triggers = {r.name: r.inputs["triggers"][0] for r in run.find("Command") if r.name.endswith("-issuer")}
    assert set(issuer_triggers.values()) == {new}, "a new signer replaces each issuer's Command"
    assert run.outputs["identityAnchors"] == {"generation": 1, "phase": "issuers"}
    assert [r["name"] for r in run.outputs["identityCertificates"]][:2] == ["trust-anchor", "old-trust-anchor"]
    assert any("step issuers: every issuer is re-issued by trust anchor 1" in said for said in warnings_said)
    warnings_said.clear()

    # Step 3, drop-old: only the new anchor; its Command is the one made in step 1 (same name).
    run = step("drop-old", anchors(1, "issuers"))
    assert run.error is None, run.error
    assert anchor_commands(run) == ["identity-trust-anchor-1"]
    assert made(run)["identity-trust-anchor-1"] == new
    assert_applied(run, [new], signer=new)
    assert run.outputs["identityAnchors"] == {"generation": 1, "phase": "stable"}
    assert [r["name"] for r in run.outputs["identityCertificates"]] == ["trust-anchor", "target-issuer"]
    assert any("step drop-old: the trust roots carry only trust anchor 1" in said for said in warnings_said)
    warnings_said.clear()


def registered_identity(run: Run) -> list[tuple[str, Any]]:
    """The identity Commands with what would replace them (their triggers, anchors named by resource)."""
    names = {pem: name for name, pem in made(run).items()}
    return sorted(
        (r.name, [names.get(t, t) for t in r.inputs["triggers"]]) for r in run.find("Command") if r.name.startswith("identity-")
    )


@pytest.mark.parametrize("value", ["drop-old", None])
def test_after_the_last_step_keeping_or_removing_the_value_changes_nothing(value: str | None) -> None:
    done = step("drop-old", anchors(1, "issuers"))
    for preview in (True, False):
        again = step(value, done.outputs["identityAnchors"], preview=preview)
        assert again.error is None, again.error
        assert sorted((r.type, r.name) for r in again.registrations) == sorted((r.type, r.name) for r in done.registrations)
    assert registered_identity(again) == registered_identity(done)
    assert again.outputs["identityAnchors"] == done.outputs["identityAnchors"]


def test_a_later_rotation_makes_the_next_anchor() -> None:
    run = step("bundle", anchors(1, "stable"))
    assert run.error is None, run.error
    assert anchor_commands(run) == ["identity-trust-anchor-1", "identity-trust-anchor-2"]
    assert registered_identity(run)[:1] == [("identity-target-issuer", ["identity-trust-anchor-1", "0"])]
    old, new = made(run)["identity-trust-anchor-1"], made(run)["identity-trust-anchor-2"]
    assert_applied(run, [old, new], signer=old)


@pytest.mark.parametrize("preview", [True, False])
def test_a_skipped_step_is_refused_before_anything_is_registered(preview: bool) -> None:
    # Before any command runs, too: the CLI is a stand-in that must never be asked.
    config = target_config(trustAnchorRotation="drop-old")
    run = run_refused("target", config, preview=preview, stack_references={OWN: {"identityAnchors": anchors(1, "bundle")}})
    assert isinstance(run.error, ConfigError)
    assert str(run.error) == (
        "config aes-linkerd2:trustAnchorRotation = 'drop-old': skips a step or goes back: "
        "the last update did step bundle; the next step is issuers"
    )


@pytest.mark.parametrize(
    ("stack", "value", "reason"),
    [
        ("target", "rotate", "must be one of bundle, issuers, restart, drop-old"),
        ("target", "Bundle", "must be one of bundle, issuers, restart, drop-old"),
        ("source", "bundle", "is read by the target stack only"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(stack: str, value: str, reason: str) -> None:
    config = (target_config if stack == "target" else source_config)(trustAnchorRotation=value)
    run = run_refused(stack, config)
    assert isinstance(run.error, ConfigError)
    assert str(run.error).startswith(f"config aes-linkerd2:trustAnchorRotation = {value!r}: {reason}")


@pytest.mark.parametrize("phase", ["bundle", "issuers", "stable"])
def test_the_source_follows_the_targets_step(phase: str) -> None:
    """The source applies the roots the target's outputs carry, and signs its issuer with the anchor they name."""
    outputs = target_outputs()  # its anchor's Secret, generation 0, in the target cluster
    old_pem = outputs["trustAnchorPem"]
    new = new_trust_anchor("root.linkerd.cluster.local", 24)
    offline_cluster(TARGET_CONTEXT).apply(anchor_secret("linkerd-trust-anchor-1", new))
    signer, secret = (old_pem, "linkerd-trust-anchor") if phase == "bundle" else (new.cert_pem, "linkerd-trust-anchor-1")
    roots = [new.cert_pem] if phase == "stable" else [old_pem, new.cert_pem]
    outputs = {**outputs, "trustAnchorPem": signer, "trustAnchorSecret": secret, "trustRootsPem": bundle(roots)}
    run = run_stack("source", source_config(), stack_references={OWN: outputs})
    assert run.error is None, run.error
    assert applied_roots(run) == bundle(roots).strip()
    certificate_audit.assert_only_the_real_identity(run, roots)
    assert written_issuer("source-ctx", signer) == cert(made(run)["identity-source-issuer"])
    assert run.one("Command", "identity-source-issuer").inputs["triggers"] == [signer, "0"]
    assert split_bundle(run.outputs["trustRootsPem"]) == roots
    # The multicluster checks run again when the roots change (they compare both clusters' anchors).
    digest = hashlib.sha256(bundle(roots).encode()).hexdigest()
    assert digest in run.one("Command", "multicluster-source-multicluster-check").inputs["triggers"]


def test_the_default_plan_is_one_anchor_that_signs() -> None:
    assert (AnchorPlan().trusted, AnchorPlan().signing) == ((0,), 0)


def test_the_page_lines_objects_carry_the_bundle_too() -> None:
    """2.8.1 puts the roots in other places (each proxy's env, base64 blobs): every one holds both anchors."""
    config = target_config("linkerd-2.8", trustAnchorRotation="bundle")
    run = run_stack("target", config, stack_references={OWN: {"identityAnchors": anchors(0, "stable")}})
    assert run.error is None, run.error
    old, new = made(run)["identity-trust-anchor"], made(run)["identity-trust-anchor-1"]
    certificate_audit.assert_only_the_real_identity(run, [old, new])
    certificate_audit.assert_issuer_secret(
        certificate_audit.cluster_secret(TARGET_CONTEXT, "linkerd-identity-issuer"), old, "linkerd.io/tls"
    )
    anchors_found = [
        f for f in certificate_audit.certificates(run.registrations) if f.common_name == "root.linkerd.cluster.local"
    ]
    # Wherever a root is, both are: no object carries the old anchor alone.
    places = {f.where for f in anchors_found}
    for place in places:
        assert {f.certificate for f in anchors_found if f.where == place} == {cert(old), cert(new)}, place
    assert len(places) > 5


@pytest.mark.parametrize(
    ("value", "previous", "protected", "let_go"),
    [
        (None, None, ["identity-trust-anchor"], []),
        ("bundle", anchors(0, "stable"), ["identity-trust-anchor-1"], ["identity-trust-anchor"]),
        ("issuers", anchors(1, "bundle"), ["identity-trust-anchor-1"], ["identity-trust-anchor"]),
        ("drop-old", anchors(1, "issuers"), ["identity-trust-anchor-1"], []),
    ],
)
def test_the_newest_anchor_is_protected_and_the_one_a_rotation_drops_is_let_go(
    value: str | None, previous: dict[str, Any] | None, protected: list[str], let_go: list[str]
) -> None:
    """No update replaces the anchor and no plain `pulumi destroy` deletes it; `drop-old` can delete the old one."""
    run = step(value, previous)
    assert run.error is None, run.error
    commands = {r.name: r for r in run.find("Command")}
    assert sorted(name for name, r in commands.items() if r.protect) == protected
    assert sorted(name for name, r in commands.items() if "trust-anchor" in name and not r.protect) == let_go
    # Issuers are renewed and re-issued by design: never protected.
    assert not any(r.protect for name, r in commands.items() if name.endswith("-issuer"))


def test_a_new_trust_domain_is_refused_before_the_anchor_it_would_replace() -> None:
    anchor = new_trust_anchor("root.linkerd.cluster.local", 24)
    previous = {"identityAnchors": anchors(0, "stable"), "trustAnchorPem": anchor.cert_pem}
    run = run_refused("target", target_config(trustDomain="mesh.example.com"), stack_references={OWN: previous})
    assert str(run.error) == (
        "config aes-linkerd2:trustDomain = 'mesh.example.com': the stack's trust anchor was made for trust domain "
        "'cluster.local': a new domain needs a new anchor on both clusters at once (every proxy restarted); destroy "
        "both stacks (`./aes-linkerd2 destroy --delete-trust-anchor`) and `up` again, or set trustDomain back"
    )
    assert run.registrations == []
    # The domain it was made for goes on as before.
    kept = run_stack("target", target_config(), stack_references={OWN: previous})
    assert kept.error is None, kept.error
