"""Media types and content negotiation (TAXII 2.1 §1.6.8, §3.1; RFC 7231 §5.3.2).

TAXII 2.1 answers with one media type, `application/taxii+json;version=2.1`,
on every endpoint and for every response, errors included. What is negotiated
is only whether the client accepts it:

- `application/taxii+json;version=2.1` and the bare `application/taxii+json`
  (which means "the latest version the server has", 1.6.8.2) must never get 406.
- Accept lists, whitespace around parameters, quoted parameter values and
  q-values are read per RFC 7231; the most specific range that matches decides
  (so `application/taxii+json;version=2.1;q=0, */*` refuses TAXII 2.1).
- Wildcards (`*/*`, `application/*`) accept TAXII, as RFC 7231 says they do.
- A missing or empty Accept header is refused (406): TAXII requires clients to
  send one (3.1) and the interop test lab expects 406 for an empty one.
- On the object endpoints, `application/stix+json;version=2.1` also counts:
  it is the media type of the objects those endpoints carry, and it is listed
  in the manifest endpoint's "required headers". The answer is still a TAXII
  envelope, because TAXII 2.1 has no STIX response type (1.7.1).

For a POST body, the Content-Type must be `application/taxii+json` (bare or
`version=2.1`, optionally `charset=utf-8`), else 415; on the objects endpoint
the STIX 2.1 media type is allowed too, since the body is an envelope either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"

# What this server produces, as (type, subtype, parameters). Every TAXII body is
# UTF-8 JSON (1.6.7), so charset=utf-8 is implied and a range asking for it matches.
_TAXII = ("application", "taxii+json", {"version": "2.1", "charset": "utf-8"})
_STIX = ("application", "stix+json", {"version": "2.1", "charset": "utf-8"})

_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One element of an Accept header, or a Content-Type (with q = 1)."""

    type: str  # lower case; '*' for a wildcard
    subtype: str  # lower case; '*' for a wildcard
    params: tuple[tuple[str, str], ...] = ()  # names lower case, values unquoted
    q: float = 1.0

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif in_quotes and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            in_quotes = not in_quotes
        elif char == separator and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _is_token(text: str) -> bool:
    # Checked before lower-casing: str.lower() maps some non-ASCII letters to ASCII.
    return bool(text) and all(char in _TOKEN_CHARS for char in text)


def _unquote(value: str) -> str | None:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        escaped = False
        for char in value[1:-1]:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                return None
            else:
                out.append(char)
        return None if escaped else "".join(out)
    return value if _is_token(value) else None


def _parse_qvalue(value: str) -> float | None:
    # RFC 7231 §5.3.1: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
    return float(value) if _QVALUE_RE.fullmatch(value) else None


def parse_media_range(text: str, *, allow_q: bool = True) -> MediaRange | None:
    """One media range (`type/subtype *( OWS ";" OWS parameter )`), or None if malformed.

    With `allow_q`, a `q` parameter ends the media type's own parameters; what
    follows it are accept extensions, which are ignored.
    """
    pieces = _split_outside_quotes(text, ";")
    full_type = pieces[0].strip()
    if full_type.count("/") != 1:
        return None
    main, sub = full_type.split("/")
    if not _is_token(main) or not _is_token(sub):
        return None
    main, sub = main.lower(), sub.lower()
    if main == "*" and sub != "*":
        return None
    params: list[tuple[str, str]] = []
    q = 1.0
    for piece in pieces[1:]:
        piece = piece.strip()
        if not piece:
            continue  # "a/b;" and "a/b; ;x=y" are common enough to forgive
        if "=" not in piece:
            return None
        name, _, raw_value = piece.partition("=")
        name = name.strip()
        value = _unquote(raw_value.strip())
        if not _is_token(name) or value is None:
            return None
        name = name.lower()
        if allow_q and name == "q":
            parsed_q = _parse_qvalue(value)
            if parsed_q is None:
                return None
            q = parsed_q
            break
        params.append((name, value))
    return MediaRange(main, sub, tuple(params), q)


def parse_accept(header: str) -> tuple[MediaRange, ...]:
    """The media ranges of an Accept header, in order; malformed elements are skipped."""
    ranges: list[MediaRange] = []
    for element in _split_outside_quotes(header, ","):
        if not element.strip():
            continue
        parsed = parse_media_range(element)
        if parsed is not None:
            ranges.append(parsed)
    return tuple(ranges)


def _specificity(
    media_range: MediaRange, produced: tuple[str, str, dict[str, str]]
) -> int | None:
    """How specifically a range names a produced type (higher wins), or None if it does not."""
    main, sub, produced_params = produced
    if media_range.type == "*":
        return 0 if not media_range.params else None
    if media_range.type != main:
        return None
    if media_range.subtype == "*":
        return 1 if not media_range.params else None
    if media_range.subtype != sub:
        return None
    for name, value in media_range.params:
        expected = produced_params.get(name)
        if expected is None or expected != value.lower():
            return None
    return 2 + len(media_range.params)


def _quality(ranges: tuple[MediaRange, ...], produced: tuple[str, str, dict[str, str]]) -> float:
    best_specificity = -1
    quality = 0.0
    for media_range in ranges:
        specificity = _specificity(media_range, produced)
        if specificity is None:
            continue
        # RFC 7231: the most specific reference has precedence; equal ones keep the best q.
        if specificity > best_specificity:
            best_specificity, quality = specificity, media_range.q
        elif specificity == best_specificity:
            quality = max(quality, media_range.q)
    return quality


def accepts_taxii(accept: str | None, *, allow_stix: bool = False) -> bool:
    """Whether a request with this Accept header may get `TAXII_MEDIA_TYPE` (else 406)."""
    if accept is None or not accept.strip():
        return False
    ranges = parse_accept(accept)
    if _quality(ranges, _TAXII) > 0:
        return True
    return allow_stix and _quality(ranges, _STIX) > 0


def content_type_supported(content_type: str | None, *, allow_stix: bool = False) -> bool:
    """Whether a request body of this Content-Type can be read (else 415)."""
    if content_type is None:
        return False
    parsed = parse_media_range(content_type, allow_q=False)
    if parsed is None:
        return False
    produced = [_TAXII, _STIX] if allow_stix else [_TAXII]
    for main, sub, known in produced:
        if (parsed.type, parsed.subtype) != (main, sub):
            continue
        version = parsed.param("version")
        charset = parsed.param("charset")
        if version is not None and version != known["version"]:
            return False
        if charset is not None and charset.lower() not in ("utf-8", "utf8"):
            return False
        return True
    return False
