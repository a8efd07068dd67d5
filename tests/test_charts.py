"""Emissary 4.1.0 from its two charts, rendered by the REAL helm (v4.3.2) from the REAL charts of the v4.1.0 tag.

Skipped, loudly and by name, without either (tests/conftest.py: emissary_charts, real_helm).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import charts, helm, manifests, upstream
from support.errors import ConfigError
from support.lockfile import LockFile
from tests.conftest import emissary_charts, real_helm, run_refused, run_stack, target_config, upstream_file
from tests.harness import Run
from tests.schemas import _crd_schemas, _validate

EMISSARY = upstream.CURRENT.edge_stack["emissary"]
CRD_NAMES = sorted(
    f"{plural}.getambassador.io"
    for plural in (
        "authservices",
        "consulresolvers",
        "devportals",
        "hosts",
        "kubernetesendpointresolvers",
        "kubernetesserviceresolvers",
        "listeners",
        "logservices",
        "mappings",
        "modules",
        "ratelimitservices",
        "tcpmappings",
        "tlscontexts",
        "tracingservices",
    )
)
# What the main chart renders with the page's values: no Namespace (the program's), no IngressClass, no
# Listeners (the program's), no apiext reader Role (waitForApiext off).
APP_OBJECTS = [
    "ClusterRole/emissary-ingress",
    "ClusterRole/emissary-ingress-crd",
    "ClusterRole/emissary-ingress-watch",
    "ClusterRoleBinding/emissary-ingress",
    "Deployment/emissary/emissary-ingress",
    "Module/emissary/ambassador",
    "Service/emissary/emissary-ingress",
    "Service/emissary/emissary-ingress-admin",
    "ServiceAccount/emissary/emissary-ingress",
]


def render(add_linkerd_headers: bool = True, **locations: str) -> tuple[str, str]:
    crds, app = emissary_charts()
    return charts.render_release(
        EMISSARY,
        "4.1.0",
        crds=locations.get("crds", str(crds)),
        manifest=locations.get("manifest", str(app)),
        helm_binary=real_helm(),
        add_linkerd_headers=add_linkerd_headers,
    )


def test_the_charts_render_v3alpha1_crds_alone_and_no_apiext() -> None:
    crds_yaml, app_yaml = render()
    crds = manifests.parse(crds_yaml)
    assert sorted(o.key for o in crds) == [f"CustomResourceDefinition/{name}" for name in CRD_NAMES]
    for crd in crds:
        spec = crd.body["spec"]
        assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [("v3alpha1", True, True)], crd.name
        assert "conversion" not in spec, crd.name
        assert crd.body["metadata"]["labels"]["emissary-ingress.dev/control-plane-ns"] == "emissary-system"
    assert sorted(o.key for o in manifests.parse(app_yaml)) == APP_OBJECTS
    assert "emissary-apiext" not in crds_yaml + app_yaml and "AMBASSADOR_APIEXT" not in app_yaml


def test_the_charts_module_carries_add_linkerd_headers_and_the_service_the_gateway_ports() -> None:
    objects = {o.key: o.body for o in manifests.parse(render()[1])}
    assert objects["Module/emissary/ambassador"]["spec"] == {
        "config": {"add_linkerd_headers": True, "diagnostics": {"allow_non_local": True, "enabled": False}, "enabled": True}
    }
    off = {o.key: o.body for o in manifests.parse(render(add_linkerd_headers=False)[1])}
    assert off["Module/emissary/ambassador"]["spec"]["config"]["add_linkerd_headers"] is False
    service = objects["Service/emissary/emissary-ingress"]["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    pod = objects["Deployment/emissary/emissary-ingress"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == EMISSARY.service_account
    assert [c["image"] for c in pod["containers"]] == ["ghcr.io/emissary-ingress/emissary:4.1.0"]


@pytest.fixture(scope="module")
def target() -> Run:
    run = run_stack(
        "target", target_config(edgeStackProduct="emissary-4", tlsHostname="www.example.com", tlsAcmeEmail="ops@example.com")
    )
    assert run.error is None, run.error
    return run


def test_every_chart_object_is_a_planned_resource_of_the_stack(target: Run) -> None:
    crds_yaml = render()[0]
    for obj in manifests.parse(crds_yaml):
        [crd] = [r for r in target.find(obj.kind, obj.name) if r.name.startswith("edge-stack-crds:")]
        assert crd.inputs["spec"]["versions"][0]["name"] == "v3alpha1"
    edge_stack = {
        "/".join(p for p in (r.kind, r.namespace, r.object_name) if p)
        for r in target.registrations
        if r.name.startswith("edge-stack:")
    }
    # The chart's objects, and the program's own: the namespace and the two Listeners.
    assert edge_stack == {
        *APP_OBJECTS,
        "Namespace/emissary",
        "Listener/emissary/emissary-ingress-http-listener",
        "Listener/emissary/emissary-ingress-https-listener",
        "Host/emissary/tls-host",
    }
    assert target.find("Deployment", "emissary-apiext") == [] and target.find("Service", "emissary-apiext") == []


def test_one_module_with_add_linkerd_headers(target: Run) -> None:
    [module] = target.find("Module")
    assert (module.namespace, module.object_name) == ("emissary", "ambassador")
    assert module.inputs["spec"]["config"]["add_linkerd_headers"] is True
    assert yaml.safe_dump(module.inputs).count("add_linkerd_headers") == 1


def test_crds_come_before_everything_that_uses_them(target: Run) -> None:
    crds = [r for r in target.registrations if r.name.startswith("edge-stack-crds:")]
    assert len(crds) == len(CRD_NAMES)
    users = [r for r in target.registrations if r.type.startswith("kubernetes:getambassador.io/")]
    assert {r.kind for r in users} == {"Module", "Listener", "Host", "Mapping"}
    for resource in [*users, *(r for r in target.registrations if r.name.startswith("edge-stack:"))]:
        assert all(target.depends(resource, on=crd) for crd in crds), resource.name


def test_every_getambassador_object_validates_against_the_charts_own_crds(target: Run, tmp_path: Path) -> None:
    crds_file = tmp_path / "emissary-crds-4.1.0.yaml"
    crds_file.write_text(render()[0])
    assert {api for api, _ in _crd_schemas(crds_file)} == {"getambassador.io/v3alpha1"}
    custom = [r for r in target.registrations if r.type.startswith("kubernetes:getambassador.io/")]
    for resource in custom:
        _validate(
            crds_file,
            resource.inputs["apiVersion"],
            resource.kind,
            {k: v for k, v in resource.inputs.items() if k != "apiVersion"},
        )
    with pytest.raises(Exception, match="Additional properties"):
        _validate(crds_file, "getambassador.io/v3alpha1", "Module", {"spec": {"config": {}, "misspelt": True}})


def gateway_objects(run: Run) -> dict[str, Any]:
    service = run.one("Service", "emissary-ingress", "emissary")
    return {
        "service ports": service.inputs["spec"]["ports"],
        "service patch": run.one("ServicePatch", "multicluster-target-gateway-service").inputs,
        # Written with the Deployment: what `linkerd inject` added, and the gateway's enable-gateway (the chart's own
        # `checksum/config` aside).
        "pod annotations": {
            key: value
            for key, value in run.one("Deployment", "emissary-ingress", "emissary")
            .inputs["spec"]["template"]["metadata"]["annotations"]
            .items()
            if "linkerd.io/" in key
        },
    }


def test_the_gateway_patches_are_those_of_3_9_1(target: Run) -> None:
    """The chart's Service and Deployment are found and patched exactly as 3.9.1's release manifest's are."""
    old = run_stack("target", target_config(edgeStackProduct="emissary"))
    assert old.error is None, old.error
    new, before = gateway_objects(target), gateway_objects(old)
    assert new == before
    assert new["service patch"]["spec"]["ports"] == [
        {"name": "mc-probe", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        {"name": "mc-gateway", "port": 4143, "protocol": "TCP"},
    ]
    assert new["service patch"]["metadata"]["name"] == "emissary-ingress"
    assert new["service patch"]["metadata"]["annotations"]["mirror.linkerd.io/gateway-identity"] == (
        "emissary-ingress.emissary.serviceaccount.identity.linkerd.cluster.local"
    )
    assert new["service ports"][0]["name"] == "mc-probe"
    assert new["pod annotations"] == {
        "config.linkerd.io/enable-gateway": "true",
        "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
        "config.linkerd.io/skip-inbound-ports": "80,443",
        "linkerd.io/inject": "enabled",
    }
    assert target.find("DeploymentPatch") == []


def test_a_packaged_chart_and_a_cached_pull_pinned_by_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`helm package` makes what `helm pull` leaves: read from the cache only while its sha256 is the lock's."""
    crds, app = emissary_charts()
    binary = real_helm()
    for chart in (crds, app):
        subprocess.run([binary, "package", str(chart), "--destination", str(tmp_path)], check=True, capture_output=True)
    packaged = render(manifest=str(tmp_path / "emissary-ingress-4.1.0.tgz"))
    assert packaged == render()
    # A pulled chart in the cache, its digest recorded at its first pull.
    cache = tmp_path / "reference"
    (cache / "charts").mkdir(parents=True)
    shutil.copy(tmp_path / "emissary-ingress-4.1.0.tgz", cache / "charts" / "emissary-ingress-4.1.0.tgz")
    lock = LockFile(tmp_path / "aes-linkerd2.lock")
    lock.record(
        "oci://ghcr.io/emissary-ingress/emissary-ingress:4.1.0", helm_sha(cache / "charts" / "emissary-ingress-4.1.0.tgz")
    )
    chart_cache = charts.ChartCache(binary, lock=lock, reference=cache)
    reference = EMISSARY.manifest_location("4.1.0")
    assert reference == "oci://ghcr.io/emissary-ingress/emissary-ingress"
    assert chart_cache.chart(EMISSARY.charts["4.1.0"].app, reference, "4.1.0", fetch=False).state == "have"
    pulled = charts.render_release(
        EMISSARY, "4.1.0", crds=str(crds), manifest=reference, helm_binary=binary, add_linkerd_headers=True, cache=chart_cache
    )
    assert pulled == render()
    # Changed in the cache: no longer the pinned chart; the re-pull cannot reach ghcr.io here, and says what to do.
    with (cache / "charts" / "emissary-ingress-4.1.0.tgz").open("ab") as archive:
        archive.write(b"\0")
    stale = chart_cache.chart(EMISSARY.charts["4.1.0"].app, reference, "4.1.0", fetch=False)
    assert stale.state == "missing" and "is not the one" in stale.note
    with pytest.raises(ConfigError) as raised:
        charts.render_release(
            EMISSARY, "4.1.0", crds=str(crds), manifest=reference, helm_binary=binary, add_linkerd_headers=True, cache=chart_cache
        )
    assert raised.value.key == "edgeStackManifest" and "run ./aes-linkerd2 setup where the network reaches it" in str(
        raised.value
    )


def helm_sha(path: Path) -> str:
    from support.downloads import file_sha256

    return file_sha256(path)


def test_the_crd_check_refuses_3_9_1s_crds_with_apiext_and_conversion() -> None:
    item = charts.release_inputs(EMISSARY, "4.1.0", "crds", "app")[0]
    with pytest.raises(ConfigError) as raised:
        charts.check_crds(item, upstream_file("emissary/emissary-crds.v3.9.1.yaml").read_text())
    assert raised.value.key == "edgeStackCrds"
    assert "must render CRDs only" in str(raised.value) or "not v3alpha1 alone" in str(raised.value)


def broken_chart(tmp_path: Path) -> Path:
    """A copy of the main chart whose template does not parse: the real helm fails on it."""
    copy = tmp_path / "emissary-ingress"
    shutil.copytree(emissary_charts()[1], copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (copy / "templates" / "module.yaml").write_text("{{ .Values.module | nosuchfunction }}\n")
    return copy


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"helm": "/nonexistent/helm"}, "helm", "does not run as helm"),
        ({"edgeStackCrds": "{app}"}, "edgeStackCrds", "is chart emissary-ingress 4.1.0, not emissary-crds-chart 4.1.0"),
        ({"edgeStackManifest": "{crds}"}, "edgeStackManifest", "is chart emissary-crds-chart 4.1.0, not emissary-ingress 4.1.0"),
        ({"edgeStackManifest": "{crds}/templates"}, "edgeStackManifest", "is a directory without Chart.yaml"),
        ({"edgeStackCrds": "{crds}/values.yaml"}, "edgeStackCrds", "must be a chart directory or a chart archive (.tgz)"),
        ({"edgeStackCrds": "{tmp}/absent"}, "edgeStackCrds", "cannot be read (No such file or directory)"),
        ({"edgeStackManifest": "{broken}"}, "edgeStackManifest", "helm could not render it (`helm template` failed:"),
        ({"edgeStackManifest": "https://example.com/chart.tgz"}, "edgeStackManifest", "names a chart: an oci:// reference"),
        ({"edgeStackCrds": "oci://ghcr.io/emissary-ingress/emissary-crds-chart:4.1.0"}, "edgeStackCrds", "without a tag"),
    ],
)
def test_bad_charts_and_a_bad_helm_are_refused_before_any_registration(
    tmp_path: Path, change: dict[str, str], key: str, reason: str
) -> None:
    crds, app = emissary_charts()
    places = {"crds": str(crds), "app": str(app), "tmp": str(tmp_path)}
    if "{broken}" in "".join(change.values()):
        places["broken"] = str(broken_chart(tmp_path))
    config = target_config(edgeStackProduct="emissary-4", **{k: v.format(**places) for k, v in change.items()})
    run = run_refused("target", config)
    assert isinstance(run.error, ConfigError) and run.error.key == key, run.error
    assert reason in str(run.error), str(run.error)


def test_no_helm_anywhere_is_refused_naming_the_key_and_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = target_config(edgeStackProduct="emissary-4")
    del config["helm"]
    monkeypatch.setenv("AES_LINKERD2_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert helm.find_helm() is None
    run = run_refused("target", config)
    assert isinstance(run.error, ConfigError) and run.error.key == "helm"
    assert str(run.error).startswith("config aes-linkerd2:helm = None: no helm v4.3.2 found (config aes-linkerd2:helm, ")
    assert "./aes-linkerd2 setup fetches it): emissary 4.1.0 installs from its charts" in str(run.error)


def test_a_helm_of_another_release_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "helm"
    other.write_text("#!/bin/sh\necho v3.19.0\n")  # what a helm 3 says; no helm 3 is built here
    other.chmod(0o755)
    run = run_refused("target", target_config(edgeStackProduct="emissary-4", helm=str(other)))
    assert isinstance(run.error, ConfigError) and run.error.key == "helm"
    assert "is helm 'v3.19.0', not v4.3.2" in str(run.error)
