# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mobb GraphQL client shared by the mobb.scm Mobb modules.

The connection check can instead go to Mobb's REST endpoint for it (``rest_url``: a Hasura
RESTified endpoint, ``GET`` with ``scmUrl`` as a query parameter, the same ``x-mobb-key``,
the query's ``data`` without the GraphQL envelope); everything else is GraphQL.

One ``requests.Session`` per module run. Every failure becomes a ``MobbError`` whose text
is one line without any secret (the API key, a token sent or a stored token read); only a
module's ``main()`` turns it into ``fail_json``.

Retries, within one budget of ``retries`` per call, with exponential backoff and a
warning per retry; answers that mean "no" are never retried:

- Queries (reads, ``validateScmToken``): connection errors, timeouts, dropped
  connections, HTTP 502/503/504 and a proxy's HTML error page served with status 200.
- Mutations (``updateScmToken``): only a connection that could not be opened (refused,
  DNS failure, connect timeout, proxy unreachable), which proves Mobb never saw the
  request. A store that timed out may still land, and a repeat could land after the
  caller rolled back, leaving Mobb on a revoked token.

What a failed ``update_scm_token`` means:

- ``MobbUnknownOutcomeError`` (a ``MobbRequestError``): the request may have reached Mobb
  and its answer was lost or unreadable (read timeout, dropped connection, HTTP 5xx, a
  proxy page with status 200, an answer that is not GraphQL JSON or not a known result).
  Mobb may or may not have stored the token; read ``me`` to find out.
  Also a GraphQL error whose code does not say the mutation was refused:
  ``INTERNAL_ERROR`` (an action handler such as updateScmToken's may fail after it wrote),
  ``unexpected``, any other code or none.
- Every other ``MobbError``, a definite refusal: Mobb did not store the token.
  ``MobbScmError`` (``BadScmCredentials``, ``RepoUnreachableError``,
  ``InvalidScmTypeError``), a ``MobbGraphQLError`` whose codes are all refusals
  (``REFUSAL_CODES``: the key, the role or the request refused before anything ran),
  HTTP 3xx/4xx, a TLS certificate that failed verification, and a ``MobbRequestError``
  for a connection that could not be opened at all.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import ssl
import time
import traceback
import uuid
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.mobb.scm.plugins.module_utils import urls
from ansible_collections.mobb.scm.plugins.module_utils.mobb_errors import (
    MobbAccessDeniedError,
    MobbError,
    MobbGraphQLError,
    MobbOptionError,
    MobbRequestError,
    MobbSchemaMismatchError,
    MobbScmError,
    MobbUnknownOutcomeError,
)
from ansible_collections.mobb.scm.plugins.module_utils.mobb_queries import (
    CONNECTION_STATUS_QUERY,
    CONNECTION_STATUS_WITH_TOKENS_QUERY,
    ME_QUERY,
    ME_WITH_TOKENS_QUERY,
    UPDATE_SCM_TOKEN_MUTATION,
    VALIDATE_SCM_TOKEN_QUERY,
    connection_statuses_query,
)
from ansible_collections.mobb.scm.plugins.module_utils.transport import causes, one_line, root_cause, transport_reason

try:
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    # Lets _WarningRetry below be defined; MobbModule.client() refuses to run without requests.
    Retry = object
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_API_URL = 'https://api.mobb.ai/v1/graphql'
# Mobb's REST path for the connection check is not public (it is in Mobb's API docs).
REST_URL_EXAMPLE = 'https://api.mobb.ai/api/rest/<path from Mobb\'s API docs>'
REST_CHECK_OPERATION = 'checkScmConnectionStatus'
# Hasura codes that mean the request itself is wrong, not that Mobb is disconnected.
_REST_WRONG_ENDPOINT_CODES = ('not-found', 'method-not-allowed')
# Seconds before retry n (1-based): BACKOFF_SECONDS * 2 ** (n - 1), i.e. 0.5, 1, 2, 4, ...
BACKOFF_SECONDS = 0.5
TRANSIENT_STATUSES = (502, 503, 504)
# Hasura codes that prove a mutation was not applied: the key or the caller's role refused,
# or the request refused before it ran. Any other code on a mutation leaves its outcome unknown.
REFUSAL_CODES = ('access-denied', 'permission-error', 'validation-failed', 'parse-failed', 'invalid-json')
# Reverse proxies in front of Mobb answer 200 with one of these pages while it restarts.
PROXY_PAGE_PHRASES = ('bad gateway', 'gateway time-out', 'gateway timeout', 'service unavailable')
FINGERPRINT_LENGTH = 12
MAX_DETAIL_LENGTH = 300

MOBB_CONNECTION_ARGSPEC = dict(
    api_url=dict(type='str', default=DEFAULT_API_URL, fallback=(env_fallback, ['MOBB_API_URL'])),
    api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['MOBB_API_KEY'])),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    timeout=dict(type='int', default=30),
    retries=dict(type='int', default=3),
)


