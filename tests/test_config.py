"""Config: read once into a typed model; every bad value stops the program before any resource."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import clusters, config, config_model, config_source, config_sources, errors, upstream
from tests.conftest import ROOT, TARGET_CONTEXT, run_refused, run_stack, source_config, target_config
from tests.fake_linkerd import CURRENT_VERSION, FakeLinkerd


def load(values: dict[str, Any], stack: str = "target", secrets: dict[str, str] | None = None) -> config_model.StackConfig:
    """config.load() inside a mocked program, returning the model or raising its error."""
    holder: dict[str, Any] = {}

    def program() -> None:
        holder["config"] = config.load()

    from tests.harness import run_program

    run = run_program(program, stack=stack, config=values, secret_config=secrets)
    if run.error is not None:
        raise run.error
    loaded: config_model.StackConfig = holder["config"]
    return loaded


def test_target_defaults_come_from_the_version_line() -> None:
    cfg = load(target_config(), secrets={"edgeStackLicenseKey": "token"})
    assert isinstance(cfg.role, config_model.TargetRole) and cfg.is_target
    assert cfg.line is upstream.CURRENT
    assert cfg.linkerd.version == "edge-26.8.3"
    assert cfg.edge_stack.product.name == "edge-stack" and cfg.edge_stack.version == "3.12.12"
    assert cfg.cluster.name == "target" and cfg.cluster.context == "target-ctx"
    assert cfg.gateway == config_model.GatewaySettings(
        port=4143, probe_port=80, probe_target_port=8080, probe_path="/-/ambassador/ready", probe_period_seconds=3
    )
    assert cfg.workloads == config_model.WorkloadSettings(
        meshed_namespaces=("default",),
        existing_namespaces=frozenset({"default"}),
        qotm=True,
        qotm_namespace="default",
        smoke_test_url=None,
    )
    assert cfg.role.exported_services == (
        config_model.ExportedService("default", "qotm-linkerd2", config_model.ExportMode.GATEWAY),
    )
    assert cfg.linkerd.ha is True and cfg.edge_stack.add_linkerd_headers is True


def test_source_defaults() -> None:
    cfg = load(source_config(), stack="source", secrets={"edgeStackLicenseKey": "token"})
    assert isinstance(cfg.role, config_model.SourceRole) and not cfg.is_target
    assert cfg.workloads.qotm is False
    assert cfg.role.target.name == "target"
    assert cfg.role.target.context == TARGET_CONTEXT
    assert cfg.role.verify is True


def test_each_export_takes_its_mode_gateway_unless_said() -> None:
    cfg = load(
        target_config(
            meshedNamespaces=["default", "shop"],
            exportedServices=[
                "default/qotm-linkerd2",
                {"shop/cart": "remote-discovery"},
                {"shop/api": "federated"},
                {"shop/web": "gateway"},
            ],
        ),
        secrets={"edgeStackLicenseKey": "token"},
    )
    assert isinstance(cfg.role, config_model.TargetRole)
    mode = config_model.ExportMode
    assert cfg.role.exported_services == (
        config_model.ExportedService("default", "qotm-linkerd2", mode.GATEWAY),
        config_model.ExportedService("shop", "cart", mode.REMOTE_DISCOVERY),
        config_model.ExportedService("shop", "api", mode.FEDERATED),
        config_model.ExportedService("shop", "web", mode.GATEWAY),
    )
    # The page's line keeps its one mode, said or not.
    page = load(target_config("linkerd-2.8", exportedServices=["default/qotm-linkerd2", {"default/api": "gateway"}]))
    assert isinstance(page.role, config_model.TargetRole)
    assert [s.mode for s in page.role.exported_services] == [mode.GATEWAY, mode.GATEWAY]


def test_the_source_says_whether_its_network_is_flat() -> None:
    secrets = {"edgeStackLicenseKey": "token"}
    unsaid = load(source_config(), stack="source", secrets=secrets)
    flat = load(source_config(flatNetwork="true"), stack="source", secrets=secrets)
    assert isinstance(unsaid.role, config_model.SourceRole) and isinstance(flat.role, config_model.SourceRole)
    assert (unsaid.role.flat_network, flat.role.flat_network) == (False, True)
    # Pulumi.yaml's default reaches the target as "false": as good as unset there.
    target = load(target_config(flatNetwork="false"), secrets=secrets)
    assert target.is_target


def test_official_manifest_urls_are_pinned_to_the_version() -> None:
    values = {"role": "target", "context": TARGET_CONTEXT, "gatewayHostname": "gw.example.com"}
    # Today's default: Emissary 4.1.0, from its two charts on ghcr.io (no release YAML exists).
    latest = load(values)
    assert (latest.edge_stack.product.name, latest.edge_stack.version, latest.edge_stack.helm) == ("emissary", "4.1.0", None)
    assert latest.edge_stack.crds == "oci://ghcr.io/emissary-ingress/emissary-crds-chart"
    assert latest.edge_stack.manifest == "oci://ghcr.io/emissary-ingress/emissary-ingress"
    cfg = load({**values, "edgeStackProduct": "emissary", "edgeStackVersion": "3.9.1"})
    assert cfg.edge_stack.crds == "https://app.getambassador.io/yaml/emissary/3.9.1/emissary-crds.yaml"
    assert cfg.edge_stack.manifest == "https://app.getambassador.io/yaml/emissary/3.9.1/emissary-emissaryns.yaml"
    page = load({"role": "target", "context": TARGET_CONTEXT, "gatewayHostname": "gw.example.com", "versionLine": "linkerd-2.8"})
    assert page.edge_stack.manifest == "https://app.getambassador.io/yaml/ambassador-docs/1.14.4/aes.yaml"


# (change to a valid target config, the key named, the value shown, the reason given)
BAD_INPUT = [
    ({"role": None}, "role", None, "is required"),
    ({"role": "gateway"}, "role", "gateway", "is not known; use one of: source, target"),
    ({"context": None}, "context", None, "is required"),
    ({"context": "nowhere"}, "context", "nowhere", "is not a context of the kubeconfig (it has: target-ctx, source-ctx)"),
    ({"versionLine": "2019"}, "versionLine", "2019", "is not known; use one of: linkerd-2.8, current"),
    ({"versionLine": "page"}, "versionLine", "page", "was renamed 'linkerd-2.8': set that"),
    ({"linkerdVersion": "edge-20.1.1"}, "linkerdVersion", "edge-20.1.1", "is not known; use one of: edge-26.8.3"),
    ({"edgeStackVersion": "2.0.0"}, "edgeStackVersion", "2.0.0", "is not known; use one of: 3.12.12"),
    ({"edgeStackProduct": "nginx"}, "edgeStackProduct", "nginx", "is not known; use one of: edge-stack, emissary"),
    ({"gatewayPort": "0"}, "gatewayPort", 0, "must be a port between 1 and 65535"),
    ({"probePort": "70000"}, "probePort", 70000, "must be a port between 1 and 65535"),
    ({"probeTargetPort": "http"}, "probeTargetPort", "http", "must be an integer"),
    ({"clusterName": "Target_1"}, "clusterName", "Target_1", "must be a DNS-1123 label"),
    ({"meshedNamespaces": ["Default"]}, "meshedNamespaces", "Default", "must be a DNS-1123 label"),
    ({"meshedNamespaces": "default"}, "meshedNamespaces", "default", "must be a list of strings"),
    ({"meshedNamespaces": ["a", "a"]}, "meshedNamespaces", ["a", "a"], "lists a namespace twice"),
    ({"probePath": "-/ambassador/ready"}, "probePath", "-/ambassador/ready", "must start with '/'"),
    ({"probePeriodSeconds": "0"}, "probePeriodSeconds", 0, "must be between 1 and 3600 (an hour)"),
    ({"exportedServices": ["qotm-linkerd2"]}, "exportedServices", "qotm-linkerd2", "each entry must be <namespace>/<service>"),
    ({"exportedServices": ["default/Qotm"]}, "exportedServices", "Qotm", "must be a DNS-1123 label"),
    ({"gatewayHostname": None}, "gatewayHostname", None, "is required"),
    ({"gatewayHostname": "gw example"}, "gatewayHostname", "gw example", "must be a DNS name"),
    (
        {"kubernetesVersion": "1.29"},
        "kubernetesVersion",
        "1.29",
        "version line 'current' cannot install on it: needs Kubernetes 1.31 or newer",
    ),
    ({"kubernetesVersion": "latest"}, "kubernetesVersion", "latest", "must look like 1.34 or v1.34.2"),
    ({"linkerdHa": "yes"}, "linkerdHa", "yes", "must be true or false"),
    ({"qotmNamespace": "demo"}, "qotmNamespace", "demo", "must be one of meshedNamespaces (default) so QOTM is meshed"),
    ({"smokeTestUrl": "edge.example.com"}, "smokeTestUrl", "edge.example.com", "must be http(s)://<host>[:port] of Edge Stack"),
    ({"trustDomain": "Cluster Local"}, "trustDomain", "Cluster Local", "must be a DNS name"),
    ({"tlsAcmeEmail": "ops@example.com"}, "tlsHostname", None, "is required when tlsAcmeEmail is set"),
    (
        {"tlsHostname": "www.example.com"},
        "tlsAcmeEmail",
        None,
        "is required when tlsHostname is set without tlsCertificate/tlsPrivateKey",
    ),
    ({"tlsHostname": "www.example.com", "tlsAcmeEmail": "ops"}, "tlsAcmeEmail", "ops", "must be an email address"),
]


@pytest.mark.parametrize(("change", "key", "shown", "reason"), BAD_INPUT, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_INPUT)])
def test_bad_input_names_key_and_value_and_registers_nothing(change: dict[str, Any], key: str, shown: Any, reason: str) -> None:
    values = target_config(**{k: v for k, v in change.items() if v is not None})
    for k, v in change.items():
        if v is None:
            values.pop(k, None)
    run = run_refused("target", values)
    assert isinstance(run.error, errors.ConfigError), run.error
    assert run.error.key == key
    assert str(run.error).startswith(f"config aes-linkerd2:{key} = {shown!r}: {reason}"), str(run.error)


def test_page_line_refuses_a_cluster_that_no_longer_serves_its_crds() -> None:
    run = run_stack("target", target_config("linkerd-2.8", kubernetesVersion="v1.22.0"))
    assert isinstance(run.error, errors.ConfigError)
    assert str(run.error) == (
        "config aes-linkerd2:kubernetesVersion = 'v1.22.0': version line 'linkerd-2.8' cannot install on it: "
        "needs Kubernetes 1.21 or older"
    )
    assert run.registrations == []
    assert run_stack("target", target_config("linkerd-2.8", kubernetesVersion="1.21")).error is None


def test_edge_stack_needs_its_licence_and_emissary_refuses_one() -> None:
    run = run_refused("target", target_config(), secret_config={})
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "edgeStackLicenseKey"
    assert "needs a licence token" in str(run.error)
    run = run_refused("target", target_config(edgeStackProduct="emissary"), secret_config={"edgeStackLicenseKey": "x"})
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "edgeStackLicenseKey"
    assert "takes no licence key" in str(run.error) and "'x'" not in str(run.error)


def test_source_needs_a_second_cluster() -> None:
    run = run_refused("source", source_config(targetContext="source-ctx"))
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "targetContext"
    assert "is the same context as `context`" in str(run.error)
    missing = source_config()
    del missing["targetStack"]
    run = run_refused("source", missing)
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "targetStack"


def test_tls_certificate_and_key_come_together() -> None:
    run = run_refused(
        "target",
        target_config(tlsHostname="www.example.com"),
        secret_config={"edgeStackLicenseKey": "x", "tlsCertificate": "CERT"},
    )
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "tlsPrivateKey"


def test_unreachable_cluster_is_named(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    closed_port = listener.getsockname()[1]
    listener.close()
    document = yaml.safe_load(kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{closed_port}"
    kubeconfig.write_text(yaml.safe_dump(document))
    run = run_refused("target", target_config())
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "context"
    assert f"its API server https://127.0.0.1:{closed_port} is unreachable" in str(run.error)


def test_missing_or_wrong_linkerd_cli_stops_before_any_resource() -> None:
    # A CLI that is not there: the program runs the path it was given (no stand-in answers for it).
    run = run_stack("target", target_config(linkerdCli="/opt/no/linkerd"), linkerd=FakeLinkerd(answers_all=False))
    assert "the linkerd CLI `/opt/no/linkerd` cannot run" in str(run.error)
    assert run.mocks.commands == ["/opt/no/linkerd version --client --short"]
    assert run.registrations == []
    run = run_stack("target", target_config(), linkerd=FakeLinkerd("edge-25.1.1"))
    assert str(run.error).startswith(
        "the linkerd CLI `linkerd` is 'edge-25.1.1', but this stack pins linkerdVersion 'edge-26.8.3'"
    )
    assert run.registrations == []
    assert upstream.CURRENT.linkerd_versions[0] == CURRENT_VERSION


def test_an_unset_linkerd_cli_is_the_one_of_the_pinned_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "linkerd-by-env"
    named.write_text("#!/bin/sh\necho edge-26.8.3\n")
    named.chmod(0o755)
    monkeypatch.setenv("AES_LINKERD2_LINKERD_EDGE_26_8_3", str(named))
    assert load(target_config(), secrets={"edgeStackLicenseKey": "t"}).linkerd.cli == str(named)
    # A CLI of another release is never picked; `linkerd` is then left for the version check to refuse.
    named.write_text("#!/bin/sh\necho edge-25.1.1\n")
    monkeypatch.setenv("AES_LINKERD2_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert load(target_config(), secrets={"edgeStackLicenseKey": "t"}).linkerd.cli == "linkerd"


def test_pulumi_yaml_declares_the_programs_defaults() -> None:
    """Pulumi.yaml's defaults are what the CLI passes; they must say what the program would assume."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    cfg = load(target_config(), secrets={"edgeStackLicenseKey": "token"})
    expected = {
        "versionLine": upstream.DEFAULT_LINE,
        "linkerdHa": cfg.linkerd.ha,
        "trustDomain": cfg.linkerd.trust_domain,
        "addLinkerdHeaders": cfg.edge_stack.add_linkerd_headers,
        "gatewayPort": cfg.gateway.port,
        "probePort": cfg.gateway.probe_port,
        "probeTargetPort": cfg.gateway.probe_target_port,
        "probePath": cfg.gateway.probe_path,
        "probePeriodSeconds": cfg.gateway.probe_period_seconds,
        "meshedNamespaces": list(cfg.workloads.meshed_namespaces),
        "existingNamespaces": sorted(cfg.workloads.existing_namespaces),
        "linkerdCli": "",  # looked up by release: see the next test
        "kubectl": cfg.kubectl,
        "verify": True,
    }
    assert {key: project[key]["default"] for key in expected} == expected
    assert "default" not in project["role"] and "default" not in project["context"]
    # Every key the program reads is declared or documented as a secret / role-dependent one.
    # The parser: the keys both roles read, and each role's own.
    source = "".join((ROOT / "support" / f"{name}.py").read_text() for name in ("config", "config_target", "config_source"))
    undeclared = {"edgeStackLicenseKey", "tlsCertificate", "tlsPrivateKey", "qotm"}
    for key in project:
        assert f'"{key}"' in source, f"Pulumi.yaml declares {key}, which the program never reads"
    for key in undeclared:
        assert key not in project


