"""`make demo-events`: a GitLab webhook rotates a token, through Event-Driven Ansible.

Starts the local fleet of `make demo` (demo/inventory.yml, demo/seed.yml), then:

  1. mobb.scm.rotate   the scheduled run: every token is created and stored in Mobb
  2. ansible-rulebook  the collection's rulebook mobb.scm.gitlab_token_rotation listens for
                       GitLab's access token webhooks; gitlab-us gets a project hook that sends
                       them to it, with a secret token
  3. a forged event    (another secret) is answered 401 and runs nothing
  4. the clock moves   23 days: gitlab-us's project token is 7 days from expiry, GitLab's daily
                       worker sends its webhook, the rulebook runs mobb.scm.rotate on gitlab-us
                       alone, and Mobb moves to the new token

and stops everything. It proves that no token, key or hook secret appears in any output or
file it produced, and exits non-zero when a step does not behave as described.
"""
from __future__ import annotations

import glob
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import gitlab as python_gitlab
import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import ROOT, Demo, contains_any, expect, files_under, heading, main, report_lines, say  # noqa: E402

WATCHED = 'gitlab-us.example'
PROJECT = 'payments/api'
# The demo's tokens live 30 days: 23 days on, one is 7 days from expiry, when GitLab warns.
WARNING_DAYS = 23
RUN_TIMEOUT = 240


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class EventsDemo(Demo):
    def __init__(self, output_dir, verbose):
        super().__init__(output_dir, verbose)
        self.hook_secret = secrets.token_urlsafe(24)
        self.port = free_port()
        self.rulebook = None
        self.rulebook_log = os.path.join(output_dir, 'rulebook.log')

    def start_rulebook(self):
        variables = os.path.join(self.output_dir, 'events.yml')
        with open(variables, 'w', encoding='utf-8') as handle:
            yaml.safe_dump({'mobb_scm_webhook_host': '127.0.0.1', 'mobb_scm_webhook_port': self.port,
                            'mobb_scm_hosts': 'fleet'}, handle)
        command = ['ansible-rulebook', '-r', 'mobb.scm.gitlab_token_rotation', '-i', 'demo/inventory.yml',
                   '--vars', os.path.relpath(variables, ROOT), '--env-vars', 'mobb_scm_webhook_secret', '-v']
        say('$ ' + ' '.join(command))
        environment = self.environment()
        bin_dir = os.path.dirname(sys.executable)
        environment.update({'mobb_scm_webhook_secret': self.hook_secret, 'TMPDIR': self.output_dir,
                            'PATH': bin_dir + os.pathsep + environment['PATH']})
        with open(self.rulebook_log, 'w', encoding='utf-8') as log:
            self.rulebook = subprocess.Popen([os.path.join(bin_dir, command[0])] + command[1:], cwd=ROOT,
                                             env=environment, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        deadline = time.monotonic() + 120
        while not self.listening():
            expect(self.rulebook.poll() is None, 'ansible-rulebook stopped:\n' + self.rulebook_output()[-3000:])
            expect(time.monotonic() < deadline, 'ansible-rulebook did not listen within 120 s')
            time.sleep(0.2)
        say(f'  Listening on http://127.0.0.1:{self.port}/ (ansible-rulebook, its output in '
            f'{os.path.relpath(self.rulebook_log, ROOT)})')

    def listening(self):
        with socket.socket() as probe:
            return probe.connect_ex(('127.0.0.1', self.port)) == 0

    def rulebook_output(self):
        with open(self.rulebook_log, encoding='utf-8', errors='replace') as handle:
            return handle.read()

    def stop_rulebook(self):
        if self.rulebook is not None and self.rulebook.poll() is None:
            os.killpg(self.rulebook.pid, signal.SIGINT)
            try:
                self.rulebook.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.rulebook.pid, signal.SIGKILL)
                self.rulebook.wait(30)

    def stop(self):
        self.stop_rulebook()
        super().stop()

    def add_hook(self, gitlab):
        client = python_gitlab.Gitlab(gitlab.url, private_token=gitlab.admin_token)
        client.projects.get(PROJECT).hooks.create({
            'url': f'http://127.0.0.1:{self.port}/', 'token': self.hook_secret,
            'resource_access_token_events': True, 'enable_ssl_verification': False})

    def wait_for_runs(self, count):
        """The rulebook's output once ``count`` playbook runs ended and ansible-rulebook removed their
        private data directories (eda*, in TMPDIR), which it does a moment after each recap."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while (self.rulebook_output().count('PLAY RECAP') < count
               or glob.glob(os.path.join(self.output_dir, 'eda*'))):
            expect(self.rulebook.poll() is None, 'ansible-rulebook stopped:\n' + self.rulebook_output()[-3000:])
            expect(time.monotonic() < deadline, f'no playbook run within {RUN_TIMEOUT} s')
            time.sleep(0.2)
        return self.rulebook_output()

    def run(self):
        self.start()
        watched = self.gitlab[WATCHED]

        heading('1. The scheduled run: each server gets a token, and Mobb gets it')
        code, _lines = self.playbook('rotate')
        states, _writes = self.servers_say()
        expect(code == 0 and all(state['connected'] for state in states.values()), 'the first run failed')
        before = states[WATCHED]['active']

        heading('2. ansible-rulebook listens for GitLab; gitlab-us sends it its access token events')
        self.start_rulebook()
        self.add_hook(watched)
        say(f'  gitlab-us: project hook on {PROJECT}, trigger "access token events", with a secret token.')

        heading('3. A forged event: the wrong secret is answered 401, and nothing runs')
        forged = requests.post(f'http://127.0.0.1:{self.port}/', timeout=10, json={'object_kind': 'access_token'},
                               headers={'X-Gitlab-Token': 'guessed', 'X-Gitlab-Instance': watched.url})
        say(f'  POST with X-Gitlab-Token: guessed -> {forged.status_code}')
        expect(forged.status_code == 401, 'a forged event was not refused')

        heading(f'4. {WARNING_DAYS} days later: GitLab warns that the project token expires in 7 days')
        for gitlab in self.gitlab.values():
            gitlab.clear_requests()
        self.mobb.clear_requests()
        watched.advance_clock(WARNING_DAYS)
        deliveries = watched.hook_deliveries()
        for delivery in deliveries:
            attributes = delivery['payload']['object_attributes']
            say(f'  GitLab -> rulebook: {delivery["headers"]["X-Gitlab-Event"]}, token {attributes["id"]} '
                f'({attributes["name"]}) expires {attributes["expires_at"]}; answered {delivery["status"]}')
        expect([delivery['status'] for delivery in deliveries] == [202], 'GitLab\'s webhook was not accepted')
        output = self.wait_for_runs(1)
        lines = report_lines(output)
        for line in lines:
            say('    ' + line)
        states, _writes = self.servers_say()
        after = states[WATCHED]['active']
        expect(lines and lines[0].endswith('1 token(s) on 1 host(s): rotated: 1'),
               'the rulebook\'s run did not rotate gitlab-us\'s token alone')
        expect(len(after) == 1 and after != before and states[WATCHED]['used'] == after[0],
               'Mobb does not connect with gitlab-us\'s new token')
        expect(all(not state['writes'] for name, state in states.items() if name != WATCHED),
               'the event touched another server')
        say(f'  gitlab-us: token {before[0]} revoked, Mobb connects with token {after[0]}; '
            'the other servers had no write.')
        self.stop_rulebook()
        self.outputs.append(self.rulebook_output())

        heading('Secrets')
        secret_values = self.secrets() + [self.hook_secret]
        leaked = [path for path in files_under(self.output_dir) if contains_any(path, secret_values)]
        leaked += ['output' for output in self.outputs if any(value in output for value in secret_values)]
        expect(not leaked, f'secrets appear in: {leaked}')
        say(f'  None of the {len(secret_values)} tokens, keys and the hook secret appears in any output or\n'
            f'  in the files under {os.path.relpath(self.output_dir, ROOT)}.')


if __name__ == '__main__':
    sys.exit(main(EventsDemo, 'demo-events', __doc__))
