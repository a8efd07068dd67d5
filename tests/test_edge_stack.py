"""EdgeStack: CRDs first, then the Module with add_linkerd_headers and the rest, the Deployment meshed as first written."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.edge_stack import EdgeStack, EdgeStackArgs, prepare_object
from driver.offline import Registration
from support import manifests, upstream
from support.config_model import ClusterAccess, Tls
from support.linkerd_cli import LinkerdCli
from tests.conftest import FIXTURES, OWN_CRDS, provider_urn, real_linkerd, upstream_file
from tests.harness import Run, run_program
from tests.schemas import validate_builtin, validate_custom_resource

# The page line's are upstream's 1.14.4 release files (skipped, loudly, without); today's the project's own.
PAGE_FILES = ("emissary/aes-crds.v1.14.4.yaml", "emissary/aes.v1.14.4.yaml")
CURRENT_FILES = (OWN_CRDS, FIXTURES / "edge-stack-3.yaml")
EMISSARY_FILES = (OWN_CRDS, FIXTURES / "emissary-3.yaml")


def build(
    line: upstream.VersionLine = upstream.CURRENT,
    product: str = "edge-stack",
    *,
    add_linkerd_headers: bool = True,
    tls: Tls | None = None,
    license_key: str | None = "licence-token",
    gateway_port: int = 4143,
    preview: bool = False,
    crds_file: Path | None = None,
    manifest_file: Path | None = None,
    pod_annotations: dict[str, str] | None = None,
    restart_mark: str | None = None,
) -> Run:
    if line is upstream.PAGE:
        files = (upstream_file(PAGE_FILES[0]), upstream_file(PAGE_FILES[1]))
    else:
        files = CURRENT_FILES if product == "edge-stack" else EMISSARY_FILES
    if crds_file is not None:
        files = (crds_file, files[1])
    if manifest_file is not None:
        files = (files[0], manifest_file)
    # The page line's inject runs at `up` against the cluster: nothing runs the CLI while the program runs.
    binary = real_linkerd(line) if line.inject_offline else "linkerd"

    def program() -> None:
        provider = k8s.Provider("cluster", context="ctx")
        control_plane = k8s.core.v1.Namespace(
            "linkerd-ns", metadata={"name": "linkerd"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        EdgeStack(
            "edge-stack",
            EdgeStackArgs(
                line=line,
                product=line.edge_stack[product],
                crds_yaml=files[0].read_text(),
                manifest_yaml=files[1].read_text(),
                license_key=pulumi.Output.secret(license_key) if license_key else None,
                add_linkerd_headers=add_linkerd_headers,
                cli=LinkerdCli(binary=binary, cluster=ClusterAccess(context="ctx")),
                gateway_port=gateway_port,
                control_plane=[control_plane],
                pod_annotations=pod_annotations or {},
                tls=tls,
                restart_mark=restart_mark,
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program, preview=preview)
    assert run.error is None, run.error
    return run


def test_current_line_sets_the_option_on_the_manifests_own_module() -> None:
    run = build()
    [module] = run.find("Module")
    assert module.namespace == "ambassador" and module.object_name == "ambassador"
    assert module.inputs["spec"]["config"] == {
        "diagnostics": {"enabled": False, "allow_non_local": True},
        "add_linkerd_headers": True,
    }
    assert build(add_linkerd_headers=False).one("Module").inputs["spec"]["config"]["add_linkerd_headers"] is False


def test_page_line_adds_the_pages_module() -> None:
    run = build(upstream.PAGE, license_key=None)
    module = run.one("Module")
    assert module.type == "kubernetes:getambassador.io/v2:Module"
    assert module.inputs["metadata"] == {"name": "ambassador", "namespace": "ambassador"}
    assert module.inputs["spec"] == {"config": {"add_linkerd_headers": True}}


def test_crds_first_then_everything_else() -> None:
    run = build()
    crds = run.find("CustomResourceDefinition")
    in_file = CURRENT_FILES[0].read_text().count("kind: CustomResourceDefinition")
    assert len(crds) == in_file == 4 and all(r.name.startswith("edge-stack-crds:") for r in crds)
    installed = [r for r in run.registrations if r.name.startswith("edge-stack:")]
    assert {r.kind for r in installed} == {"Namespace", "ServiceAccount", "Service", "Deployment", "Module", "Listener", "Secret"}
    for resource in installed:
        assert all(run.depends(resource, on=crd) for crd in crds), resource.name


def test_every_object_uses_the_provider_and_the_component_as_parent() -> None:
    run = build()
    component, provider = run.one("EdgeStack"), provider_urn(run, "cluster")
    for resource in run.children_of(component):
        assert resource.provider == provider


def test_listeners_for_http_and_https_are_valid_v3alpha1() -> None:
    run = build()
    listeners = {r.object_name: r.inputs["spec"] for r in run.find("Listener")}
    assert listeners == {
        "edge-stack-http-listener": {
            "port": 8080,
            "protocol": "HTTP",
            "securityModel": "XFP",
            "hostBinding": {"namespace": {"from": "ALL"}},
        },
        "edge-stack-https-listener": {
            "port": 8443,
            "protocol": "HTTPS",
            "securityModel": "XFP",
            "hostBinding": {"namespace": {"from": "ALL"}},
        },
    }
    assert build(upstream.PAGE, license_key=None).find("Listener") == []


@pytest.mark.parametrize(
    ("line", "product"), [(upstream.CURRENT, "edge-stack"), (upstream.CURRENT, "emissary"), (upstream.PAGE, "edge-stack")]
)
def test_getambassador_objects_match_the_crd_schema(line: upstream.VersionLine, product: str) -> None:
    run = build(
        line,
        product,
        license_key="x" if product == "edge-stack" and line is upstream.CURRENT else None,
        tls=Tls(hostname="www.example.com", acme_email="ops@example.com"),
    )
    custom = [r for r in run.registrations if r.type.startswith("kubernetes:getambassador.io/")]
    assert {r.kind for r in custom} >= {"Module", "Host"}
    for resource in custom:
        validate_custom_resource(
            resource.inputs["apiVersion"], resource.kind, {k: v for k, v in resource.inputs.items() if k != "apiVersion"}
        )


def test_licence_goes_into_the_secret_edge_stack_reads_and_stays_secret() -> None:
    run = build()
    secret = run.one("Secret", "ambassador-edge-stack", "ambassador")
    assert secret.inputs["stringData"] == {"license-key": "licence-token"}
    assert secret.is_secret("stringData", "license-key")
    validate_builtin("v1", "Secret", {k: v for k, v in secret.inputs.items() if k not in ("apiVersion", "kind")}, "1.34")


def test_emissary_namespace_is_created_when_its_manifest_lacks_it() -> None:
    run = build(upstream.CURRENT, "emissary", license_key=None)
    assert run.one("Namespace", "emissary").inputs["metadata"] == {"name": "emissary"}
    assert run.one("Deployment", "emissary-ingress", "emissary")
    assert run.find("Secret") == []


def test_apiext_service_is_not_awaited_its_deployment_is() -> None:
    """What waits for the CRD manifest waits for apiext's Deployment, not 10 seconds of settled endpoints."""
    run = build(upstream.CURRENT, "emissary", license_key=None, crds_file=upstream_file("emissary/emissary-crds.v3.9.1.yaml"))
    service = run.one("Service", "emissary-apiext", "emissary-system")
    assert service.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    deployment = run.one("Deployment", "emissary-apiext", "emissary-system")
    assert "pulumi.com/skipAwait" not in (deployment.inputs["metadata"].get("annotations") or {})
    module = run.one("Module", "ambassador")
    assert run.depends(module, on=deployment) and run.depends(module, on=service)


