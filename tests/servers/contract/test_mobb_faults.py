"""Faults a proxy in front of Mobb causes, as the local Mobb server injects them, and the
request log that lets tests count what reached Mobb."""
from __future__ import annotations

import hashlib
import time

import pytest
import requests

from mobb_server.client import MobbServerError

ME = 'query Me { me { id email } }'
CHECK = 'query checkScmConnectionStatus($scmUrl: String!) { checkScmConnectionStatus(scmUrl: $scmUrl) { status } }'


@pytest.fixture
def key(mobb):
    seeded = mobb.seed(organizations=[{'name': 'acme'}],
                       users=[{'email': 'admin@acme.test', 'organization': 'acme', 'role': 'Admin'}])
    return seeded['users'][0]['api_key']


def _me(mobb, key, timeout=10):
    return mobb.graphql(ME, api_key=key, timeout=timeout)


@pytest.mark.parametrize('status, title', [(502, 'Bad Gateway'), (503, 'Service Temporarily Unavailable'),
                                           (504, 'Gateway Time-out')])
def test_status_fault_answers_like_a_proxy_and_mobb_never_sees_the_request(mobb, key, status, title):
    mobb.fault('status', status=status)
    response = _me(mobb, key)
    assert response.status_code == status
    assert response.headers['Content-Type'].startswith('text/html')
    assert f'<title>{status} {title}</title>' in response.text
    entry = mobb.requests()[-1]
    assert (entry['fault'], entry['status'], entry['user'], entry['operation']) == ('status', status, None, 'Me')
    assert _me(mobb, key).json()['data']['me']['email'] == 'admin@acme.test'


def test_html200_fault_is_a_bad_gateway_page_with_status_200(mobb, key):
    mobb.fault('html200')
    response = _me(mobb, key)
    assert response.status_code == 200
    assert response.headers['Content-Type'].startswith('text/html')
    assert 'Bad Gateway' in response.text
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert mobb.requests()[-1]['fault'] == 'html200'


def test_drop_fault_closes_the_connection_without_an_answer(mobb, key):
    mobb.fault('drop')
    with pytest.raises(requests.ConnectionError):
        _me(mobb, key)
    entry = mobb.requests()[-1]
    assert (entry['fault'], entry['status']) == ('drop', None)
    assert _me(mobb, key).status_code == 200


def test_delay_fault_serves_the_request_after_the_client_gave_up(mobb, key):
    mobb.fault('delay', seconds=1)
    with pytest.raises(requests.Timeout):
        _me(mobb, key, timeout=0.2)
    deadline = time.monotonic() + 10
    while mobb.requests()[-1]['user'] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    entry = mobb.requests()[-1]
    assert (entry['fault'], entry['user'], entry['error_code']) == ('delay', 'admin@acme.test', None)


def test_internal_error_fault_is_hasuras_internal_error(mobb, key):
    mobb.fault('internal_error')
    response = _me(mobb, key)
    assert response.status_code == 200
    assert response.json()['errors'][0]['extensions']['code'] == 'INTERNAL_ERROR'


def test_answer_fault_is_its_json_with_status_200_and_mobb_never_sees_the_request(mobb, key):
    body = {'data': {'me': {'id': 'u1', 'email': 'x', 'scmConfigs': 'not a list'}}}
    mobb.fault('answer', body=body, operation='Me')
    assert mobb.faults() == [{'kind': 'answer', 'remaining': 1, 'status': None, 'seconds': None,
                              'operation': 'Me', 'body': body}]
    response = _me(mobb, key)
    assert (response.status_code, response.json()) == (200, body)
    assert response.headers['Content-Type'].startswith('application/json')
    entry = mobb.requests()[-1]
    assert (entry['fault'], entry['user'], entry['operation']) == ('answer', None, 'Me')
    assert _me(mobb, key).json()['data']['me']['email'] == 'admin@acme.test'


STORE = ('mutation updateScmToken($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", url: $url, '
         'token: $token) { __typename } }')


