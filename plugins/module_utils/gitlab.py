# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way mobb.scm modules reach GitLab: options, client, retries and error messages.

Modules build a GitLabModule, call connect() for a client, and wrap every GitLab call in
``client.errors(action)`` so that failures become a GitLabModuleError carrying one line
that names the operation, the object and GitLab's own words. Only main() calls fail_json.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.mobb.scm.plugins.module_utils.transport import one_line, transport_reason
from ansible_collections.mobb.scm.plugins.module_utils.urls import (
    UrlError,
    normalize_server_url,
    url_secrets,
)

try:
    import gitlab
    # python-gitlab imports its API objects when the first client is built. Imported here,
    # they load once in ansible-core's main process, which the rotation action's workers
    # fork from, instead of once per host (about 30 ms each).
    import gitlab.v4.objects  # noqa: F401  pylint: disable=unused-import
    import requests
except ImportError:
    GITLAB_IMPORT_ERROR = traceback.format_exc()
    _GitlabBase = object
else:
    GITLAB_IMPORT_ERROR = None
    _GitlabBase = gitlab.Gitlab


CONNECTION_ARGSPEC = dict(
    api_url=dict(type='str', fallback=(env_fallback, ['GITLAB_URL'])),
    api_token=dict(type='str', no_log=True),
    api_oauth_token=dict(type='str', no_log=True),
    api_job_token=dict(type='str', no_log=True),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    timeout=dict(type='int', default=30),
    retries=dict(type='int', default=3),
)

# Option and environment variable per credential, in the order the environment is tried.
CREDENTIALS = (
    ('api_token', 'GITLAB_TOKEN'),
    ('api_oauth_token', 'GITLAB_OAUTH_TOKEN'),
    ('api_job_token', 'CI_JOB_TOKEN'),
)

# How the collection names itself to GitLab (its logs show who called), as to Mobb.
USER_AGENT = 'mobb.scm-ansible-collection'

# Methods GitLab applies at most once whatever the number of requests.
_REPEATABLE_METHODS = ('get', 'head', 'delete')

_HTML_TITLE = re.compile(r'<title[^>]*>(.*?)</title>', re.IGNORECASE | re.DOTALL)


class GitLabModuleError(Exception):
    """A failure to report as the module's one-line ``msg``."""

    def __init__(self, message, exception=None, maybe_applied=False, status=None):
        super().__init__(one_line(message))
        self.exception = exception
        # A write that got no clear answer: GitLab may have applied it.
        self.maybe_applied = maybe_applied
        # The HTTP status GitLab answered with; None when no answer came.
        self.status = status


class GitLabModule(AnsibleModule):
    """AnsibleModule with the shared connection options and check mode support."""

    def __init__(self, argument_spec, mutually_exclusive=(), **kwargs):
        spec = dict(CONNECTION_ARGSPEC)
        spec.update(argument_spec)
        exclusive = [tuple(name for name, _variable in CREDENTIALS)]
        exclusive.extend(mutually_exclusive)
        super().__init__(argument_spec=spec, mutually_exclusive=exclusive,
                         supports_check_mode=True, **kwargs)
        # A credential in api_url (refused by connect()) is masked in the result's invocation too.
        self.no_log_values.update(url_secrets(self.params.get('api_url')))

    def connect(self):
        """Return a GitLabClient for the connection options; no request is made.

        A credential taken from the environment is added to no_log_values, so that it is
        masked in this module's output like an api_token given as an option.
        """
        client, secrets = connect(self.params)
        self.no_log_values.update(secrets)
        return client


def connect(params):
    """A GitLabClient for the connection options in ``params``, and the secrets it sends.

    The one way to build a client, with or without an AnsibleModule (an action plugin
    calls it on the controller). ``params`` holds every CONNECTION_ARGSPEC option after
    validation against it (defaults and the GITLAB_URL fallback applied), as
    AnsibleModule.params or an action's validate_argument_spec() give them. With no
    credential option set, the first of GITLAB_TOKEN, GITLAB_OAUTH_TOKEN and CI_JOB_TOKEN
    set in os.environ is used. Returns ``(client, secrets)``: ``secrets`` lists the
    credential values the client sends, to be kept out of any output. No request is made;
    unusable options raise GitLabModuleError.
    """
    if GITLAB_IMPORT_ERROR:
        raise GitLabModuleError(missing_required_lib('python-gitlab'), exception=GITLAB_IMPORT_ERROR)
    if not params['api_url']:
        raise GitLabModuleError(
            'api_url is required: set it (for example once, with module_defaults for '
            'group/mobb.scm.gitlab) or the GITLAB_URL environment variable')
    try:
        url = normalize_server_url(params['api_url'], 'api_url')
    except UrlError as error:
        raise GitLabModuleError(str(error)) from None
    keyword, secret = _credential(params)
    if params['timeout'] < 1:
        raise GitLabModuleError('timeout must be at least 1 second, got %d' % params['timeout'])
    if params['retries'] < 0:
        raise GitLabModuleError('retries must be 0 or more, got %d' % params['retries'])
    verify = params['validate_certs']
    if verify and params['ca_path']:
        if not os.path.isfile(params['ca_path']):
            raise GitLabModuleError(
                'ca_path %s is not a file: give the PEM file of the CA that signed '
                "GitLab's certificate" % params['ca_path'])
        verify = params['ca_path']
    client = GitLabClient(url=url, ssl_verify=verify, timeout=params['timeout'],
                          retries=params['retries'], **{keyword: secret})
    return client, [secret]