def test_load_balancer_service_is_not_awaited() -> None:
    service = build().one("Service", "edge-stack", "ambassador")
    assert service.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert service.inputs["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": 8080}


@pytest.mark.parametrize(
    ("line", "product", "files"),
    [
        (upstream.CURRENT, "emissary", ("emissary/emissary-crds.v3.9.1.yaml", "emissary/emissary-emissaryns.v3.9.1.yaml")),
        (upstream.PAGE, "edge-stack", PAGE_FILES),
    ],
)
def test_no_service_of_edge_stacks_manifest_is_awaited_its_deployments_are(
    line: upstream.VersionLine, product: str, files: tuple[str, str]
) -> None:
    """Issue 22: a wait that guards nothing goes (Emissary's admin Service was the last step of the target's `up`).
    Upstream's own release files: their admin Services (3.9.1's apiext one too) beside the public one."""
    crds, manifest = (upstream_file(name) for name in files)
    run = build(line, product, license_key=None, crds_file=crds, manifest_file=manifest)
    services = [r for r in run.registrations if r.type == "kubernetes:core/v1:Service"]
    deployments = [r for r in run.registrations if r.type == "kubernetes:apps/v1:Deployment"]
    assert len(services) >= 3 and deployments, [r.name for r in services]
    not_awaited = {r.name: (r.inputs["metadata"].get("annotations") or {}).get("pulumi.com/skipAwait") for r in services}
    assert set(not_awaited.values()) == {"true"}, not_awaited
    for deployment in deployments:
        assert "pulumi.com/skipAwait" not in (deployment.inputs["metadata"].get("annotations") or {}), deployment.name