def test_committed_stacks_use_the_current_line() -> None:
    for stack in ("target", "source"):
        values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert values["aes-linkerd2:role"] == stack
        assert values["aes-linkerd2:versionLine"] == "current"


def test_unreadable_manifest_names_its_key() -> None:
    run = run_stack("target", target_config(edgeStackManifest="/nowhere/aes.yaml"))
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "edgeStackManifest"
    assert str(run.error).startswith("config aes-linkerd2:edgeStackManifest = '/nowhere/aes.yaml': cannot be read (")
    assert run.registrations == []


@pytest.mark.parametrize(
    "url", ["http://203.0.113.7", "https://edge.example.com/", "http://edge.example.com:8080", "http://[2001:db8::1]:80"]
)
def test_strict_checks_still_take_every_good_value(url: str) -> None:
    """The bad-input table's rules refuse nothing a real stack needs."""
    cfg = load(
        target_config(
            smokeTestUrl=url,
            meshedNamespaces=["demo", "team-a"],  # `default`, Pulumi.yaml's existingNamespaces, may stay listed
            qotmNamespace="demo",
            exportedServices=["demo/qotm-linkerd2", "team-a/api"],
            trustDomain="prod.example.org",
            tlsHostname="www.example.com",
            tlsAcmeEmail="ops+acme@example.com",
        ),
        secrets={"edgeStackLicenseKey": "t"},
    )
    assert cfg.workloads.smoke_test_url == url and cfg.workloads.meshed_namespaces == ("demo", "team-a")
    source = load(
        source_config(gatewayAddresses=["192.0.2.10", "2001:db8::2", "gw.target.example.com"], targetClusterName="east"),
        stack="source",
        secrets={"edgeStackLicenseKey": "t"},
    )
    assert isinstance(source.role, config_model.SourceRole)
    assert source.role.gateway_addresses == ("192.0.2.10", "2001:db8::2", "gw.target.example.com")


