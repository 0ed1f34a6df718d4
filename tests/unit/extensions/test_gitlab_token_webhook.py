"""The event source mobb.scm.gitlab_token_webhook (extensions/eda/plugins/event_source/), served by its own
main() on loopback and spoken to over real HTTP(S) with requests, as GitLab would."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time

import pytest
import requests
import trustme

from ansible_collections.mobb.scm.extensions.eda.plugins.event_source import gitlab_token_webhook as source

SECRET = 'hook-secret-4f1c9a'
INSTANCE = 'https://gitlab.example.com'
PROJECT_PAYLOAD = {
    'object_kind': 'access_token', 'event_name': 'expiring_access_token', 'project_id': 7,
    'project': {'id': 7, 'name': 'api', 'path_with_namespace': 'payments/api',
                'web_url': 'https://gitlab.example.com/payments/api'},
    'object_attributes': {'user_id': 92, 'created_at': '2024-02-05T03:13:44.855Z', 'id': 27,
                          'name': 'mobb-broker', 'expires_at': '2024-03-01'}}
GROUP_PAYLOAD = {
    'object_kind': 'access_token', 'event_name': 'expiring_access_token', 'group_id': 35,
    'group': {'group_name': 'child', 'group_path': 'child', 'full_path': 'parent/child', 'group_id': 35},
    'object_attributes': {'user_id': 93, 'created_at': '2024-01-29 09:08:33 UTC', 'id': 28,
                          'name': 'mobb-broker', 'expires_at': '2024-03-02'}}


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class RunningSource:
    """main() in an event loop of its own thread, with a queue of ``queue_size`` (ansible-rulebook's holds 1)."""

    def __init__(self, queue_size=0, scheme='http', **args):
        self.args = dict(host='127.0.0.1', port=free_port(), secret=SECRET, **args)
        self.url = '%s://127.0.0.1:%d/hooks/gitlab' % (scheme, self.args['port'])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.queue = self.call(self._queue(queue_size))
        self.task = asyncio.run_coroutine_threadsafe(source.main(self.queue, self.args), self.loop)
        deadline = time.monotonic() + 10
        while not self._listening():
            assert not self.task.done(), self.task.exception()
            assert time.monotonic() < deadline, 'the source did not listen'
            time.sleep(0.02)

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    @staticmethod
    async def _queue(size):
        return asyncio.Queue(size)

    def _listening(self):
        with socket.socket() as probe:
            return probe.connect_ex(('127.0.0.1', self.args['port'])) == 0

    def post(self, payload, secret=SECRET, uuid=None, instance=INSTANCE, data=None, **options):
        headers = {'Content-Type': 'application/json', 'X-Gitlab-Event': 'Resource Access Token Hook'}
        if secret is not None:
            headers['X-Gitlab-Token'] = secret
        if uuid:
            headers['X-Gitlab-Event-UUID'] = uuid
        if instance:
            headers['X-Gitlab-Instance'] = instance
        body = data if data is not None else json.dumps(payload)
        return requests.post(self.url, data=body, headers=headers, timeout=10, **options)

    def events(self):
        """The events put so far, waiting a moment for the forwarder."""
        async def drain():
            await asyncio.sleep(0.05)
            taken = []
            while not self.queue.empty():
                taken.append(self.queue.get_nowait())
            return taken
        return self.call(drain())

    def close(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        deadline = time.monotonic() + 10
        while not self.task.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def start():
    started = []

    def starter(**args):
        started.append(RunningSource(**args))
        return started[-1]
    yield starter
    for running in started:
        running.close()


def test_a_project_tokens_warning_becomes_one_event_naming_server_project_and_token(start):
    hook = start()
    answer = hook.post(PROJECT_PAYLOAD, uuid='e-1')
    assert answer.status_code == 202 and answer.json() == {'accepted': True}
    assert hook.events() == [{'gitlab_token': {
        'gitlab_url': INSTANCE, 'kind': 'project', 'source_id': 7, 'source_path': 'payments/api',
        'token_id': 27, 'token_name': 'mobb-broker', 'expires_at': '2024-03-01',
        'created_at': '2024-02-05T03:13:44Z', 'event_name': 'expiring_access_token', 'event_uuid': 'e-1'}}]


def test_a_group_tokens_warning_and_its_other_date_format(start):
    hook = start()
    assert hook.post(GROUP_PAYLOAD, uuid='e-2', instance='https://GitLab.example.com/').status_code == 202
    [event] = hook.events()
    assert event['gitlab_token']['kind'] == 'group' and event['gitlab_token']['source_path'] == 'parent/child'
    assert event['gitlab_token']['source_id'] == 35 and event['gitlab_token']['token_id'] == 28
    assert event['gitlab_token']['created_at'] == '2024-01-29T09:08:33Z'
    assert event['gitlab_token']['gitlab_url'] == 'https://gitlab.example.com'
    # The same server spelt otherwise is the same token: one event.
    assert hook.post(GROUP_PAYLOAD, uuid='e-3', instance='HTTPS://gitlab.EXAMPLE.com').json() == {'duplicate': 'token'}


def test_the_server_comes_from_the_projects_web_url_without_the_instance_header(start):
    hook = start()
    payload = json.loads(json.dumps(PROJECT_PAYLOAD))
    payload['project']['web_url'] = 'https://git.example.org/gitlab/payments/api'
    assert hook.post(payload, instance=None).status_code == 202
    assert hook.events()[0]['gitlab_token']['gitlab_url'] == 'https://git.example.org/gitlab'
    # A group's payload has no URL of its own: without the header it names no server.
    refused = hook.post(GROUP_PAYLOAD, instance=None)
    assert refused.status_code == 400 and 'X-Gitlab-Instance' in refused.json()['error']
    assert hook.events() == []


@pytest.mark.parametrize('secret', [None, '', 'hook-secret-4f1c9b', SECRET + 'x', SECRET[:-1], SECRET.upper()])
def test_a_request_without_the_hooks_secret_is_answered_401_and_puts_nothing(start, caplog, secret):
    caplog.set_level(logging.INFO)
    hook = start()
    answer = hook.post(PROJECT_PAYLOAD, secret=secret, uuid='forged')
    assert answer.status_code == 401 and answer.json() == {'error': 'unauthorized'}
    assert hook.events() == []
    assert 'X-Gitlab-Token is missing or is not the hook secret' in caplog.text
    assert SECRET not in caplog.text and SECRET not in answer.text
    # A forged request does not make the genuine event with its UUID a repeat.
    assert hook.post(PROJECT_PAYLOAD, uuid='forged').status_code == 202
    assert len(hook.events()) == 1


@pytest.mark.parametrize('data, status, reason', [
    ('{"object_kind": ', 400, 'the body is not JSON'),
    ('[1, 2]', 400, 'the body is not a JSON object'),
    (json.dumps(dict(PROJECT_PAYLOAD, padding='x' * 5000)), 413, 'more than max_body_bytes (4096)'),
])
def test_a_body_that_is_no_json_object_or_too_large_is_refused_with_the_reason(start, caplog, data, status, reason):
    hook = start(max_body_bytes=4096)
    answer = hook.post(None, data=data)
    assert answer.status_code == status and reason in answer.json()['error']
    assert reason in caplog.text and hook.events() == []


def test_a_chunked_body_is_cut_off_at_max_body_bytes(start):
    hook = start(max_body_bytes=4096)

    def chunks():
        yield json.dumps(dict(PROJECT_PAYLOAD, padding='x' * 3000)).encode()
        yield b' ' * 3000
    answer = hook.post(None, data=chunks())
    assert answer.status_code == 413 and 'larger than max_body_bytes (4096)' in answer.json()['error']
    assert hook.events() == []


@pytest.mark.parametrize('change, missing', [
    (lambda p: p['object_attributes'].pop('id'), 'object_attributes.id'),
    (lambda p: p['object_attributes'].update(name=''), 'object_attributes.name'),
    (lambda p: p['object_attributes'].update(expires_at='2024-03-01T00:00:00Z'), 'object_attributes.expires_at'),
    (lambda p: p.pop('project'), 'project or group'),
    (lambda p: p['project'].pop('path_with_namespace'), 'project id and path'),
    (lambda p: p.pop('object_attributes'), 'no object_attributes'),
])
def test_a_token_payload_missing_a_field_is_refused_naming_it(start, change, missing):
    hook = start()
    payload = json.loads(json.dumps(PROJECT_PAYLOAD))
    change(payload)
    answer = hook.post(payload)
    assert answer.status_code == 400 and missing in answer.json()['error']
    assert hook.events() == []


def test_other_hook_events_are_answered_200_and_ignored(start):
    hook = start()
    for payload in ({'object_kind': 'push', 'ref': 'main'},
                    dict(PROJECT_PAYLOAD, event_name='revoked_access_token')):
        answer = hook.post(payload)
        assert answer.status_code == 200 and 'ignored' in answer.json()
    assert hook.events() == []


def test_repeats_of_an_event_and_of_a_token_within_the_window_are_put_once(start):
    hook = start()
    answers = [hook.post(PROJECT_PAYLOAD, uuid='same').status_code for _repeat in range(50)]
    answers += [hook.post(PROJECT_PAYLOAD, uuid='other-%d' % index).status_code for index in range(50)]
    assert answers.count(202) == 1 and answers.count(200) == 99
    other_token = json.loads(json.dumps(PROJECT_PAYLOAD))
    other_token['object_attributes']['id'] = 31
    assert hook.post(other_token, uuid='third').status_code == 202
    # The same token on another server is another token.
    assert hook.post(PROJECT_PAYLOAD, uuid='fourth', instance='https://gitlab2.example.com').status_code == 202
    assert [event['gitlab_token']['token_id'] for event in hook.events()] == [27, 31, 27]


def test_without_a_window_each_new_event_of_a_token_is_put(start):
    hook = start(dedupe_seconds=0)
    assert [hook.post(PROJECT_PAYLOAD, uuid=uuid).status_code for uuid in ('a', 'b', 'a')] == [202, 202, 200]
    assert len(hook.events()) == 2


def test_gitlab_is_answered_at_once_while_the_rulebook_takes_one_event_at_a_time(start):
    hook = start(queue_size=1)
    started = time.monotonic()
    for index in range(5):
        payload = json.loads(json.dumps(PROJECT_PAYLOAD))
        payload['object_attributes']['id'] = 100 + index
        assert hook.post(payload, uuid='u-%d' % index).status_code == 202
    assert time.monotonic() - started < 5
    taken = []
    deadline = time.monotonic() + 10
    while len(taken) < 5 and time.monotonic() < deadline:
        taken += hook.events()
    assert [event['gitlab_token']['token_id'] for event in taken] == [100, 101, 102, 103, 104]


def test_past_the_pending_limit_gitlab_is_answered_503_and_the_event_is_not_remembered(start, monkeypatch):
    monkeypatch.setattr(source, 'PENDING', 1)
    hook = start(queue_size=1)
    statuses = []
    for index in range(4):
        payload = json.loads(json.dumps(PROJECT_PAYLOAD))
        payload['object_attributes']['id'] = 200 + index
        statuses.append(hook.post(payload, uuid='p-%d' % index).status_code)
    # One event in the rulebook's queue, one in the forwarder's hands, one pending; the next is
    # refused, not lost silently, and GitLab's retry of it later is a new event.
    assert statuses == [202, 202, 202, 503]
    assert len(hook.events()) == 1
    payload = json.loads(json.dumps(PROJECT_PAYLOAD))
    payload['object_attributes']['id'] = 203
    assert hook.post(payload, uuid='p-3').status_code == 202


def test_https_with_the_given_certificate(start, tmp_path):
    authority = trustme.CA()
    certificate = authority.issue_cert('127.0.0.1')
    certfile, keyfile, ca_file = tmp_path / 'cert.pem', tmp_path / 'key.pem', tmp_path / 'ca.pem'
    certificate.cert_chain_pems[0].write_to_path(str(certfile))
    certificate.private_key_pem.write_to_path(str(keyfile))
    authority.cert_pem.write_to_path(str(ca_file))
    hook = start(scheme='https', certfile=str(certfile), keyfile=str(keyfile))
    assert hook.post(PROJECT_PAYLOAD, verify=str(ca_file)).status_code == 202
    with pytest.raises(requests.exceptions.SSLError):
        hook.post(PROJECT_PAYLOAD)
    assert len(hook.events()) == 1


@pytest.mark.parametrize('args, message', [
    ({'port': 5000}, 'secret is required'),
    ({'port': 5000, 'secret': ''}, 'secret is required'),
    ({'secret': 's'}, 'port is required'),
    ({'secret': 's', 'port': 'http'}, 'port is required'),
    ({'secret': 's', 'port': 5000, 'max_body_bytes': -1}, 'max_body_bytes must be a number'),
    ({'secret': 's', 'port': 5000, 'dedupe_seconds': 'hour'}, 'dedupe_seconds must be a number'),
])
def test_bad_arguments_stop_the_source_before_it_listens(args, message):
    with pytest.raises(ValueError, match=message):
        asyncio.run(source.main(asyncio.Queue(), args))
