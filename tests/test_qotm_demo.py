"""QotmDemo: the page's Deployment, Service and Mapping field for field, and the optional smoke step."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.qotm_demo import QotmDemo, QotmDemoArgs, smoke_command
from driver.offline import Registration
from support import upstream
from tests.harness import Run, run_program
from tests.schemas import validate_builtin, validate_custom_resource


def build(line: upstream.VersionLine = upstream.CURRENT, *, preview: bool = False, **kwargs: object) -> Run:
    def program() -> None:
        provider = k8s.Provider("cluster", context="ctx")
        on = pulumi.ResourceOptions(provider=provider)
        namespace = k8s.core.v1.NamespacePatch("ns", metadata={"name": "default"}, opts=on)
        crds = k8s.core.v1.ConfigMap("edge-stack-crds", metadata={"name": "stands-for-the-crds"}, opts=on)
        gateway = k8s.core.v1.ConfigMap("edge-stack", metadata={"name": "stands-for-the-deployment"}, opts=on)
        QotmDemo(
            "qotm",
            QotmDemoArgs(
                line=line,
                namespace="default",
                depends_on=[namespace],
                mapping_after=[crds],
                gateway=[gateway],
                **kwargs,  # type: ignore[arg-type]
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run = run_program(program, preview=preview)
    assert run.error is None, run.error
    return run


@pytest.mark.parametrize("preview", [False, True])
def test_deployment_is_exactly_the_pages(preview: bool) -> None:
    run = build(preview=preview)
    deployment = run.one("Deployment", "qotm")
    assert deployment.inputs["metadata"] == {"name": "qotm", "namespace": "default"}
    assert deployment.inputs["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "qotm"}},
        "template": {
            "metadata": {"labels": {"app": "qotm"}},
            "spec": {
                "containers": [
                    {
                        "name": "qotm",
                        "image": "docker.io/datawire/qotm:1.7",
                        "ports": [{"name": "http-api", "containerPort": 5000}],
                        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                        "readinessProbe": {
                            "httpGet": {"path": "/health", "port": 5000},
                            "initialDelaySeconds": 60,
                            "periodSeconds": 3,
                        },
                        "resources": {"limits": {"cpu": "0.1", "memory": "100Mi"}},
                    }
                ]
            },
        },
    }
    validate_builtin("apps/v1", "Deployment", {k: deployment.inputs[k] for k in ("metadata", "spec")}, "1.34")
    assert run.depends(deployment, on=run.one("NamespacePatch"))


def direct(run: Run, resource: Registration) -> set[str]:
    by_urn = {r.urn: r.name for r in run.registrations}
    return {by_urn[urn] for urn in resource.dependencies}


def test_each_object_waits_only_for_what_it_needs() -> None:
    """The Deployment and Service for the meshed namespace (whose annotation waits for the proxy injector), the
    Mapping for Edge Stack's CRDs too; none for Edge Stack's Deployment (only the smoke test routes through it)."""
    run = build()
    assert direct(run, run.one("Deployment")) == {"ns"}
    assert direct(run, run.one("Service")) == {"ns"}
    assert direct(run, run.one("Mapping")) == {"ns", "edge-stack-crds"}


def test_service_is_the_pages_not_awaited() -> None:
    """The page's Service; the provider's 10-second endpoints settle guards nothing: its Deployment is awaited."""
    service = build().one("Service", "qotm-linkerd2")
    assert service.inputs["metadata"] == {
        "name": "qotm-linkerd2",
        "namespace": "default",
        "annotations": {"pulumi.com/skipAwait": "true"},
    }
    assert service.inputs["spec"] == {"ports": [{"name": "http", "port": 80, "targetPort": 5000}], "selector": {"app": "qotm"}}
    validate_builtin("v1", "Service", {k: service.inputs[k] for k in ("metadata", "spec")}, "1.34")


@pytest.mark.parametrize(
    ("line", "spec"),
    [
        (upstream.PAGE, {"prefix": "/qotm-linkerd2/", "service": "qotm-linkerd2"}),
        (upstream.CURRENT, {"prefix": "/qotm-linkerd2/", "service": "qotm-linkerd2", "hostname": "*"}),
    ],
)
def test_mapping_per_line_is_valid_against_its_crd(line: upstream.VersionLine, spec: dict[str, str]) -> None:
    mapping = build(line).one("Mapping", "linkerd2-qotm")
    assert mapping.type == f"kubernetes:{line.ambassador_api}:Mapping"
    assert mapping.inputs["spec"] == spec
    validate_custom_resource(
        line.ambassador_api, "Mapping", {"metadata": mapping.inputs["metadata"], "spec": mapping.inputs["spec"]}
    )


def test_mapping_can_set_add_linkerd_headers_itself() -> None:
    mapping = build(add_linkerd_headers=False).one("Mapping", "linkerd2-qotm")
    assert mapping.inputs["spec"]["add_linkerd_headers"] is False


def test_smoke_step_asks_edge_stack_for_a_quote_after_the_demo_is_up() -> None:
    run = build(smoke_test_url="http://203.0.113.7")
    smoke = run.one("Command", "qotm-smoke-test")
    assert smoke.inputs["create"] == smoke_command("http://203.0.113.7")
    assert "curl -fsSL --max-time 10 http://203.0.113.7/qotm-linkerd2/ | grep -q '\"quote\"'" in smoke.inputs["create"]
    assert smoke.inputs["create"].endswith("exit 1")
    assert direct(run, smoke) == {"qotm-deployment", "qotm-service", "qotm-mapping", "edge-stack"}
    assert build().find("Command") == []


def test_smoke_command_fails_unless_a_quote_comes_back(tmp_path: pytest.TempPathFactory) -> None:
    import http.server
    import subprocess
    import threading

    class Quote(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                b'{"ok":true,"quote":"The last sentence you read is often sensible nonsense."}'
                if self.path == "/qotm-linkerd2/"
                else b"{}"
            )
            self.send_response(200 if self.path == "/qotm-linkerd2/" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Quote)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert subprocess.run(["bash", "-c", smoke_command(url)], check=False, timeout=30).returncode == 0
        failing = smoke_command(url, attempts=2, interval_seconds=0).replace("/qotm-linkerd2/", "/nothing/")
        result = subprocess.run(["bash", "-c", failing], check=False, capture_output=True, text=True, timeout=30)
        assert result.returncode == 1 and "no quote from" in result.stderr
    finally:
        server.shutdown()


HOSTILE_URLS = [
    "http://x';touch${IFS}PWNED;'",
    'http://x";touch PWNED;"',
    "http://x$(touch PWNED)",
    "http://x`touch PWNED`",
    "http://x; touch PWNED",
    "http://x\ntouch PWNED",
    "http://x | touch PWNED",
    "http://x && touch PWNED #",
    "http://x'\\''; touch PWNED; echo '",
]


def run_smoke(tmp_path: Path, base_url: str, curl_body: str) -> subprocess.CompletedProcess[str]:
    """The generated command under /bin/sh, with a stub curl that records its arguments, in tmp_path."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    curl = stubs / "curl"
    curl.write_text(f'#!/bin/sh\nprintf "%s\\n" "$#" "$4" > "{tmp_path}/curl-args"\n{curl_body}\n')
    curl.chmod(0o755)
    return subprocess.run(
        ["/bin/sh", "-c", smoke_command(base_url, attempts=1, interval_seconds=0)],
        cwd=tmp_path,
        env={"PATH": f"{stubs}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.parametrize("base_url", HOSTILE_URLS)
def test_smoke_command_never_runs_what_the_url_holds(tmp_path: Path, base_url: str) -> None:
    """Config refuses these URLs; the command quotes them anyway: curl gets each as one argument, nothing runs."""
    result = run_smoke(tmp_path, base_url, "exit 22")
    assert result.returncode == 1
    assert not (tmp_path / "PWNED").exists(), result.stderr
    count, url = (tmp_path / "curl-args").read_text().split("\n", 1)
    assert count == "4" and url.rstrip("\n") == base_url + "/qotm-linkerd2/"
    assert "no quote from" in result.stderr


def test_smoke_command_succeeds_on_a_quote(tmp_path: Path) -> None:
    result = run_smoke(tmp_path, "http://edge.example.com:8080", 'echo \'{"quote": "x"}\'')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curl-args").read_text() == "4\nhttp://edge.example.com:8080/qotm-linkerd2/\n"
    assert run_smoke(tmp_path, "http://edge.example.com:8080", "echo '{}'").returncode == 1
