# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GraphQL documents that the Mobb client (module_utils/mobb.py) sends."""

from __future__ import annotations

_SCM_CONFIG_FIELDS = 'id orgId scmType scmUrl scmOrg tokenLastUpdate isTokenAvailable'
_BROKER_FIELDS = 'userOrganizationsAndUserOrganizationRoles { organization { brokerHosts { realDomain virtualDomain } } }'

_ME_FIELDS = 'id email %s scmConfigs { %s }' % (_BROKER_FIELDS, _SCM_CONFIG_FIELDS)
# The stored token is selected only where a caller asks for it (with_tokens), to compare fingerprints.
_ME_WITH_TOKENS_FIELDS = 'id email %s scmConfigs { %s token }' % (_BROKER_FIELDS, _SCM_CONFIG_FIELDS)
ME_QUERY = 'query Me { me { %s } }' % _ME_FIELDS
ME_WITH_TOKENS_QUERY = 'query Me { me { %s } }' % _ME_WITH_TOKENS_FIELDS


def _connection_status_query(me_fields):
    return ('query checkScmConnectionStatus($scmUrl: String!) {'
            ' checkScmConnectionStatus(scmUrl: $scmUrl) { status } me { %s } }' % me_fields)


# One request answers both "is it connected" and "what is stored" when Mobb returns partial
# data; when the check fails and Mobb returns no data at all, ME_QUERY (or ME_WITH_TOKENS_QUERY) follows.
CONNECTION_STATUS_QUERY = _connection_status_query(_ME_FIELDS)
CONNECTION_STATUS_WITH_TOKENS_QUERY = _connection_status_query(_ME_WITH_TOKENS_FIELDS)

VALIDATE_SCM_TOKEN_QUERY = (
    'query validateScmToken($scmType: String!, $url: String!, $token: String!, $scmOrg: String) {'
    ' validateScmToken(scmType: $scmType, url: $url, token: $token, scmOrg: $scmOrg) {'
    ' __typename'
    ' ... on ValidateScmTokenSuccess { status }'
    ' ... on BadScmCredentials { status error scmType }'
    ' ... on InvalidScmTypeError { status error } } }'
)

# The success branch selects only the id: the token Mobb echoes back is never needed.
UPDATE_SCM_TOKEN_MUTATION = (
    'mutation updateScmToken($scmType: String!, $url: String!, $token: String!, $org: String) {'
    ' updateScmToken(scmType: $scmType, url: $url, token: $token, org: $org) {'
    ' __typename'
    ' ... on ScmAccessTokenUpdateSuccess { id }'
    ' ... on InvalidScmTypeError { status error }'
    ' ... on BadScmCredentials { status error scmType }'
    ' ... on RepoUnreachableError { status error scmType } } }'
)


def connection_statuses_query(count, with_me=True):
    """Mobb's connection check for ``count`` SCM URLs ($u0, $u1, ...; answered as c0, c1, ...)
    and, ``with_me``, ``me`` with the stored tokens, in one document: GraphQL aliases ask one
    field many times. Named like the single check: it is the same question, asked for several servers."""
    variables = ', '.join('$u%d: String!' % index for index in range(count))
    checks = ' '.join('c%d: checkScmConnectionStatus(scmUrl: $u%d) { status }' % (index, index)
                      for index in range(count))
    me = ' me { %s }' % _ME_WITH_TOKENS_FIELDS if with_me else ''
    return 'query checkScmConnectionStatus(%s) { %s%s }' % (variables, checks, me)
