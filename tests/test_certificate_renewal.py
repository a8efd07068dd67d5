"""Certificates over time: what each stack reports, and issuers re-issued before they expire."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import pytest
from cryptography import x509

from components.linkerd_identity import issuer_generation
from support import clock
from tests import certificate_audit
from tests.conftest import run_stack, source_config, target_config, target_outputs
from tests.harness import Run

NOW = datetime.datetime(2030, 6, 1, tzinfo=datetime.UTC)
OWN = TARGET = "organization/aes-linkerd2/target"
SOURCE = "organization/aes-linkerd2/source"


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (None, 0),
        ({"generation": 2, "notAfter": stamp(NOW + datetime.timedelta(days=61))}, 2),
        ({"generation": 2, "notAfter": stamp(NOW + datetime.timedelta(days=59))}, 3),
        ({"generation": 0, "notAfter": stamp(NOW - datetime.timedelta(days=1))}, 1),
    ],
    ids=["first", "61-days-left", "59-days-left", "expired"],
)
def test_an_issuer_is_due_under_the_renewal_window(previous: dict[str, object] | None, expected: int) -> None:
    assert issuer_generation(previous, NOW, 60) == expected


def up(previous: Mapping[str, object] | None = None, preview: bool = False) -> Run:
    references = {OWN: {"identityIssuers": previous}} if previous is not None else None
    run = run_stack("target", target_config(), preview=preview, stack_references=references)
    assert run.error is None, run.error
    return run


def source_up(previous: Mapping[str, object] | None = None, preview: bool = False) -> Run:
    """The source, which renews its own issuer by the same rules, from its own last outputs."""
    references: dict[str, dict[str, object]] = {TARGET: target_outputs()}
    if previous is not None:
        references[SOURCE] = {"identityIssuers": previous}
    run = run_stack("source", source_config(), preview=preview, stack_references=references)
    assert run.error is None, run.error
    return run


def issuer_trigger(run: Run, cluster: str) -> str:
    return str(run.one("Command", f"identity-{cluster}-issuer").inputs["triggers"][1])


def test_each_stack_reports_its_certificates_and_days_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # Counted two minutes after the certificates are made: on the real clock, the second they are made in
    # and the second the days are counted in could fall either side of a whole day.
    monkeypatch.setenv(clock.CLOCK_ENV, stamp(datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)))
    run = up()
    rows = {row["name"]: row for row in run.outputs["identityCertificates"]}
    assert [(row["name"], row["role"]) for row in run.outputs["identityCertificates"]] == [
        ("trust-anchor", "anchor"),
        ("target-issuer", "issuer"),
    ]
    assert rows["trust-anchor"]["subject"] == "CN=root.linkerd.cluster.local"
    assert rows["target-issuer"]["subject"] == "CN=identity.linkerd.cluster.local"
    # Made now: the anchor ten years, the target's issuer one year.
    assert (rows["trust-anchor"]["daysLeft"], rows["target-issuer"]["daysLeft"]) == (3649, 364)
    made = run.mocks.command_stdouts["identity-target-issuer"]
    not_after = x509.load_pem_x509_certificate(made.encode()).not_valid_after_utc
    assert rows["target-issuer"]["notAfter"] == stamp(not_after)
    assert run.outputs["identityIssuers"] == {"target": {"generation": 0, "notAfter": stamp(not_after)}}
    # The source's own issuer: 90 days less, so the two are never due on the same day.
    source = source_up()
    source_rows = {row["name"]: row for row in source.outputs["identityCertificates"]}
    assert [row["name"] for row in source.outputs["identityCertificates"]] == ["trust-anchor", "source-issuer"]
    assert source_rows["source-issuer"]["daysLeft"] == 274
    assert source.outputs["identityIssuers"] == {
        "source": {"generation": 0, "notAfter": source_rows["source-issuer"]["notAfter"]}
    }


def test_a_due_issuer_is_reissued_and_one_not_due_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the day: the clock says the target's issuer has 30 days left, the source's 200."""
    monkeypatch.setenv(clock.CLOCK_ENV, stamp(NOW))
    for preview in (True, False):  # the preview shows the replacement before `up` makes it
        run = up({"target": {"generation": 0, "notAfter": stamp(NOW + datetime.timedelta(days=30))}}, preview=preview)
        assert issuer_trigger(run, "target") == "1"
        source = source_up({"source": {"generation": 4, "notAfter": stamp(NOW + datetime.timedelta(days=200))}}, preview)
        assert issuer_trigger(source, "source") == "4"
    made = run.mocks.command_stdouts["identity-target-issuer"]
    assert run.outputs["identityIssuers"]["target"]["generation"] == 1
    assert source.outputs["identityIssuers"]["source"]["generation"] == 4
    # The same anchor signs the new issuer, and it is what the cluster's issuer Secret now carries.
    anchor = x509.load_pem_x509_certificate(run.outputs["trustAnchorPem"].encode())
    x509.load_pem_x509_certificate(made.encode()).verify_directly_issued_by(anchor)
    secret = certificate_audit.cluster_secret("target-ctx", "linkerd-identity-issuer")
    assert certificate_audit.key_pair(secret).cert_pem == made
    # Days left are counted on the clock the test set.
    rows = {row["name"]: row for row in run.outputs["identityCertificates"]}
    assert rows["target-issuer"]["daysLeft"] == (x509.load_pem_x509_certificate(made.encode()).not_valid_after_utc - NOW).days


def test_the_source_renews_its_own_issuer_and_says_so_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(clock.CLOCK_ENV, stamp(NOW))
    due = stamp(NOW + datetime.timedelta(days=30))
    run = source_up({"source": {"generation": 4, "notAfter": due}}, preview=True)
    assert issuer_trigger(run, "source") == "5"
    assert f"the source issuer expires {due}, within 60 days" in caplog.text
    run = source_up({"source": {"generation": 4, "notAfter": due}})
    assert run.outputs["identityIssuers"]["source"]["generation"] == 5
    secret = certificate_audit.cluster_secret("source-ctx", "linkerd-identity-issuer")
    certificate_audit.assert_issuer_secret(secret, run.outputs["trustAnchorPem"], "kubernetes.io/tls")


def test_a_second_up_after_a_renewal_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.CLOCK_ENV, stamp(NOW))
    run = up({"target": {"generation": 1, "notAfter": stamp(NOW + datetime.timedelta(days=364))}})
    assert issuer_trigger(run, "target") == "1"
    source = source_up({"source": {"generation": 4, "notAfter": stamp(NOW + datetime.timedelta(days=200))}})
    assert issuer_trigger(source, "source") == "4"
