"""``python -m mobb_server``: options, ready document, seed file, clean stop on signals."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from mobb_server.client import SERVERS_DIR, MobbServerError, start_mobb

ME = 'query Me { me { email } }'


def _command(*args):
    return [sys.executable, '-m', 'mobb_server', *args]


def _environment():
    environment = dict(os.environ)
    environment['PYTHONPATH'] = SERVERS_DIR
    return environment


def _start(*args):
    return subprocess.Popen(_command(*args), env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_help_lists_every_option():
    result = subprocess.run(_command('--help'), env=_environment(), capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0
    for option in ('--host', '--port', '--ca-path', '--ready-file', '--seed'):
        assert option in result.stdout


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_ready_line_on_stdout_and_clean_stop(signum):
    process = _start('--port', '0')
    try:
        ready = json.loads(process.stdout.readline())
        assert set(ready) == {'url', 'graphql_url', 'rest_check_url'}
        assert ready['graphql_url'] == ready['url'] + '/v1/graphql'
        assert ready['rest_check_url'] == ready['url'] + '/api/rest/check-scm-connection-status'
        answer = requests.post(ready['graphql_url'], json={'query': ME}, timeout=10).json()
        assert answer['errors'][0]['extensions']['code'] == 'access-denied'
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr.read() == ''
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_ready_file_and_seed_file(tmp_path):
    seed = {'organizations': [{'name': 'acme'}],
            'users': [{'email': 'admin@acme.test', 'organization': 'acme', 'role': 'Owner',
                       'api_key': 'seeded-key-0123456789'}],
            'settings': {'return_tokens': False}}
    (tmp_path / 'seed.json').write_text(json.dumps(seed))
    ready_file = tmp_path / 'ready.json'
    process = _start('--ready-file', str(ready_file), '--seed', str(tmp_path / 'seed.json'))
    try:
        deadline = time.monotonic() + 20
        while not ready_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        answer = requests.post(ready['graphql_url'], json={'query': ME}, timeout=10,
                               headers={'x-mobb-key': 'seeded-key-0123456789'}).json()
        assert answer == {'data': {'me': {'email': 'admin@acme.test'}}}
        assert requests.get(ready['url'] + '/_test/settings', timeout=10).json()['return_tokens'] is False
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert (stdout, stderr) == ('', '')  # the ready document went to the file only


def test_bad_seed_file_fails_with_a_message(tmp_path):
    (tmp_path / 'seed.json').write_text(json.dumps({'users': [{'email': 'a@b.test', 'organization': 'none'}]}))
    result = subprocess.run(_command('--seed', str(tmp_path / 'seed.json')), env=_environment(),
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "mobb_server: user 'a@b.test': unknown organization 'none'"
    assert result.stdout == ''


def test_busy_port_fails_with_a_message():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(_command('--port', str(port)), env=_environment(), capture_output=True,
                                text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith('mobb_server: ')
    assert 'address already in use' in result.stderr.lower()


def test_start_mobb_with_seed_and_stop():
    server = start_mobb(seed={'organizations': [{'name': 'acme'}],
                              'users': [{'email': 'm@acme.test', 'organization': 'acme', 'role': 'Member',
                                         'api_key': 'member-key-0123456789'}]})
    with server:
        answer = server.graphql(ME, api_key='member-key-0123456789').json()
        assert answer == {'data': {'me': {'email': 'm@acme.test'}}}
    assert server.process.returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + '/healthz', timeout=5)


def test_start_mobb_reports_a_server_that_cannot_start(tmp_path):
    with pytest.raises(MobbServerError, match='exited with status 1 before it was ready'):
        start_mobb(seed={'users': [{'email': 'x@y.test', 'organization': 'missing'}]}, stderr=subprocess.DEVNULL)
