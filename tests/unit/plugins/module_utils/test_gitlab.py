"""One-line error messages of the shared GitLab layer, from python-gitlab's and requests' own errors."""
from __future__ import annotations

import json
import socket
import threading

import gitlab
import pytest
import requests

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import (
    GitLabModuleError, describe_error, gitlab_message)

URL = 'https://gitlab.example.com'


def describe(error, action='list the project access tokens named \'mobb\' of project \'acme/app\'',
             **kwargs):
    return describe_error(error, action, url=URL, timeout=30, retries=3, **kwargs)


def http_error(cls, status, body):
    raw = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    return cls(error_message='ignored', response_code=status, response_body=raw)


@pytest.mark.parametrize('body, message', [
    ({'message': '404 Project Not Found'}, '404 Project Not Found'),
    ({'error': 'scopes does not have a valid value'}, 'scopes does not have a valid value'),
    ({'message': {'name': ['has already been taken'], 'expires_at': ['is invalid']}},
     'name has already been taken; expires_at is invalid'),
    ({'message': {'error': 'This endpoint has been requested too many times. Try again later.'}},
     'This endpoint has been requested too many times. Try again later.'),
    ({'error': 'invalid_token', 'error_description': 'Token is expired. You can either do '
                                                     're-authorization or token refresh.'},
     'Token is expired. You can either do re-authorization or token refresh.'),
    (b'<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>',
     'an HTML page titled "502 Bad Gateway"'),
    (b'<!DOCTYPE html><html><body>Sign in</body></html>', 'an HTML page'),
    (b'Retry later\n', 'Retry later'),
    (b'', '(an empty answer)'),
])
def test_gitlab_message_reads_every_error_shape_gitlab_uses(body, message):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    assert gitlab_message(raw) == message


def test_not_found_names_operation_object_and_gitlab_message():
    error = http_error(gitlab.exceptions.GitlabListError, 404, {'message': '404 Project Not Found'})
    assert describe(error) == (
        "Could not list the project access tokens named 'mobb' of project 'acme/app': "
        "GitLab answered 404: Project Not Found. Check that it exists and that the api_token's "
        'user can see it')


def test_operation_hint_replaces_the_default_one():
    error = http_error(gitlab.exceptions.GitlabCreateError, 403, {'message': '403 Forbidden'})
    text = describe(error, action="create personal access token 'mobb' for user 'alice'",
                    hints={403: 'GitLab lets only administrators create them'}, write=True)
    assert text == ("Could not create personal access token 'mobb' for user 'alice': GitLab answered "
                    '403: Forbidden. GitLab lets only administrators create them')


@pytest.mark.parametrize('message, hint', [
    ('403 Forbidden - No more seats are available to create Service Account User', 'no seat left'),
    ('403 Forbidden', 'only administrators'),
])
def test_a_hint_may_depend_on_gitlabs_message(message, hint):
    error = http_error(gitlab.exceptions.GitlabCreateError, 403, {'message': message})
    text = describe(error, action="create service account 'mobb-bot' of the instance", write=True,
                    hints={403: lambda said: 'no seat left' if 'seats' in said else 'only administrators'})
    assert text == ("Could not create service account 'mobb-bot' of the instance: GitLab answered 403: %s. %s"
                    % (message[len('403 '):], hint))


@pytest.mark.parametrize('body, hint', [
    ({'error': 'invalid_token', 'error_description': 'Token is expired. You can either do '
                                                     're-authorization or token refresh.'},
     'The api_token has expired: give a current token'),
    ({'error': 'invalid_token', 'error_description': 'Token was revoked. You have to re-authorize from the user.'},
     'The api_token was revoked: give a current token'),
    ({'message': '401 Unauthorized'}, 'Check that api_token is a valid token for this GitLab'),
])
def test_authentication_failures_say_what_is_wrong_with_the_token(body, hint):
    error = http_error(gitlab.exceptions.GitlabAuthenticationError, 401, body)
    assert hint in describe(error)