def test_a_typo_is_refused_with_the_nearest_key() -> None:
    run = run_refused("target", {**target_config(), "probePeriod": "5"})
    assert isinstance(run.error, errors.ConfigError) and run.error.key == "probePeriod"
    assert (
        str(run.error) == "config aes-linkerd2:probePeriod = '5': is not a key of aes-linkerd2; did you mean probePeriodSeconds?"
    )
    secret = run_refused("target", target_config(), secret_config={"edgeStackLicenceKey": "token-value"})
    assert isinstance(secret.error, errors.ConfigError) and "token-value" not in str(secret.error)
    assert str(secret.error).startswith("config aes-linkerd2:edgeStackLicenceKey = '[secret]': is not a key")
    assert "did you mean edgeStackLicenseKey?" in str(secret.error)


def test_a_file_that_is_no_manifest_is_refused_without_its_content() -> None:
    run = run_stack("target", target_config(edgeStackManifest="/etc/passwd"))
    assert str(run.error) == (
        "config aes-linkerd2:edgeStackManifest = '/etc/passwd': "
        "is not a Kubernetes manifest: document 1 is not an object with apiVersion and kind"
    )
    assert run.registrations == []


def test_shown_values_are_bounded() -> None:
    assert errors.shown("x" * 10) == repr("x" * 10)
    long = errors.shown("x" * 10_000)
    assert len(long) <= errors.SHOWN_VALUE_LIMIT and long.endswith("... (10002 characters)")
    assert errors.shown("a\nb\x1b[31m") == "'a\\nb\\x1b[31m'"


