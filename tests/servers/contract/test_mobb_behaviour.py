"""The local Mobb server end to end: GraphQL over HTTP with ``requests``, tokens checked
against a real local GitLab instance over HTTP(S), the broker, roles and settings."""
from __future__ import annotations

import hashlib
import json
import pathlib

import pytest
import requests

from mobb_server.client import start_mobb
from mobb_server.scm import USER_AGENT as SCM_CHECK_USER_AGENT

PUBLISHED = (pathlib.Path(__file__).parent / 'mobb_api_documents.graphql').read_text()
VALIDATE_TOKEN = '''
query validateScmToken($scmType: String!, $url: String!, $token: String!, $scmOrg: String) {
  validateScmToken(scmType: $scmType, url: $url, token: $token, scmOrg: $scmOrg) {
    __typename
    ... on ValidateScmTokenSuccess { status }
    ... on BadScmCredentials { status error scmType }
    ... on InvalidScmTypeError { status error }
  }
}'''
CHECK_ADMIN = '''
query checkScmConnectionStatusAdmin($scmUuid: String!) {
  checkScmConnectionStatusAdmin(scmUuid: $scmUuid) { status }
}'''
VALIDATE_REPO = '''
query validateRepoUrl($repoUrl: String!) {
  validateRepoUrl(repoUrl: $repoUrl) {
    __typename
    ... on RepoValidationSuccess { status defaultBranch defaultBranchSha defaultBranchLastModified scmType }
    ... on RepoUnreachableError { status error scmType }
    ... on BadScmCredentials { status error scmType }
    ... on InvalidRepoUrlError { status error }
  }
}'''
UNREACHABLE = ('Mobb could not reach the repository. Please try again. If Mobb is connected through a '
               'broker, please make sure the broker is connected.')


def _data(response):
    assert response.status_code == 200, response.text
    answer = response.json()
    assert 'errors' not in answer, answer
    return answer['data']


def _error(response):
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer['data'] is None and len(answer['errors']) == 1, answer
    return answer['errors'][0]


class Mobb:
    """Calls the published documents as the collection's client would, with one API key."""

    def __init__(self, server, key):
        self.server = server
        self.key = key

    def post(self, operation, variables, document=PUBLISHED):
        return self.server.graphql(document, variables, api_key=self.key, operation_name=operation)

    def update(self, url, token, scm_type='GitLab', **extra):
        response = self.post('updateScmToken', {'scmType': scm_type, 'url': url, 'token': token, **extra})
        return _data(response)['updateScmToken']

    def check(self, url):
        return self.post('checkScmConnectionStatus', {'scmUrl': url})

    def me(self):
        return _data(self.post('Me', {}))['me']

    def validate(self, url, token, scm_type='GitLab'):
        response = self.post('validateScmToken', {'scmType': scm_type, 'url': url, 'token': token},
                             document=VALIDATE_TOKEN)
        return _data(response)['validateScmToken']


def _pat(gitlab, scopes=('api', 'read_user'), username='mobb-bot', **extra):
    seeded = gitlab.seed(users=[{'username': username}],
                         tokens=[{'kind': 'personal', 'user': username, 'name': 'mobb', 'scopes': list(scopes),
                                  **extra}])
    return seeded['tokens'][0]


def _brokered(url):
    """The same GitLab, named ``localhost`` so that a broker host can claim it."""
    return url.replace('127.0.0.1', 'localhost')


@pytest.fixture
def acme(mobb):
    seeded = mobb.seed(
        organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': 'LocalHost'}]}],
        users=[{'email': 'admin@acme.test', 'organization': 'acme', 'role': 'Admin'},
               {'email': 'owner@acme.test', 'organization': 'acme', 'role': 'Owner'},
               {'email': 'member@acme.test', 'organization': 'acme', 'role': 'Member'}])
    keys = {user['email'].split('@')[0]: user['api_key'] for user in seeded['users']}
    return {'org': seeded['organizations'][0], 'users': seeded['users'],
            'admin': Mobb(mobb, keys['admin']), 'owner': Mobb(mobb, keys['owner']),
            'member': Mobb(mobb, keys['member'])}