@pytest.mark.parametrize('kind, stored', [('internal_error', False), ('internal_error_after', True)])
def test_internal_error_faults_answer_the_same_before_or_after_the_store_is_applied(mobb, key, gitlab, kind, stored):
    """``internal_error`` answers before Mobb sees the request; ``internal_error_after`` is
    an action handler that fails after writing: the token is stored, the answer the same."""
    token = gitlab.seed(tokens=[{'kind': 'personal', 'user': gitlab.admin_username, 'name': 'm'}])['tokens'][0]
    mobb.fault(kind, operation='updateScmToken')
    response = mobb.graphql(STORE, {'url': gitlab.url, 'token': token['token']}, api_key=key)
    assert response.status_code == 200
    assert response.json() == {'data': None, 'errors': [
        {'message': 'Internal Server Error', 'extensions': {'code': 'INTERNAL_ERROR', 'path': '$'}}]}
    assert [c['token_sha256'] for c in mobb.scm_configs()] == (
        [hashlib.sha256(token['token'].encode()).hexdigest()] if stored else [])
    entry = mobb.requests()[-1]
    assert (entry['fault'], entry['error_code'], entry['result']) == (
        kind, 'INTERNAL_ERROR', 'ScmAccessTokenUpdateSuccess' if stored else None)


def test_internal_error_after_on_the_rest_check_is_its_500(mobb, key):
    mobb.fault('internal_error_after', operation='checkScmConnectionStatus')
    response = mobb.rest_check('https://gitlab.acme.test', api_key=key)
    assert response.status_code == 500
    assert response.json() == {'path': '$', 'error': 'Internal Server Error', 'code': 'INTERNAL_ERROR'}


def test_fault_count_and_operation_match(mobb, key):
    mobb.fault('status', count=2, status=503, operation='checkScmConnectionStatus')
    assert mobb.faults() == [{'kind': 'status', 'remaining': 2, 'status': 503, 'seconds': None,
                              'operation': 'checkScmConnectionStatus'}]
    assert _me(mobb, key).status_code == 200
    check = {'scmUrl': 'https://gitlab.acme.test'}
    statuses = [mobb.graphql(CHECK, check, api_key=key).status_code,
                mobb.graphql(CHECK, check, api_key=key).status_code,
                mobb.graphql(CHECK, check, api_key=key).status_code]
    assert statuses == [503, 503, 200]
    assert mobb.faults() == []
    assert [entry['fault'] for entry in mobb.requests()] == [None, 'status', 'status', None]


def test_clear_faults(mobb, key):
    mobb.fault('drop', count=5)
    mobb.clear_faults()
    assert mobb.faults() == []
    assert _me(mobb, key).status_code == 200


@pytest.mark.parametrize('arguments, message', [
    ({'kind': 'explode'}, 'fault kind must be one of'),
    ({'kind': 'status', 'status': 200}, 'between 400 and 599'),
    ({'kind': 'delay'}, 'needs "seconds" above 0'),
    ({'kind': 'drop', 'count': 0}, 'at least 1'),
    ({'kind': 'drop', 'seconds': 3}, '"seconds" applies only to kind delay'),
    ({'kind': 'answer'}, 'needs "body"'),
    ({'kind': 'drop', 'body': {}}, '"body" applies only to kind answer'),
])
def test_bad_fault_requests_are_refused_and_add_nothing(mobb, arguments, message):
    with pytest.raises(MobbServerError, match=message):
        mobb.fault(**arguments)
    assert mobb.faults() == []


def test_request_log_counts_operations_and_never_holds_a_secret(mobb, key):
    mobb.clear_requests()
    _me(mobb, key)
    requests.post(mobb.graphql_url, json={'query': ME}, timeout=10,
                  headers={'x-mobb-key': key, 'x-hasura-request-id': 'req-1'})
    mobb.graphql('mutation updateScmToken { updateScmToken(scmType: "svn", url: "https://x.test", '
                 'token: "glpat-never-logged") { __typename } }', api_key=key)
    log = mobb.requests()
    assert [entry['seq'] for entry in log] == sorted(entry['seq'] for entry in log)
    assert [(e['operation'], e['operation_type'], e['status']) for e in log] == [
        ('Me', 'query', 200), ('Me', 'query', 200), ('updateScmToken', 'mutation', 200)]
    assert log[1]['request_id'] == 'req-1'
    assert log[2]['result'] == 'InvalidScmTypeError'
    assert [entry['seq'] for entry in mobb.writes()] == [log[2]['seq']]
    secrets = mobb.secrets()
    assert key in secrets and 'glpat-never-logged' in secrets
    text = requests.get(f'{mobb.url}/_test/requests', timeout=10).text
    assert not [secret for secret in secrets if secret in text]
    mobb.clear_requests()
    assert mobb.requests() == []
