# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one spelling of a GitLab server's base URL, shared by the GitLab client and Mobb, and
the one way a URL is printed.

GitLab's API and Mobb's integration must be asked about the same server: a URL given with
a trailing ``/api/v4``, an upper-case scheme or host, a default port or trailing slashes
names the same server as its plain form, so both sides get the plain form.

A URL may carry a credential (``https://oauth2:<token>@host``, ``?private_token=<token>``):
every URL the collection prints goes through ``redact_url`` (or ``redact_text`` for a
message that may hold one), which keeps scheme, host, port and path and hides the rest.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = '***'
# A URL inside a message: a scheme, then everything up to white space or a quote, but for
# the punctuation of the sentence after it ("at https://h/x?t=v: ...").
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;)]")
# urllib3 names the request by its path alone ("Max retries exceeded with url: /x?a=b").
_QUERY_IN_TEXT = re.compile(r"(\burl: [^\s?'\"]*)\?[^\s'\"]*[^\s'\".,:;)]")
# Query values shorter than this are not masked in a module's output: Ansible masks every
# occurrence of a no_log value, and a value such as "1" would mask every digit one.
_LEAST_SECRET_LENGTH = 6


class UrlError(ValueError):
    """The URL cannot name a server; the text says why, in one line, naming the option."""


def parse_http_url(value, option):
    """The parts of an http(s) URL with a host and no credentials, or UrlError."""
    if not value or not str(value).strip():
        raise UrlError('%s is empty: give an http(s) URL' % option)
    parts = urlsplit(str(value).strip())
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        raise UrlError('%s must be an http(s) URL with a host, such as https://gitlab.example.com, got %r'
                       % (option, redact_url(value)))
    if parts.username is not None or parts.password is not None:
        raise UrlError('%s must not carry credentials (user:password@): remove them from the URL' % option)
    try:
        parts.port
    except ValueError:
        raise UrlError('%s has an invalid port: %r' % (option, redact_url(value))) from None
    return parts


def normalize_server_url(value, option):
    """The server's base URL: scheme and host lowercased, default port, trailing slashes and a
    trailing ``/api/v4`` dropped. Raises UrlError for anything but a plain http(s) URL."""
    parts = parse_http_url(value, option)
    if parts.query or parts.fragment:
        # The query is not repeated: it may carry a credential (?private_token=...).
        raise UrlError('%s must be the base URL of the server, without ?query or #fragment: %s://%s%s?...'
                       % (option, parts.scheme, parts.netloc, parts.path))
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ':' in host:
        host = '[%s]' % host
    port = parts.port
    if port is not None and (scheme, port) not in (('http', 80), ('https', 443)):
        host = '%s:%d' % (host, port)
    path = re.sub(r'(/+api/v4)?/*$', '', parts.path, flags=re.IGNORECASE)
    return urlunsplit((scheme, host, path, '', ''))


def _split(value):
    """(scheme with ``://``, authority, path, query, fragment) of a URL, without urlsplit's
    checks: a URL too broken to parse still has its credentials found."""
    text = str(value)
    scheme, separator, rest = text.partition('://')
    if not separator:
        scheme, rest = '', text
    authority_end = min((rest.find(mark) for mark in '/?#' if mark in rest), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    tail, hash_mark, fragment = tail.partition('#')
    path, question_mark, query = tail.partition('?')
    return scheme + separator, authority, path, question_mark + query, hash_mark + fragment


def redact_url(value):
    """The URL as it may be printed: ``user:password@`` becomes ``***@``, each query value
    ``***`` (a bare query item too), a fragment ``#***``; scheme, host, port and path stay."""
    scheme, authority, path, query, fragment = _split(value)
    if '@' in authority:
        authority = '%s@%s' % (REDACTED, authority.rpartition('@')[2])
    if query:
        query = '?' + '&'.join(_redact_query_item(item) for item in query[1:].split('&'))
    if len(fragment) > 1:
        fragment = '#' + REDACTED
    return scheme + authority + path + query + fragment


def _redact_query_item(item):
    name, equals, value = item.partition('=')
    if equals:
        return '%s=%s' % (name, REDACTED if value else '')
    return REDACTED if name else ''


def redact_text(text):
    """``text`` (a message, an exception's words) with every URL in it passed through redact_url."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(text))
    return _QUERY_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def url_secrets(value):
    """The credential parts of a URL (a password, else a lone user name, the query and fragment values),
    for a module's no_log_values: Ansible then masks them wherever the module's result shows them."""
    if not value:
        return []
    _scheme, authority, _path, query, fragment = _split(value)
    secrets = []
    if '@' in authority:
        user, colon, password = authority.rpartition('@')[0].partition(':')
        secrets.append(password if colon and password else user)
    for item in (query[1:].split('&') if query else []) + (fragment[1:].split('&') if fragment else []):
        name, equals, item_value = item.partition('=')
        secrets.append(item_value if equals else name)
    return [secret for secret in secrets if len(secret) >= _LEAST_SECRET_LENGTH]
