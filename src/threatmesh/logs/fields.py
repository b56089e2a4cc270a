"""Field mappings, kept as data: which field of which log holds which kind of observable.

A Zeek field name means the same in every Zeek log (`id.orig_h` is the
originator in conn, dns, http, ssl, smtp...), so one table serves them all;
a few fields depend on the log (`host` is a domain in http.log but an address
in known_services.log) and are listed per path.
"""

from __future__ import annotations

from threatmesh.match.protocol import (
    ROLE_DOMAIN, ROLE_DST_IP, ROLE_DST_PORT, ROLE_EMAIL, ROLE_FILE_NAME, ROLE_IP, ROLE_MD5, ROLE_PROTO,
    ROLE_SHA1, ROLE_SHA256, ROLE_SHA512, ROLE_SRC_IP, ROLE_SRC_PORT, ROLE_USER, ROLE_USER_AGENT,
)

# Roles whose Zeek fields may hold a set or vector of values, and of mixed kinds
# (dns `answers` carries both addresses and CNAME names).
ROLE_IP_OR_DOMAIN = "ip-or-domain"

ZEEK_FIELDS: dict[str, str] = {
    "id.orig_h": ROLE_SRC_IP,
    "id.resp_h": ROLE_DST_IP,
    "id.orig_p": ROLE_SRC_PORT,
    "id.resp_p": ROLE_DST_PORT,
    "proto": ROLE_PROTO,
    "query": ROLE_DOMAIN,  # dns
    "answers": ROLE_IP_OR_DOMAIN,  # dns
    "server_name": ROLE_DOMAIN,  # ssl (SNI)
    "san.dns": ROLE_DOMAIN,  # x509
    "san.ip": ROLE_IP,  # x509
    "md5": ROLE_MD5,  # files
    "sha1": ROLE_SHA1,
    "sha256": ROLE_SHA256,
    "sha512": ROLE_SHA512,
    "fingerprint": ROLE_SHA256,  # x509 (Zeek 6: SHA-256 of the certificate)
    "cert_chain_fps": ROLE_SHA256,  # ssl
    "tx_hosts": ROLE_IP,  # files
    "rx_hosts": ROLE_IP,
    "filename": ROLE_FILE_NAME,
    "mailfrom": ROLE_EMAIL,  # smtp
    "rcptto": ROLE_EMAIL,
    "from": ROLE_EMAIL,
    "to": ROLE_EMAIL,
    "cc": ROLE_EMAIL,
    "reply_to": ROLE_EMAIL,
    "x_originating_ip": ROLE_IP,
    "user_agent": ROLE_USER_AGENT,  # http, smtp
    "data_channel.orig_h": ROLE_SRC_IP,  # ftp
    "data_channel.resp_h": ROLE_DST_IP,
    "src": ROLE_SRC_IP,  # notice, weird
    "dst": ROLE_DST_IP,
    "username": ROLE_USER,  # ntlm, rdp
    "user": ROLE_USER,  # ftp
    "client_addr": ROLE_SRC_IP,  # dhcp
    "assigned_addr": ROLE_IP,
    "host_p": ROLE_DST_PORT,
    "referrer": "url",  # http: a full URL
}

# Per-log meanings of ambiguous names.
ZEEK_PATH_FIELDS: dict[str, dict[str, str]] = {
    "http": {"host": ROLE_DOMAIN},
    "known_services": {"host": ROLE_IP},
    "known_hosts": {"host": ROLE_IP},
    "software": {"host": ROLE_IP},
    "smtp": {"helo": ROLE_DOMAIN},
}

# http.log splits a URL in two: `host` and `uri`; the reader joins them.
ZEEK_HTTP_URL = ("host", "uri")

# JSON lines, CSV: common field names of firewalls, proxies, EDR and SIEM exports.
GENERIC_FIELDS: dict[str, str] = {
    **{k: ROLE_SRC_IP for k in ("src_ip", "srcip", "src", "source_ip", "source.ip", "client_ip", "c-ip",
                                "id.orig_h", "sourceaddress", "clientip")},
    **{k: ROLE_DST_IP for k in ("dst_ip", "dstip", "dst", "dest_ip", "destination_ip", "destination.ip",
                                "server_ip", "s-ip", "id.resp_h", "destinationaddress")},
    **{k: ROLE_IP for k in ("ip", "ip_address", "address", "remote_ip", "remote_addr")},
    **{k: ROLE_SRC_PORT for k in ("src_port", "srcport", "source_port", "source.port", "id.orig_p")},
    **{k: ROLE_DST_PORT for k in ("dst_port", "dstport", "dest_port", "destination_port", "destination.port",
                                  "id.resp_p")},
    **{k: ROLE_DOMAIN for k in ("domain", "hostname", "host", "query", "qname", "fqdn", "server_name", "sni",
                                "dns.question.name", "url.domain", "cs-host")},
    **{k: "url" for k in ("url", "uri_full", "request_url", "url.full", "cs-uri")},
    **{k: ROLE_MD5 for k in ("md5", "file.hash.md5", "hash.md5")},
    **{k: ROLE_SHA1 for k in ("sha1", "file.hash.sha1", "hash.sha1")},
    **{k: ROLE_SHA256 for k in ("sha256", "file.hash.sha256", "hash.sha256")},
    **{k: ROLE_SHA512 for k in ("sha512", "file.hash.sha512")},
    **{k: ROLE_EMAIL for k in ("email", "sender", "recipient", "mail_from", "rcpt_to", "from", "to")},
    **{k: ROLE_USER_AGENT for k in ("user_agent", "useragent", "cs(user-agent)", "user_agent.original")},
    **{k: ROLE_USER for k in ("user", "username", "user.name")},
    **{k: ROLE_PROTO for k in ("proto", "protocol", "transport")},
}
TIME_FIELDS = ("ts", "timestamp", "@timestamp", "time", "datetime", "date", "event_time", "utctime",
               "eventtime", "_time")

# Windows event / Sysmon (EventData names), flat or nested under Event.EventData / winlog.event_data.
SYSMON_FIELDS: dict[str, str] = {
    "SourceIp": ROLE_SRC_IP,
    "DestinationIp": ROLE_DST_IP,
    "SourcePort": ROLE_SRC_PORT,
    "DestinationPort": ROLE_DST_PORT,
    "Protocol": ROLE_PROTO,
    "DestinationHostname": ROLE_DOMAIN,
    "SourceHostname": ROLE_DOMAIN,
    "QueryName": ROLE_DOMAIN,  # event 22 (DNS query)
    "QueryResults": ROLE_IP_OR_DOMAIN,
    "User": ROLE_USER,
    "TargetUserName": ROLE_USER,  # security log 4624/4625
    "IpAddress": ROLE_SRC_IP,
    "Image": ROLE_FILE_NAME,
    "TargetFilename": ROLE_FILE_NAME,
}
SYSMON_HASH_FIELDS = ("Hashes", "Hash")  # 'SHA256=...,MD5=...,IMPHASH=...'
