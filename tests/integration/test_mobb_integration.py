"""mobb.scm.mobb_integration through ansible-playbook against the local Mobb and GitLab.

Each run is checked for leaks (see mobb_plays.MobbPlays.run): no API key or token the
servers issued may appear in the -vvvv output or in files left behind.
"""
from __future__ import annotations

import hashlib
import time

import pytest
import yaml

from ansible_collections.mobb.scm.plugins.modules import mobb_integration
from mobb_plays import MobbPlays, closed_port, failure, fingerprint, integration_task, operations, warnings_of


@pytest.fixture
def plays(run_playbook, mobb, gitlab, tmp_path):
    return MobbPlays(run_playbook, mobb, gitlab, tmp_path)


def stored(plays):
    """(token SHA-256, write count) of the one integration Mobb holds."""
    configs = plays.mobb.scm_configs()
    assert len(configs) == 1
    return configs[0]['token_sha256'], configs[0]['writes']


def test_check_mode_then_store_then_rerun_changes_nothing(plays):
    task = [integration_task('store')]

    preview = plays.run(task, check=True, diff=True)
    result = preview.task('store')
    assert preview.rc == 0 and result['changed'] is True and result['written'] is False
    assert plays.mobb.writes() == [] and plays.mobb.scm_configs() == []
    assert operations(plays.mobb) == ['Me', 'validateScmToken']

    first = plays.run(task)
    result = first.task('store')
    assert first.rc == 0 and result['changed'] is True and result['written'] is True
    assert result['scm_config']['token_fingerprint'] == fingerprint(plays.token)
    assert result['scm_config']['scm_url'] == plays.gitlab.url
    assert stored(plays) == (hashlib.sha256(plays.token.encode()).hexdigest(), 1)
    assert [entry['operation'] for entry in plays.mobb.writes()] == ['updateScmToken']

    again = plays.run(task)
    result = again.task('store')
    assert again.rc == 0 and result['changed'] is False and result['written'] is False
    assert operations(plays.mobb) == ['Me']
    assert plays.mobb.writes() == []
    assert stored(plays)[1] == 1
    assert 'changed=0' in again.output


def test_diff_shows_fingerprints_only(plays):
    plays.run([integration_task('store')])
    run = plays.run([integration_task('replace', token='{{ next_gitlab_token }}')], diff=True)
    result = run.task('replace')
    assert result['changed'] is True
    assert result['diff'] == {
        'before': {'scm_type': 'GitLab', 'scm_url': plays.gitlab.url, 'org': None,
                   'token_fingerprint': fingerprint(plays.token)},
        'after': {'scm_type': 'GitLab', 'scm_url': plays.gitlab.url, 'org': None,
                  'token_fingerprint': fingerprint(plays.next_token)}}
    assert f'-    "token_fingerprint": "{fingerprint(plays.token)}"' in run.output
    assert f'+    "token_fingerprint": "{fingerprint(plays.next_token)}"' in run.output
    assert stored(plays) == (hashlib.sha256(plays.next_token.encode()).hexdigest(), 2)


def test_token_not_returned_by_mobb_is_written_with_a_warning(plays):
    plays.mobb.settings(return_tokens=False)
    first = plays.run([integration_task('store')])
    assert first.task('store')['written'] is True
    assert warnings_of(first.task('store')) == []  # nothing stored yet: nothing to compare
    for expected_writes in (2, 3):
        run = plays.run([integration_task('store')])
        result = run.task('store')
        assert run.rc == 0 and result['changed'] is True and result['written'] is True
        assert result['diff']['before']['token_fingerprint'] == 'unknown'
        assert '[WARNING]: Mobb does not return the token it holds for' in run.output
        assert stored(plays)[1] == expected_writes


@pytest.mark.parametrize('validate', [True, False])
def test_rejected_token_leaves_the_stored_token_as_it_was(plays, validate):
    plays.run([integration_task('store')])
    before = stored(plays)
    revoked = plays.gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'revoked',
                                         'revoked': True}])['tokens'][0]['token']
    run = plays.run([integration_task('store revoked', validate=validate,
                                      token="{{ lookup('ansible.builtin.env', 'REVOKED_TOKEN') }}")],
                    env={'REVOKED_TOKEN': revoked})
    result = failure(run, 'store revoked')
    assert result['msg'].startswith(f'GitLab at {plays.gitlab.url} rejected the token (BadScmCredentials: ')
    assert result['request_id'] == plays.mobb.requests()[-1]['request_id']
    assert stored(plays) == before
    assert [entry['result'] for entry in plays.mobb.writes()] == ([] if validate else ['BadScmCredentials'])


