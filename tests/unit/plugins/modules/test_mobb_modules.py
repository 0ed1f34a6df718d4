"""mobb_integration and mobb_connection_info run in-process (``main()`` with module args, as
ansible-core hands them over) against the local Mobb and GitLab servers over real HTTP.
The playbook-level tests, through ansible-playbook, are in tests/integration/test_mobb_*.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.parse
from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings

try:
    from ansible.module_utils import _internal as module_internal
except ImportError:  # ansible-core < 2.19 has no controller switch for module warnings
    module_internal = None

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19 has no helper: the module args are basic._ANSIBLE_ARGS
    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode()):
            yield
from ansible_collections.mobb.scm.plugins.modules import mobb_connection_info, mobb_integration


@pytest.fixture
def run_module(capsys, monkeypatch):
    """Run a module's main() with these args; (exit code, the JSON it printed)."""
    # ansible-core 2.19 sends a module's warnings to the controller's display once anything of
    # the controller is imported in the process (another test's import of ansible.errors): a
    # module runs in a process of its own, where nothing is.
    if hasattr(module_internal, 'is_controller'):
        monkeypatch.setattr(module_internal, 'is_controller', False)

    def run(module, args, check_mode=False, diff=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        # Warnings are process-wide in a module; each real run is a fresh process.
        module_warnings._global_warnings.clear()
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            module.main()
        return exited.value.code, json.loads(capsys.readouterr().out)
    return run


def warning_texts(result):
    # ansible-core 2.19 returns warnings as structured events, older versions as strings.
    return [warning if isinstance(warning, str) else warning['event']['msg'] for warning in result.get('warnings', [])]


@pytest.fixture
def scenario(mobb, gitlab):
    """A Mobb Admin and a GitLab PAT fit for Mobb; connection args for the modules."""
    host = urllib.parse.urlsplit(gitlab.url).netloc
    seeded = mobb.seed(
        organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': host, 'virtual_domain': 'vd-acme'}]}],
        users=[{'email': 'admin@acme.example', 'organization': 'acme', 'role': 'Admin'}])
    tokens = gitlab.seed(users=[{'username': 'mobb-bot'}], tokens=[
        {'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb', 'scopes': ['api', 'read_user']},
        {'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb-next', 'scopes': ['api', 'read_user']},
    ])['tokens']

    class Scenario:
        api_key = seeded['users'][0]['api_key']
        token, next_token = (item['token'] for item in tokens)
        connection = {'api_url': mobb.graphql_url, 'api_key': api_key}
        gitlab_host = host

        def integration(self, **overrides):
            return dict(self.connection, scm_url=gitlab.url, token=self.token) | overrides

        def info(self, **overrides):
            return dict(self.connection, scm_url=gitlab.url) | overrides

    return Scenario()


def fingerprint(token):
    return hashlib.sha256(token.encode()).hexdigest()


def test_integration_stores_then_changes_nothing(run_module, scenario, mobb, gitlab):
    code, first = run_module(mobb_integration, scenario.integration())
    assert code == 0 and first['changed'] is True and first['written'] is True
    stored = mobb.scm_configs()
    assert len(stored) == 1 and stored[0]['token_sha256'] == fingerprint(scenario.token)
    assert first['scm_config'] == {
        'id': stored[0]['id'], 'scm_type': 'GitLab', 'scm_url': gitlab.url, 'org': None,
        'token_last_update': stored[0]['token_last_update'], 'is_token_available': True,
        'token_fingerprint': fingerprint(scenario.token)[:12]}
    assert [entry['operation'] for entry in mobb.requests()] == ['Me', 'validateScmToken', 'updateScmToken', 'Me']

    mobb.clear_requests()
    code, second = run_module(mobb_integration, scenario.integration())
    assert code == 0 and second['changed'] is False and second['written'] is False
    assert second['scm_config'] == first['scm_config']
    assert [entry['operation'] for entry in mobb.requests()] == ['Me']
    assert mobb.scm_configs()[0]['writes'] == 1


def test_integration_matches_the_url_however_it_is_spelt(run_module, scenario, mobb, gitlab):
    run_module(mobb_integration, scenario.integration())
    spelt = gitlab.url.upper().replace('HTTP://', 'http://') + '/'
    code, result = run_module(mobb_integration, scenario.integration(scm_url=spelt))
    assert code == 0 and result['changed'] is False
    assert len(mobb.scm_configs()) == 1


def api_v4_spelling(url):
    """``http://127.0.0.1:PORT`` spelt as a GitLab API URL: ``HTTP://127.0.0.1:PORT/api/v4/``."""
    scheme, rest = url.split('://', 1)
    return f'{scheme.upper()}://{rest}/api/v4/'


def test_integration_sends_and_stores_the_plain_url_for_an_api_v4_url(run_module, scenario, mobb, gitlab):
    code, first = run_module(mobb_integration, scenario.integration(scm_url=api_v4_spelling(gitlab.url)))
    assert code == 0 and first['written'] is True, first.get('msg')
    assert first['scm_config']['scm_url'] == gitlab.url
    assert [config['scm_url'] for config in mobb.scm_configs()] == [gitlab.url]
    # Mobb was asked about the plain URL: its checks against GitLab went to the server's base URL.
    checked = [check['url'] for entry in mobb.requests() for check in entry['scm_checks']]
    assert checked == [gitlab.url, gitlab.url]

    code, again = run_module(mobb_integration, scenario.integration())
    assert code == 0 and again['changed'] is False
    assert mobb.scm_configs()[0]['writes'] == 1


def test_integration_store_with_an_unknown_outcome_says_to_run_again(run_module, scenario, mobb):
    mobb.fault('status', status=502, operation='updateScmToken')  # one fault: a retry would succeed
    code, result = run_module(mobb_integration, scenario.integration())
    assert code == 1
    assert result['msg'] == (
        f'the Mobb API at {mobb.graphql_url} answered updateScmToken with HTTP 502 Bad Gateway: Mobb may or may '
        'not have stored the token; updateScmToken is not retried, since the first attempt may have landed or may '
        'still land. Mobb may hold the new token now: run the task again, it reads what Mobb holds first and '
        'stores the token only if Mobb does not hold it')
    writes = mobb.writes()
    assert [entry['fault'] for entry in writes] == ['status']
    assert result['request_id'] == writes[0]['request_id']
    assert warning_texts(result) == []
    assert scenario.token not in json.dumps(result)

    code, again = run_module(mobb_integration, scenario.integration())
    assert code == 0 and again['written'] is True
    assert mobb.scm_configs()[0]['token_sha256'] == fingerprint(scenario.token)


def test_integration_replaces_a_different_token_with_a_diff_of_fingerprints(run_module, scenario, mobb):
    run_module(mobb_integration, scenario.integration())
    code, result = run_module(mobb_integration, scenario.integration(token=scenario.next_token), diff=True)
    assert code == 0 and result['changed'] is True
    assert result['diff']['before']['token_fingerprint'] == fingerprint(scenario.token)[:12]
    assert result['diff']['after']['token_fingerprint'] == fingerprint(scenario.next_token)[:12]
    assert mobb.scm_configs()[0]['token_sha256'] == fingerprint(scenario.next_token)
    text = json.dumps(result)
    assert scenario.token not in text and scenario.next_token not in text and scenario.api_key not in text


def test_integration_check_mode_validates_but_never_writes(run_module, scenario, mobb):
    code, result = run_module(mobb_integration, scenario.integration(), check_mode=True, diff=True)
    assert code == 0 and result['changed'] is True and result['written'] is False
    assert result['diff'] == {
        'before': {'scm_type': 'GitLab', 'scm_url': result['scm_config']['scm_url'], 'org': None,
                   'token_fingerprint': None},
        'after': {'scm_type': 'GitLab', 'scm_url': result['scm_config']['scm_url'], 'org': None,
                  'token_fingerprint': fingerprint(scenario.token)[:12]}}
    assert result['scm_config']['id'] is None
    assert mobb.writes() == [] and mobb.scm_configs() == []
    assert [entry['operation'] for entry in mobb.requests()] == ['Me', 'validateScmToken']


def test_integration_without_validate_sends_no_separate_check(run_module, scenario, mobb):
    code, result = run_module(mobb_integration, scenario.integration(validate=False))
    assert code == 0 and result['written'] is True
    assert [entry['operation'] for entry in mobb.requests()] == ['Me', 'updateScmToken', 'Me']


def test_integration_when_mobb_hides_tokens_writes_and_warns(run_module, scenario, mobb):
    mobb.settings(return_tokens=False)
    for _run in range(2):
        code, result = run_module(mobb_integration, scenario.integration())
        assert code == 0 and result['changed'] is True and result['written'] is True
    assert 'cannot be compared: the token is written' in ' '.join(warning_texts(result))
    assert result['diff']['before']['token_fingerprint'] == 'unknown'
    assert mobb.scm_configs()[0]['writes'] == 2


def test_integration_warns_when_mobb_holds_several_matching_configs(run_module, scenario, mobb, gitlab):
    mobb.seed(scm_configs=[{'user': 'admin@acme.example', 'scm_url': gitlab.url, 'token': scenario.token},
                           {'user': 'admin@acme.example', 'scm_url': gitlab.url + '/', 'token': scenario.token}])
    code, result = run_module(mobb_integration, scenario.integration())
    assert code == 0 and result['changed'] is False
    assert [text for text in warning_texts(result) if text.startswith('Mobb holds 2 integrations for ')]


@pytest.mark.parametrize('args, message', [
    ({'token': ''}, 'token is empty: give the GitLab access token to store'),
    ({'token': 'glpat-abc\n'}, 'token contains whitespace (a trailing newline from a file lookup?): strip it'),
    ({'scm_url': 'gitlab.example'}, "scm_url must be an http(s) URL with a host, such as "
                                    "https://gitlab.example.com, got 'gitlab.example'"),
    ({'api_url': 'ftp://mobb'}, "api_url must be an http(s) URL with a host, such as "
                                "https://api.mobb.ai/v1/graphql, got 'ftp://mobb'"),
    ({'api_key': ''}, 'api_key is not set: give api_key or set MOBB_API_KEY to a Mobb API key'),
])
def test_integration_refuses_bad_input_before_any_request(run_module, scenario, mobb, args, message):
    code, result = run_module(mobb_integration, scenario.integration(**args))
    assert code == 1 and result['failed'] is True
    assert result['msg'] == message
    assert mobb.requests() == []


def test_integration_api_key_from_the_environment(run_module, scenario, mobb, monkeypatch):
    monkeypatch.setenv('MOBB_API_KEY', scenario.api_key)
    monkeypatch.setenv('MOBB_API_URL', mobb.graphql_url)
    args = scenario.integration()
    del args['api_key'], args['api_url']
    code, result = run_module(mobb_integration, args)
    assert code == 0 and result['written'] is True
    assert scenario.api_key not in json.dumps(result)


def test_integration_rejected_token_leaves_mobb_as_it_was(run_module, scenario, mobb, gitlab):
    run_module(mobb_integration, scenario.integration())
    before = mobb.scm_configs()
    revoked = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'old', 'revoked': True}])
    bad_token = revoked['tokens'][0]['token']
    for validate in (True, False):
        code, result = run_module(mobb_integration, scenario.integration(token=bad_token, validate=validate))
        assert code == 1
        assert result['msg'].startswith(f'GitLab at {gitlab.url} rejected the token (BadScmCredentials: ')
        assert bad_token not in json.dumps(result)
        assert result['request_id']
    assert mobb.scm_configs() == before


