"""The contract between log readers, the exact-observable matcher and the STIX pattern engine.

Kept small and stable: `threatmesh.logs` produces `LogEvent`s, the matcher
(`threatmesh.match.engine`) looks their values up in hash indexes, and the full
pattern engine (`threatmesh.match.patterns.compile_pattern`) plugs in through
`CompiledPattern`:

    compiled = compile_pattern(indicator["pattern"])
    keys = compiled.exact_keys()
    if keys is not None:        # a disjunction of equalities: indexed, never evaluated
        index.add(indicator, keys)
    else:                       # everything else: evaluated over the events
        for match in compiled.evaluate(events): ...

An `ExactKey` is `(kind, canonical value)` with the kinds and spellings of
`threatmesh.stix.observables.normalize` ('ipv4-addr', 'domain-name', 'url',
'email-addr', 'file:hashes.SHA-256', ...). An IP kind whose value holds a '/'
is a CIDR range ('10.0.0.0/8'); a 'domain-name' key also matches every
subdomain of its value (an indicator on evil.com fires on a.b.evil.com).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

ExactKey = tuple[str, str]

# What a field of a log line is, independent of the log format. Readers map
# their fields to these roles; the matcher maps roles to index kinds.
ROLE_SRC_IP = "src-ip"
ROLE_DST_IP = "dst-ip"
ROLE_IP = "ip"  # an address whose direction the log does not say
ROLE_SRC_PORT = "src-port"
ROLE_DST_PORT = "dst-port"
ROLE_PROTO = "proto"
ROLE_DOMAIN = "domain"
ROLE_URL = "url"
ROLE_MD5 = "md5"
ROLE_SHA1 = "sha1"
ROLE_SHA256 = "sha256"
ROLE_SHA512 = "sha512"
ROLE_EMAIL = "email"
ROLE_USER_AGENT = "user-agent"
ROLE_USER = "user"
ROLE_FILE_NAME = "file-name"
ROLES: frozenset[str] = frozenset({
    ROLE_SRC_IP, ROLE_DST_IP, ROLE_IP, ROLE_SRC_PORT, ROLE_DST_PORT, ROLE_PROTO, ROLE_DOMAIN,
    ROLE_URL, ROLE_MD5, ROLE_SHA1, ROLE_SHA256, ROLE_SHA512, ROLE_EMAIL, ROLE_USER_AGENT,
    ROLE_USER, ROLE_FILE_NAME,
})
HASH_ROLES: dict[str, str] = {
    ROLE_MD5: "MD5", ROLE_SHA1: "SHA-1", ROLE_SHA256: "SHA-256", ROLE_SHA512: "SHA-512",
}


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One readable log line (or JSON record), with its position and its values by role.

    `values` keeps the raw spelling of the log; the matcher normalises. `time`
    is µs since the Unix epoch (UTC), None when the line carries no time.
    """

    source: str  # the file path, or '<stdin>'
    line: int  # 1-based line number in the (decompressed) stream
    offset: int  # byte offset of the line's start in the (decompressed) stream
    time: int | None
    values: tuple[tuple[str, str], ...]  # (role, raw value), a role may repeat
    log_type: str = ""  # 'zeek:conn', 'apache', 'sshd', 'sysmon:3', ...

    def get(self, role: str) -> str | None:
        for r, v in self.values:
            if r == role:
                return v
        return None

    def objects(self) -> dict[str, dict[str, Any]]:
        """The event as STIX 2.1 cyber-observable objects keyed '0', '1', ...

        The shape `stix2-matcher` and STIX observed-data (§4.13, `objects`)
        use, so a pattern engine can evaluate paths such as
        `network-traffic:dst_ref.value` or `file:hashes.'SHA-256'`.
        """
        return event_objects(self)


def _ip_type(value: str) -> str:
    return "ipv6-addr" if ":" in value else "ipv4-addr"


def event_objects(event: LogEvent) -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}

    def add(obj: dict[str, Any]) -> str:
        key = str(len(objects))
        objects[key] = obj
        return key

    traffic: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    file_name: str | None = None
    for role, value in event.values:
        if role in (ROLE_SRC_IP, ROLE_DST_IP):
            ref = add({"type": _ip_type(value), "value": value})
            traffic["src_ref" if role == ROLE_SRC_IP else "dst_ref"] = ref
        elif role == ROLE_IP:
            add({"type": _ip_type(value), "value": value})
        elif role in (ROLE_SRC_PORT, ROLE_DST_PORT) and value.isdigit():
            traffic["src_port" if role == ROLE_SRC_PORT else "dst_port"] = int(value)
        elif role == ROLE_PROTO:
            traffic["protocols"] = [value.lower()]
        elif role == ROLE_DOMAIN:
            add({"type": "domain-name", "value": value})
        elif role == ROLE_URL:
            add({"type": "url", "value": value})
        elif role == ROLE_EMAIL:
            add({"type": "email-addr", "value": value})
        elif role in HASH_ROLES:
            hashes[HASH_ROLES[role]] = value
        elif role == ROLE_FILE_NAME:
            file_name = value
        elif role == ROLE_USER:
            add({"type": "user-account", "account_login": value})
        elif role == ROLE_USER_AGENT:
            traffic.setdefault("extensions", {})["http-request-ext"] = {
                "request_method": "get", "request_value": "/",
                "request_header": {"User-Agent": value},
            }
    if hashes or file_name:
        obj: dict[str, Any] = {"type": "file"}
        if hashes:
            obj["hashes"] = hashes
        if file_name:
            obj["name"] = file_name
        add(obj)
    if traffic and ("src_ref" in traffic or "dst_ref" in traffic):
        first_ref = str(traffic.get("src_ref", traffic.get("dst_ref")))
        traffic.setdefault("protocols", ["ipv6" if objects[first_ref]["type"] == "ipv6-addr" else "ipv4"])
        add({"type": "network-traffic", **traffic})
    return objects


@runtime_checkable
class CompiledPattern(Protocol):
    """A STIX pattern compiled once, used against many events."""

    def exact_keys(self) -> frozenset[ExactKey] | None:
        """The keys any one of which makes the pattern match, when it is a disjunction of
        equality comparisons on one indexable property each (`[a:value = 'x'] OR [b:value = 'y']`);
        None when it needs evaluating."""
        ...

    def evaluate(self, events: Sequence[LogEvent]) -> list[tuple[LogEvent, ...]]:
        """Every match of the pattern over `events` (in time order), each as the events that
        satisfied it; [] when it does not match."""
        ...


PatternCompiler = Callable[[str], CompiledPattern]
