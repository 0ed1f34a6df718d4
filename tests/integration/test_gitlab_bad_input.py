"""Bad input to the GitLab modules: each case fails with a one-line message naming the field or
cause, and GitLab is left exactly as it was. Cases marked ``local`` must fail before any request.
"""
from __future__ import annotations

import dataclasses
import re
import socket

import pytest

from gitlab_plays import GitLabPlays, call, failure

DATE = r'\d{4}-\d\d-\d\d'


@dataclasses.dataclass
class Case:
    id: str
    module: str
    args: dict
    message: str  # regular expression the whole msg must match
    token: str = 'admin'
    local: bool = False
    defaults: dict = dataclasses.field(default_factory=dict)
    env: dict = dataclasses.field(default_factory=dict)


BROKER = {'user': 'alice', 'name': 'mobb-broker'}
PROJECT = {'project': 'acme/payments', 'name': 'mobb'}

CASES = [
    Case('unknown scope', 'personal', dict(BROKER, scopes=['api', 'apii']),
         r"scopes: unknown scope 'apii' for a personal access token; valid scopes: admin_mode, ai_features, "
         r'api, .*, write_virtual_registry', local=True),
    Case('read_user on a project token', 'project', dict(PROJECT, scopes=['api', 'read_user']),
         r'scopes: read_user is not allowed on a project access token; GitLab accepts it only on '
         r'personal access tokens', local=True),
    Case('sudo on a group token', 'group', {'group': 'acme', 'name': 'mobb', 'scopes': ['sudo']},
         r'scopes: sudo is not allowed on a group access token; .*', local=True),
    Case('unknown access level', 'project', dict(PROJECT, access_level='admin'),
         r"access_level must be one of guest, planner, reporter, developer, maintainer, owner "
         r"\(or 10, 15, 20, 30, 40, 50\), got 'admin'", local=True),
    Case('date not YYYY-MM-DD', 'personal', dict(BROKER, expires_at='31/12/2030'),
         r"expires_at must be a date written YYYY-MM-DD, got '31/12/2030'", local=True),
    Case('expires_at and expires_in_days', 'personal', dict(BROKER, expires_at='2030-01-01', expires_in_days=9),
         r'parameters are mutually exclusive: expires_at\|expires_in_days', local=True),
    Case('negative rotate_before_days', 'personal', dict(BROKER, rotate_before_days=-1),
         r'rotate_before_days must be 0 or more, got -1', local=True),
    Case('token_id with state present', 'personal', dict(BROKER, token_id=3),
         r'token_id only applies with state=absent', local=True),
    Case('empty name', 'project', dict(PROJECT, name=' '), r'name must not be empty', local=True),
    Case('date in the past', 'personal', dict(BROKER, expires_at='2020-01-01'),
         rf"expires_at 2020-01-01 is not in the future \(GitLab's date is {DATE}\): give a later date"),
    Case('lifetime inside the rotation window', 'personal', dict(BROKER, expires_in_days=5),
         r'expires_in_days \(5\), not more than rotate_before_days \(7\): a new token would be due for '
         r'rotation at once and every run would rotate it again; .*'),
    Case('date beyond GitLab\'s maximum lifetime', 'personal', dict(BROKER, expires_in_days=400),
         rf"Could not create personal access token 'mobb-broker' for user 'alice': GitLab answered 422: "
         rf"Expires at must be before {DATE}\. GitLab caps token lifetime \(365 days unless an administrator "
         r'set less\): use a smaller expires_in_days or an earlier expires_at'),
    Case('project token beyond the maximum lifetime', 'project', dict(PROJECT, expires_in_days=500),
         rf"Could not create project access token 'mobb' for project 'acme/payments': GitLab answered 400: "
         rf'Bad request - Expires at must be before {DATE}\. GitLab caps token lifetime .*'),
    Case('unknown user', 'personal', {'user': 'nobody', 'name': 'mobb'},
         r"user: GitLab has no user 'nobody' \(or the api_token cannot see it\); check the username"),
    Case('unknown project', 'project', {'project': 'acme/missing', 'name': 'mobb'},
         r"Could not list the project access tokens named 'mobb' of project 'acme/missing': GitLab "
         r"answered 404: Project Not Found\. The project does not exist or the api_token's user cannot see it"),
    Case('unknown group', 'group', {'group': 'nope', 'name': 'mobb'},
         r"Could not list the group access tokens named 'mobb' of group 'nope': GitLab answered 404: "
         r'Group Not Found\. The group does not exist .*'),
    Case('non-admin creating a personal access token', 'personal', {'name': 'mobb-broker'},
         r"Could not create personal access token 'mobb-broker' for user 'alice': GitLab answered 403: "
         r'Forbidden\. GitLab lets only administrators create personal access tokens with these scopes '
         r'through the API: create the first token in the GitLab UI \(User settings > Access tokens\), '
         r"after which this module can rotate it .*, or use an administrator's api_token", token='alice'),
    Case('developer managing project tokens', 'project', PROJECT,
         r"Could not list the project access tokens named 'mobb' of project 'acme/payments': GitLab answered "
         r'401: Unauthorized\. Check that api_token is valid and that its user has the Maintainer role or '
         r"higher on the project: GitLab requires it to manage the project's access tokens", token='bob'),
    Case('developer managing group tokens', 'group', {'group': 'acme', 'name': 'mobb'},
         r".*GitLab answered 401: Unauthorized\. Check that api_token is valid and that its user has the "
         r'Owner role on the group: .*', token='bob'),
    Case('non-admin managing another user\'s tokens', 'personal', {'user': 'bob', 'name': 'mobb'},
         r"Could not list the personal access tokens named 'mobb' of user 'bob': GitLab answered 401: "
         r'Unauthorized\. Only administrators may manage the tokens of other users: .*', token='alice'),
    Case('wrong api_token', 'info', {}, r"Could not read the api_token's user \(/user\): GitLab answered 401: "
         r'Unauthorized\. Check that api_token is a valid token for this GitLab .*', token='garbage'),
    Case('expired api_token', 'project', PROJECT,
         r'.*GitLab answered 401: Token is expired\. You can either do re-authorization or token refresh\. '
         r'The api_token has expired: give a current token', token='alice-expired'),
    Case('revoked api_token', 'personal', BROKER,
         r'.*GitLab answered 401: Token was revoked\. .* The api_token was revoked: give a current token',
         token='alice-revoked'),
    Case('api_token without the api scope', 'info', {'user': 'alice'},
         r"Could not list the personal access tokens of user 'alice': GitLab answered 403: The request "
         r'requires higher privileges than provided by the access token\. The api_token lacks the scope '
         r'this needs \(one of api, read_api\): use a token with one', token='alice-profile'),
    Case('self_rotate with another token', 'personal', {'name': 'mobb-broker', 'rotation_method': 'self_rotate'},
         r"rotation_method=self_rotate rotates the api_token itself, but api_token is the token named "
         r"'admin' \(id 1\), not 'mobb-broker': give the token being managed as api_token"),
    Case('self_rotate cannot change scopes', 'personal', {'name': 'mobb-broker', 'rotation_method': 'self_rotate'},
         r"personal access token \d+ \('mobb-broker'\) has scopes \['api'\], and GitLab cannot change those "
         r'in place; self_rotate keeps them: use rotation_method=rotate or create_new .*', token='alice-mobb'),
    Case('unreachable api_url', 'personal', BROKER,
         r"Could not look up GitLab user 'alice': no connection to GitLab at http://127\.0\.0\.1:\d+ "
         r'\(.*Connection refused\); check api_url and that GitLab is reachable from the host running the module',
         defaults={'api_url': 'http://127.0.0.1:{closed_port}', 'retries': 1}),
    Case('api_url without a scheme', 'personal', BROKER,
         r"api_url must be an http\(s\) URL with a host, such as https://gitlab\.example\.com, got "
         r"'gitlab\.example\.com'", defaults={'api_url': 'gitlab.example.com'}, local=True),
    Case('api_url with credentials', 'info', {},
         r'api_url must not carry credentials \(user:password@\): remove them from the URL',
         defaults={'api_url': 'https://root:hunter2@gitlab.example.com'}, local=True),
    Case('api_url with a query', 'info', {},
         r"api_url must be the base URL of the server, without \?query or #fragment: "
         r"https://gitlab\.example\.com/\?\.\.\.",
         defaults={'api_url': 'https://gitlab.example.com/?page=2'}, local=True),
    Case('no api_url anywhere', 'info', {},
         r'api_url is required: set it \(for example once, with module_defaults for group/mobb\.scm\.gitlab\) '
         r'or the GITLAB_URL environment variable', defaults={'api_url': None}, env={'GITLAB_URL': ''},
         local=True),
    Case('no credentials anywhere', 'info', {},
         r'no GitLab credentials: set api_token \(or api_oauth_token or api_job_token\), or the GITLAB_TOKEN '
         r'environment variable', token='', local=True),
    Case('two credentials', 'info', {'api_oauth_token': 'not-used'},
         r'parameters are mutually exclusive: api_token\|api_oauth_token\|api_job_token',
         defaults={'api_token': '{{ lookup("env", "GITLAB_TOKEN") }}'}, local=True),
    Case('ca_path that is not a file', 'info', {}, r'ca_path /nonexistent/ca\.pem is not a file: .*',
         defaults={'ca_path': '/nonexistent/ca.pem'}, local=True),
]