def test_missing_scope_names_the_scope():
    error = http_error(gitlab.exceptions.GitlabListError, 403, {
        'error': 'insufficient_scope', 'scope': 'api',
        'error_description': 'The request requires higher privileges than provided by the access token.'})
    assert describe(error).endswith(
        "GitLab answered 403: The request requires higher privileges than provided by the access "
        "token. The api_token lacks the 'api' scope: use a token with it")


def test_lifetime_cap_explains_what_to_change():
    error = http_error(gitlab.exceptions.GitlabCreateError, 400,
                       {'message': '400 Bad request - Expires at must be before 2027-03-10'})
    text = describe(error, write=True)
    assert 'GitLab answered 400: Bad request - Expires at must be before 2027-03-10. GitLab caps' in text
    assert 'use a smaller expires_in_days or an earlier expires_at' in text


def test_rate_limit_and_server_errors_report_the_retries():
    limited = http_error(gitlab.exceptions.GitlabListError, 429, b'Retry later\n')
    assert describe(limited).endswith('GitLab still rate-limited it after 3 retries: run later, or raise retries')
    failed = http_error(gitlab.exceptions.GitlabListError, 503, {'message': '503 Service Unavailable'})
    assert describe(failed).endswith('GitLab still failed after 3 retries: try again later')


def test_server_error_on_a_write_warns_it_may_have_been_applied():
    error = http_error(gitlab.exceptions.GitlabRotateError, 502,
                       b'<html><title>502 Bad Gateway</title></html>')
    text = describe(error, action='rotate personal access token 4', write=True)
    assert text.startswith('Could not rotate personal access token 4: GitLab answered 502: an HTML page '
                           'titled "502 Bad Gateway".')
    assert 'GitLab may have applied it' in text
    assert 'retries' not in text


def test_not_json_points_at_api_url():
    error = gitlab.exceptions.GitlabParsingError(error_message='Failed to parse the server message')
    assert describe(error) == (
        "Could not list the project access tokens named 'mobb' of project 'acme/app': the answer from "
        "https://gitlab.example.com is not GitLab's JSON; check that api_url is GitLab's base URL and "
        'that no proxy or login page stands in front of it')


def closed_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_refused_connection_gives_the_reason_without_object_reprs():
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f'http://127.0.0.1:{closed_port()}/api/v4/user', timeout=5)
    text = describe(caught.value)
    assert text.startswith("Could not list the project access tokens named 'mobb' of project 'acme/app': "
                           'no connection to GitLab at https://gitlab.example.com (')
    assert 'Connection refused' in text
    assert '0x' not in text and '<' not in text
    assert text.endswith('check api_url and that GitLab is reachable from the host running the module')


def test_refused_connection_drops_urllib3s_connection_prefix():
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f'http://127.0.0.1:{closed_port()}/', timeout=5)
    assert '(Failed to establish a new connection: [Errno 111] Connection refused);' in describe(caught.value)


def test_dropped_connection_names_what_happened():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)

    def hang_up():
        connection, _address = listener.accept()
        connection.recv(65536)
        connection.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            requests.get(f'http://127.0.0.1:{listener.getsockname()[1]}/', timeout=5)
    finally:
        thread.join()
        listener.close()
    assert '(Remote end closed connection without response);' in describe(caught.value)


def test_timeout_says_how_long_was_waited():
    error = requests.exceptions.ReadTimeout('Read timed out. (read timeout=30)')
    assert describe(error).endswith('GitLab at https://gitlab.example.com did not answer within 30 seconds '
                                    'after 3 retries; raise timeout or check the network path to GitLab')
    assert 'GitLab may have applied it' in describe(error, write=True)


def test_messages_are_one_line():
    error = http_error(gitlab.exceptions.GitlabListError, 500, b'line one\nline two\n\n  line three')
    assert '\n' not in describe(error)
    assert str(GitLabModuleError('a\nb   c')) == 'a b c'
