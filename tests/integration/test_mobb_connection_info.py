"""mobb.scm.mobb_connection_info through ansible-playbook against the local Mobb and GitLab.

Each run is checked for leaks (see mobb_plays.MobbPlays.run).
"""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.mobb.scm.plugins.modules import mobb_connection_info
from mobb_plays import MobbPlays, closed_port, connection_task, endpoints, failure, integration_task, operations


@pytest.fixture
def plays(run_playbook, mobb, gitlab, tmp_path):
    return MobbPlays(run_playbook, mobb, gitlab, tmp_path)


@pytest.fixture
def stored_plays(plays):
    """Mobb holds the GitLab token (stored through the integration module)."""
    run = plays.run([integration_task('store')])
    assert run.task('store')['written'] is True
    return plays


def public_fields(result):
    return {key: result[key] for key in ('connected', 'status', 'message', 'token_stored', 'scm_config_id',
                                         'brokered', 'broker_virtual_domain')}


def test_connected_through_the_broker_in_one_request(stored_plays):
    config = stored_plays.mobb.scm_configs()[0]
    run = stored_plays.run([connection_task('check')], check=True)
    result = run.task('check')
    assert run.rc == 0 and result['changed'] is False
    assert public_fields(result) == {
        'connected': True, 'status': 'OK', 'message': None, 'token_stored': True,
        'scm_config_id': config['id'], 'brokered': True, 'broker_virtual_domain': 'vd-acme'}
    assert result['token_last_update'] == config['token_last_update']
    assert operations(stored_plays.mobb) == ['checkScmConnectionStatus']


def test_broker_down_is_reported_not_failed(stored_plays):
    stored_plays.mobb.set_broker(stored_plays.gitlab_host, False)
    run = stored_plays.run([connection_task('check')])
    result = run.task('check')
    assert run.rc == 0 and run.results[-1]['status'] == 'ok'
    assert result['connected'] is False and result['status'] == 'Error'
    assert result['message'].startswith('Mobb could not reach the repository.')
    assert result['token_stored'] is True and result['brokered'] is True
    assert operations(stored_plays.mobb) == ['checkScmConnectionStatus', 'Me']


def test_revoked_token_is_reported_not_failed(stored_plays):
    stored_plays.gitlab.reset()  # every token of the old instance is gone
    run = stored_plays.run([connection_task('check')])
    result = run.task('check')
    assert result['connected'] is False
    assert result['message'].startswith('Invalid SCM credentials: GitLab rejected the token')


def test_not_connected_as_status_error(stored_plays):
    stored_plays.mobb.settings(check_failure='status')
    stored_plays.mobb.set_broker(stored_plays.gitlab_host, False)
    run = stored_plays.run([connection_task('check')])
    result = run.task('check')
    assert result['connected'] is False
    assert result['message'] == f'Mobb reports connection status Error for {stored_plays.gitlab.url}'
    assert operations(stored_plays.mobb) == ['checkScmConnectionStatus']


def test_nothing_stored(plays):
    run = plays.run([connection_task('check', scm_url='https://GitLab.Elsewhere.example:443/')])
    assert public_fields(run.task('check')) == {
        'connected': False, 'status': 'Error', 'message': 'No SCM token is stored for https://gitlab.elsewhere.example',
        'token_stored': False, 'scm_config_id': None, 'brokered': False, 'broker_virtual_domain': None}


def test_an_api_v4_url_asks_about_the_server_url(stored_plays):
    scheme, rest = stored_plays.gitlab.url.split('://', 1)
    run = stored_plays.run([connection_task('check', scm_url=f'{scheme.upper()}://{rest}/api/v4/')])
    result = run.task('check')
    assert public_fields(result) == {
        'connected': True, 'status': 'OK', 'message': None, 'token_stored': True,
        'scm_config_id': stored_plays.mobb.scm_configs()[0]['id'], 'brokered': True, 'broker_virtual_domain': 'vd-acme'}
    assert [check['url'] for check in stored_plays.mobb.requests()[0]['scm_checks']] == [stored_plays.gitlab.url]