def _gitlab_paths(gitlab):
    return [(entry['method'], entry['path']) for entry in gitlab.requests()]


# -- storing and checking -------------------------------------------------------------------------
def test_good_token_is_validated_stored_and_listed(mobb, acme, gitlab):
    token = _pat(gitlab)
    gitlab.clear_requests()
    now = mobb.advance_clock(10)
    result = acme['admin'].update(gitlab.url.upper().replace('HTTP://', 'http://') + '/', token['token'],
                                  username='mobb-bot')
    assert result['__typename'] == 'ScmAccessTokenUpdateSuccess'
    assert result['token'] == token['token']
    assert [(entry['method'], entry['path'], entry['token_id']) for entry in gitlab.requests()] == [
        ('GET', '/api/v4/user', token['id']), ('GET', '/api/v4/personal_access_tokens/self', token['id'])]
    # Mobb's checks name themselves, so a request log tells them from its clients' requests.
    assert {entry['user_agent'] for entry in gitlab.requests()} == {SCM_CHECK_USER_AGENT}

    me = acme['admin'].me()
    admin = next(user for user in acme['users'] if user['email'] == 'admin@acme.test')
    assert me['id'] == admin['id'] and me['email'] == 'admin@acme.test'
    [config] = me['scmConfigs']
    assert config['id'] == result['id']
    assert (config['scmType'], config['scmUrl'], config['token'], config['scmUsername']) == (
        'GitLab', gitlab.url, token['token'], 'mobb-bot')
    assert (config['orgId'], config['userId'], config['isTokenAvailable'], config['isTokenOauth']) == (
        acme['org']['id'], admin['id'], True, False)
    assert config['tokenLastUpdate'][:10] == now[:10] and config['tokenLastUpdate'].endswith('Z')
    [stored] = mobb.scm_configs()
    assert stored['token_sha256'] == hashlib.sha256(token['token'].encode()).hexdigest()
    assert stored['writes'] == 1

    assert _data(acme['admin'].check(gitlab.url + '/')) == {'checkScmConnectionStatus': {'status': 'OK'}}
    assert mobb.requests()[-1]['scm_checks'] == [{'url': gitlab.url, 'outcome': 'ok',
                                                  'detail': 'GitLab user mobb-bot'}]


