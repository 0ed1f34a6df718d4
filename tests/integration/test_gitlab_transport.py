"""TLS, retries and faults between the GitLab modules and the local GitLab."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gitlab_plays import GitLabPlays, call, failure, issue, public

BROKER = {'user': 'mobb-broker', 'name': 'mobb-broker'}


@pytest.fixture
def tls_plays(run_playbook, gitlab_tls):
    gitlab_tls.seed(users=[{'username': 'mobb-broker'}])
    return GitLabPlays(run_playbook, gitlab_tls)


@pytest.fixture
def plays(run_playbook, gitlab):
    gitlab.seed(users=[{'username': 'mobb-broker'}])
    return GitLabPlays(run_playbook, gitlab)


def test_tls_with_ca_path(tls_plays, gitlab_tls):
    assert gitlab_tls.url.startswith('https://') and gitlab_tls.ca_path
    run = tls_plays.run([*issue('create', 'personal', **BROKER), call('list', 'info', user='mobb-broker')])
    created = public(run, 'create')
    assert created['action'] == 'created'
    assert [token['id'] for token in run.task('list')['access_tokens']] == [created['token_id']]
    assert tls_plays.whoami(tls_plays.secret(created['token_sha256']))[0] == 200


def test_tls_untrusted_certificate_fails_before_any_request(tls_plays, gitlab_tls):
    run = tls_plays.run([call('untrusted', 'personal', **BROKER)], defaults={'ca_path': None, 'retries': 0})
    message = failure(run, 'untrusted')
    assert message.startswith(f"Could not look up GitLab user 'mobb-broker': the TLS certificate of "
                              f'{gitlab_tls.url} could not be verified (')
    assert 'certificate verify failed' in message
    assert message.endswith("Set ca_path to the CA file that signed GitLab's certificate "
                            '(validate_certs=false only for test servers)')
    assert gitlab_tls.requests() == []


def test_validate_certs_false_skips_verification(tls_plays, gitlab_tls):
    run = tls_plays.run([call('unverified', 'info', user='mobb-broker')],
                        defaults={'ca_path': None, 'validate_certs': False})
    assert run.task('unverified')['access_tokens'] == []


def test_transient_errors_and_rate_limits_on_reads_are_retried(plays, gitlab):
    gitlab.fault('status', count=2, method='GET', path='/personal_access_tokens$', status=503)
    run = plays.run([call('list', 'info', user='mobb-broker')])
    assert run.task('list')['access_tokens'] == []
    assert [entry['status'] for entry in gitlab.requests() if entry['path'].endswith('/personal_access_tokens')] == [
        503, 503, 200]

    gitlab.clear_requests()
    gitlab.fault('rate_limit', count=1, method='GET', path='/users$', retry_after=1)
    gitlab.fault('drop', count=1, method='GET', path='/personal_access_tokens$')
    run = plays.run([call('list', 'info', user='mobb-broker')])
    assert run.task('list')['access_tokens'] == []
    assert [(entry['path'], entry['fault']) for entry in gitlab.requests()] == [
        ('/api/v4/users', 'rate_limit'), ('/api/v4/users', None),
        ('/api/v4/personal_access_tokens', 'drop'), ('/api/v4/personal_access_tokens', None)]


def test_retries_are_bounded_by_the_option(plays, gitlab):
    gitlab.fault('status', count=5, method='GET', path='/users$', status=502)
    run = plays.run([call('list', 'info', user='mobb-broker')], defaults={'retries': 1})
    assert failure(run, 'list') == ("Could not look up GitLab user 'mobb-broker': GitLab answered 502: Bad Gateway. "
                                    'GitLab still failed after 1 retries: try again later')
    assert len(gitlab.requests()) == 2


def test_a_write_is_not_repeated_after_a_server_error(plays, gitlab):
    gitlab.fault('status', count=1, method='POST', path='/personal_access_tokens$', status=500)
    run = plays.run([*issue('create', 'personal', **BROKER)])
    message = public(run, 'create')['msg']
    assert message.startswith("Could not create personal access token 'mobb-broker' for user 'mobb-broker': "
                              'GitLab answered 500: Internal Server Error. GitLab may have applied it')
    assert [entry['method'] for entry in gitlab.writes()] == ['POST']


def test_a_rate_limited_write_is_retried(plays, gitlab):
    gitlab.fault('rate_limit', count=1, method='POST', path='/personal_access_tokens$', retry_after=1)
    run = plays.run([*issue('create', 'personal', **BROKER)])
    assert public(run, 'create')['action'] == 'created'
    assert [entry['status'] for entry in gitlab.writes()] == [429, 201]


def test_slow_answers_time_out_and_are_retried(plays, gitlab):
    gitlab.fault('delay', count=1, method='GET', path='/users$', seconds=3)
    run = plays.run([call('list', 'info', user='mobb-broker')], defaults={'timeout': 1})
    assert run.task('list')['access_tokens'] == []
    assert len([entry for entry in gitlab.requests() if entry['path'] == '/api/v4/users']) == 2


def test_an_html_page_instead_of_json_is_named(plays, gitlab):
    gitlab.fault('html200', count=1, method='GET', path='/personal_access_tokens$')
    run = plays.run([call('list', 'info', user='mobb-broker')])
    assert failure(run, 'list') == (
        f"Could not list the personal access tokens of user 'mobb-broker': the answer from {gitlab.url} is "
        "not GitLab's JSON; check that api_url is GitLab's base URL and that no proxy or login page stands "
        'in front of it')


def test_environment_fills_what_the_play_leaves_unset_without_clashing(plays, gitlab):
    # CI jobs always set CI_JOB_TOKEN: it must neither win over GITLAB_TOKEN nor clash with
    # an api_token given in the play.
    run = plays.run([
        call('from environment', 'info', user='mobb-broker'),
        call('explicit token', 'info', user='mobb-broker', api_token='{{ lookup("env", "GITLAB_TOKEN") }}'),
        # GitLab takes a bearer value that is not an OAuth token as a personal access token.
        call('bearer token', 'info', user='mobb-broker', api_oauth_token='{{ lookup("env", "GITLAB_TOKEN") }}'),
    ], defaults={'api_url': None}, env={'GITLAB_URL': f'{gitlab.url}/api/v4', 'CI_JOB_TOKEN': 'job-token-from-ci'})
    for title in ('from environment', 'explicit token', 'bearer token'):
        assert run.task(title)['access_tokens'] == [], title
    assert {entry['username'] for entry in gitlab.requests()} == {'root'}


def test_missing_python_gitlab_is_named(plays, gitlab, tmp_path):
    bare = tmp_path / 'bare-python'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(bare)], check=True, timeout=120)
    task = dict(call('no library', 'info'), vars={'ansible_python_interpreter': str(bare / 'bin' / 'python')})
    run = plays.run([task])
    assert failure(run, 'no library').startswith('Failed to import the required Python library (python-gitlab)')
    assert gitlab.requests() == []


def test_api_url_spelling_does_not_matter(plays, gitlab):
    # Scheme case, a trailing /api/v4 and slashes: the same server, the same API paths.
    shouting = gitlab.url.replace('http://', 'HTTP://') + '/api/v4/'
    assert shouting.startswith('HTTP://127.0.0.1:')
    run = plays.run([*issue('create', 'personal', **BROKER), call('list', 'info', user='mobb-broker')],
                    defaults={'api_url': shouting})
    created = public(run, 'create')
    assert created['action'] == 'created'
    assert [token['id'] for token in run.task('list')['access_tokens']] == [created['token_id']]
    assert [(entry['method'], entry['path'], entry['status']) for entry in gitlab.requests()][:3] == [
        ('GET', '/api/v4/users', 200), ('GET', '/api/v4/personal_access_tokens', 200),
        ('POST', f'/api/v4/users/{created["user_id"]}/personal_access_tokens', 201)]
