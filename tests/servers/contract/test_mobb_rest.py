"""The REST form of Mobb's connection check, as the local Mobb server serves it beside
``/v1/graphql``: ``GET /api/rest/check-scm-connection-status?scmUrl=...`` (the path is this
server's choice; Mobb's is not public) answers like a Hasura RESTified endpoint: the query's
``data`` on success, Hasura's ``{"path", "error", "code"}`` with a non-200 status on failure."""
from __future__ import annotations

import pytest
import requests

UNREACHABLE = ('Mobb could not reach the repository. Please try again. If Mobb is connected through a '
               'broker, please make sure the broker is connected.')


@pytest.fixture
def acme(mobb, gitlab):
    seeded = gitlab.seed(users=[{'username': 'mobb-bot'}],
                         tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb',
                                  'scopes': ['api', 'read_user']}])
    token = seeded['tokens'][0]
    users = mobb.seed(
        organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': 'localhost'}]}],
        users=[{'email': 'admin@acme.test', 'organization': 'acme', 'role': 'Admin'},
               {'email': 'other@acme.test', 'organization': 'acme', 'role': 'Admin'}],
        scm_configs=[{'user': 'admin@acme.test', 'scm_url': gitlab.url, 'token': token['token']}])['users']
    mobb.clear_requests()
    return {'key': users[0]['api_key'], 'other_key': users[1]['api_key'], 'token': token}


def _qerr(response, status):
    assert response.status_code == status, response.text
    assert response.headers['Content-Type'].startswith('application/json')
    answer = response.json()
    assert set(answer) == {'path', 'error', 'code'}, answer
    return answer


def test_connected_answers_the_query_data_without_the_graphql_envelope(mobb, acme, gitlab):
    response = mobb.rest_check(gitlab.url + '/', api_key=acme['key'])
    assert response.status_code == 200
    assert response.json() == {'checkScmConnectionStatus': {'status': 'OK'}}
    [entry] = mobb.requests()
    assert (entry['endpoint'], entry['operation'], entry['operation_type'], entry['status'], entry['user']) == (
        'rest', 'checkScmConnectionStatus', 'query', 200, 'admin@acme.test')
    assert [check['outcome'] for check in entry['scm_checks']] == ['ok']


def test_the_graphql_log_entries_name_their_endpoint(mobb, acme):
    mobb.graphql('query Me { me { id } }', api_key=acme['key'])
    assert mobb.requests()[-1]['endpoint'] == 'graphql'


@pytest.mark.parametrize('key', [None, '', 'not-a-key'])
def test_a_bad_key_is_access_denied_with_401(mobb, acme, gitlab, key):
    answer = _qerr(mobb.rest_check(gitlab.url, api_key=key), 401)
    assert answer == {'path': '$', 'error': 'Authentication hook unauthorized this request',
                      'code': 'access-denied'}
    assert mobb.requests()[-1]['error_code'] == 'access-denied'
    assert mobb.requests()[-1]['status'] == 401


def test_no_stored_token_is_an_error_that_says_why(mobb, acme, gitlab):
    answer = _qerr(mobb.rest_check(gitlab.url, api_key=acme['other_key']), 400)
    assert answer['code'] == 'unexpected'
    assert answer['error'] == f'No SCM token is stored for {gitlab.url}'


def test_broker_down_is_the_unreachable_error(mobb, acme, gitlab):
    brokered = gitlab.url.replace('127.0.0.1', 'localhost')
    mobb.seed(scm_configs=[{'user': 'other@acme.test', 'scm_url': brokered, 'token': acme['token']['token']}])
    mobb.set_broker('localhost', False)
    answer = _qerr(mobb.rest_check(brokered, api_key=acme['other_key']), 400)
    assert (answer['code'], answer['error']) == ('unexpected', UNREACHABLE)
    assert [check['outcome'] for check in mobb.requests()[-1]['scm_checks']] == ['broker_down']


