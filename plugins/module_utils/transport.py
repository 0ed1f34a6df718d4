# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The words of a failed request, shared by the GitLab and the Mobb client: the causes that
requests and urllib3 nest inside each other, the root cause as a reason to print, and the
one way a message is put on one line without a credential in it.
"""

from __future__ import annotations

import re

from ansible_collections.mobb.scm.plugins.module_utils.urls import redact_text

# What a secret that is not part of a URL (an API key, a token sent or read) is printed as.
SECRET_MASK = '********'

# urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: " or
# "HTTPConnection(host='...', port=...): "; the message names the URL already.
_CONNECTION_PREFIX = re.compile(r'^(<[^>]+>|[\w.]+\(host=[^)]*\)):\s*')
_SSL_SOURCE_LINE = re.compile(r'\s*\(_ssl\.c:\d+\)')


def causes(error):
    """The error and the causes nested in requests' and urllib3's wrappers (MaxRetryError,
    ProtocolError, ...), outermost first: each one's ``reason``, else the first exception
    among its args."""
    chain = [error]
    seen = {id(error)}
    while True:
        inner = getattr(error, 'reason', None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in error.args if isinstance(arg, BaseException)), None)
        if inner is None or id(inner) in seen:
            return chain
        seen.add(id(inner))
        error = inner
        chain.append(error)


def root_cause(error):
    """The innermost of ``causes(error)``."""
    return causes(error)[-1]


def transport_reason(error):
    """The root cause of a transport error as one line, without the connection's repr."""
    cause = root_cause(error)
    text = _SSL_SOURCE_LINE.sub('', _CONNECTION_PREFIX.sub('', one_line(cause)))
    return text or type(cause).__name__


def one_line(text, secrets=(), max_length=None):
    """The text on one line, every URL in it redacted (urls.redact_url), each of ``secrets``
    masked, and cut after ``max_length`` characters (with ``...``) when given."""
    text = redact_text(' '.join(str(text).split()))
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(secrets, key=lambda value: len(value or ''), reverse=True):
        if secret:
            text = text.replace(secret, SECRET_MASK)
    if max_length is not None and len(text) > max_length:
        text = text[:max_length] + '...'
    return text
