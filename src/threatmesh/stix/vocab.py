"""The object type names of STIX 2.1 (§4, §5, §6, §7), by category."""

from __future__ import annotations

SDO_TYPES: frozenset[str] = frozenset({
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware",
    "malware-analysis", "note", "observed-data", "opinion", "report", "threat-actor",
    "tool", "vulnerability",
})

SRO_TYPES: frozenset[str] = frozenset({"relationship", "sighting"})

SCO_TYPES: frozenset[str] = frozenset({
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr",
    "email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex",
    "network-traffic", "process", "software", "url", "user-account",
    "windows-registry-key", "x509-certificate",
})

META_TYPES: frozenset[str] = frozenset({"marking-definition", "language-content", "extension-definition"})

STIX21_TYPES: frozenset[str] = SDO_TYPES | SRO_TYPES | SCO_TYPES | META_TYPES

# Types that carry `created` and `modified`, whose `modified` is the version.
# marking-definition is versionless (only `created`); language-content and
# extension-definition are versioned like SDOs.
VERSIONED_TYPES: frozenset[str] = SDO_TYPES | SRO_TYPES | frozenset({"language-content", "extension-definition"})
