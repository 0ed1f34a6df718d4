"""Event-driven rotation: ansible-rulebook itself runs the rulebook mobb.scm.gitlab_token_rotation with
the event source mobb.scm.gitlab_token_webhook, and the local GitLab sends its access-token webhooks as
GitLab does when its clock reaches 7 days before a token expires. The rulebook runs mobb.scm.rotate on the
server that keeps the token, and on no other. Every run is checked for leaks of the values the servers
issued and of the hook's secret."""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time

import gitlab as python_gitlab
import pytest
import requests
import yaml

from rotation_fleet import Fleet, token_env

HOOK_SECRET = 'eda-hook-secret-7b2e41'
BIN = os.path.dirname(sys.executable)
RECAP = 'PLAY RECAP'
KEPT_PLAY = "PLAY [Keep Mobb's GitLab tokens fresh]"


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Rulebook:
    """ansible-rulebook with the collection's rulebook, the fleet's inventory directory and the hook's
    secret from the environment; its output (the playbooks' included) goes to a file."""

    def __init__(self, fleet, tmp_path, inventory, **variables):
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}/'
        self.log_path = tmp_path / f'rulebook-{self.port}.log'
        vars_path = tmp_path / f'events-{self.port}.yml'
        vars_path.write_text(yaml.safe_dump(dict(
            mobb_scm_webhook_host='127.0.0.1', mobb_scm_webhook_port=self.port, mobb_scm_hosts='fleet',
            **variables)))
        environment = dict(os.environ, **fleet.env({
            'mobb_scm_webhook_secret': HOOK_SECRET,
            'PATH': BIN + os.pathsep + os.environ['PATH'],
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
            'TMPDIR': str(tmp_path),
        }))
        self.log = open(self.log_path, 'w')
        self.process = subprocess.Popen(
            [os.path.join(BIN, 'ansible-rulebook'), '-r', 'mobb.scm.gitlab_token_rotation', '-i', str(inventory),
             '--vars', str(vars_path), '--env-vars', 'mobb_scm_webhook_secret', '-v'],
            cwd=tmp_path, env=environment, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while not self._listening():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, 'ansible-rulebook did not listen:\n' + self.output()
            time.sleep(0.2)

    def _listening(self):
        with socket.socket() as probe:
            return probe.connect_ex(('127.0.0.1', self.port)) == 0

    def output(self):
        return self.log_path.read_text(errors='replace')

    def wait_for(self, text, count=1, timeout=240):
        """The output once ``text`` appears ``count`` times in it."""
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f'{text!r} not seen {count} time(s):\n' + self.output()[-6000:]
            time.sleep(0.2)
        return self.output()

    def post(self, payload, secret=HOOK_SECRET, uuid='event-1', instance=None):
        headers = {'Content-Type': 'application/json', 'X-Gitlab-Event': 'Resource Access Token Hook',
                   'X-Gitlab-Event-UUID': uuid, 'X-Gitlab-Instance': instance or self.fleet.gitlabs[0].url}
        if secret is not None:
            headers['X-Gitlab-Token'] = secret
        return requests.post(self.url, json=payload, headers=headers, timeout=10)

    def stop(self):
        # ansible-rulebook removes a playbook's private data directory (eda*, in TMPDIR) only after
        # reading its artifacts, a moment after the playbook's recap: a stop before that leaves it.
        deadline = time.monotonic() + 30
        while list(self.tmp_path.glob('eda*')) and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
        self.log.close()

    def assert_no_leaks(self):
        secrets = self.fleet.secrets() + [HOOK_SECRET]
        output = self.output()
        assert not [secret for secret in secrets if secret in output], 'the rulebook output holds a secret'
        self.log_path.unlink()
        self.fleet.assert_no_secret_files(secrets)


@pytest.fixture
def fleet(run_playbook, mobb, gitlab_hub, tmp_path):
    gitlabs = gitlab_hub.new_instances(2)
    yield Fleet(run_playbook, mobb, gitlabs, tmp_path)
    for instance in gitlabs:
        gitlab_hub.remove_instance(instance)


@pytest.fixture
def inventory(fleet, tmp_path):
    """A directory, as the rulebook wants it (its group_vars come with it): one host per GitLab
    server, each keeping project team/app's token; secrets only as lookups of the environment."""
    folder = tmp_path / 'fleet'
    (folder / 'group_vars').mkdir(parents=True)
    hosts = {f'gitlab{index}.example': {
        'gitlab_token_rotation_gitlab_url': gitlab.url,
        'gitlab_token_rotation_gitlab_api_token': f"{{{{ lookup('ansible.builtin.env', '{token_env(index)}') }}}}"}
        for index, gitlab in enumerate(fleet.gitlabs)}
    (folder / 'hosts.yml').write_text(yaml.safe_dump({'fleet': {'hosts': hosts}}))
    (folder / 'group_vars' / 'fleet.yml').write_text(yaml.safe_dump({
        'gitlab_token_rotation_token_type': 'project', 'gitlab_token_rotation_project': 'team/app',
        'gitlab_token_rotation_mobb_api_url': fleet.mobb.graphql_url,
        'gitlab_token_rotation_verify_delay': 0, 'gitlab_token_rotation_verify_retries': 2,
        'mobb_scm_metrics_file': str(tmp_path / 'mobb-scm.prom')}))
    return folder


@pytest.fixture
def kept(fleet, inventory):
    """The fleet after a first scheduled run of mobb.scm.rotate: each server's token created and in Mobb."""
    run = fleet.run([{'import_playbook': 'mobb.scm.rotate'}], args=['-i', str(inventory)],
                    extra_vars={'mobb_scm_hosts': 'fleet'})
    assert run.rc == 0, run.output[-4000:]
    return [fleet.active(index)[0] for index in range(len(fleet.gitlabs))]


@pytest.fixture
def rulebook(fleet, tmp_path, inventory):
    started = []

    def start(**variables):
        started.append(Rulebook(fleet, tmp_path, inventory, **variables))
        return started[-1]
    yield start
    for running in started:
        running.stop()
    for running in started:
        running.assert_no_leaks()


def add_hook(instance, url, **attributes):
    client = python_gitlab.Gitlab(instance.url, private_token=instance.admin_token)
    hook = dict(url=url, token=HOOK_SECRET, resource_access_token_events=True, enable_ssl_verification=False)
    hook.update(attributes)
    client.projects.get('team/app').hooks.create(hook)


def project_event(token, name='mobb-broker', project='team/app', project_id=None):
    return {'object_kind': 'access_token', 'event_name': 'expiring_access_token',
            'project': {'id': project_id or 1, 'path_with_namespace': project},
            'object_attributes': {'id': token['id'], 'name': name, 'expires_at': token['expires_at'],
                                  'created_at': '2026-12-03T10:00:00.000Z', 'user_id': 5}}


def test_gitlabs_warning_rotates_that_servers_token_and_mobb_moves_to_the_new_one(fleet, kept, rulebook, tmp_path):
    watching = rulebook()
    add_hook(fleet.gitlabs[0], watching.url)
    add_hook(fleet.gitlabs[1], watching.url)
    metrics = (tmp_path / 'mobb-scm.prom').read_text()
    assert 'gitlab0.example' in metrics and 'gitlab1.example' in metrics
    fleet.clear_requests()
    # 30-day tokens: 23 days on, GitLab's daily worker sees one 7 days from expiry and sends its webhook.
    fleet.gitlabs[0].advance_clock(23)
    [delivery] = fleet.gitlabs[0].hook_deliveries()
    assert delivery['status'] == 202 and delivery['payload']['object_attributes']['id'] == kept[0]['id']
    output = watching.wait_for(RECAP)
    assert f"GitLab warns that project token {kept[0]['id']} 'mobb-broker' of project team/app" in output
    assert 'keeping the tokens of gitlab0.example.' in output
    assert 'gitlab0.example' in output.split(RECAP)[1] and 'gitlab1.example' not in output.split(RECAP)[1]
    # The run rotated: a new token, Mobb on it, the old one revoked; the other server was not touched.
    [new] = fleet.active(0)
    assert new['id'] != kept[0]['id'] and fleet.mobb_uses(0) == (True, new['id'])
    assert not fleet.token(0, kept[0]['id'])['active']
    assert fleet.gitlabs[1].requests() == [] and fleet.active(1) == [kept[1]]
    # The metrics file still describes the whole fleet: the event's run, of one server, left it alone.
    assert (tmp_path / 'mobb-scm.prom').read_text() == metrics


def test_an_early_warning_runs_the_normal_threshold_unless_forced(fleet, kept, rulebook):
    watching = rulebook()
    add_hook(fleet.gitlabs[0], watching.url)
    # With the project's extended expiry webhooks, GitLab also warns 30 days before: today, for
    # the 30-day token the first run created.
    client = python_gitlab.Gitlab(fleet.gitlabs[0].url, private_token=fleet.gitlabs[0].admin_token)
    project = client.projects.get('team/app')
    project.extended_prat_expiry_webhook_execute = True
    project.save()
    fleet.clear_requests()
    [delivery] = fleet.gitlabs[0].run_expiry_worker()
    assert delivery['status'] == 202 and delivery['payload']['object_attributes']['expires_at'] == kept[0]['expires_at']
    output = watching.wait_for(RECAP)
    assert 'keeping the tokens of gitlab0.example.' in output
    assert fleet.active(0) == [kept[0]] and fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    watching.stop()
    event = project_event(kept[0])

    forcing = rulebook(mobb_scm_event_force=True)
    assert forcing.post(event, uuid='thirty-days-again').status_code == 202
    forcing.wait_for(RECAP)
    [new] = fleet.active(0)
    assert new['id'] != kept[0]['id'] and fleet.mobb_uses(0) == (True, new['id'])
    assert fleet.active(1) == [kept[1]]


def test_forged_events_change_nothing_and_a_flood_runs_one_rotation(fleet, kept, rulebook):
    watching = rulebook()
    fleet.gitlabs[0].advance_clock(23)
    fleet.clear_requests()
    event = project_event(kept[0])
    for secret in (None, 'not-the-secret', HOOK_SECRET[:-1]):
        assert watching.post(event, secret=secret, uuid='forged').status_code == 401
    # A flood: GitLab's retries of one event, new events for the same token, and an event for another
    # token of the same server (which the source passes on, and the rulebook's throttle holds back).
    other_token = dict(kept[0], id=kept[0]['id'] + 1000)
    floods = [(event, 'one')] * 50 + [(event, f'new-{index}') for index in range(49)] + [(project_event(other_token), 'x')]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda item: watching.post(item[0], uuid=item[1]).status_code, floods))
    assert statuses.count(202) == 2 and statuses.count(200) == 98
    output = watching.wait_for(RECAP)
    time.sleep(10)
    output = watching.output()
    assert output.count(RECAP) == 1 and output.count(KEPT_PLAY) == 1
    assert 'X-Gitlab-Token is missing or is not the hook secret' in output
    created = [entry for entry in fleet.gitlabs[0].writes()
               if entry['method'] == 'POST' and entry['path'].endswith('/access_tokens')]
    assert len(created) == 1
    [new] = fleet.active(0)
    assert fleet.mobb_uses(0) == (True, new['id'])


def test_an_event_for_an_unknown_server_or_token_runs_nothing_and_says_so(fleet, kept, rulebook):
    watching = rulebook()
    fleet.clear_requests()
    assert watching.post(project_event(kept[0]), uuid='elsewhere',
                         instance='https://gitlab.elsewhere.example').status_code == 202
    assert watching.post(project_event(kept[0], name='ci-bot'), uuid='other-name').status_code == 202
    output = watching.wait_for(RECAP, count=2)
    assert output.count('no server of this fleet keeps it, so nothing runs') == 2
    assert "on https://gitlab.elsewhere.example, expiring" in output
    assert "a project token named 'ci-bot' of project team/app" in output
    assert KEPT_PLAY in output and 'skipping: no hosts matched' in output
    for recap in output.split(RECAP)[1:]:
        assert 'gitlab0.example' not in recap and 'gitlab1.example' not in recap
    assert [instance.requests() for instance in fleet.gitlabs] == [[], []]
    assert fleet.mobb.requests() == [] and [fleet.active(index) for index in range(2)] == [[kept[0]], [kept[1]]]
