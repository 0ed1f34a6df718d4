# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one spelling of a GitLab server's base URL, shared by the GitLab client and Mobb.

GitLab's API and Mobb's integration must be asked about the same server: a URL given with
a trailing ``/api/v4``, an upper-case scheme or host, a default port or trailing slashes
names the same server as its plain form, so both sides get the plain form.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


class UrlError(ValueError):
    """The URL cannot name a server; the text says why, in one line, naming the option."""


def parse_http_url(value, option):
    """The parts of an http(s) URL with a host and no credentials, or UrlError."""
    if not value or not str(value).strip():
        raise UrlError('%s is empty: give an http(s) URL' % option)
    parts = urlsplit(str(value).strip())
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        raise UrlError('%s must be an http(s) URL with a host, such as https://gitlab.example.com, got %r'
                       % (option, value))
    if parts.username is not None or parts.password is not None:
        raise UrlError('%s must not carry credentials (user:password@): remove them from the URL' % option)
    try:
        parts.port
    except ValueError:
        raise UrlError('%s has an invalid port: %r' % (option, value)) from None
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