def _credential(params):
    """python-gitlab's keyword and the value of the one credential: an option, else the
    first environment variable set."""
    given = [(option, params[option]) for option, _variable in CREDENTIALS if params[option]]
    if not given:
        given = [(option, os.environ[variable]) for option, variable in CREDENTIALS
                 if os.environ.get(variable)]
    if not given:
        raise GitLabModuleError(
            'no GitLab credentials: set api_token (or api_oauth_token or api_job_token), '
            'or the GITLAB_TOKEN environment variable')
    option, value = given[0]
    keyword = {'api_token': 'private_token', 'api_oauth_token': 'oauth_token',
               'api_job_token': 'job_token'}[option]
    return keyword, value


class GitLabClient(_GitlabBase):
    """python-gitlab's client with this collection's retry policy and GitLab's own date."""

    def __init__(self, url, retries, **kwargs):
        super().__init__(url, retry_transient_errors=True, user_agent=USER_AGENT, **kwargs)
        self.retries = retries
        self.server_date = None
        self.session.hooks['response'].append(self._remember_date)

    def http_request(self, verb, path, *args, **kwargs):
        kwargs.setdefault('max_retries', self.retries)
        if verb.lower() not in _REPEATABLE_METHODS:
            # A create or rotate may have been applied before a 5xx or a timeout reached us;
            # sending it again would issue a second token, or make GitLab's reuse detection
            # revoke the token a self-rotation just issued. A 429 means GitLab did not act,
            # and python-gitlab still retries those.
            kwargs['retry_transient_errors'] = False
        return super().http_request(verb, path, *args, **kwargs)

    def _remember_date(self, response, *args, **kwargs):
        try:
            moment = email.utils.parsedate_to_datetime(response.headers.get('Date', ''))
        except (TypeError, ValueError):
            return
        if moment.tzinfo is not None:
            self.server_date = moment.astimezone(datetime.timezone.utc).date()

    def today(self):
        """GitLab's date (from its last answer), else the controller's UTC date."""
        return self.server_date or datetime.datetime.now(datetime.timezone.utc).date()

    @contextlib.contextmanager
    def errors(self, action, hints=None, write=False):
        """Turn a failure of the GitLab calls inside into a GitLabModuleError about ``action``.

        ``hints`` maps an HTTP status to advice for this operation, or to a function of
        GitLab's message that returns the advice (where one status has several causes);
        ``write`` marks requests that are not retried, so the advice says GitLab may have
        applied them.
        """
        try:
            yield
        except (gitlab.exceptions.GitlabError, requests.exceptions.RequestException) as error:
            raise GitLabModuleError(describe_error(
                error, action, url=self.url, timeout=self.timeout, retries=self.retries,
                hints=hints, write=write), maybe_applied=write and _unanswered(error),
                status=getattr(error, 'response_code', None)) from None


def _unanswered(error):
    """True when a request may have been applied although no clear answer came back."""
    if isinstance(error, requests.exceptions.SSLError):
        return False
    if isinstance(error, requests.exceptions.RequestException):
        return True
    if isinstance(error, gitlab.exceptions.GitlabParsingError):
        return True
    code = getattr(error, 'response_code', None)
    return code is None or code >= 500


def gitlab_message(body):
    """GitLab's own explanation from an error body (bytes or text), in one line."""
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    body = (body or '').strip()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        if data.get('error_description'):
            return one_line(data['error_description'])
        return _flatten_message(data.get('message', data.get('error', data)))
    if body.startswith('<') or '<html' in body[:500].lower():
        title = _HTML_TITLE.search(body)
        if title and one_line(title.group(1)):
            return 'an HTML page titled "%s"' % one_line(title.group(1))[:120]
        return 'an HTML page'
    return one_line(body)[:300] or '(an empty answer)'