def test_connection_info_connected_and_brokered(run_module, scenario, mobb):
    run_module(mobb_integration, scenario.integration())
    stored = mobb.scm_configs()[0]
    mobb.clear_requests()
    code, result = run_module(mobb_connection_info, scenario.info(), check_mode=True)
    assert code == 0
    assert {key: value for key, value in result.items() if key != 'invocation'} == {
        'changed': False, 'connected': True, 'status': 'OK', 'message': None, 'token_stored': True,
        'token_last_update': stored['token_last_update'], 'scm_config_id': stored['id'],
        'brokered': True, 'broker_virtual_domain': 'vd-acme'}
    assert len(mobb.requests()) == 1


def test_connection_info_asks_about_the_plain_url_for_an_api_v4_url(run_module, scenario, mobb, gitlab):
    run_module(mobb_integration, scenario.integration())
    stored = mobb.scm_configs()[0]
    mobb.clear_requests()
    code, result = run_module(mobb_connection_info, scenario.info(scm_url=api_v4_spelling(gitlab.url)))
    assert code == 0
    assert result['connected'] is True and result['message'] is None
    assert result['token_stored'] is True and result['scm_config_id'] == stored['id']
    assert result['brokered'] is True
    assert [check['url'] for check in mobb.requests()[0]['scm_checks']] == [gitlab.url]


def test_connection_info_broker_down_is_an_answer(run_module, scenario, mobb):
    run_module(mobb_integration, scenario.integration())
    mobb.set_broker(scenario.gitlab_host, False)
    code, result = run_module(mobb_connection_info, scenario.info())
    assert code == 0 and 'failed' not in result
    assert result['connected'] is False and result['status'] == 'Error'
    assert 'please make sure the broker is connected' in result['message']
    assert result['token_stored'] is True and result['brokered'] is True


def test_connection_info_nothing_stored(run_module, scenario, mobb):
    code, result = run_module(mobb_connection_info, scenario.info(scm_url='https://gitlab.elsewhere.example'))
    assert code == 0
    assert result['connected'] is False
    assert result['message'] == 'No SCM token is stored for https://gitlab.elsewhere.example'
    assert result['token_stored'] is False and result['scm_config_id'] is None
    assert result['brokered'] is False and result['broker_virtual_domain'] is None


def test_connection_info_bad_key_fails(run_module, scenario, mobb):
    code, result = run_module(mobb_connection_info, scenario.info(api_key='not-a-key'))
    assert code == 1
    assert result['msg'].startswith('Mobb refused the API key (access-denied')