def test_broker_down_fails_and_leaves_mobb_as_it_was(plays):
    plays.run([integration_task('store')])
    before = stored(plays)
    plays.mobb.set_broker(plays.gitlab_host, False)
    run = plays.run([integration_task('replace', token='{{ next_gitlab_token }}', validate=False)])
    result = failure(run, 'replace')
    assert result['msg'].startswith(f'Mobb cannot reach GitLab at {plays.gitlab.url} (RepoUnreachableError: ')
    assert 'check that the broker is connected' in result['msg']
    assert stored(plays) == before


def test_bad_api_key_fails_clearly_after_one_request(plays):
    run = plays.run([integration_task('store')], env={'MOBB_API_KEY': 'not-a-mobb-key'})
    result = failure(run, 'store')
    assert result['msg'] == ('Mobb refused the API key (access-denied: Authentication hook unauthorized this '
                             'request): check api_key or MOBB_API_KEY, and that api_url is the Mobb deployment '
                             'that issued it')
    assert [entry['error_code'] for entry in plays.mobb.requests()] == ['access-denied']
    assert plays.mobb.scm_configs() == []


def test_missing_api_key_fails_before_any_request(plays):
    run = plays.run([integration_task('store')], env={'MOBB_API_KEY': ''})
    assert failure(run, 'store')['msg'] == 'api_key is not set: give api_key or set MOBB_API_KEY to a Mobb API key'
    assert plays.mobb.requests() == []


def test_unreachable_api_url_fails_clearly(plays):
    with closed_port() as port:
        url = f'http://127.0.0.1:{port}/v1/graphql'
        run = plays.run([integration_task('store')], module_defaults={'api_url': url, 'retries': 1})
    result = failure(run, 'store')
    assert result['msg'].startswith(f'cannot reach the Mobb API at {url} after 1 retries (')
    assert warnings_of(result) == [f'Mobb API at {url}: Failed to establish a new connection: [Errno 111] '
                                   'Connection refused; retry 1 of 1 in 0.5 s']


@pytest.mark.parametrize('fault', [
    {'kind': 'status', 'status': 502}, {'kind': 'status', 'status': 503}, {'kind': 'status', 'status': 504},
    {'kind': 'html200'}, {'kind': 'drop'},
], ids=['502', '503', '504', 'html200', 'drop'])
def test_transient_faults_on_reads_are_retried_then_succeed(plays, fault):
    plays.mobb.fault(count=2, operation='Me', **fault)
    run = plays.run([integration_task('store')])
    result = run.task('store')
    assert run.rc == 0 and result['written'] is True
    assert [text.split('; ')[-1] for text in warnings_of(result)] == ['retry 1 of 3 in 0.5 s', 'retry 2 of 3 in 1.0 s']
    assert [(entry['operation'], entry['fault']) for entry in plays.mobb.requests()][:3] == [
        ('Me', fault['kind']), ('Me', fault['kind']), ('Me', None)]
    assert stored(plays)[1] == 1


UNKNOWN_ADVICE = ('Mobb may or may not have stored the token; updateScmToken is not retried, since the first attempt '
                  'may have landed or may still land. Mobb may hold the new token now: run the task again, it reads '
                  'what Mobb holds first and stores the token only if Mobb does not hold it')


@pytest.mark.parametrize('fault, cause', [
    ({'kind': 'status', 'status': 502}, 'answered updateScmToken with HTTP 502 Bad Gateway'),
    ({'kind': 'status', 'status': 504}, 'answered updateScmToken with HTTP 504 Gateway Timeout'),
    ({'kind': 'html200'}, 'answered updateScmToken with a proxy page saying "bad gateway"'),
], ids=['502', '504', 'html200'])
def test_store_whose_answer_is_lost_fails_once_and_the_rerun_stores(plays, fault, cause):
    plays.mobb.fault(operation='updateScmToken', **fault)  # one fault: a retry would have succeeded
    run = plays.run([integration_task('store')])
    result = failure(run, 'store')
    assert result['msg'] == f'the Mobb API at {plays.mobb.graphql_url} {cause}: {UNKNOWN_ADVICE}'
    assert [entry['fault'] for entry in plays.mobb.writes()] == [fault['kind']]
    assert warnings_of(result) == []
    assert plays.mobb.scm_configs() == []

    again = plays.run([integration_task('store')])
    assert again.task('store')['written'] is True
    assert stored(plays) == (hashlib.sha256(plays.token.encode()).hexdigest(), 1)


