"""`status`: both clusters at a glance, read live through each stack's outputs.

Three parts, one job each: `read` (kubectl's two `get`s per cluster, and the linkerd CLI's view of the
gateway), `checks` (the objects against the stack's outputs, into a `Report`) and `views` (text, a
rich table, SVG; the JSON is `Report.data()`). The driver's `status` verb uses the names below.
"""

from driver.status.checks import FAIL, HA_DEPLOYMENTS, OK, UNKNOWN, Check, ClusterStatus, Report, collect
from driver.status.read import KINDS, LINKS, Gateways, Kubectl, KubectlError, Objects, kubectl_runner, linkerd_gateways
from driver.status.views import COLOURS, svg, table, text

__all__ = [
    "COLOURS",
    "FAIL",
    "HA_DEPLOYMENTS",
    "KINDS",
    "LINKS",
    "OK",
    "UNKNOWN",
    "Check",
    "ClusterStatus",
    "Gateways",
    "Kubectl",
    "KubectlError",
    "Objects",
    "Report",
    "collect",
    "kubectl_runner",
    "linkerd_gateways",
    "svg",
    "table",
    "text",
]
