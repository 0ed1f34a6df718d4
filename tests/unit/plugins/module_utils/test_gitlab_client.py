"""connect() and TokenOwner.revoke() over real HTTP against the local GitLab.

What the local GitLab cannot produce, a 200 with a JSON body answering a DELETE, comes from
``RewritingProxy``: a small threaded HTTP server in this file that forwards every request
to the local GitLab and may replace the answer to a DELETE.
"""
from __future__ import annotations

import http.server
import json
import threading

import pytest
import requests

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import (
    CONNECTION_ARGSPEC, GitLabModuleError, connect)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import PersonalTokens, ProjectTokens, token_itself

CREDENTIAL_VARIABLES = ('GITLAB_TOKEN', 'GITLAB_OAUTH_TOKEN', 'CI_JOB_TOKEN')


def options(**given):
    """The connection options as AnsibleModule gives them: every key, defaults applied."""
    params = {name: spec.get('default') for name, spec in CONNECTION_ARGSPEC.items()}
    params.update(given)
    return params


@pytest.fixture(autouse=True)
def no_credentials_in_the_environment(monkeypatch):
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def broker_token(gitlab):
    """An active personal access token of user mobb-broker, as the local GitLab seeded it."""
    return gitlab.seed(users=[{'username': 'mobb-broker'}],
                       tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb'}])['tokens'][0]


def admin_client(gitlab, url=None, **given):
    client, _secrets = connect(options(api_url=url or gitlab.url, api_token=gitlab.admin_token, **given))
    return client


def token_record(gitlab, token_id):
    return next(record for record in gitlab.tokens() if record['id'] == token_id)


def logged(gitlab):
    return [(entry['method'], entry['path'], entry['status'], entry['fault']) for entry in gitlab.requests()]


def assert_no_secret_in(text, gitlab):
    assert not [secret for secret in gitlab.secrets() if secret in text]


# ---- connect ------------------------------------------------------------------------------

@pytest.mark.parametrize('spelling', ['{url}', '{url}/', '{url}/api/v4', '{url}/api/v4/', '{upper}/API/V4/'])
def test_every_spelling_of_the_server_reaches_the_same_api(gitlab, spelling):
    upper = gitlab.url.replace('http://', 'HTTP://')
    client = admin_client(gitlab, url=spelling.format(url=gitlab.url, upper=upper))
    assert client.url == gitlab.url
    assert gitlab.requests() == []  # connect() itself asks nothing
    client.auth()
    assert client.user.username == 'root'
    assert logged(gitlab) == [('GET', '/api/v4/user', 200, None)]


def test_scheme_and_host_case_do_not_matter():
    client, _secrets = connect(options(api_url='HTTPS://GitLab.Example.COM:443/gitlab/api/v4/', api_token='x'))
    assert client.url == 'https://gitlab.example.com/gitlab'
    assert client.api_url == 'https://gitlab.example.com/gitlab/api/v4'


@pytest.mark.parametrize('url, message', [
    ('gitlab.example.com', "api_url must be an http(s) URL with a host, such as https://gitlab.example.com, "
                           "got 'gitlab.example.com'"),
    ('ftp://gitlab.example.com', 'api_url must be an http(s) URL with a host'),
    ('https://root:hunter2@gitlab.example.com', 'api_url must not carry credentials (user:password@): '
                                                'remove them from the URL'),
    ('https://gitlab.example.com:99999', "api_url has an invalid port: 'https://gitlab.example.com:99999'"),
    ('', 'api_url is required: set it (for example once, with module_defaults for group/mobb.scm.gitlab) '
         'or the GITLAB_URL environment variable'),
])
def test_unusable_api_url_is_a_module_error_naming_the_option(url, message):
    with pytest.raises(GitLabModuleError) as caught:
        connect(options(api_url=url, api_token='x'))
    assert str(caught.value).startswith(message)
    assert 'hunter2' not in str(caught.value)


def test_credentials_fall_back_to_the_environment_in_order(gitlab, monkeypatch):
    monkeypatch.setenv('CI_JOB_TOKEN', 'job-token-from-ci')
    client, secrets = connect(options(api_url=gitlab.url))
    assert (client.job_token, client.private_token, secrets) == ('job-token-from-ci', None, ['job-token-from-ci'])

    monkeypatch.setenv('GITLAB_TOKEN', gitlab.admin_token)
    client, secrets = connect(options(api_url=gitlab.url))
    assert (client.private_token, client.job_token, secrets) == (gitlab.admin_token, None, [gitlab.admin_token])
    client.auth()
    assert client.user.username == 'root'


def test_a_credential_option_wins_over_the_environment(gitlab, monkeypatch):
    monkeypatch.setenv('GITLAB_TOKEN', 'glpat-from-the-environment')
    client, secrets = connect(options(api_url=gitlab.url, api_oauth_token=gitlab.admin_token))
    assert (client.oauth_token, client.private_token, secrets) == (gitlab.admin_token, None, [gitlab.admin_token])
    client.auth()
    assert client.user.username == 'root'


def test_no_credential_anywhere_is_refused(gitlab):
    with pytest.raises(GitLabModuleError, match=r'^no GitLab credentials: set api_token'):
        connect(options(api_url=gitlab.url))


# ---- which token a client holds -----------------------------------------------------------

def token_client(gitlab, value):
    client, _secrets = connect(options(api_url=gitlab.url, api_token=value, retries=0))
    return client


def test_token_itself_is_gitlabs_record_of_the_token_a_client_holds(gitlab, broker_token):
    record = token_itself(token_client(gitlab, broker_token['token']))
    assert (record['id'], record['name'], record['active']) == (broker_token['id'], 'mobb', True)
    assert 'token' not in record


def test_token_itself_is_none_for_a_token_gitlab_refuses(gitlab, broker_token):
    PersonalTokens(admin_client(gitlab), 'mobb-broker').revoke(broker_token)
    assert token_itself(token_client(gitlab, broker_token['token'])) is None
    assert token_itself(token_client(gitlab, 'glpat-never-issued-by-this-gitlab')) is None


def test_token_itself_raises_when_gitlab_does_not_say(gitlab, broker_token):
    gitlab.fault('status', method='GET', path='/personal_access_tokens/self$', status=503)
    with pytest.raises(GitLabModuleError) as caught:
        token_itself(token_client(gitlab, broker_token['token']))
    assert caught.value.status == 503
    assert str(caught.value).startswith('Could not read the token itself (/personal_access_tokens/self): '
                                        'GitLab answered 503')
    assert_no_secret_in(str(caught.value), gitlab)


# ---- revoke -------------------------------------------------------------------------------

def test_revoke_answered_204_needs_no_read_back(gitlab, broker_token):
    owner = PersonalTokens(admin_client(gitlab), 'mobb-broker')
    assert owner.revoke(broker_token) is None
    assert token_record(gitlab, broker_token['id'])['revoked'] is True
    assert logged(gitlab) == [('DELETE', f'/api/v4/personal_access_tokens/{broker_token["id"]}', 204, None)]


def test_a_transient_error_on_revoke_is_retried(gitlab, broker_token):
    gitlab.fault('status', count=1, method='DELETE', status=503)
    owner = PersonalTokens(admin_client(gitlab), 'mobb-broker')
    assert owner.revoke(broker_token) is None
    assert token_record(gitlab, broker_token['id'])['revoked'] is True
    assert [entry[2] for entry in logged(gitlab)] == [503, 204]


def test_a_proxy_page_with_status_200_is_no_revoke(gitlab, broker_token):
    gitlab.fault('html200', method='DELETE')
    owner = PersonalTokens(admin_client(gitlab), 'mobb-broker')
    with pytest.raises(GitLabModuleError) as caught:
        owner.revoke(broker_token)
    token_id = broker_token['id']
    assert str(caught.value) == (
        f"Could not revoke personal access token {token_id} ('mobb') of user 'mobb-broker': it is STILL ACTIVE. "
        'GitLab answered HTTP 200 with an HTML page titled "502 Bad Gateway", not 204 No Content, and reading '
        "the token back shows it active. Check that api_url is GitLab's own address and that no proxy or login "
        f'page answers in its place, then revoke it again (state=absent, token_id={token_id})')
    assert token_record(gitlab, token_id)['active'] is True
    assert logged(gitlab) == [('DELETE', f'/api/v4/personal_access_tokens/{token_id}', 200, 'html200'),
                              ('GET', f'/api/v4/personal_access_tokens/{token_id}', 200, None)]
    assert_no_secret_in(str(caught.value), gitlab)


def test_a_read_back_that_fails_leaves_the_token_counted_as_active(gitlab, broker_token):
    token_id = broker_token['id']
    gitlab.fault('html200', method='DELETE')
    gitlab.fault('html200', method='GET', path=f'/personal_access_tokens/{token_id}$')
    owner = PersonalTokens(admin_client(gitlab), 'mobb-broker')
    with pytest.raises(GitLabModuleError) as caught:
        owner.revoke(broker_token)
    message = str(caught.value)
    assert message.startswith(
        f"Could not revoke personal access token {token_id} ('mobb') of user 'mobb-broker': it counts as "
        'STILL ACTIVE. GitLab answered HTTP 200 with an HTML page titled "502 Bad Gateway", not 204 No Content, '
        f'and reading the token back failed (Could not read back personal access token {token_id}: the answer '
        f"from {gitlab.url} is not GitLab's JSON;")
    assert message.endswith(f'then revoke it again (state=absent, token_id={token_id})')
    assert token_record(gitlab, token_id)['active'] is True


def test_a_project_token_revoke_answered_by_a_proxy_page_names_the_project(gitlab):
    seeded = gitlab.seed(projects=[{'path': 'acme/payments'}], tokens=[
        {'kind': 'project', 'project': 'acme/payments', 'name': 'mobb', 'access_level': 30}])['tokens'][0]
    gitlab.fault('html200', method='DELETE')
    owner = ProjectTokens(admin_client(gitlab), 'acme/payments')
    with pytest.raises(GitLabModuleError, match=(
            rf"^Could not revoke project access token {seeded['id']} \('mobb'\) of project 'acme/payments': "
            r'it is STILL ACTIVE\. GitLab answered HTTP 200 with an HTML page')):
        owner.revoke(seeded)
    assert token_record(gitlab, seeded['id'])['active'] is True
    path = f'/api/v4/projects/acme%2Fpayments/access_tokens/{seeded["id"]}'
    assert logged(gitlab) == [('DELETE', path, 200, 'html200'), ('GET', path, 200, None)]


class RewritingProxy:
    """Forwards every request to ``upstream``; ``delete_answer(upstream_response)`` may return
    (status, body) to send instead for a DELETE, or None to pass GitLab's answer on. With
    ``forward_delete=False`` a DELETE never reaches GitLab."""

    def __init__(self, upstream, delete_answer, forward_delete=True):
        session = requests.Session()
        session.trust_env = False
        self._session = session
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else None
                headers = {key: value for key, value in self.headers.items()
                           if key.lower() in ('private-token', 'authorization', 'content-type', 'accept')}
                if self.command == 'DELETE' and not forward_delete:
                    answer = None
                else:
                    answer = session.request(self.command, upstream + self.path, data=body, headers=headers,
                                             timeout=10, allow_redirects=False)
                replaced = delete_answer(answer) if self.command == 'DELETE' else None
                if replaced is not None:
                    status, content, content_type = replaced[0], replaced[1], 'application/json'
                else:
                    status, content = answer.status_code, answer.content
                    content_type = answer.headers.get('Content-Type', 'application/json')
                proxy.answered.append((self.command, self.path.split('?')[0], status))
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _forward  # noqa: N815 (http.server's naming)

            def log_message(self, *_args):
                pass

        self.answered = []
        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://%s:%d' % self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._session.close()


@pytest.fixture
def rewriting_proxy(gitlab):
    proxies = []

    def start(delete_answer, forward_delete=True):
        proxies.append(RewritingProxy(gitlab.url, delete_answer, forward_delete))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


def test_a_200_with_json_counts_when_reading_the_token_back_shows_it_revoked(gitlab, broker_token, rewriting_proxy):
    # GitLab revokes (its 204 is replaced by a 200 with a JSON body on the way back).
    proxy = rewriting_proxy(lambda answer: (200, json.dumps({'status': 'deleted'}).encode())
                            if answer.status_code == 204 else None)
    owner = PersonalTokens(admin_client(gitlab, url=proxy.url), 'mobb-broker')
    assert owner.revoke(broker_token) is None
    token_id = broker_token['id']
    assert token_record(gitlab, token_id)['revoked'] is True
    assert proxy.answered == [('DELETE', f'/api/v4/personal_access_tokens/{token_id}', 200),
                              ('GET', f'/api/v4/personal_access_tokens/{token_id}', 200)]
    assert logged(gitlab) == [('DELETE', f'/api/v4/personal_access_tokens/{token_id}', 204, None),
                              ('GET', f'/api/v4/personal_access_tokens/{token_id}', 200, None)]


def test_a_200_with_json_that_revoked_nothing_fails(gitlab, broker_token, rewriting_proxy):
    proxy = rewriting_proxy(lambda _answer: (200, json.dumps({'message': 'accepted'}).encode()),
                            forward_delete=False)
    owner = PersonalTokens(admin_client(gitlab, url=proxy.url), 'mobb-broker')
    with pytest.raises(GitLabModuleError, match=(
            rf"^Could not revoke personal access token {broker_token['id']} \('mobb'\) of user 'mobb-broker': it "
            r'is STILL ACTIVE\. GitLab answered HTTP 200 with accepted, not 204 No Content, and reading the token '
            r'back shows it active\.')):
        owner.revoke(broker_token)
    assert token_record(gitlab, broker_token['id'])['active'] is True
    assert [entry[0] for entry in logged(gitlab)] == ['GET']
