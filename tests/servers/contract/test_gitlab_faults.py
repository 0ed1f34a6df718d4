"""Faults: each kind as python-gitlab and requests see it, and python-gitlab's own retries."""
from __future__ import annotations

import time

import gitlab as python_gitlab
import pytest
import requests

from gitlab_server.client import ControlError


def logged(instance):
    return [(r['method'], r['path'], r['status'], r['fault']) for r in instance.requests()]


@pytest.mark.parametrize('status', [500, 502, 503, 520])
def test_a_status_fault_answers_with_gitlabs_body_and_changes_nothing(gl_api, status):
    gl_api.instance.fault('status', status=status, method='POST', path=r'/users/\d+/personal_access_tokens$')
    response = gl_api.admin_raw('POST', '/users/1/personal_access_tokens', json={'name': 'x', 'scopes': ['api']})
    assert response.status_code == status
    assert response.json()['message'].startswith(f'{status} ')
    assert [t['name'] for t in gl_api.instance.tokens()] == ['admin']
    assert logged(gl_api.instance)[-1] == ('POST', '/api/v4/users/1/personal_access_tokens', status, 'status')


def test_transient_errors_are_retried_only_when_asked(gl_api):
    gl_api.instance.fault('status', status=502, count=2)
    with pytest.raises(python_gitlab.GitlabGetError) as failed:
        gl_api.gl().personal_access_tokens.get(1)
    assert (failed.value.response_code, failed.value.error_message) == (502, '502 Bad Gateway')
    assert gl_api.gl(retry_transient_errors=True).personal_access_tokens.get(1).name == 'admin'
    assert [entry[2:] for entry in logged(gl_api.instance)] == [(502, 'status'), (502, 'status'), (200, None)]


def test_rate_limits_are_retried_after_the_announced_delay(gl_api):
    gl_api.instance.fault('rate_limit', count=2, retry_after=0)
    response = gl_api.admin_raw('GET', '/user')
    assert (response.status_code, response.text) == (429, 'Retry later\n')
    assert response.headers['Retry-After'] == '0'
    for header in ('RateLimit-Limit', 'RateLimit-Name', 'RateLimit-Observed', 'RateLimit-Remaining',
                   'RateLimit-Reset', 'RateLimit-ResetTime'):
        assert header in response.headers
    gl = gl_api.gl()
    gl.auth()
    assert gl.user.username == 'root'
    assert [entry[2:] for entry in logged(gl_api.instance)] == [(429, 'rate_limit'), (429, 'rate_limit'), (200, None)]


def test_python_gitlab_gives_up_on_rate_limits_when_told_not_to_wait(gl_api):
    gl_api.instance.fault('rate_limit', retry_after=0)
    with pytest.raises(python_gitlab.GitlabGetError) as limited:
        gl_api.gl().personal_access_tokens.get(1, obey_rate_limit=False)
    assert limited.value.response_code == 429


def test_an_html_page_with_status_200_is_a_parsing_error(gl_api):
    gl_api.instance.fault('html200', path='personal_access_tokens')
    with pytest.raises(python_gitlab.GitlabParsingError):
        gl_api.gl().personal_access_tokens.list(get_all=True)
    response = gl_api.admin_raw('GET', '/version')
    assert response.status_code == 200 and response.json()['version']


def test_a_dropped_connection_is_a_connection_error_and_retried_when_asked(gl_api):
    gl_api.instance.fault('drop')
    with pytest.raises(requests.ConnectionError):
        gl_api.gl().auth()
    gl_api.instance.fault('drop')
    retrying = gl_api.gl(retry_transient_errors=True)
    retrying.auth()
    assert retrying.user.username == 'root'
    assert [entry[2:] for entry in logged(gl_api.instance)] == [(None, 'drop'), (None, 'drop'), (200, None)]


def test_a_delayed_write_still_lands_after_the_client_gave_up(gl_api):
    gl_api.instance.fault('delay', seconds=1.0, method='POST')
    with pytest.raises(requests.exceptions.ReadTimeout):
        gl_api.gl(timeout=0.2).personal_access_tokens.rotate(1)
    # The rotation happened although its answer, carrying the only copy of the secret, was lost.
    deadline = time.monotonic() + 10
    while not any(t['previous_id'] == 1 for t in gl_api.instance.tokens()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tokens = {t['id']: t for t in gl_api.instance.tokens()}
    assert tokens[1]['revoked'] is True
    assert [t['previous_id'] for t in tokens.values()] == [None, 1]


def test_faults_match_method_and_path_and_run_out(gl_team):
    gl_team.instance.fault('status', status=503, method='GET', path='access_tokens', count=2)
    assert gl_team.admin_raw('GET', '/user').status_code == 200
    assert gl_team.admin_raw('POST', '/projects/team%2Fapp/access_tokens',
                             json={'name': 'x', 'scopes': ['api']}).status_code == 201
    assert gl_team.admin_raw('GET', '/projects/team%2Fapp/access_tokens').status_code == 503
    assert gl_team.admin_raw('GET', '/personal_access_tokens').status_code == 503
    assert gl_team.admin_raw('GET', '/personal_access_tokens').status_code == 200


def test_faulted_requests_name_the_token_presented(gl_team):
    gl_team.instance.fault('status', status=500)
    gl_team.raw('GET', '/user', token=gl_team.secrets['bob'])
    entry = gl_team.instance.requests()[-1]
    assert (entry['username'], entry['token_id'], entry['fault']) == ('bob', gl_team.token_ids['bob'], 'status')


def test_faults_can_be_listed_and_cleared(gl_api):
    gl_api.instance.fault('status', status=500, count=3)
    gl_api.instance.clear_faults()
    assert gl_api.admin_raw('GET', '/user').status_code == 200


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'kind': 'explode'}, 'fault "kind" must be one of'),
    ({'kind': 'status', 'status': 200}, '"status" must be an HTTP error status'),
    ({'kind': 'status', 'count': 0}, '"count" must be at least 1'),
    ({'kind': 'drop', 'path': '('}, '"path" is not a regular expression'),
])
def test_bad_faults_are_refused(gl_api, kwargs, message):
    with pytest.raises(ControlError, match=message):
        gl_api.instance.fault(**kwargs)
    assert gl_api.admin_raw('GET', '/user').status_code == 200