def test_dropped_store_fails_once(plays):
    plays.mobb.fault('drop', operation='updateScmToken')
    run = plays.run([integration_task('store')])
    result = failure(run, 'store')
    assert result['msg'] == (f'the connection to the Mobb API at {plays.mobb.graphql_url} failed while updateScmToken '
                             f'was sent or answered (Remote end closed connection without response): {UNKNOWN_ADVICE}')
    assert [entry['fault'] for entry in plays.mobb.writes()] == ['drop']


def test_store_that_lands_after_a_timeout_fails_and_the_rerun_changes_nothing(plays):
    """Mobb stores the token after the module gave up waiting: the task fails saying Mobb may
    hold it, sends the store once, and the next run finds the token in place."""
    plays.mobb.fault('delay', seconds=3, operation='updateScmToken')
    run = plays.run([integration_task('store')], module_defaults={'timeout': 1})
    result = failure(run, 'store')
    assert result['msg'] == (f'the Mobb API at {plays.mobb.graphql_url} did not answer updateScmToken within 1 s: '
                             f'{UNKNOWN_ADVICE}')
    assert [entry['fault'] for entry in plays.mobb.writes()] == ['delay']
    deadline = time.monotonic() + 10
    while not plays.mobb.scm_configs():
        assert time.monotonic() < deadline, 'the delayed store never landed'
        time.sleep(0.2)
    assert stored(plays) == (hashlib.sha256(plays.token.encode()).hexdigest(), 1)

    again = plays.run([integration_task('store')])
    result = again.task('store')
    assert again.rc == 0 and result['changed'] is False and result['written'] is False
    assert operations(plays.mobb) == ['Me']
    assert stored(plays)[1] == 1


def test_reads_exhausting_their_retries_fail_clearly(plays):
    plays.mobb.fault('status', count=10, status=503, operation='Me')
    run = plays.run([integration_task('store')], module_defaults={'retries': 2})
    result = failure(run, 'store')
    assert result['msg'] == f'Mobb API at {plays.mobb.graphql_url} still answered HTTP 503 after 2 retries: try again later'
    assert operations(plays.mobb) == ['Me'] * 3
    assert plays.mobb.scm_configs() == []


@pytest.fixture
def tls_plays(run_playbook, mobb, gitlab_tls, tmp_path):
    return MobbPlays(run_playbook, mobb, gitlab_tls, tmp_path)


def test_an_api_v4_url_names_the_same_integration_as_the_server_url(tls_plays):
    scheme, rest = tls_plays.gitlab.url.split('://', 1)
    api_url = f'{scheme.upper()}://{rest}/api/v4/'
    run = tls_plays.run([integration_task('store', scm_url=api_url)])
    result = run.task('store')
    assert run.rc == 0 and result['written'] is True
    assert result['scm_config']['scm_url'] == tls_plays.gitlab.url
    assert [config['scm_url'] for config in tls_plays.mobb.scm_configs()] == [tls_plays.gitlab.url]

    again = tls_plays.run([integration_task('plain'), integration_task('api', scm_url=api_url)])
    assert again.task('plain')['changed'] is False and again.task('api')['changed'] is False
    assert operations(tls_plays.mobb) == ['Me', 'Me']
    assert stored(tls_plays)[1] == 1


def test_bad_input_fails_with_a_clear_message_and_sends_nothing(plays):
    run = plays.run([
        integration_task('no token', token=''),
        integration_task('bad url', scm_url='gitlab.internal.example'),
        integration_task('bad state', state='absent'),
    ])
    assert failure(run, 'no token')['msg'] == 'token is empty: give the GitLab access token to store'
    assert failure(run, 'bad url')['msg'] == ("scm_url must be an http(s) URL with a host, such as "
                                              "https://gitlab.example.com, got 'gitlab.internal.example'")
    assert 'value of state must be one of: present, got: absent' in failure(run, 'bad state')['msg']
    assert plays.mobb.requests() == []


def test_examples_run_against_the_local_servers(plays):
    tasks = yaml.safe_load(mobb_integration.EXAMPLES)
    run = plays.run(tasks, module_defaults=False, env={'MOBB_API_URL': plays.mobb.graphql_url})
    assert run.rc == 0, run.output[-3000:]
    assert run.task('Preview without writing')['changed'] is True
    assert run.task('Store the token in Mobb')['written'] is True
    shown = run.task('Show what Mobb holds now')['msg']
    assert f'holds token {fingerprint(plays.token)}' in shown
    assert run.task('Store a token with the connection from MOBB_API_URL and MOBB_API_KEY, skipping the '
                    'separate check')['changed'] is False
    assert stored(plays)[1] == 1