def token_fingerprint(token):
    """First 12 hex characters of the token's SHA-256: enough to compare, useless to attack."""
    if token is None:
        return None
    return hashlib.sha256(token.encode('utf-8')).hexdigest()[:FINGERPRINT_LENGTH]


def _parse_http_url(value, option, example=None):
    """urls.parse_http_url, refusing with MobbOptionError; ``example`` replaces the GitLab URL
    that urls offers as an example (api_url is Mobb's URL, not a GitLab server's)."""
    try:
        return urls.parse_http_url(value, option)
    except urls.UrlError as exc:
        message = str(exc)
        if example:
            message = re.sub(r', such as \S+,', ', such as %s,' % example, message)
        raise MobbOptionError(message) from None


# Remembered: a fleet's tokens each look themselves up among every integration of one shared
# ``me`` answer, so the same stored URLs are normalised once per token otherwise.
@functools.lru_cache(maxsize=8192)
def normalize_scm_url(value, option='scm_url'):
    """The SCM base URL as Mobb matches it, spelt as the GitLab client spells the server
    (urls.normalize_server_url): scheme and host lowercased, default port, trailing slashes
    and a trailing /api/v4 dropped. Raises MobbOptionError for anything but a plain http(s) URL."""
    try:
        return urls.normalize_server_url(value, option)
    except urls.UrlError as exc:
        raise MobbOptionError(str(exc)) from None


def find_scm_config(scm_configs, scm_type, scm_url, org=None):
    """The stored configs for this type, URL (normalised) and org; the URL as given first, then
    the normalised spelling."""
    wanted_url = normalize_scm_url(scm_url)
    matches = []
    for config in scm_configs or []:
        if not config or (config.get('scmType') or '').lower() != scm_type.lower():
            continue
        if (config.get('scmOrg') or None) != (org or None):
            continue
        try:
            stored_url = normalize_scm_url(config.get('scmUrl'))
        except MobbOptionError:
            continue
        if stored_url == wanted_url:
            matches.append(config)
    matches.sort(key=lambda config: (config.get('scmUrl') != scm_url, config.get('scmUrl') != wanted_url))
    return matches


def broker_host_for(me, scm_url):
    """The brokerHosts entry whose realDomain is this URL's host (case-insensitive), or None."""
    parts = urlsplit(normalize_scm_url(scm_url))
    names = {parts.hostname.lower(), parts.netloc.lower()}
    for membership in me.get('userOrganizationsAndUserOrganizationRoles') or []:
        organization = (membership or {}).get('organization') or {}
        for broker_host in organization.get('brokerHosts') or []:
            if broker_host and (broker_host.get('realDomain') or '').strip().lower() in names:
                return broker_host
    return None


class MobbHolding:
    """What Mobb holds for one SCM server, from one connection_status(with_tokens=True)
    answer: never the token itself, only its fingerprint until take_value() hands the value
    over once (to be shown to GitLab, then dropped)."""

    def __init__(self, status, scm_type, scm_url):
        configs = find_scm_config(status['me'].get('scmConfigs'), scm_type, scm_url)
        config = configs[0] if configs else {}
        self.connected = bool(status['connected'])
        self.message = status['message']
        self.stored = bool(config.get('isTokenAvailable'))
        self.last_update = config.get('tokenLastUpdate')
        value = config.get('token') if self.stored else None
        self.fingerprint = token_fingerprint(value)
        self._value = value
        self.brokered = broker_host_for(status['me'], scm_url) is not None
        # managed | other | dead | unproven | none: which token it is, once GitLab was asked.
        self.identity = 'unproven' if self.stored else 'none'
        self.token = None
        self.note = None
        if self.stored and not value:
            self.note = 'Mobb does not return the stored token, so which token it holds is unproven'

    def take_value(self):
        value, self._value = self._value, None
        return value

    def view(self):
        """Which token Mobb holds, never its value."""
        token = self.token or {}
        return dict(identity=self.identity, fingerprint=self.fingerprint, token_last_update=self.last_update,
                    token_id=token.get('id'), name=token.get('name'), expires_at=token.get('expires_at'),
                    days_left=token.get('days_left'), scopes=token.get('scopes'), note=self.note)