def test_revoked_token_is_not_connected(mobb, acme, gitlab):
    requests.delete(f"{gitlab.url}/api/v4/personal_access_tokens/self",
                    headers={'PRIVATE-TOKEN': acme['token']['token']}, timeout=10).raise_for_status()
    answer = _qerr(mobb.rest_check(gitlab.url, api_key=acme['key']), 400)
    assert answer['code'] == 'unexpected' and 'revoked' in answer['error']
    assert acme['token']['token'] not in answer['error']


def test_check_failure_as_status_error(mobb, acme, gitlab):
    mobb.settings(check_failure='status')
    response = mobb.rest_check(gitlab.url, api_key=acme['other_key'])
    assert response.status_code == 200
    assert response.json() == {'checkScmConnectionStatus': {'status': 'Error'}}


def test_missing_scm_url_is_validation_failed(mobb, acme):
    answer = _qerr(mobb.rest_check(None, api_key=acme['key']), 400)
    assert answer == {'path': '$', 'error': 'expecting a value for non-nullable variable: "scmUrl"',
                      'code': 'validation-failed'}


def test_post_is_not_allowed(mobb, acme, gitlab):
    answer = _qerr(mobb.rest_check(gitlab.url, api_key=acme['key'], method='POST'), 405)
    assert answer['code'] == 'method-not-allowed'


@pytest.mark.parametrize('status', [502, 503, 504])
def test_status_fault_is_a_proxy_page_and_mobb_never_sees_the_request(mobb, acme, gitlab, status):
    mobb.fault('status', status=status, operation='checkScmConnectionStatus')
    response = mobb.rest_check(gitlab.url, api_key=acme['key'])
    assert response.status_code == status
    assert response.headers['Content-Type'].startswith('text/html')
    entry = mobb.requests()[-1]
    assert (entry['endpoint'], entry['fault'], entry['status'], entry['user']) == ('rest', 'status', status, None)
    assert mobb.rest_check(gitlab.url, api_key=acme['key']).status_code == 200


def test_html200_and_drop_faults(mobb, acme, gitlab):
    mobb.fault('html200')
    response = mobb.rest_check(gitlab.url, api_key=acme['key'])
    assert response.status_code == 200 and 'Bad Gateway' in response.text
    mobb.fault('drop')
    with pytest.raises(requests.ConnectionError):
        mobb.rest_check(gitlab.url, api_key=acme['key'])
    assert [entry['fault'] for entry in mobb.requests()] == ['html200', 'drop']


def test_the_log_records_each_answers_body_length_and_null_for_a_dropped_request(mobb, acme, gitlab):
    answers = [mobb.rest_check(gitlab.url, api_key=acme['key']),
               mobb.graphql('query Me { me { id } }', api_key=acme['key']),
               mobb.rest_check(gitlab.url, api_key='not-a-key')]
    mobb.fault('drop')
    with pytest.raises(requests.ConnectionError):
        mobb.rest_check(gitlab.url, api_key=acme['key'])
    assert [entry['response_bytes'] for entry in mobb.requests()] == [len(a.content) for a in answers] + [None]


def test_delay_fault_serves_the_request_late(mobb, acme, gitlab):
    mobb.fault('delay', seconds=0.3)
    response = mobb.rest_check(gitlab.url, api_key=acme['key'])
    assert response.json() == {'checkScmConnectionStatus': {'status': 'OK'}}
    assert mobb.requests()[-1]['fault'] == 'delay'


def test_internal_error_fault_is_hasuras_internal_error(mobb, acme, gitlab):
    mobb.fault('internal_error')
    answer = _qerr(mobb.rest_check(gitlab.url, api_key=acme['key']), 500)
    assert answer == {'path': '$', 'error': 'Internal Server Error', 'code': 'INTERNAL_ERROR'}


def test_a_fault_for_another_operation_leaves_the_rest_check_alone(mobb, acme, gitlab):
    mobb.fault('status', operation='Me')
    assert mobb.rest_check(gitlab.url, api_key=acme['key']).status_code == 200
    assert len(mobb.faults()) == 1