def direct(run: Run, resource: Registration) -> set[str]:
    """The names of what `resource` waits for itself (not through others)."""
    by_urn = {r.urn: r.name for r in run.registrations}
    return {by_urn[urn] for urn in resource.dependencies}


# What `linkerd inject` with the page's flags adds to Edge Stack 3's pod template (the real CLI's output).
INJECTED = {
    "config.linkerd.io/proxy-require-identity-inbound-ports": "4143",
    "config.linkerd.io/skip-inbound-ports": "80,443",
    "linkerd.io/inject": "enabled",
}


def test_mesh_is_the_real_inject_with_the_pages_flags_written_with_the_deployment() -> None:
    run = build(gateway_port=4143)
    [call] = [c for c in run.mocks.calls if c[0] == "inject"]
    assert call == [
        "inject",
        "--ignore-cluster",
        "--skip-inbound-ports",
        "80,443",
        "--require-identity-on-inbound-ports",
        "4143",
        "-",
    ]
    assert run.find("DeploymentPatch") == [], "no patch: the Deployment is written meshed, one rollout"
    deployment = run.one("Deployment", "edge-stack")
    manifest = next(d for d in manifests.parse(CURRENT_FILES[1].read_text()) if d.kind == "Deployment" and d.name == "edge-stack")
    own = manifest.body["spec"]["template"]["metadata"].get("annotations") or {}
    # The manifest's own annotations and exactly what inject added.
    assert deployment.inputs["spec"]["template"]["metadata"]["annotations"] == {**own, **INJECTED}
    # The rest of the template is the manifest's.
    template = {k: v for k, v in deployment.inputs["spec"]["template"].items() if k != "metadata"}
    assert template == {k: v for k, v in manifest.body["spec"]["template"].items() if k != "metadata"}
    # Its pods are meshed when created: after the proxy injector serves (here the control plane's stand-in), its
    # namespace and the CRDs; nothing else.
    crds = {r.name for r in run.registrations if r.name.startswith("edge-stack-crds:")}
    assert direct(run, deployment) == {"linkerd-ns", "edge-stack:ambassador"} | crds


def test_only_the_deployment_waits_for_the_control_plane() -> None:
    run = build()
    control_plane = run.one("Namespace", "linkerd")
    waiting = {r.name for r in run.registrations if control_plane.urn in r.dependencies}
    assert waiting == {"edge-stack:ambassador/edge-stack"}


def test_gateway_annotations_and_the_rotation_mark_are_in_the_same_write() -> None:
    run = build(pod_annotations={"config.linkerd.io/enable-gateway": "true"}, restart_mark="roots-1")
    assert run.find("DeploymentPatch") == []
    annotations = run.one("Deployment", "edge-stack").inputs["spec"]["template"]["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if "linkerd.io/" in k} == {
        **INJECTED,
        "config.linkerd.io/enable-gateway": "true",
    }
    assert annotations[upstream.TRUST_ANCHORS_ANNOTATION] == "roots-1"


def test_identity_port_follows_the_gateway_port() -> None:
    deployment = build(gateway_port=4999).one("Deployment", "edge-stack")
    assert (
        deployment.inputs["spec"]["template"]["metadata"]["annotations"]["config.linkerd.io/proxy-require-identity-inbound-ports"]
        == "4999"
    )


