"""Project and group webhooks through python-gitlab (unmodified), and the access-token events the
daily expiry worker sends when the instance's clock moves, received by a local HTTP receiver.

In the standard team (conftest), alice owns the group ``team`` (subgroup ``team/sub``), dave
maintains it, carol maintains ``team/app``, bob develops there and erin belongs nowhere.
"""
from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import socket
import threading
import uuid

import gitlab as python_gitlab
import pytest

HOOK_SECRET = 'hook-secret-4d1f0c'
HOOK_KEYS = {'id', 'url', 'created_at', 'resource_access_token_events', 'enable_ssl_verification'}
PROJECT_KEYS = {'id', 'name', 'description', 'web_url', 'avatar_url', 'git_ssh_url', 'git_http_url',
                'namespace', 'visibility_level', 'path_with_namespace', 'default_branch',
                'ci_config_path', 'homepage', 'url', 'ssh_url', 'http_url'}
ISO_MS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
GROUP_TIME = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$')


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST (path, headers, JSON body)."""

    def __init__(self):
        self.received = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                receiver.received.append({'path': self.path, 'headers': dict(self.headers),
                                          'body': json.loads(body)})
                self.send_response(receiver.status)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_port}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


def closed_port():
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def message(response):
    return response.json().get('message', response.json().get('error'))


def project_hook(gl_team, path, url, **attributes):
    body = dict({'url': url, 'resource_access_token_events': True}, **attributes)
    return gl_team.gl().projects.get(path, lazy=True).hooks.create(body)


def group_hook(gl_team, path, url, **attributes):
    body = dict({'url': url, 'resource_access_token_events': True}, **attributes)
    return gl_team.gl().groups.get(path, lazy=True).hooks.create(body)


def seed_token(gl_team, kind, path, days, **extra):
    return gl_team.instance.seed(tokens=[dict({'kind': kind, kind: path, 'name': f'{kind}-bot',
                                               'expires_in_days': days}, **extra)])['tokens'][0]


def days_before_expiry(delivery, gl_team):
    """How many days before the token's expiry a delivery's event was sent, from the payload's date
    and the instance's today (one event per clock step in these tests)."""
    return (dt.date.fromisoformat(delivery['payload']['object_attributes']['expires_at']) - gl_team.today()).days


# -------------------------------------------------------------------------- hooks API
def test_project_hooks_through_python_gitlab(gl_team, receiver):
    project = gl_team.as_user('carol').projects.get('team/app')
    hook = project.hooks.create({'url': receiver.url + '/gitlab', 'token': HOOK_SECRET,
                                 'resource_access_token_events': True, 'push_events': False})
    assert HOOK_KEYS | {'project_id'} <= set(hook.attributes)
    assert 'token' not in hook.attributes
    assert (hook.url, hook.project_id, hook.resource_access_token_events, hook.enable_ssl_verification,
            hook.push_events) == (receiver.url + '/gitlab', project.id, True, True, False)
    assert ISO_MS.match(hook.created_at)
    listed = project.hooks.list()
    assert [h.id for h in listed] == [hook.id]
    assert 'token' not in listed[0].attributes
    got = project.hooks.get(hook.id)
    got.resource_access_token_events = False
    got.save()
    assert project.hooks.get(hook.id).resource_access_token_events is False
    raw = gl_team.admin_raw('GET', '/projects/team%2Fapp/hooks')
    assert HOOK_SECRET not in raw.text
    project.hooks.delete(hook.id)
    assert project.hooks.list() == []
    with pytest.raises(python_gitlab.GitlabGetError) as gone:
        project.hooks.get(hook.id)
    assert (gone.value.response_code, gone.value.error_message) == (404, '404 Hook Not Found')


def test_group_hooks_through_python_gitlab(gl_team, receiver):
    group = gl_team.as_user('alice').groups.get('team')
    hook = group.hooks.create({'url': receiver.url, 'resource_access_token_events': True,
                               'enable_ssl_verification': False, 'token': HOOK_SECRET})
    assert (hook.group_id, hook.enable_ssl_verification, hook.resource_access_token_events) == (group.id, False, True)
    assert 'token' not in hook.attributes and 'project_id' not in hook.attributes
    assert [h.id for h in group.hooks.list()] == [hook.id]
    # The same group by its numeric id, and the hook is not the project's.
    assert gl_team.admin_raw('GET', f'/groups/{group.id}/hooks').json()[0]['id'] == hook.id
    assert gl_team.admin_raw('GET', f'/projects/team%2Fapp/hooks/{hook.id}').status_code == 404
    group.hooks.delete(hook.id)
    assert group.hooks.list() == []