def _flatten_message(message):
    # GitLab renders model validation as {"field": ["msg", ...]} and app rate limits as
    # {"error": "..."}; show them as "field msg" sentences.
    if isinstance(message, dict):
        parts = []
        for key, value in message.items():
            values = value if isinstance(value, list) else [value]
            texts = ' '.join(str(item) for item in values)
            parts.append(texts if key in ('error', 'base') else '%s %s' % (key, texts))
        return one_line('; '.join(parts))
    if isinstance(message, list):
        return one_line('; '.join(str(item) for item in message))
    return one_line(message)


def _error_detail(body):
    """The raw JSON ``error`` code and ``scope`` of a token failure, if any."""
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    try:
        data = json.loads(body or '')
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    return data.get('error'), data.get('scope')


def describe_error(error, action, url, timeout, retries, hints=None, write=False):
    """One line: what could not be done, GitLab's (or the network's) reason, what to do."""
    hints = hints or {}
    lead = 'Could not %s' % action
    may_have_applied = (
        'GitLab may have applied it before the failure: check the token with '
        'mobb.scm.gitlab_access_token_info (and re-run, with force if its secret was lost)')
    if isinstance(error, requests.exceptions.SSLError):
        return one_line(
            "%s: the TLS certificate of %s could not be verified (%s). Set ca_path to the CA "
            "file that signed GitLab's certificate (validate_certs=false only for test servers)"
            % (lead, url, transport_reason(error)))
    if isinstance(error, requests.exceptions.Timeout):
        advice = may_have_applied if write else 'raise timeout or check the network path to GitLab'
        tries = '' if write else ' after %d retries' % retries
        return one_line('%s: GitLab at %s did not answer within %s seconds%s; %s'
                        % (lead, url, timeout, tries, advice))
    if isinstance(error, requests.exceptions.ConnectionError):
        advice = may_have_applied if write else (
            'check api_url and that GitLab is reachable from the host running the module')
        return one_line('%s: no connection to GitLab at %s (%s); %s'
                        % (lead, url, transport_reason(error), advice))
    if isinstance(error, requests.exceptions.RequestException):
        return one_line('%s: the request to GitLab at %s failed (%s)' % (lead, url, transport_reason(error)))
    if isinstance(error, gitlab.exceptions.RedirectError):
        return one_line('%s: GitLab at %s redirected a write request, which would turn it into a '
                        'read; set api_url to the address it redirects to (https:// ?)' % (lead, url))
    if isinstance(error, gitlab.exceptions.GitlabParsingError) or error.response_code is None:
        text = ("%s: the answer from %s is not GitLab's JSON; check that api_url is GitLab's base "
                'URL and that no proxy or login page stands in front of it' % (lead, url))
        return one_line('%s. %s' % (text, may_have_applied) if write else text)
    code = error.response_code
    message = gitlab_message(error.response_body or error.error_message)
    if message.startswith('%d ' % code):
        message = message[len('%d ' % code):]
    text = '%s: GitLab answered %d: %s' % (lead, code, message.rstrip('.'))
    hint = hints.get(code)
    if callable(hint):
        hint = hint(message)
    hint = _credential_hint(code, error, message) or hint or _default_hint(code, message, retries, write)
    if write and code >= 500:
        hint = '%s; %s' % (hint, may_have_applied) if hint else may_have_applied
    return one_line('%s. %s' % (text, hint) if hint else text)


def _credential_hint(code, error, message):
    """What is wrong with the api_token itself, when GitLab says so; it beats any other advice."""
    error_code, scope = _error_detail(error.response_body)
    if code == 401 and 'expired' in message.lower():
        return 'The api_token has expired: give a current token'
    if code == 401 and 'revoked' in message.lower():
        return 'The api_token was revoked: give a current token'
    if code == 403 and error_code == 'insufficient_scope':
        needed = (scope or 'api').split()
        if len(needed) == 1:
            return "The api_token lacks the '%s' scope: use a token with it" % needed[0]
        return 'The api_token lacks the scope this needs (one of %s): use a token with one' % (
            ', '.join(needed))
    return ''


def _default_hint(code, message, retries, write):
    if 'Expires at must be before' in message:
        return ("GitLab caps token lifetime (365 days unless an administrator set less): "
                'use a smaller expires_in_days or an earlier expires_at')
    if code == 401:
        return ('Check that api_token is a valid token for this GitLab and that its user may '
                'see this object')
    if code == 403:
        return "The api_token's user lacks the rights for this"
    if code == 404:
        return "Check that it exists and that the api_token's user can see it"
    if code == 429:
        return 'GitLab still rate-limited it after %d retries: run later, or raise retries' % retries
    if code >= 500 and not write:
        return 'GitLab still failed after %d retries: try again later' % retries
    return ''
