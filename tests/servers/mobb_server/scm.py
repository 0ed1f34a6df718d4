"""How the local Mobb server checks a GitLab token: over real HTTP, as Mobb would.

``GET {scm_url}/api/v4/user`` with ``PRIVATE-TOKEN`` (what a GitLab client's ``auth()``
does) says whether GitLab accepts the token; ``GET /api/v4/personal_access_tokens/self``
then says whether it carries the ``api`` scope Mobb needs to open merge requests (project
and group tokens answer there too; a GitLab older than 15.5 answers 404 and the scope
check is skipped). For a URL whose host is a broker host's ``real_domain``, Mobb goes
through the broker: a tunnel that is down means unreachable without contacting GitLab.
"""
from __future__ import annotations

import asyncio
import dataclasses
import ssl

import aiohttp

# How the local Mobb's token checks name themselves to GitLab (its request log shows it).
USER_AGENT = 'Mobb SCM check (mobb_server)'

# Mobb's CLI shows this text for RepoUnreachableError; the server answers with it.
UNREACHABLE_MESSAGE = ('Mobb could not reach the repository. Please try again. If Mobb is connected '
                       'through a broker, please make sure the broker is connected.')
REQUIRED_SCOPE = 'api'

OK = 'ok'
UNAUTHORIZED = 'unauthorized'
INSUFFICIENT_SCOPE = 'insufficient_scope'
UNREACHABLE = 'unreachable'
BROKER_DOWN = 'broker_down'


@dataclasses.dataclass
class Verdict:
    """Outcome of checking a token: ``outcome`` is one of the constants above.

    ``message`` is what Mobb tells the caller; ``detail`` says why, for the request log
    (never a secret).
    """
    outcome: str
    message: str
    detail: str

    @property
    def ok(self):
        return self.outcome == OK


def _unreachable(detail):
    return Verdict(UNREACHABLE, UNREACHABLE_MESSAGE, detail)


class GitLabChecker:
    def __init__(self, ca_path=None):
        self.ssl_context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
        self.session = None

    async def close(self):
        if self.session is not None:
            await self.session.close()

    def _session(self):
        if self.session is None or self.session.closed:
            # One pooled session, like a long-running service; no cookies between users.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=50),
                cookie_jar=aiohttp.DummyCookieJar(), headers={'User-Agent': USER_AGENT})
            # aiohttp resends an idempotent request once when the server drops the
            # connection; Mobb is modelled as making one attempt, so a dropped GitLab
            # request is "unreachable". aiohttp's own test client turns it off the same way.
            self.session._retry_connection = False  # pylint: disable=protected-access
        return self.session

    async def check(self, scm_url, token, broker=None, timeout=5.0, require_api_scope=True):
        """Check ``token`` against the GitLab at ``scm_url``; a Verdict, never an exception."""
        if broker is not None and not broker.up:
            return Verdict(BROKER_DOWN, UNREACHABLE_MESSAGE,
                           f'broker tunnel for {broker.real_domain} ({broker.virtual_domain}) is down')
        status, body, failure = await self._get(f'{scm_url}/api/v4/user', token, timeout)
        if failure:
            return _unreachable(failure)
        if status == 401:
            reason = body.get('error_description') or body.get('message') or 'unauthorized'
            return Verdict(UNAUTHORIZED, f'Invalid SCM credentials: GitLab rejected the token ({reason})',
                           f'GET /api/v4/user: 401 {reason}')
        if status == 403 and body.get('error') == 'insufficient_scope':
            return Verdict(INSUFFICIENT_SCOPE,
                           f'Invalid SCM credentials: the token lacks the scopes Mobb needs (GitLab: '
                           f'insufficient_scope; Mobb requires {REQUIRED_SCOPE})',
                           'GET /api/v4/user: 403 insufficient_scope')
        if status != 200 or 'id' not in body:
            return _unreachable(f'GET /api/v4/user: unexpected answer {status}')
        if not require_api_scope:
            return Verdict(OK, '', f'GitLab user {body.get("username")}')
        status, self_body, failure = await self._get(f'{scm_url}/api/v4/personal_access_tokens/self',
                                                     token, timeout)
        if failure:
            return _unreachable(failure)
        if status == 404:
            return Verdict(OK, '', f'GitLab user {body.get("username")}; scopes not reported (404)')
        if status != 200 or not isinstance(self_body.get('scopes'), list):
            return _unreachable(f'GET /api/v4/personal_access_tokens/self: unexpected answer {status}')
        if REQUIRED_SCOPE not in self_body['scopes']:
            scopes = ', '.join(self_body['scopes']) or 'none'
            return Verdict(INSUFFICIENT_SCOPE,
                           f'Invalid SCM credentials: the token has scopes {scopes}; Mobb requires '
                           f'{REQUIRED_SCOPE}',
                           f'token scopes {scopes}')
        return Verdict(OK, '', f'GitLab user {body.get("username")}')

    async def get_json(self, url, token, timeout):
        """``(status, JSON object or {}, failure text or None)`` of a GitLab GET."""
        return await self._get(url, token, timeout)

    async def _get(self, url, token, timeout):
        try:
            async with self._session().get(
                    url, headers={'PRIVATE-TOKEN': token, 'Accept': 'application/json'},
                    timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as response:
                status = response.status
                if status >= 500 or status == 429:
                    return status, {}, f'GET {response.url.path}: GitLab answered {status}'
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    return status, {}, f'GET {response.url.path}: answer {status} is not JSON'
                return status, body if isinstance(body, dict) else {'list': body}, None
        except asyncio.TimeoutError:
            return 0, {}, f'no answer from {url.split("/api/")[0]} within {timeout:g}s'
        except aiohttp.ClientError as error:
            return 0, {}, f'{type(error).__name__} contacting {url.split("/api/")[0]}'
