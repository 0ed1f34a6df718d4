# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Twin tokens: two kept tokens that feed one Mobb integration.

Mobb holds one token per integration. Two rotations that store into the same one each find
Mobb holding "another" token on every run and replace it, forever. An integration is named
by the Mobb API the token goes to, the Mobb user (the API key; only its SHA-256 is kept, in
memory) and the GitLab URL Mobb knows the server by, normalised as Settings does. The role
computes the twins of a whole play once and hands each token its messages (the action's
``twins`` option).
"""

from __future__ import annotations

import hashlib

from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    resolved_options,
    token_label,
    token_owner_name,
)
from ansible_collections.mobb.scm.plugins.module_utils.urls import UrlError, normalize_server_url


def integration_of(options, environ=None):
    """(Mobb API URL, SHA-256 of the API key, scm URL) of the integration these action options
    feed, or None when they cannot name one (the action then refuses them on its own)."""
    options = resolved_options(options, environ)
    key = options['mobb_api_key']
    try:
        scm_url = normalize_server_url(options['mobb_scm_url'] or options['gitlab_url'], 'mobb_scm_url')
        api_url = normalize_server_url(options['mobb_api_url'], 'mobb_api_url')
    except UrlError:
        return None
    if not key:
        return None
    return api_url, hashlib.sha256(str(key).encode('utf-8')).hexdigest(), scm_url


def label_of(options):
    """The token's label, as the action's result names it."""
    options = resolved_options(options, {})
    owner = token_owner_name(options['token_type'], options['user'], options['project'], options['group'],
                             options['service_account'])
    return token_label(options['token_type'], owner, options['token_name'].strip())


def twin_messages(tokens, environ=None):
    """{(host, index): message} for each token of ``tokens`` ((host, index, action options,
    within_host) tuples) that feeds an integration another one feeds too; the message names
    them all. A token ``within_host`` is compared only with the other tokens of its host: its
    URL is not known per host (a play's value, which may be templated per host)."""
    feeding = {}
    for host, index, options, within_host in tokens:
        integration = integration_of(options, environ)
        if integration is not None:
            feeding.setdefault(integration + (host if within_host else None,), []).append(
                (host, index, label_of(options)))
    messages = {}
    for (api_url, _key, scm_url, _host), twins in feeding.items():
        if len(twins) < 2:
            continue
        named = ['host %s token %s' % (host, label) for host, _index, label in twins]
        for host, index, _label in twins:
            messages[(host, index)] = (
                'twin tokens: %s feed one Mobb integration, %s (Mobb API %s, one API key), so each run would '
                "replace the other's token in Mobb; keep one of them, or give the others their own mobb_api_key "
                'or mobb_scm_url' % (' and '.join(named), scm_url, api_url))
    return messages