def test_who_may_manage_hooks(gl_team, receiver):
    body = {'url': receiver.url, 'resource_access_token_events': True}
    with pytest.raises(python_gitlab.GitlabCreateError) as developer:
        gl_team.as_user('bob').projects.get('team/app', lazy=True).hooks.create(body)
    assert (developer.value.response_code, developer.value.error_message) == (403, '403 Forbidden')
    # A group Maintainer is not its Owner.
    with pytest.raises(python_gitlab.GitlabCreateError) as maintainer:
        gl_team.as_user('dave').groups.get('team', lazy=True).hooks.create(body)
    assert maintainer.value.response_code == 403
    # dave maintains the projects below his group.
    assert gl_team.as_user('dave').projects.get('team/app', lazy=True).hooks.create(body).id == 1
    stranger = gl_team.raw('GET', '/projects/team%2Fapp/hooks', token=gl_team.secrets['erin'])
    assert (stranger.status_code, message(stranger)) == (404, '404 Project Not Found')
    unknown = gl_team.admin_raw('POST', '/groups/nothing/hooks', json=body)
    assert (unknown.status_code, message(unknown)) == (404, '404 Group Not Found')
    missing = gl_team.admin_raw('POST', '/projects/team%2Fapp/hooks', json={'push_events': True})
    assert (missing.status_code, missing.json()) == (400, {'error': 'url is missing'})
    developer_put = gl_team.raw('PUT', '/projects/team%2Fapp', token=gl_team.secrets['bob'],
                                json={'extended_prat_expiry_webhook_execute': True})
    assert developer_put.status_code == 403
    assert gl_team.gl().projects.get('team/app').extended_prat_expiry_webhook_execute is False
    # Hooks routes are GitLab requests (logged); the control routes never are.
    gl_team.instance.hook_deliveries()
    paths = [(r['method'], r['path'], r['status']) for r in gl_team.instance.requests()]
    assert ('POST', '/api/v4/projects/team%2Fapp/hooks', 403) in paths
    assert ('POST', '/api/v4/groups/nothing/hooks', 404) in paths
    assert not [p for _m, p, _s in paths if p.startswith('/_test/')]


def test_extended_settings_through_put_and_seed(gl_team):
    project = gl_team.as_user('carol').projects.get('team/app')
    assert project.extended_prat_expiry_webhook_execute is False
    project.extended_prat_expiry_webhook_execute = True
    project.save()
    assert gl_team.gl().projects.get('team/app').extended_prat_expiry_webhook_execute is True
    answer = gl_team.raw('PUT', '/groups/team', token=gl_team.secrets['alice'],
                         json={'extended_grat_expiry_webhook_execute': True})
    assert (answer.status_code, answer.json()['extended_grat_expiry_webhook_execute']) == (200, True)
    gl_team.instance.seed(groups=[{'path': 'ext', 'extended_grat_expiry_webhook_execute': True}],
                          projects=[{'path': 'ext/tool', 'extended_prat_expiry_webhook_execute': True},
                                    {'path': 'ext/plain'}])
    admin = gl_team.gl()
    assert admin.groups.get('ext').extended_grat_expiry_webhook_execute is True
    assert admin.projects.get('ext/tool').extended_prat_expiry_webhook_execute is True
    assert admin.projects.get('ext/plain').extended_prat_expiry_webhook_execute is False