def describe_scm_config(config, scm_type, scm_url, org, fingerprint):
    """The scm_config return value: Mobb's record in snake_case, a fingerprint for the token."""
    config = config or {}
    return {
        'id': config.get('id'),
        'scm_type': config.get('scmType') or scm_type,
        'scm_url': config.get('scmUrl') or scm_url,
        'org': config.get('scmOrg') or org,
        'token_last_update': config.get('tokenLastUpdate'),
        'is_token_available': bool(config.get('isTokenAvailable')),
        'token_fingerprint': fingerprint,
    }


class _RetryBudget:
    """The retries one call may spend, shared by urllib3's retries and the proxy-page loop."""

    def __init__(self, limit, api_url, warn):
        self.limit = limit
        self.used = 0
        self._api_url = api_url
        self._warn = warn

    @property
    def remaining(self):
        return self.limit - self.used

    def delay(self):
        return BACKOFF_SECONDS * 2 ** (self.used - 1) if self.used else 0

    def spend(self, cause):
        self.used += 1
        self._warn('Mobb API at %s: %s; retry %d of %d in %.1f s'
                   % (self._api_url, cause, self.used, self.limit, self.delay()))


class _WarningRetry(Retry):
    """urllib3 Retry that charges each retry to a _RetryBudget (which warns) and sleeps by it."""

    def __init__(self, *args, **kwargs):
        self._budget = kwargs.pop('budget')
        super().__init__(*args, **kwargs)

    def new(self, **kwargs):
        kwargs['budget'] = self._budget
        return super().new(**kwargs)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if error is not None:
            cause = transport_reason(error)
        else:
            cause = ('HTTP %s %s' % (response.status, response.reason or '')).strip()
        self._budget.spend(cause)
        return retry

    def get_backoff_time(self):
        return self._budget.delay()