def parse(values: dict[str, Any], stack: str = "source", secrets: frozenset[str] = frozenset()) -> config_model.StackConfig:
    """The program's own parse of a stack file's values, as the driver's pre-flight runs it: no engine, no cluster."""
    return config.load(config_sources.SettingsSource(values, secrets, stack))


def test_a_kind_target_is_reached_at_its_control_plane_container() -> None:
    values = {"role": "source", "context": "kind-source", "targetStack": "organization/aes-linkerd2/target",
              "targetContext": "kind-target", "edgeStackProduct": "emissary"}  # fmt: skip
    role = parse(values).role
    assert isinstance(role, config_model.SourceRole)
    assert role.target_api_server_address == "https://target-control-plane:6443"
    role = parse({**values, "targetApiServerAddress": "https://172.18.0.3:6443"}).role
    assert isinstance(role, config_model.SourceRole) and role.target_api_server_address == "https://172.18.0.3:6443"
    role = parse({**values, "targetContext": "prod-eu"}).role
    assert isinstance(role, config_model.SourceRole) and role.target_api_server_address is None
    assert config_source.kind_internal_address("kind-a-b") == "https://a-b-control-plane:6443"
    assert config_source.kind_internal_address("kind-") is None and config_source.kind_internal_address("kind-Upper") is None


