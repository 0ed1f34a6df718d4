"""The hub process: command line, start and stop, many instances, TLS, control APIs."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys

import gitlab as python_gitlab
import pytest
import requests

from gitlab_server.client import SERVERS_DIR, ControlError, GitLabHub, start_hub


def server_command(*args):
    env = dict(os.environ, PYTHONPATH=SERVERS_DIR)
    return [sys.executable, '-m', 'gitlab_server', *args], env


def parse_time(iso):
    return dt.datetime.fromisoformat(iso.replace('Z', '+00:00'))


def refuses_connections(url):
    host, port = url.split('//', 1)[1].rsplit(':', 1)
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_help_documents_every_option():
    command, env = server_command('--help')
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=30).stdout
    for option in ('--host', '--port', '--instances', '--tls', '--state-dir', '--ready-file', '--seed'):
        assert option in output


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_the_ready_line_on_stdout_and_a_clean_stop(signum):
    command, env = server_command('--instances', '2')
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        document = json.loads(process.stdout.readline())
        hub = GitLabHub(document)
        assert [i.name for i in hub.started] == ['gl1', 'gl2'] and document['ca_path'].endswith('gitlab-ca.pem')
        for instance in hub.started:
            assert python_gitlab.Gitlab(instance.url, private_token=instance.admin_token).version()[0]
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ''
    assert all(refuses_connections(i.url) for i in hub.started)
    assert refuses_connections(hub.control_url)
    assert not os.path.exists(document['ca_path'])


def test_start_hub_with_tls_and_a_seed_then_stop():
    seed = {'users': [{'username': 'alice'}], 'projects': [{'path': 'team/app'}]}
    with start_hub(tls=True, instances=2, seed=seed) as hub:
        for instance in hub.started:
            assert instance.url.startswith('https://') and instance.ca_path == hub.ca_path
            gl = python_gitlab.Gitlab(instance.url, private_token=instance.admin_token, ssl_verify=hub.ca_path)
            assert gl.projects.get('team/app').path_with_namespace == 'team/app'
            assert gl.users.list(username='alice')[0].username == 'alice'
        pid = hub.process.pid
    assert hub.process.returncode == 0 and hub.process.pid == pid


def test_a_bad_seed_file_stops_the_start_with_the_reason(tmp_path):
    bad = tmp_path / 'seed.json'
    bad.write_text(json.dumps({'members': [{'username': 'ghost', 'project': 'x/y'}]}))
    command, env = server_command('--instances', '1', '--seed', str(bad))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "no user 'ghost'" in result.stderr


def test_tls_verifies_with_the_ca_file_and_fails_with_default_trust(gitlab_tls):
    gl = python_gitlab.Gitlab(gitlab_tls.url, private_token=gitlab_tls.admin_token, ssl_verify=gitlab_tls.ca_path)
    gl.auth()
    assert gl.user.username == 'root'
    with pytest.raises(requests.exceptions.SSLError):
        python_gitlab.Gitlab(gitlab_tls.url, private_token=gitlab_tls.admin_token).auth()
    by_name = gitlab_tls.url.replace('127.0.0.1', 'localhost')
    assert requests.get(f'{by_name}/api/v4/version', headers={'PRIVATE-TOKEN': gitlab_tls.admin_token},
                        verify=gitlab_tls.ca_path, timeout=10).status_code == 200
    page = requests.get(f'{gitlab_tls.url}/api/v4/personal_access_tokens', verify=gitlab_tls.ca_path, timeout=10,
                        headers={'PRIVATE-TOKEN': gitlab_tls.admin_token})
    assert page.headers['Link'].startswith(f'<{gitlab_tls.url}/api/v4/personal_access_tokens?')


def test_fifty_instances_start_answer_and_stay_independent(gitlab_hub):
    instances = gitlab_hub.new_instances(50)
    try:
        assert len({i.url for i in instances}) == 50 and len({i.admin_token for i in instances}) == 50
        with requests.Session() as session:
            for instance in instances:
                response = session.get(f'{instance.url}/api/v4/user', headers={'PRIVATE-TOKEN': instance.admin_token},
                                       timeout=10)
                assert response.json()['username'] == 'root'
            other = session.get(f'{instances[0].url}/api/v4/user', timeout=10,
                                headers={'PRIVATE-TOKEN': instances[1].admin_token})
            assert other.status_code == 401
        listed = {i.name for i in gitlab_hub.instances()}
        assert {i.name for i in instances} <= listed
    finally:
        for instance in instances:
            gitlab_hub.remove_instance(instance)
    assert not {i.name for i in instances} & {i.name for i in gitlab_hub.instances()}


def test_the_hub_clock_moves_every_instance(gitlab_hub):
    first, second = gitlab_hub.new_instance(), gitlab_hub.new_instance()
    try:
        second.advance_clock(1)
        before = [parse_time(i.now()) for i in (first, second)]
        moved = gitlab_hub.advance_clock(10)
        assert {first.name, second.name} <= set(moved)
        for instance, then in zip((first, second), before):
            shift = parse_time(instance.now()) - then
            assert dt.timedelta(days=10) <= shift < dt.timedelta(days=10, minutes=1)
    finally:
        gitlab_hub.remove_instance(first)
        gitlab_hub.remove_instance(second)


def test_a_removed_instance_stops_answering(gitlab_hub):
    instance = gitlab_hub.new_instance()
    gitlab_hub.remove_instance(instance)
    with pytest.raises(requests.ConnectionError):
        requests.get(f'{instance.url}/api/v4/version', timeout=5)
    with pytest.raises(ControlError, match='404'):
        gitlab_hub.remove_instance(instance)


@pytest.mark.parametrize('body', [{'count': 0}, {'count': 'many'}, {'tls': 'yes'}])
def test_bad_hub_requests_are_refused(gitlab_hub, body):
    response = requests.post(f'{gitlab_hub.control_url}/_hub/instances', json=body, timeout=10)
    assert response.status_code == 400 and response.json()['error']


def test_control_calls_never_reach_the_request_log(gitlab):
    gitlab.seed(users=[{'username': 'alice'}])
    gitlab.now()
    gitlab.tokens()
    requests.get(f'{gitlab.url}/api/v4/version', headers={'PRIVATE-TOKEN': gitlab.admin_token}, timeout=10)
    requests.delete(f'{gitlab.url}/api/v4/personal_access_tokens/77', headers={'PRIVATE-TOKEN': gitlab.admin_token},
                    timeout=10)
    assert [(r['method'], r['path']) for r in gitlab.requests()] == [
        ('GET', '/api/v4/version'), ('DELETE', '/api/v4/personal_access_tokens/77')]
    assert [r['status'] for r in gitlab.writes()] == [404]
    gitlab.clear_requests()
    assert gitlab.requests() == []


def test_a_failed_seed_changes_nothing(gitlab):
    with pytest.raises(ControlError, match="no project 'team/none'"):
        gitlab.seed(users=[{'username': 'alice'}], projects=[{'path': 'team/app'}],
                    members=[{'username': 'alice', 'project': 'team/none'}])
    assert gitlab.seed(users=[{'username': 'alice'}])['users'][0]['id'] == 2
    assert [t['name'] for t in gitlab.tokens()] == ['admin']


def test_reset_gives_a_fresh_instance_and_remembers_issued_secrets(gitlab):
    old_admin = gitlab.admin_token
    seeded = gitlab.seed(users=[{'username': 'alice'}], tokens=[{'kind': 'personal', 'user': 'alice', 'name': 't'}])
    gitlab.advance_clock(3)
    gitlab.settings(max_lifetime_days=10)
    gitlab.fault('status', status=500)
    gitlab.reset()
    assert gitlab.admin_token != old_admin
    response = requests.get(f'{gitlab.url}/api/v4/users', params={'username': 'alice'}, timeout=10,
                            headers={'PRIVATE-TOKEN': gitlab.admin_token})
    assert response.status_code == 200 and response.json() == []
    assert gitlab.settings()['max_lifetime_days'] == 365
    assert {old_admin, seeded['tokens'][0]['token'], gitlab.admin_token} <= set(gitlab.secrets())
    assert [t['name'] for t in gitlab.tokens()] == ['admin']


def test_settings_refuse_unknown_keys_and_bad_values(gitlab):
    with pytest.raises(ControlError, match='unknown settings'):
        gitlab.settings(max_lifetime=3)
    with pytest.raises(ControlError, match='positive integer'):
        gitlab.settings(max_lifetime_days=0)
    assert gitlab.settings()['max_lifetime_days'] == 365


def test_the_clock_can_be_set_and_read(gitlab):
    assert gitlab.set_clock('2031-02-03T04:05:06Z').startswith('2031-02-03T04:05:06')
    assert gitlab.now().startswith('2031-02-03')
    response = requests.get(f'{gitlab.url}/api/v4/version', headers={'PRIVATE-TOKEN': gitlab.admin_token}, timeout=10)
    assert response.headers['Date'].startswith('Mon, 03 Feb 2031 04:05')
    with pytest.raises(ControlError, match='ISO 8601'):
        gitlab.set_clock('soon')