# ------------------------------------------------------------------------- deliveries
def test_project_token_event_headers_and_payload(gl_team, receiver):
    hook = project_hook(gl_team, 'team/app', receiver.url + '/events', token=HOOK_SECRET)
    token = seed_token(gl_team, 'project', 'team/app', 9)
    gl_team.instance.advance_clock(1)
    assert receiver.received == []
    gl_team.instance.advance_clock(1)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    headers = got['headers']
    assert got['path'] == '/events'
    assert headers['Content-Type'] == 'application/json'
    assert headers['X-Gitlab-Event'] == 'Resource Access Token Hook'
    assert headers['X-Gitlab-Token'] == HOOK_SECRET
    assert headers['X-Gitlab-Instance'] == gl_team.instance.url
    assert headers['User-Agent'] == 'GitLab/18.1.1-ee'
    assert uuid.UUID(headers['X-Gitlab-Webhook-UUID']).version == 4
    assert uuid.UUID(headers['X-Gitlab-Event-UUID']).version == 4
    body = got['body']
    project = gl_team.gl().projects.get('team/app')
    assert set(body) == {'object_kind', 'event_name', 'project_id', 'project', 'object_attributes'}
    assert (body['object_kind'], body['event_name'], body['project_id']) == (
        'access_token', 'expiring_access_token', project.id)
    assert set(body['project']) == PROJECT_KEYS
    assert body['project']['web_url'] == f'{gl_team.instance.url}/team/app'
    assert (body['project']['path_with_namespace'], body['project']['avatar_url']) == ('team/app', None)
    attributes = body['object_attributes']
    assert set(attributes) == {'user_id', 'created_at', 'id', 'name', 'expires_at'}
    assert (attributes['id'], attributes['name'], attributes['user_id'], attributes['expires_at']) == (
        token['id'], 'project-bot', token['user_id'], token['expires_at'])
    assert ISO_MS.match(attributes['created_at'])
    assert 'token' not in attributes and token['token'] not in json.dumps(body)

    deliveries = gl_team.instance.hook_deliveries()
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert (delivery['hook_id'], delivery['url'], delivery['status'], delivery['error']) == (
        hook.id, receiver.url + '/events', 200, None)
    assert delivery['event_uuid'] == headers['X-Gitlab-Event-UUID']
    assert delivery['payload'] == body
    assert delivery['headers']['X-Gitlab-Token'] == '[hook token]'
    assert delivery['headers']['X-Gitlab-Webhook-UUID'] == headers['X-Gitlab-Webhook-UUID']
    assert HOOK_SECRET not in json.dumps(deliveries)
    # Once sent, the 7-day event is not sent again.
    gl_team.instance.advance_clock(1)
    assert gl_team.instance.run_expiry_worker() == []
    assert len(receiver.received) == 1
    gl_team.instance.clear_hook_deliveries()
    assert gl_team.instance.hook_deliveries() == []


def test_group_token_event_payload(gl_team, receiver):
    group_hook(gl_team, 'team/sub', receiver.url)
    token = seed_token(gl_team, 'group', 'team/sub', 8)
    gl_team.instance.advance_clock(1)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    # A hook without a secret sends no X-Gitlab-Token.
    assert 'X-Gitlab-Token' not in got['headers']
    body = got['body']
    sub = gl_team.gl().groups.get('team/sub')
    assert set(body) == {'object_kind', 'event_name', 'group_id', 'group', 'object_attributes'}
    assert body['group_id'] == sub.id
    assert body['group'] == {'group_name': 'sub', 'group_path': 'sub', 'group_id': sub.id,
                             'full_path': 'team/sub'}
    attributes = body['object_attributes']
    assert (attributes['id'], attributes['expires_at']) == (token['id'], token['expires_at'])
    assert GROUP_TIME.match(attributes['created_at']), attributes['created_at']


def test_extended_setting_sends_at_60_30_and_7_days(gl_team, receiver):
    gl_team.instance.seed(projects=[{'path': 'team/ext', 'extended_prat_expiry_webhook_execute': True}])
    project_hook(gl_team, 'team/ext', receiver.url + '/ext')
    project_hook(gl_team, 'team/app', receiver.url + '/plain')
    seed_token(gl_team, 'project', 'team/ext', 61)
    seed_token(gl_team, 'project', 'team/app', 61)
    sent = []
    for step in (1, 30, 23):
        gl_team.instance.clear_hook_deliveries()
        gl_team.instance.advance_clock(step)
        sent += [(d['url'].rsplit('/', 1)[1], days_before_expiry(d, gl_team))
                 for d in gl_team.instance.hook_deliveries()]
    assert sent == [('ext', 60), ('ext', 30), ('ext', 7), ('plain', 7)]
    assert len(receiver.received) == 4


def test_one_clock_move_over_many_days_sends_each_interval_once(gl_team, receiver):
    gl_team.instance.seed(groups=[{'path': 'ext', 'extended_grat_expiry_webhook_execute': True}])
    group_hook(gl_team, 'ext', receiver.url)
    seed_token(gl_team, 'group', 'ext', 61)
    gl_team.instance.advance_clock(61)
    deliveries = gl_team.instance.hook_deliveries()
    assert len(deliveries) == 3
    assert len({d['event_uuid'] for d in deliveries}) == 3
    assert len(receiver.received) == 3
    gl_team.instance.advance_clock(30)
    assert len(gl_team.instance.hook_deliveries()) == 3