@pytest.mark.parametrize("key", ["edgeStackLicenseKey", "tlsPrivateKey", "tlsCertificate"])
def test_a_secret_key_in_plain_text_is_refused_without_its_value(key: str) -> None:
    values = {"role": "target", "context": "kind-target", "gatewayHostname": "gw.example.com", "tlsHostname": "a.example.com",
              "tlsCertificate": "cert", "tlsPrivateKey": "key", "edgeStackLicenseKey": "token",
              "edgeStackProduct": "edge-stack"}  # fmt: skip
    secrets = frozenset({"edgeStackLicenseKey", "tlsPrivateKey", "tlsCertificate"} - {key})
    with pytest.raises(errors.ConfigError) as raised:
        parse(values, "target", secrets)
    assert str(raised.value) == (
        f"config aes-linkerd2:{key} = '[not shown]': must be a secret: `pulumi config set --secret {key} <value>`"
    )
    parsed = parse(values, "target", secrets | {key})
    assert parsed.edge_stack.tls is not None and parsed.edge_stack.tls.hostname == "a.example.com"


def test_the_committed_stack_files_parse_as_the_pre_flight_reads_them() -> None:
    from driver.settings import read_settings

    for stack in ("target", "source"):
        settings = read_settings(ROOT, stack)
        parsed = config.load(config_sources.SettingsSource(settings.values, settings.secret_keys, stack))
        assert parsed.cluster.context == f"kind-{stack}" and parsed.linkerd.ha is True