def test_bad_key_and_unreachable_api_fail(plays):
    with closed_port() as port:
        url = f'http://127.0.0.1:{port}/v1/graphql'
        run = plays.run([
            connection_task('bad key', api_key='not-a-mobb-key'),
            connection_task('unreachable', api_url=url, retries=0),
        ])
    assert failure(run, 'bad key')['msg'].startswith('Mobb refused the API key (access-denied')
    assert failure(run, 'unreachable')['msg'].startswith(f'cannot reach the Mobb API at {url} (')


def test_transient_fault_on_the_check_is_retried(stored_plays):
    stored_plays.mobb.fault('html200', operation='checkScmConnectionStatus')
    run = stored_plays.run([connection_task('check')])
    assert run.task('check')['connected'] is True
    assert [entry['fault'] for entry in stored_plays.mobb.requests()] == ['html200', None]


def test_examples_run_against_the_local_servers(stored_plays):
    run = stored_plays.run(yaml.safe_load(mobb_connection_info.EXAMPLES), module_defaults=False)
    assert run.rc == 0, run.output[-3000:]
    assert run.task('Ask Mobb whether it reaches the GitLab Server')['connected'] is True
    assert 'Mobb reaches' in run.task('Stop when Mobb cannot reach GitLab')['msg']

    assert run.task("Ask through Mobb's REST endpoint instead (its URL is in Mobb's API docs)")['connected'] is True

    stored_plays.mobb.set_broker(stored_plays.gitlab_host, False)
    run = stored_plays.run(yaml.safe_load(mobb_connection_info.EXAMPLES), module_defaults=False)
    assert run.rc != 0
    message = failure(run, 'Stop when Mobb cannot reach GitLab')['msg']
    assert message.startswith(f'Mobb cannot reach {stored_plays.gitlab.url} (through broker vd-acme): Mobb could not')


# -- the REST form of the check (rest_url) --------------------------------------------------------
def test_rest_url_checks_through_rest_and_reads_the_rest_through_graphql(stored_plays):
    config = stored_plays.mobb.scm_configs()[0]
    run = stored_plays.run([connection_task('check', rest_url='{{ mobb_rest_url }}')], check=True)
    result = run.task('check')
    assert run.rc == 0 and result['changed'] is False
    assert public_fields(result) == {
        'connected': True, 'status': 'OK', 'message': None, 'token_stored': True,
        'scm_config_id': config['id'], 'brokered': True, 'broker_virtual_domain': 'vd-acme'}
    assert endpoints(stored_plays.mobb) == [('rest', 'checkScmConnectionStatus'), ('graphql', 'Me')]


def test_rest_url_broker_down_is_reported_not_failed(stored_plays):
    stored_plays.mobb.set_broker(stored_plays.gitlab_host, False)
    run = stored_plays.run([connection_task('check', rest_url='{{ mobb_rest_url }}')])
    result = run.task('check')
    assert run.rc == 0 and run.results[-1]['status'] == 'ok'
    assert result['connected'] is False and result['status'] == 'Error'
    assert result['message'].startswith('Mobb could not reach the repository.')
    assert endpoints(stored_plays.mobb) == [('rest', 'checkScmConnectionStatus'), ('graphql', 'Me')]


def test_rest_url_faults_retried_and_errors_fail_clearly(stored_plays):
    stored_plays.mobb.fault('status', status=503, operation='checkScmConnectionStatus')
    wrong = stored_plays.mobb.url + '/api/rest/no-such-endpoint'
    run = stored_plays.run([
        connection_task('check', rest_url='{{ mobb_rest_url }}'),
        connection_task('bad key', rest_url='{{ mobb_rest_url }}', api_key='not-a-mobb-key'),
        connection_task('wrong path', rest_url=wrong),
    ])
    assert run.task('check')['connected'] is True
    assert any('HTTP 503' in warning for warning in run.task('check')['warnings'])
    assert failure(run, 'bad key')['msg'].startswith('Mobb refused the API key (access-denied')
    assert failure(run, 'wrong path')['msg'].startswith(f'no Mobb REST endpoint at {wrong} (HTTP 404)')
