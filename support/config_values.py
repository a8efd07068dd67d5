"""One config value read and checked: the Reader, which names the key in every error, and the shapes a value may
take (ports, DNS labels and names, URLs, words). Shared by the keys of both roles (support/config.py,
config_target.py, config_source.py).
"""

from __future__ import annotations

import ipaddress
import json
import re

import pulumi

from support.config_sources import ConfigSource
from support.errors import ConfigError

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_INTEGER = re.compile(r"^-?[0-9]{1,10}$")
# http(s)://<host>[:port][/], the host a DNS name, an IPv4 address or a bracketed IPv6 address.
_BASE_URL = re.compile(r"^https?://(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:(?P<port>[0-9]{1,5}))?/?$")
# A kube context or a manifest's URL or path: no spaces or control characters.
_WORD = re.compile(r"^[^\s\x00-\x1f\x7f]{1,4096}$")
# A file path or command name (linkerdCli, kubectl, kubeconfig): no spaces, quotes or shell syntax.
_PATH = re.compile(r"^[A-Za-z0-9_./+~@:=,-]{1,4096}$")

# Linkerd names the mirror of the target's gateway probe `probe-gateway-<cluster>`, a DNS label.
_PROBE_MIRROR_PREFIX = "probe-gateway-"
DNS_LABEL_LIMIT = 63


class Reader:
    """Typed access to a stack's config that names the key in every error."""

    def __init__(self, source: ConfigSource) -> None:
        self._source = source

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._source.get(key)
        if value is None or value == "":
            return default
        return value

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ConfigError(key, None, "is required; set it with `pulumi config set " + f"{key} <value>`")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self.text(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ConfigError(key, raw, "must be true or false")

    def integer(self, key: str, default: int) -> int:
        raw = self.text(key)
        if raw is None:
            return default
        if not _INTEGER.fullmatch(raw):
            raise ConfigError(key, raw, "must be an integer")
        return int(raw)

    def string_list(self, key: str, default: list[str]) -> list[str]:
        raw = self.text(key)
        if raw is None:
            return default
        # The Pulumi CLI passes arrays as JSON; JSON has no aliases to expand.
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(key, raw, "must be a list of strings")
        return value

    def word(self, key: str, default: str | None = None) -> str | None:
        """A context, URL or path: one word, no spaces or control characters."""
        value = self.text(key, default)
        if value is not None and not _WORD.fullmatch(value):
            raise ConfigError(key, value, "must be one word: no spaces or control characters")
        return value

    def path(self, key: str, default: str | None = None) -> str | None:
        """A file path or command name, as plain as the tools' own: it reaches command lines (quoted there)."""
        value = self.text(key, default)
        if value is not None and not _PATH.fullmatch(value):
            raise ConfigError(key, value, "must be a path or command name of letters, digits and _ . / + ~ @ : = , -")
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        value = self._source.get(key)
        if value in (None, ""):
            return None
        if not self._source.is_secret(key):
            # A plain value sits readable in the stack file and the state.
            raise ConfigError(key, "[not shown]", f"must be a secret: `pulumi config set --secret {key} <value>`")
        return pulumi.Output.secret(value)


def port(key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(key, value, "must be a port between 1 and 65535")
    return value


def label(key: str, value: str) -> str:
    if not _DNS1123_LABEL.fullmatch(value):
        raise ConfigError(key, value, "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)")
    return value


def is_dns_name(value: str) -> bool:
    """A DNS-1123 subdomain: dot-separated labels, lower case, no trailing dot, at most 253 characters.

    The last label is not all digits: 300.1.1.1 is a mistyped address, not a name.
    """
    labels = value.split(".")
    return len(value) <= 253 and all(_DNS1123_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def dns_name(key: str, value: str) -> str:
    if not is_dns_name(value):
        raise ConfigError(key, value, "must be a DNS name (lower-case labels of letters, digits and '-', no trailing dot)")
    return value


def base_url(key: str, value: str, what: str = "Edge Stack") -> str:
    """A base URL, strictly: it reaches a shell command line (quoted there too)."""
    match = _BASE_URL.fullmatch(value)
    if match:
        host, port = match.group("host"), match.group("port")
        host_ok = is_ip(host[1:-1], version=6) if host.startswith("[") else is_dns_name(host.lower()) or is_ip(host)
        if host_ok and (port is None or 1 <= int(port) <= 65535):
            return value
    raise ConfigError(key, value, f"must be http(s)://<host>[:port] of {what}")


def is_ip(value: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or address.version == version


def one_of(key: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, f"is not known; use one of: {', '.join(allowed)}")
    return value


def word(key: str, value: str) -> str:
    if not _WORD.fullmatch(value):
        raise ConfigError(key, value, "must be one word: no spaces or control characters")
    return value


def cluster_name(key: str, value: str) -> str:
    label(key, value)
    longest = DNS_LABEL_LIMIT - len(_PROBE_MIRROR_PREFIX)
    if len(value) > longest:
        raise ConfigError(key, value, f"is longer than {longest}: Linkerd names the mirrored probe {_PROBE_MIRROR_PREFIX}<name>")
    return value