TARGET_VALUES = {"role": "target", "context": "kind-target", "gatewayHostname": "gw.example.com", "edgeStackProduct": "emissary"}


@pytest.mark.parametrize(
    ("change", "key", "shown", "reason"),
    [
        ({"gatewayPort": 4191}, "gatewayPort", 4191, "is one of the Linkerd proxy's own ports (4140, 4190, 4191)"),
        ({"gatewayPort": 4140}, "gatewayPort", 4140, "is one of the Linkerd proxy's own ports (4140, 4190, 4191)"),
        ({"probePort": 4190}, "probePort", 4190, "is one of the Linkerd proxy's own ports (4140, 4190, 4191)"),
        ({"probePeriodSeconds": 86400}, "probePeriodSeconds", 86400, "must be between 1 and 3600 (an hour)"),
        ({"probePath": "/"}, "probePath", "/", "would route every request no other Mapping takes to the ready check"),
        ({"probePath": "/qotm-linkerd2/"}, "probePath", "/qotm-linkerd2/", "would take requests of QOTM's Mapping"),
        ({"probePath": "/qotm-linkerd2/x"}, "probePath", "/qotm-linkerd2/x", "would take requests of QOTM's Mapping"),
        ({"exportedServices": ["default/kubernetes"]}, "exportedServices", "default/kubernetes",
         "is the API server's own Service"),
        ({"qotm": False, "exportedServices": ["default/qotm-linkerd2"]}, "exportedServices", "default/qotm-linkerd2",
         "is QOTM's Service, and qotm is false: nothing would create it"),
        ({"exportedServices": ["default/" + "s" * 60]}, "exportedServices", "default/" + "s" * 60,
         "its mirror <service>-kind-target would be longer than a Service name's 63"),
        ({"tlsHostname": "gw.example.com", "tlsAcmeEmail": "me@example.com"}, "tlsHostname", "gw.example.com",
         "equals gatewayHostname: two Hosts (redirect and insecure route) for one name"),
        ({"trustDomain": "a" * 40 + ".example.com"}, "trustDomain", "a" * 40 + ".example.com",
         "is longer than 47: identity.linkerd.<trustDomain> is an X.509 common name"),
        ({"clusterName": "c" * 50}, "clusterName", "c" * 50, "is longer than 49: Linkerd names the mirrored probe"),
    ],
)  # fmt: skip
def test_collisions_and_derived_names_are_refused(change: dict[str, Any], key: str, shown: Any, reason: str) -> None:
    values = {**TARGET_VALUES, "clusterName": "kind-target", **change}
    with pytest.raises(errors.ConfigError) as raised:
        parse(values, "target")
    assert str(raised.value).startswith(f"config aes-linkerd2:{key} = {errors.shown(shown)}: {reason}")


def test_the_longest_accepted_names_are_accepted() -> None:
    parsed = parse({**TARGET_VALUES, "trustDomain": "a" * 35 + ".example.com", "clusterName": "c" * 49}, "target")
    assert len(upstream.issuer_common_name(parsed.linkerd.trust_domain)) == 64 and parsed.cluster.name == "c" * 49
    assert parse({**TARGET_VALUES, "probePath": "/qotm-linkerd2-health"}, "target").gateway.probe_path == "/qotm-linkerd2-health"