def test_revoked_tokens_and_hooks_without_token_events_send_nothing(gl_team, receiver):
    project_hook(gl_team, 'team/app', receiver.url + '/untriggered', resource_access_token_events=False)
    project_hook(gl_team, 'team/sub/lib', receiver.url + '/lib')
    seed_token(gl_team, 'project', 'team/app', 9)
    seed_token(gl_team, 'project', 'team/sub/lib', 9, revoked=True)
    live = seed_token(gl_team, 'project', 'team/sub/lib', 10)
    revoked_by_api = seed_token(gl_team, 'project', 'team/sub/lib', 9)
    gl_team.gl().projects.get('team/sub/lib', lazy=True).access_tokens.delete(revoked_by_api['id'])
    gl_team.instance.advance_clock(3)
    # Only the live token on the triggered hook: the worker did run.
    assert [(r['path'], r['body']['object_attributes']['id']) for r in receiver.received] == [('/lib', live['id'])]
    assert [d['hook_id'] for d in gl_team.instance.hook_deliveries()] == [2]


def test_failed_deliveries_are_recorded_and_the_clock_still_moves(gl_team, receiver):
    dead = project_hook(gl_team, 'team/app', f'http://127.0.0.1:{closed_port()}/hook', token=HOOK_SECRET)
    failing = project_hook(gl_team, 'team/app', receiver.url + '/fails')
    receiver.status = 500
    seed_token(gl_team, 'project', 'team/app', 8)
    before = gl_team.today()
    gl_team.instance.advance_clock(1)
    assert gl_team.today() == before + dt.timedelta(days=1)
    deliveries = {d['hook_id']: d for d in gl_team.instance.hook_deliveries()}
    assert deliveries[dead.id]['status'] is None
    assert deliveries[dead.id]['error']
    assert (deliveries[failing.id]['status'], deliveries[failing.id]['error']) == (500, 'HTTP 500')
    assert deliveries[dead.id]['event_uuid'] == deliveries[failing.id]['event_uuid']
    assert HOOK_SECRET not in json.dumps(list(deliveries.values()))
    # A failed event is not retried by the next day's run.
    gl_team.instance.advance_clock(1)
    assert len(gl_team.instance.hook_deliveries()) == 2


def test_parent_group_hooks_receive_project_token_events(gl_team, receiver):
    own = project_hook(gl_team, 'team/sub/lib', receiver.url + '/project')
    parent = group_hook(gl_team, 'team/sub', receiver.url + '/sub', token=HOOK_SECRET)
    top = group_hook(gl_team, 'team', receiver.url + '/team')
    group_hook(gl_team, 'other', receiver.url + '/other')
    seed_token(gl_team, 'project', 'team/sub/lib', 8)
    gl_team.instance.advance_clock(1)
    by_path = {r['path']: r for r in receiver.received}
    assert set(by_path) == {'/project', '/sub', '/team'}
    assert len({r['headers']['X-Gitlab-Event-UUID'] for r in receiver.received}) == 1
    assert len({r['headers']['X-Gitlab-Webhook-UUID'] for r in receiver.received}) == 3
    assert by_path['/sub']['headers']['X-Gitlab-Token'] == HOOK_SECRET
    assert all(r['body']['object_attributes']['name'] == 'project-bot' for r in receiver.received)
    assert sorted(d['hook_id'] for d in gl_team.instance.hook_deliveries()) == sorted([own.id, parent.id, top.id])


def test_clock_backwards_sends_nothing_and_the_hub_clock_runs_the_worker(gl_team, gitlab_hub, receiver):
    project_hook(gl_team, 'team/app', receiver.url)
    seed_token(gl_team, 'project', 'team/app', 9)
    gl_team.instance.advance_clock(-5)
    gl_team.instance.set_clock((dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat())
    assert gl_team.instance.hook_deliveries() == []
    # Back at real today + 2 through the hub: the days crossed include expiry - 7.
    gitlab_hub.advance_clock(3)
    assert [d['status'] for d in gl_team.instance.hook_deliveries()] == [200]
    assert len(receiver.received) == 1


def test_run_expiry_worker_and_reset(gl_team, receiver):
    project_hook(gl_team, 'team/app', receiver.url)
    seed_token(gl_team, 'project', 'team/app', 7)
    seed_token(gl_team, 'project', 'team/app', 8)
    ran = gl_team.instance.run_expiry_worker()
    assert [d['payload']['object_attributes']['name'] for d in ran] == ['project-bot']
    assert gl_team.instance.run_expiry_worker() == []
    assert gl_team.instance.hook_deliveries() == ran
    gl_team.instance.reset()
    assert gl_team.instance.hook_deliveries() == []
    gl_team.instance.seed(projects=[{'path': 'team/app'}])
    assert gl_team.gl().projects.get('team/app', lazy=True).hooks.list() == []