def test_every_successful_update_is_a_write_even_with_the_same_token(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    first = acme['admin'].update(gitlab.url, token)
    before = acme['admin'].me()['scmConfigs'][0]['tokenLastUpdate']
    mobb.advance_clock(1)
    second = acme['admin'].update(gitlab.url, token)
    [config] = acme['admin'].me()['scmConfigs']
    assert first['id'] == second['id'] == config['id']
    assert config['tokenLastUpdate'] > before
    assert mobb.scm_configs()[0]['writes'] == 2
    assert [entry['result'] for entry in mobb.writes()] == ['ScmAccessTokenUpdateSuccess'] * 2


def test_configs_are_per_scm_type_url_and_org(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    ids = {acme['admin'].update(gitlab.url, token)['id'],
           acme['admin'].update(gitlab.url + '/', token)['id'],
           acme['admin'].update(gitlab.url, token, org='team-a')['id']}
    assert len(ids) == 2
    assert sorted((c['scm_url'], c['scm_org'] or '', c['writes']) for c in mobb.scm_configs()) == [
        (gitlab.url, '', 2), (gitlab.url, 'team-a', 1)]


def test_wrong_token_is_bad_credentials_and_nothing_is_stored(mobb, acme, gitlab):
    result = acme['admin'].update(gitlab.url, 'glpat-not-a-real-token')
    assert result['__typename'] == 'BadScmCredentials'
    assert (result['status'], result['scmType']) == ('Error', 'GitLab')
    assert result['error'] == 'Invalid SCM credentials: GitLab rejected the token (401 Unauthorized)'
    assert mobb.scm_configs() == []
    assert acme['admin'].me()['scmConfigs'] == []


def test_revoked_token_fails_the_check_and_cannot_be_stored(mobb, acme, gitlab):
    token = _pat(gitlab)
    assert acme['admin'].update(gitlab.url, token['token'])['__typename'] == 'ScmAccessTokenUpdateSuccess'
    revoked = requests.delete(f'{gitlab.url}/api/v4/personal_access_tokens/{token["id"]}', timeout=10,
                              headers={'PRIVATE-TOKEN': gitlab.admin_token})
    assert revoked.status_code == 204
    error = _error(acme['admin'].check(gitlab.url))
    assert error['extensions']['code'] == 'unexpected'
    assert error['message'] == ('Invalid SCM credentials: GitLab rejected the token (Token was revoked. '
                                'You have to re-authorize from the user.)')
    assert mobb.requests()[-1]['scm_checks'][0]['outcome'] == 'unauthorized'
    result = acme['admin'].update(gitlab.url, token['token'])
    assert result['__typename'] == 'BadScmCredentials'
    assert 'revoked' in result['error']


def test_expired_token_fails_the_check(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    acme['admin'].update(gitlab.url, token)
    gitlab.advance_clock(400)
    error = _error(acme['admin'].check(gitlab.url))
    assert 'Token is expired' in error['message']


def test_token_without_a_read_scope_is_refused_naming_the_scope(mobb, acme, gitlab):
    result = acme['admin'].update(gitlab.url, _pat(gitlab, scopes=['read_repository'])['token'])
    assert result['__typename'] == 'BadScmCredentials'
    assert result['error'] == ('Invalid SCM credentials: the token lacks the scopes Mobb needs '
                               '(GitLab: insufficient_scope; Mobb requires api)')


def test_token_without_api_scope_is_refused_unless_the_setting_allows_it(mobb, acme, gitlab):
    token = _pat(gitlab, scopes=['read_user'])['token']
    result = acme['admin'].update(gitlab.url, token)
    assert result['__typename'] == 'BadScmCredentials'
    assert result['error'] == 'Invalid SCM credentials: the token has scopes read_user; Mobb requires api'
    mobb.settings(require_api_scope=False)
    assert acme['admin'].update(gitlab.url, token)['__typename'] == 'ScmAccessTokenUpdateSuccess'


def test_project_access_token_with_api_scope_is_accepted(mobb, acme, gitlab):
    seeded = gitlab.seed(projects=[{'path': 'team/app'}],
                         tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'mobb', 'scopes': ['api'],
                                  'access_level': 30}])
    result = acme['admin'].update(gitlab.url, seeded['tokens'][0]['token'])
    assert result['__typename'] == 'ScmAccessTokenUpdateSuccess'


def test_unknown_scm_type_is_refused_without_contacting_gitlab(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    gitlab.clear_requests()
    result = acme['admin'].update(gitlab.url, token, scm_type='gitlab')
    assert result == {'__typename': 'InvalidScmTypeError', 'status': 'Error',
                      'error': "Invalid SCM type 'gitlab'; valid types: GitHub, GitLab, Ado, Bitbucket"}
    assert gitlab.requests() == []
    assert mobb.scm_configs() == []


def test_member_may_not_change_the_integration(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    gitlab.clear_requests()
    error = _error(acme['member'].post('updateScmToken', {'scmType': 'GitLab', 'url': gitlab.url, 'token': token}))
    assert error == {'message': 'permission denied: role Member may not change the SCM integration; '
                                'Admin or Owner required',
                     'extensions': {'code': 'permission-error', 'path': '$'}}
    assert gitlab.requests() == []
    assert mobb.scm_configs() == []
    assert acme['owner'].update(gitlab.url, token)['__typename'] == 'ScmAccessTokenUpdateSuccess'


def test_validate_scm_token_checks_without_storing(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    assert acme['member'].validate(gitlab.url, token) == {'__typename': 'ValidateScmTokenSuccess', 'status': 'OK'}
    bad = acme['member'].validate(gitlab.url, 'glpat-nope')
    assert (bad['__typename'], bad['scmType']) == ('BadScmCredentials', 'GitLab')
    assert acme['member'].validate(gitlab.url, token, scm_type='CVS')['__typename'] == 'InvalidScmTypeError'
    assert mobb.scm_configs() == []
    assert mobb.writes() == []


# -- the broker and reachability ------------------------------------------------------------------
def test_broker_down_means_unreachable_without_contacting_gitlab(mobb, acme, gitlab):
    url = _brokered(gitlab.url)
    token = _pat(gitlab)['token']
    assert acme['admin'].update(url, token)['__typename'] == 'ScmAccessTokenUpdateSuccess'
    [host] = mobb.set_broker('localhost', False)
    assert host['up'] is False
    gitlab.clear_requests()

    result = acme['admin'].update(url, token)
    assert result == {'__typename': 'RepoUnreachableError', 'status': 'Error', 'error': UNREACHABLE,
                      'scmType': 'GitLab'}
    error = _error(acme['admin'].check(url))
    assert (error['message'], error['extensions']['code']) == (UNREACHABLE, 'unexpected')
    assert mobb.requests()[-1]['scm_checks'][0]['outcome'] == 'broker_down'
    validated = acme['admin'].validate(url, token)
    assert (validated['__typename'], validated['error']) == ('BadScmCredentials', UNREACHABLE)
    assert gitlab.requests() == []
    # The same GitLab under a name no broker host claims is reached directly.
    assert acme['admin'].validate(gitlab.url, token)['__typename'] == 'ValidateScmTokenSuccess'
    assert ('GET', '/api/v4/user') in _gitlab_paths(gitlab)

    mobb.set_broker('LOCALHOST', True)
    assert _data(acme['admin'].check(url)) == {'checkScmConnectionStatus': {'status': 'OK'}}
    assert ('GET', '/api/v4/user') in _gitlab_paths(gitlab)


def test_me_lists_broker_hosts(mobb, acme):
    hosts = acme['admin'].me()['userOrganizationsAndUserOrganizationRoles'][0]['organization']['brokerHosts']
    [host] = hosts
    assert host['realDomain'] == 'LocalHost'
    assert host['virtualDomain'] == acme['org']['broker_hosts'][0]['virtual_domain']
    assert len(host['virtualDomain']) == 36


def test_unknown_broker_domain_is_not_found(mobb, acme):
    with pytest.raises(Exception, match='404 no broker host with real_domain'):
        mobb.set_broker('gitlab.nowhere.test', False)


@pytest.mark.parametrize('fault', [
    {'kind': 'status', 'status': 502, 'path': '/api/v4/user'},
    {'kind': 'html200', 'path': '/api/v4/user'},
    {'kind': 'drop', 'path': '/api/v4/user'},
    {'kind': 'status', 'status': 503, 'path': 'personal_access_tokens/self'},
], ids=['502', 'html200', 'drop', 'self-503'])
def test_gitlab_failures_are_unreachable(mobb, acme, gitlab, fault):
    token = _pat(gitlab)['token']
    gitlab.fault(**fault)
    result = acme['admin'].update(gitlab.url, token)
    assert result['__typename'] == 'RepoUnreachableError'
    assert result['error'] == UNREACHABLE
    assert mobb.scm_configs() == []


def test_slow_gitlab_is_unreachable_after_the_scm_timeout(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    mobb.settings(scm_timeout=0.3)
    gitlab.fault('delay', seconds=2, path='/api/v4/user')
    result = acme['admin'].update(gitlab.url, token)
    assert result['__typename'] == 'RepoUnreachableError'
    assert mobb.requests()[-1]['scm_checks'][0]['detail'].startswith('no answer from')


def test_closed_port_and_bad_url_are_unreachable(mobb, acme):
    closed = acme['admin'].update('http://127.0.0.1:9', 'glpat-whatever')
    assert (closed['__typename'], closed['error']) == ('RepoUnreachableError', UNREACHABLE)
    bad = acme['admin'].update('gitlab.acme.test', 'glpat-whatever')
    assert bad['__typename'] == 'RepoUnreachableError'
    assert bad['error'] == "Invalid SCM URL 'gitlab.acme.test': expected http:// or https:// and a host name"


def test_https_gitlab_is_trusted_through_the_hub_ca(mobb, acme, gitlab_tls):
    token = _pat(gitlab_tls)['token']
    assert acme['admin'].update(gitlab_tls.url, token)['__typename'] == 'ScmAccessTokenUpdateSuccess'
    assert _data(acme['admin'].check(gitlab_tls.url)) == {'checkScmConnectionStatus': {'status': 'OK'}}


def test_https_gitlab_with_an_untrusted_certificate_is_unreachable(gitlab_tls):
    token = _pat(gitlab_tls)['token']
    with start_mobb() as untrusting:
        key = untrusting.seed(organizations=[{'name': 'acme'}],
                              users=[{'email': 'a@acme.test', 'organization': 'acme'}])['users'][0]['api_key']
        result = Mobb(untrusting, key).update(gitlab_tls.url, token)
        assert result['__typename'] == 'RepoUnreachableError'
        assert 'Certificate' in untrusting.requests()[-1]['scm_checks'][0]['detail']


# -- reading back ---------------------------------------------------------------------------------
def test_tokens_are_hidden_from_me_when_the_deployment_does_not_return_them(mobb, acme, gitlab):
    acme['admin'].update(gitlab.url, _pat(gitlab)['token'], refreshToken='refresh-secret-1')
    mobb.settings(return_tokens=False)
    [config] = acme['admin'].me()['scmConfigs']
    assert (config['token'], config['refreshToken'], config['isTokenAvailable']) == (None, None, True)
    mobb.settings(return_tokens=True)
    assert acme['admin'].me()['scmConfigs'][0]['refreshToken'] == 'refresh-secret-1'


def test_check_failure_as_status_error(mobb, acme, gitlab):
    mobb.settings(check_failure='status')
    assert _data(acme['admin'].check(gitlab.url)) == {'checkScmConnectionStatus': {'status': 'Error'}}


def test_check_without_a_stored_token_and_with_a_bad_url(mobb, acme, gitlab):
    assert _error(acme['admin'].check(gitlab.url))['message'] == f'No SCM token is stored for {gitlab.url}'
    error = _error(acme['admin'].check('not a url'))
    assert error['message'] == "Invalid SCM URL 'not a url': expected http:// or https:// and a host name"


def test_seeded_config_is_checked_as_stored(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    [config] = mobb.seed(scm_configs=[{'user': 'admin@acme.test', 'scm_url': gitlab.url, 'token': token,
                                       'updated_days_ago': 30}])['scm_configs']
    assert config['token_sha256'] == hashlib.sha256(token.encode()).hexdigest()
    assert config['token_last_update'] < mobb.clock()
    assert _data(acme['admin'].check(gitlab.url)) == {'checkScmConnectionStatus': {'status': 'OK'}}


def test_admin_check_by_config_id(mobb, acme, gitlab):
    config_id = acme['admin'].update(gitlab.url, _pat(gitlab)['token'])['id']
    assert _data(acme['owner'].post('checkScmConnectionStatusAdmin', {'scmUuid': config_id},
                                    document=CHECK_ADMIN)) == {'checkScmConnectionStatusAdmin': {'status': 'OK'}}
    denied = _error(acme['member'].post('checkScmConnectionStatusAdmin', {'scmUuid': config_id},
                                        document=CHECK_ADMIN))
    assert denied['extensions']['code'] == 'permission-error'
    missing = _error(acme['admin'].post('checkScmConnectionStatusAdmin', {'scmUuid': 'no-such-id'},
                                        document=CHECK_ADMIN))
    assert (missing['extensions']['code'], missing['message']) == ('not-found', "SCM config 'no-such-id' not found")


def test_validate_repo_url(mobb, acme, gitlab):
    token = _pat(gitlab)['token']
    gitlab.seed(projects=[{'path': 'team/app'}], members=[{'username': 'mobb-bot', 'project': 'team/app',
                                                           'access_level': 30}])

    def validate(repo_url):
        return _data(acme['admin'].post('validateRepoUrl', {'repoUrl': repo_url},
                                        document=VALIDATE_REPO))['validateRepoUrl']

    assert validate(f'{gitlab.url}/team/app')['__typename'] == 'BadScmCredentials'
    acme['admin'].update(gitlab.url, token)
    found = validate(f'{gitlab.url}/team/app.git')
    assert (found['__typename'], found['status'], found['defaultBranch'], found['scmType']) == (
        'RepoValidationSuccess', 'OK', 'main', 'GitLab')
    assert validate(f'{gitlab.url}/team/missing')['__typename'] == 'RepoUnreachableError'
    assert validate(gitlab.url)['__typename'] == 'InvalidRepoUrlError'
    assert ('GET', '/api/v4/projects/team%2Fapp') in _gitlab_paths(gitlab)


# -- one process, many organizations ----------------------------------------------------------------
def test_many_organizations_and_gitlab_urls_in_one_process(mobb, gitlab, gitlab_hub):
    other_gitlab = gitlab_hub.new_instance()
    try:
        seeded = mobb.seed(
            organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': 'localhost'}]},
                           {'name': 'globex'}],
            users=[{'email': 'a@acme.test', 'organization': 'acme', 'role': 'Admin'},
                   {'email': 'g@globex.test', 'organization': 'globex', 'role': 'Owner'}])
        acme_admin = Mobb(mobb, seeded['users'][0]['api_key'])
        globex_owner = Mobb(mobb, seeded['users'][1]['api_key'])
        acme_token = _pat(gitlab)['token']
        globex_token = _pat(other_gitlab)['token']
        shared_token = _pat(gitlab, username='globex-bot')['token']

        assert acme_admin.update(_brokered(gitlab.url), acme_token)['__typename'] == 'ScmAccessTokenUpdateSuccess'
        assert globex_owner.update(other_gitlab.url, globex_token)['__typename'] == 'ScmAccessTokenUpdateSuccess'
        # globex has no broker host: localhost is reached directly for it.
        assert globex_owner.update(_brokered(gitlab.url), shared_token)['__typename'] == \
            'ScmAccessTokenUpdateSuccess'

        mobb.set_broker('localhost', False)
        assert _error(acme_admin.check(_brokered(gitlab.url)))['message'] == UNREACHABLE
        assert _data(globex_owner.check(_brokered(gitlab.url))) == {'checkScmConnectionStatus': {'status': 'OK'}}
        assert _data(globex_owner.check(other_gitlab.url)) == {'checkScmConnectionStatus': {'status': 'OK'}}

        assert [c['token'] for c in acme_admin.me()['scmConfigs']] == [acme_token]
        assert sorted(c['token'] for c in globex_owner.me()['scmConfigs']) == sorted([globex_token, shared_token])
        assert len(mobb.scm_configs()) == 3
    finally:
        gitlab_hub.remove_instance(other_gitlab)


# -- secrets ----------------------------------------------------------------------------------------
def test_no_secret_appears_in_the_log_configs_or_errors(mobb, acme, gitlab):
    good = _pat(gitlab)['token']
    outputs = [
        acme['admin'].post('updateScmToken', {'scmType': 'GitLab', 'url': gitlab.url, 'token': good,
                                              'refreshToken': 'refresh-secret-2'}).text,
        acme['admin'].post('updateScmToken', {'scmType': 'GitLab', 'url': gitlab.url,
                                              'token': 'glpat-wrong-0123'}).text,
        acme['member'].post('updateScmToken', {'scmType': 'GitLab', 'url': gitlab.url, 'token': good}).text,
        repr(acme['admin'].validate(gitlab.url, 'glpat-wrong-4567')),
        acme['admin'].check(gitlab.url).text,
        json.dumps(mobb.requests()), json.dumps(mobb.scm_configs()),
    ]
    secrets = mobb.secrets()
    for expected in (good, 'refresh-secret-2', 'glpat-wrong-0123', 'glpat-wrong-4567', acme['admin'].key):
        assert expected in secrets
    # The success answer echoes the stored token (it is the schema's ScmAccessTokenUpdateSuccess.token);
    # nothing else may carry any secret.
    leaks = [index for index, text in enumerate(outputs[1:], 1) if any(secret in text for secret in secrets)]
    assert leaks == []