def test_peer_is_an_ordinary_cluster_name() -> None:
    """Once reserved for the issuer the target signed for the source; each stack now signs its own, by its clusterName."""
    assert parse({**TARGET_VALUES, "clusterName": "peer"}, "target").cluster.name == "peer"
    values = {"role": "source", "context": "kind-source", "targetStack": "organization/aes-linkerd2/target",
              "targetContext": "kind-target", "edgeStackProduct": "emissary"}  # fmt: skip
    source = parse({**values, "clusterName": "peer"})
    assert source.cluster.name == "peer"
    role = parse({**values, "targetClusterName": "peer"}).role
    assert isinstance(role, config_model.SourceRole) and role.target.name == "peer"


def test_an_unspecified_gateway_address_is_refused() -> None:
    values = {"role": "source", "context": "kind-source", "targetStack": "target", "targetContext": "kind-target",
              "edgeStackProduct": "emissary"}  # fmt: skip
    for address in ("0.0.0.0", "::"):  # noqa: S104 (refused, never bound)
        with pytest.raises(errors.ConfigError, match=r"gatewayAddresses = '(0\.0\.0\.0|::)': is the unspecified address"):
            parse({**values, "gatewayAddresses": [address]})
    assert (
        parse({**values, "gatewayAddresses": ["172.18.0.5"]}).role == parse({**values, "gatewayAddresses": ["172.18.0.5"]}).role
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("just a string\n", "is not a kubeconfig (a mapping with contexts, clusters and users lists)"),
        ("contexts: {a: 1}\n", "is not a kubeconfig (a mapping with contexts, clusters and users lists)"),
        ("contexts: [1, 2]\n", "is not a kubeconfig: an entry of contexts is not a mapping"),
        ("contexts: [\n", "cannot be read as a kubeconfig (ParserError)"),
        ("a: b: c\n", "cannot be read as a kubeconfig (ScannerError)"),
    ],
)
def test_a_broken_kubeconfig_is_a_config_error_naming_the_key(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(errors.ConfigError) as raised:
        clusters.check_cluster("context", "kind-target", "kubeconfig", str(path))
    assert str(raised.value) == f"config aes-linkerd2:kubeconfig = {str(path)!r}: {reason}"


def test_a_server_with_an_impossible_port_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:99999"}}],
        "contexts": [{"name": "kind-target", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {}}],
    }))  # fmt: skip
    with pytest.raises(errors.ConfigError) as raised:
        clusters.check_cluster("context", "kind-target", "kubeconfig", str(path))
    assert str(raised.value) == (
        "config aes-linkerd2:context = 'kind-target': its cluster's server 'https://127.0.0.1:99999' has no valid port"
    )


def test_after_the_drivers_preflight_the_program_does_not_ask_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's pre-flight checked the CLI's release and the clusters; the stacks it runs do not repeat that."""
    monkeypatch.setenv(clusters.PREFLIGHT_ENV, "1")
    run = run_stack("target", target_config(), linkerd=FakeLinkerd("edge-25.1.1"))
    assert "version --client --short" not in " ".join(run.mocks.commands)
    assert run.error is None or "but this stack pins linkerdVersion" not in str(run.error)
    # Without the driver (plain `pulumi up`), the program's own check stands.
    monkeypatch.delenv(clusters.PREFLIGHT_ENV)
    run = run_stack("target", target_config(), linkerd=FakeLinkerd("edge-25.1.1"))
    assert "but this stack pins linkerdVersion" in str(run.error) and run.registrations == []


def test_the_driver_reads_the_version_line_with_the_programs_rules() -> None:
    """StackSettings.line is the parser's: an unknown line is refused, as the program refuses it, never defaulted."""
    from driver.settings import StackSettings

    with pytest.raises(errors.ConfigError) as raised:
        _ = StackSettings({"versionLine": "linkerd-9"}).line
    assert raised.value.key == "versionLine" and "is not known" in str(raised.value)
    with pytest.raises(errors.ConfigError, match=r"was renamed 'linkerd-2\.8'"):
        _ = StackSettings({"versionLine": "page"}).line
    assert StackSettings({}).line is upstream.CURRENT
    assert StackSettings({"versionLine": "linkerd-2.8"}).linkerd_version == upstream.PAGE.linkerd_versions[0]
    with pytest.raises(errors.ConfigError) as raised:
        _ = StackSettings({"linkerdVersion": "edge-1.0.0"}).linkerd_version
    assert raised.value.key == "linkerdVersion"