def _is_timeout(error):
    inner = root_cause(error)
    if isinstance(inner, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(error, requests.exceptions.Timeout) or isinstance(
        inner, (urllib3.exceptions.TimeoutError, TimeoutError))


def _never_sent(error):
    """Whether a transport error proves that the request never left: no connection could be
    opened (refused, DNS failure, connect timeout: urllib3's ConnectTimeoutError and its
    subclasses NewConnectionError and NameResolutionError), the proxy could not be reached,
    or the TLS handshake refused the server's certificate. Anything else may have been sent."""
    if isinstance(error, requests.exceptions.ProxyError):
        return True
    return any(isinstance(cause, (urllib3.exceptions.ConnectTimeoutError, ssl.SSLCertVerificationError))
               for cause in causes(error))


def _is_mutation(document):
    """Whether a GraphQL document is a mutation (its first definition, after comments)."""
    return re.match(r'\s*(#[^\n]*\n\s*)*mutation\b', document) is not None


def _proxy_page_phrase(response):
    """The proxy error phrase when this 200 answer is an HTML error page, else None."""
    content_type = response.headers.get('Content-Type', '').lower()
    head = response.text[:2048]
    if 'html' not in content_type and not head.lstrip().startswith('<'):
        return None
    lowered = head.lower()
    for phrase in PROXY_PAGE_PHRASES:
        if phrase in lowered:
            return phrase
    return None


class MobbClient:
    """Mobb's GraphQL API over one requests.Session."""

    def __init__(self, api_url, api_key, validate_certs=True, ca_path=None, timeout=30, retries=3, warn=None,
                 rest_url=None):
        if not HAS_REQUESTS:
            raise MobbOptionError(missing_required_lib('requests'))
        parts = _parse_http_url(api_url, 'api_url', example=DEFAULT_API_URL)
        rest_parts = _parse_http_url(rest_url, 'rest_url', example=REST_URL_EXAMPLE) if rest_url else None
        if not api_key or not api_key.strip():
            raise MobbOptionError('api_key is not set: give api_key or set MOBB_API_KEY to a Mobb API key')
        if timeout is None or timeout <= 0:
            raise MobbOptionError('timeout must be a positive number of seconds, got %r' % (timeout,))
        if retries is None or retries < 0:
            raise MobbOptionError('retries must be 0 or more, got %r' % (retries,))
        if validate_certs and ca_path and not os.path.isfile(ca_path):
            raise MobbOptionError('ca_path %s is not a file: give the PEM bundle of the CA that signed the Mobb '
                                  "API's certificate" % ca_path)
        self.api_url = urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ''))
        # Mobb's REST endpoint for the connection check; None: the check goes through GraphQL.
        self.rest_url = urlunsplit((rest_parts.scheme.lower(), rest_parts.netloc, rest_parts.path,
                                    rest_parts.query, '')) if rest_parts else None
        self._api_key = api_key.strip()
        # Every secret this client sent or read (the key, tokens given, stored tokens read):
        # none of them may appear in a message.
        self._secrets = {self._api_key}
        self._timeout = timeout
        self._retries = retries
        warn = warn or (lambda message: None)
        self._warn = lambda message: warn(urls.redact_text(message))
        if not validate_certs:
            self._verify = False
            # One task warning instead of urllib3's warning on stderr for every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._warn('validate_certs is false: the certificate of the Mobb API at %s is not checked' % self.api_url)
        elif ca_path:
            self._verify = ca_path
        else:
            self._verify = True
        # The x-hasura-request-id of the latest call, for Mobb support.
        self.last_request_id = None
        self._session = requests.Session()
        self._adapter = HTTPAdapter()
        self._session.mount('http://', self._adapter)
        self._session.mount('https://', self._adapter)
        self._session.headers.update({
            'x-mobb-key': self._api_key,
            'User-Agent': 'mobb.scm-ansible-collection',
        })

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._session.close()

    def execute(self, operation, document, variables=None):
        """POST one GraphQL operation and return its ``data``; GraphQL errors raise."""
        payload = self._post(operation, document, variables)
        if payload.get('errors'):
            errors = payload['errors']
            unrefused = [error for error in errors if _error_code(error) not in REFUSAL_CODES]
            if _is_mutation(document) and unrefused:
                raise self._unknown_outcome(operation, str(self._graphql_error(unrefused, operation)))
            raise self._graphql_error(errors, operation)
        data = payload.get('data')
        if not isinstance(data, dict):
            if _is_mutation(document):
                raise self._unknown_outcome(operation, 'Mobb answered %s without data or errors' % operation)
            raise MobbRequestError('Mobb answered %s without data or errors' % operation, self.last_request_id)
        return data

    def me(self, with_tokens=False):
        """The caller's Mobb user: scmConfigs (stored tokens only if with_tokens) and broker hosts."""
        data = self.execute('Me', ME_WITH_TOKENS_QUERY if with_tokens else ME_QUERY)
        return self._require_me(data.get('me'))

    def validate_scm_token(self, scm_type, scm_url, token, org=None):
        """Ask Mobb to check the token against the SCM without storing it; raises MobbScmError."""
        self._secrets.add(token)
        variables = {'scmType': scm_type, 'url': scm_url, 'token': token, 'scmOrg': org}
        data = self.execute('validateScmToken', VALIDATE_SCM_TOKEN_QUERY, variables)
        self._union_member(data.get('validateScmToken'), 'validateScmToken', 'ValidateScmTokenSuccess', variables)

    def update_scm_token(self, scm_type, scm_url, token, org=None):
        """Store the token in Mobb's integration for this SCM URL; returns the config id.

        Retried only when no connection could be opened. MobbUnknownOutcomeError: the request
        may have reached Mobb (its answer lost, unreadable, or an error that is not a refusal,
        such as INTERNAL_ERROR) and Mobb may or may not hold the token now. Any other
        MobbError: Mobb refused it and did not store it.
        """
        self._secrets.add(token)
        variables = {'scmType': scm_type, 'url': scm_url, 'token': token, 'org': org}
        data = self.execute('updateScmToken', UPDATE_SCM_TOKEN_MUTATION, variables)
        success = self._union_member(data.get('updateScmToken'), 'updateScmToken', 'ScmAccessTokenUpdateSuccess',
                                     variables, unknown_outcome=True)
        return success.get('id')

    def connection_status(self, scm_url, with_tokens=False):
        """Mobb's own connection check for scm_url plus the caller's ``me``.

        Returns {connected, message, me}: "not connected" is an answer, not an error; a
        refused key, a schema mismatch or an unreachable API still raise. With with_tokens,
        ``me.scmConfigs`` carry the stored ``token`` (null where Mobb does not return it).
        Through GraphQL: one request, or two when the check fails and Mobb answers without
        partial data. With ``rest_url``: the check through REST, then ``me`` through GraphQL.
        """
        if self.rest_url:
            answer = self.rest_connection_status(scm_url)
            answer['me'] = self.me(with_tokens=with_tokens)
            return answer
        variables = {'scmUrl': scm_url}
        document = CONNECTION_STATUS_WITH_TOKENS_QUERY if with_tokens else CONNECTION_STATUS_QUERY
        payload = self._post('checkScmConnectionStatus', document, variables)
        data = payload.get('data') if isinstance(payload.get('data'), dict) else {}
        self._remember_tokens(data.get('me'))
        errors = payload.get('errors') or []
        for error in errors:
            if _error_code(error) in ('access-denied', 'validation-failed'):
                raise self._graphql_error([error], 'checkScmConnectionStatus')
        me = data.get('me')
        if me is None:
            # Mobb failed the whole request because the check failed: read me on its own.
            me = self.me(with_tokens=with_tokens)
        else:
            me = self._require_me(me)
        status = (data.get('checkScmConnectionStatus') or {}).get('status')
        if errors:
            message = self._detail('; '.join(_error_message(error) for error in errors))
        else:
            message = _status_message(status, scm_url)
        return {'connected': not errors and status == 'OK', 'message': message, 'me': me}

    def connection_statuses(self, scm_urls, me=None):
        """Mobb's connection check for each of ``scm_urls`` and the caller's ``me`` (with the
        stored tokens), in one request: {scm_url: {connected, message, me}}, one ``me`` shared.
        Given ``me`` (read by such a request before), only the checks are asked.

        None when Mobb answers with errors: Mobb fails a whole request when one check fails, so
        the answer cannot tell which server is not connected; each is then asked on its own
        (connection_status). A refused key, a schema mismatch or an unreachable API raise.
        """
        urls = list(scm_urls)
        variables = {'u%d' % index: url for index, url in enumerate(urls)}
        payload = self._post('checkScmConnectionStatus', connection_statuses_query(len(urls), with_me=me is None),
                             variables)
        data = payload.get('data') if isinstance(payload.get('data'), dict) else {}
        errors = payload.get('errors') or []
        for error in errors:
            if _error_code(error) in ('access-denied', 'validation-failed'):
                raise self._graphql_error([error], 'checkScmConnectionStatus')
        if me is None:
            self._remember_tokens(data.get('me'))
            if errors or data.get('me') is None:
                return None
            me = self._require_me(data['me'])
        elif errors:
            return None
        statuses = {}
        for index, url in enumerate(urls):
            status = (data.get('c%d' % index) or {}).get('status')
            statuses[url] = {'connected': status == 'OK', 'message': _status_message(status, url), 'me': me}
        return statuses

    def adopt(self, status):
        """An answer another client of the same Mobb user read (connection_statuses): the
        tokens stored in it join the secrets this client keeps out of its messages."""
        self._remember_tokens(status.get('me'))

    def rest_connection_status(self, scm_url):
        """Mobb's connection check for scm_url through its REST endpoint (``rest_url``):
        {connected, message}. Retried as a query; "not connected" is an answer, a refused
        key, a wrong endpoint or an unreachable API raise."""
        if not self.rest_url:
            raise MobbOptionError('rest_url is not set: give the URL of Mobb\'s REST endpoint that checks the SCM '
                                  "connection status, from Mobb's API docs")
        request_id = self.last_request_id = str(uuid.uuid4())

        def send():
            # No redirects: requests would resend x-mobb-key to whatever host they name.
            return self._session.get(self.rest_url, params={'scmUrl': scm_url}, timeout=self._timeout,
                                     verify=self._verify, allow_redirects=False,
                                     headers={'x-hasura-request-id': request_id})

        response, budget = self._send(REST_CHECK_OPERATION, self.rest_url, False, request_id, send)
        return self._decode_rest(response, scm_url, request_id, budget)

    def _decode_rest(self, response, scm_url, request_id, budget):
        """A Hasura REST answer: the query's data, or ``{"path", "error", "code"}`` (or GraphQL
        ``errors``) for a failure."""
        url = self.rest_url
        try:
            payload = response.json()
        except ValueError:
            payload = None
        status = response.status_code
        errors = None
        if isinstance(payload, dict) and payload.get('errors'):
            errors = payload['errors'] if isinstance(payload['errors'], list) else [payload['errors']]
        elif isinstance(payload, dict) and status != 200 and ('error' in payload or 'code' in payload):
            errors = [{'message': payload.get('error'), 'extensions': {'code': payload.get('code')}}]
        if errors:
            for error in errors:
                code = _error_code(error)
                if code == 'access-denied':
                    raise self._graphql_error([error], REST_CHECK_OPERATION)
                if code == 'validation-failed' or code in _REST_WRONG_ENDPOINT_CODES:
                    detail = self._detail(_error_message(error))
                    raise MobbSchemaMismatchError(
                        "the Mobb REST endpoint at %s refused the connection check (HTTP %d, %s: %s): rest_url must "
                        "be Mobb's REST endpoint that checks the SCM connection status (from Mobb's API docs), "
                        'which takes scmUrl' % (url, status, code, detail), code, request_id)
            message = self._detail('; '.join(_error_message(error) for error in errors))
            return {'connected': False, 'message': message}
        if status in TRANSIENT_STATUSES:
            raise MobbRequestError('Mobb REST endpoint at %s still answered HTTP %d after %d retries: try again later'
                                   % (url, status, budget.used), request_id)
        if 300 <= status < 400:
            raise MobbRequestError('Mobb REST endpoint at %s redirects to %s (HTTP %d): set rest_url to the final URL'
                                   % (url, response.headers.get('Location') or 'nowhere', status), request_id)
        if status in (401, 403):
            raise MobbAccessDeniedError('Mobb REST endpoint at %s refused the request with HTTP %d: check api_key or '
                                        'MOBB_API_KEY' % (url, status), request_id=request_id)
        if status in (404, 405):
            raise MobbRequestError("no Mobb REST endpoint at %s (HTTP %d): rest_url must be the full URL of Mobb's "
                                   "REST endpoint that checks the SCM connection status, from Mobb's API docs"
                                   % (url, status), request_id)
        if status != 200:
            raise MobbRequestError('Mobb REST endpoint at %s answered %s with HTTP %d %s'
                                   % (url, REST_CHECK_OPERATION, status, response.reason or ''), request_id)
        if not isinstance(payload, dict):
            content_type = response.headers.get('Content-Type') or 'no content type'
            raise MobbRequestError("Mobb REST endpoint at %s answered with %s, not JSON: rest_url must be Mobb's REST "
                                   'endpoint that checks the SCM connection status' % (url, content_type), request_id)
        result = payload.get(REST_CHECK_OPERATION)
        state = result.get('status') if isinstance(result, dict) else None
        return {'connected': state == 'OK', 'message': _status_message(state, scm_url)}

    def _require_me(self, me):
        if not isinstance(me, dict):
            raise MobbAccessDeniedError('Mobb returned no user for this API key: check api_key or MOBB_API_KEY',
                                        request_id=self.last_request_id)
        self._remember_tokens(me)
        return me

    def _remember_tokens(self, me):
        """Add the stored tokens in a ``me`` answer to the secrets kept out of messages."""
        configs = me.get('scmConfigs') if isinstance(me, dict) else None
        for config in configs if isinstance(configs, list) else []:
            for key in ('token', 'refreshToken'):
                if isinstance(config, dict) and isinstance(config.get(key), str) and config[key]:
                    self._secrets.add(config[key])

    def _detail(self, text):
        """Words from Mobb (an error, a result) as a message may quote them: one line, no secret."""
        return one_line(text, self._secrets, MAX_DETAIL_LENGTH)

    def _retry_policy(self, budget, mutation):
        """urllib3's retries for one POST, charged to the call's budget."""
        policy = dict(budget=budget, total=budget.remaining, other=0, redirect=0,
                      allowed_methods=frozenset(['POST', 'GET']), raise_on_status=False, respect_retry_after_header=False)
        if mutation:
            # Only a connection that could not be opened proves that Mobb never saw the
            # mutation; after a timeout, a dropped connection or a 5xx it may have landed.
            policy.update(connect=budget.remaining, read=0, status=0, status_forcelist=())
        else:
            # Connection errors, dropped connections and 502/503/504: reads are safe to repeat.
            policy.update(status_forcelist=TRANSIENT_STATUSES)
        return _WarningRetry(**policy)

    def _post(self, operation, document, variables):
        """Send one operation with retries (its id in last_request_id); return the JSON payload."""
        request_id = self.last_request_id = str(uuid.uuid4())
        mutation = _is_mutation(document)
        body = {'query': document, 'variables': variables or {}, 'operationName': operation}

        def send():
            # No redirects: requests would resend x-mobb-key to whatever host they name.
            return self._session.post(self.api_url, json=body, timeout=self._timeout, verify=self._verify,
                                      allow_redirects=False, headers={'x-hasura-request-id': request_id})

        response, budget = self._send(operation, self.api_url, mutation, request_id, send)
        return self._decode(response, operation, request_id, budget, mutation)

    def _send(self, operation, url, mutation, request_id, send):
        """Call ``send()`` (one request to ``url``) under the retry policy; return the response
        that ends the retries and the budget it spent. Shared by GraphQL and the REST check."""
        budget = _RetryBudget(self._retries, url, self._warn)
        while True:
            # Retries inside this one request are charged to the same budget as the proxy-page loop.
            self._adapter.max_retries = self._retry_policy(budget, mutation)
            try:
                response = send()
            except requests.exceptions.RequestException as exc:
                raise self._request_error(exc, budget, operation, mutation, url) from exc
            if response.status_code == 200:
                phrase = _proxy_page_phrase(response)
                if phrase and mutation:
                    raise self._unknown_outcome(operation, 'the Mobb API at %s answered %s with a proxy page saying "%s"'
                                                % (url, operation, phrase))
                if phrase and budget.remaining > 0:
                    budget.spend('HTTP 200 with a proxy page saying "%s"' % phrase)
                    time.sleep(budget.delay())
                    continue
                if phrase:
                    raise MobbRequestError(
                        'Mobb API at %s still answered with a proxy page saying "%s" after %d retries: '
                        'Mobb or a proxy in front of it is unavailable, try again later'
                        % (url, phrase, budget.used), request_id)
            return response, budget

    def _decode(self, response, operation, request_id, budget, mutation):
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get('errors'):
            return payload
        status = response.status_code
        if mutation and status >= 500:
            raise self._unknown_outcome(operation, 'the Mobb API at %s answered %s with %s' % (
                self.api_url, operation, ('HTTP %d %s' % (status, response.reason or '')).strip()))
        if status in TRANSIENT_STATUSES:
            raise MobbRequestError('Mobb API at %s still answered HTTP %d after %d retries: try again later'
                                   % (self.api_url, status, budget.used), request_id)
        if 300 <= status < 400:
            raise MobbRequestError('Mobb API at %s redirects to %s (HTTP %d): set api_url to the final GraphQL URL'
                                   % (self.api_url, response.headers.get('Location') or 'nowhere', status), request_id)
        if status in (401, 403):
            raise MobbAccessDeniedError('Mobb API at %s refused the request with HTTP %d: check api_key or MOBB_API_KEY'
                                        % (self.api_url, status), request_id=request_id)
        if status in (404, 405):
            raise MobbRequestError('no Mobb GraphQL endpoint at %s (HTTP %d): api_url must be the full GraphQL URL, '
                                   'such as %s' % (self.api_url, status, DEFAULT_API_URL), request_id)
        if status != 200:
            raise MobbRequestError('Mobb API at %s answered %s with HTTP %d %s'
                                   % (self.api_url, operation, status, response.reason or ''), request_id)
        if not isinstance(payload, dict):
            content_type = response.headers.get('Content-Type') or 'no content type'
            if mutation:
                raise self._unknown_outcome(operation, 'the Mobb API at %s answered %s with %s, not GraphQL JSON'
                                            % (self.api_url, operation, content_type))
            raise MobbRequestError('Mobb API at %s answered with %s, not GraphQL JSON: api_url must be the full '
                                   'GraphQL URL, such as %s' % (self.api_url, content_type, DEFAULT_API_URL), request_id)
        return payload

    def _request_error(self, exc, budget, operation, mutation, url=None):
        url = url or self.api_url
        option = 'api_url' if url == self.api_url else 'rest_url'
        after = ' after %d retries' % budget.used if budget.used else ''
        reason = transport_reason(exc)
        if mutation and not _never_sent(exc):
            if _is_timeout(exc):
                return self._unknown_outcome(operation, 'the Mobb API at %s did not answer %s within %s s'
                                             % (url, operation, self._timeout))
            return self._unknown_outcome(operation, 'the connection to the Mobb API at %s failed while %s was sent '
                                                    'or answered (%s)' % (url, operation, reason))
        if isinstance(exc, requests.exceptions.SSLError):
            return MobbRequestError('TLS verification of the Mobb API at %s failed (%s): set ca_path to the CA '
                                    'bundle that signed its certificate' % (url, reason))
        if isinstance(exc, requests.exceptions.ProxyError):
            return MobbRequestError('the proxy for %s failed%s (%s): check HTTPS_PROXY and NO_PROXY'
                                    % (url, after, reason))
        if _is_timeout(exc):
            return MobbRequestError('the Mobb API at %s did not answer within %s s%s: check %s and the '
                                    'network, or raise timeout' % (url, self._timeout, after, option))
        return MobbRequestError('cannot reach the Mobb API at %s%s (%s): check %s and the network'
                                % (url, after, reason, option))

    def _unknown_outcome(self, operation, cause):
        """The error for a mutation that may have reached Mobb: its outcome is not known."""
        what = 'stored the token' if operation == 'updateScmToken' else 'applied %s' % operation
        return MobbUnknownOutcomeError(
            '%s: Mobb may or may not have %s; %s is not retried, since the first attempt may have landed or may '
            'still land'
            % (cause, what, operation), self.last_request_id)

    def _graphql_error(self, errors, operation):
        request_id = self.last_request_id
        first = errors[0] if isinstance(errors[0], dict) else {'message': str(errors[0])}
        code = _error_code(first)
        detail = self._detail('; '.join(_error_message(error) for error in errors))
        if code == 'access-denied':
            return MobbAccessDeniedError(
                'Mobb refused the API key (access-denied: %s): check api_key or MOBB_API_KEY, and that api_url '
                'is the Mobb deployment that issued it' % detail, code, request_id)
        if code == 'permission-error':
            return MobbGraphQLError(
                "Mobb refused %s for this API key's user (permission-error: %s): changing the SCM integration "
                'needs role Admin or Owner in the Mobb organization' % (operation, detail), code, request_id)
        if code == 'validation-failed':
            return MobbSchemaMismatchError(
                "Mobb rejected the collection's %s request (validation-failed: %s): this Mobb's GraphQL schema "
                'does not match what mobb.scm expects' % (operation, detail), code, request_id)
        return MobbGraphQLError('Mobb answered %s with an error (%s: %s)' % (operation, code or 'no code', detail),
                                code, request_id)

    def _union_member(self, result, operation, success_type, variables, unknown_outcome=False):
        """The success member of a union result; an error member raises MobbScmError. With
        unknown_outcome (a mutation), a missing or unknown member raises MobbUnknownOutcomeError."""
        scm_type = variables.get('scmType')
        scm_url = variables.get('url')
        if not isinstance(result, dict):
            if unknown_outcome:
                raise self._unknown_outcome(operation, 'Mobb answered %s without a result' % operation)
            raise MobbRequestError('Mobb answered %s without a result' % operation, self.last_request_id)
        typename = result.get('__typename')
        if typename == success_type:
            return result
        detail = self._detail(result.get('error') or 'no detail')
        if typename == 'BadScmCredentials':
            message = ('%s at %s rejected the token (BadScmCredentials: %s): check that it is active, not expired '
                       'and has scope api (a personal access token also needs read_user; a project or group token '
                       'needs role Developer or higher)' % (scm_type, scm_url, detail))
        elif typename == 'RepoUnreachableError':
            message = ('Mobb cannot reach %s at %s (RepoUnreachableError: %s): check that the broker is connected '
                       'and reaches the server, and that scm_url is the URL Mobb knows it by'
                       % (scm_type, scm_url, detail))
        elif typename == 'InvalidScmTypeError':
            message = ('Mobb does not accept scm_type %r (InvalidScmTypeError: %s): use GitLab for a GitLab Server'
                       % (scm_type, detail))
        elif unknown_outcome:
            raise self._unknown_outcome(operation, 'Mobb answered %s with an unexpected result type %s'
                                        % (operation, self._detail(typename)))
        else:
            message = 'Mobb answered %s with an unexpected result type %s' % (operation, typename)
        raise MobbScmError(message, typename, self.last_request_id)