@pytest.fixture
def credentials(gitlab):
    seeded = gitlab.seed(
        users=[{'username': 'alice'}, {'username': 'bob'}], groups=[{'path': 'acme'}],
        projects=[{'path': 'acme/payments'}],
        members=[{'username': 'bob', 'project': 'acme/payments', 'access_level': 30},
                 {'username': 'bob', 'group': 'acme', 'access_level': 30}],
        tokens=[
            {'kind': 'personal', 'user': 'alice', 'name': 'alice-api', 'scopes': ['api']},
            {'kind': 'personal', 'user': 'alice', 'name': 'alice-expired', 'scopes': ['api'], 'expires_in_days': -1},
            {'kind': 'personal', 'user': 'alice', 'name': 'alice-revoked', 'scopes': ['api'], 'revoked': True},
            {'kind': 'personal', 'user': 'alice', 'name': 'alice-profile', 'scopes': ['read_user']},
            {'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker', 'scopes': ['api']},
            {'kind': 'personal', 'user': 'bob', 'name': 'bob-api', 'scopes': ['api']},
        ])['tokens']
    tokens = {token['name']: token['token'] for token in seeded}
    return {'admin': gitlab.admin_token, 'alice': tokens['alice-api'], 'bob': tokens['bob-api'],
            'alice-expired': tokens['alice-expired'], 'alice-revoked': tokens['alice-revoked'],
            'alice-profile': tokens['alice-profile'], 'alice-mobb': tokens['mobb-broker'],
            'garbage': 'glpat-' + 'x' * 20, '': ''}


def closed_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize('case', CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(run_playbook, gitlab, credentials, case):
    plays = GitLabPlays(run_playbook, gitlab)
    defaults = {key: value.format(closed_port=closed_port()) if isinstance(value, str) and 'closed_port' in value
                else value for key, value in case.defaults.items()}
    before = plays.token_records()
    gitlab.clear_requests()
    run = plays.run([call('bad input', case.module, **case.args)], token=credentials[case.token],
                    defaults=defaults, env=case.env)
    message = failure(run, 'bad input')
    assert re.fullmatch(case.message, message), message
    assert '\n' not in message
    assert plays.token_records() == before
    logged = gitlab.requests()
    assert [entry for entry in logged if entry['method'] not in ('GET', 'HEAD') and entry['status'] < 400] == []
    if case.local:
        assert logged == []