@pytest.mark.parametrize("preview", [False, True])
def test_page_line_injects_against_the_live_control_plane_at_up(preview: bool) -> None:
    """2.8's inject reads the control plane's config: the page's flags, asked of the cluster by a Command, whose
    output the Deployment is then written with."""
    run = build(upstream.PAGE, license_key=None, preview=preview)
    assert [c for c in run.mocks.calls if c[:1] == ["inject"]] == [], "nothing injects while the program runs"
    inject = run.one("Command", "edge-stack-linkerd-inject-render")
    assert inject.inputs["create"] == (
        "linkerd --context ctx inject --skip-inbound-ports 80,443 --require-identity-on-inbound-ports 4143 -"
    )
    deployment = run.one("Deployment", "ambassador", "ambassador")
    manifest = next(
        d for d in manifests.parse(upstream_file(PAGE_FILES[1]).read_text()) if d.kind == "Deployment" and d.name == "ambassador"
    )
    assert json.loads(inject.inputs["stdin"]) == manifest.body
    assert inject.inputs["logging"] == "stderr"
    assert direct(run, inject) == {"linkerd-ns"}
    assert run.find("DeploymentPatch") == []
    assert direct(run, deployment) >= {"linkerd-ns", "edge-stack-linkerd-inject-render"}


def test_tls_with_a_certificate_from_config() -> None:
    tls = Tls(hostname="www.example.com", certificate=pulumi.Output.secret("CERT"), private_key=pulumi.Output.secret("KEY"))
    run = build(tls=tls)
    secret = run.one("Secret", "www-example-com-tls")
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"] == {"tls.crt": "CERT", "tls.key": "KEY"}
    assert secret.is_secret("stringData", "tls.key")
    host = run.one("Host", "tls-host")
    assert host.inputs["spec"] == {
        "hostname": "www.example.com",
        "tlsSecret": {"name": "www-example-com-tls"},
        "requestPolicy": {"insecure": {"action": "Redirect"}},
        "acmeProvider": {"authority": "none"},
    }


def test_tls_with_acme() -> None:
    host = build(tls=Tls(hostname="www.example.com", acme_email="ops@example.com")).one("Host", "tls-host")
    assert host.inputs["spec"]["acmeProvider"] == {"email": "ops@example.com"}


def test_service_declares_the_port_names_the_stack_gives_it() -> None:
    def program() -> None:
        EdgeStack(
            "edge-stack",
            EdgeStackArgs(
                line=upstream.CURRENT,
                product=upstream.CURRENT.edge_stack["emissary"],
                crds_yaml=EMISSARY_FILES[0].read_text(),
                manifest_yaml=EMISSARY_FILES[1].read_text(),
                license_key=None,
                add_linkerd_headers=True,
                cli=LinkerdCli(binary=real_linkerd(), cluster=ClusterAccess(context="ctx")),
                gateway_port=4143,
                control_plane=[],
                service_port_names={80: "mc-probe"},
            ),
        )

    run = run_program(program)
    assert run.error is None, run.error
    service = run.one("Service", "emissary-ingress", "emissary")
    assert [(p["name"], p["port"]) for p in service.inputs["spec"]["ports"]] == [("mc-probe", 80), ("https", 443)]
    assert build().one("Service", "edge-stack").inputs["spec"]["ports"][0]["name"] == "http"


def test_aggregated_roles_leave_their_rules_to_the_aggregation_controller() -> None:
    """Emissary's release manifest aggregates its roles; applying their `rules: []` conflicted at the next up."""
    product = upstream.CURRENT.edge_stack["emissary"]
    bodies = [o.body for o in manifests.parse(upstream_file("emissary/emissary-emissaryns.v3.9.1.yaml").read_text())]
    aggregated = [b for b in bodies if b["kind"] == "ClusterRole" and "aggregationRule" in b]
    assert len(aggregated) >= 2 and all("rules" in b for b in aggregated)
    for body in aggregated:
        prepared = prepare_object(body, product, {})
        assert "rules" not in prepared and prepared["aggregationRule"] == body["aggregationRule"]
    plain = next(b for b in bodies if b["kind"] == "ClusterRole" and "aggregationRule" not in b)
    assert prepare_object(plain, product, {})["rules"] == plain["rules"]