def _status_message(status, scm_url):
    """Why a connection status that Mobb answered without errors is not OK (None when it is)."""
    if status is None:
        return 'Mobb returned no connection status for %s' % scm_url
    if status != 'OK':
        return 'Mobb reports connection status %s for %s' % (status, scm_url)
    return None


def _error_code(error):
    if not isinstance(error, dict):
        return None
    return (error.get('extensions') or {}).get('code')


def _error_message(error):
    if isinstance(error, dict):
        return str(error.get('message') or 'no message')
    return str(error)


class MobbModule(AnsibleModule):
    """AnsibleModule with the Mobb connection options merged in and a client built from them."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(MOBB_CONNECTION_ARGSPEC)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        # A credential in a URL option (api_url, rest_url, scm_url) is masked in the result's invocation too.
        for name in spec:
            if name.endswith('url'):
                self.no_log_values.update(urls.url_secrets(self.params.get(name)))

    def client(self):
        """A MobbClient for this module's connection options; warnings go to the task result."""
        return MobbClient(
            api_url=self.params['api_url'],
            api_key=self.params['api_key'],
            validate_certs=self.params['validate_certs'],
            ca_path=self.params['ca_path'],
            timeout=self.params['timeout'],
            retries=self.params['retries'],
            warn=self.warn,
            # Only the modules that take rest_url (mobb_connection_info) check through REST.
            rest_url=self.params.get('rest_url'),
        )


def run_module(argument_spec, run, **options):
    """A Mobb module's main(): a MobbModule for ``argument_spec`` and ``options``, then exit with
    what ``run(module, client)`` returns; a MobbError fails the task with its one line."""
    module = MobbModule(argument_spec=argument_spec, **options)
    try:
        with module.client() as client:
            result = run(module, client)
    except MobbError as exc:
        module.fail_json(msg=str(exc), **exc.result_fields())
    else:
        module.exit_json(**result)
