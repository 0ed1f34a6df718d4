"""`make demo`: the rotation role against a local fleet, from nothing to a rotation.

Starts the local GitLab hub (one server per host of demo/inventory.yml) and the local
Mobb, seeds them from demo/seed.yml, then runs the collection's playbooks by their
names, as a user would. gitlab-onprem keeps its token on a group service account, which
the first run creates (with its membership) using a group Owner's token:

  1. mobb.scm.rotate   tokens are created and stored in Mobb
  2. mobb.scm.rotate   the daily run: nothing changes, nothing is written
  3. the servers' clock moves 24 days, past the 7-day threshold
  4. mobb.scm.rotate   tokens are rotated while Mobb is polled: it never loses its connection
  5. mobb.scm.check    the report, printed and written as JSON and Markdown
  6. a GitLab server is added in Mobb (a token stored through Mobb's API, as in its UI);
     mobb.scm.rotate with the inventory plugin's inventory (demo/gitlab.mobb_integrations.yml,
     every server Mobb knows) picks it up, with no inventory edited

and stops the servers. After each run it shows the playbook's report and what the servers
say (active tokens, the token Mobb connects with, writes). Last, it proves that no token
or key the servers issued appears in any output or file the demo produced. Exits non-zero
when any step does not behave as described. Secrets exist only in memory and in the
environment of the ansible-playbook processes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))

from gitlab_server.client import start_hub  # noqa: E402  (needs the path above)
from mobb_server.client import start_mobb  # noqa: E402

CHECK_QUERY = 'query check($url: String!) { checkScmConnectionStatus(scmUrl: $url) { status } }'
STORE_MUTATION = ('mutation store($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", url: $url, '
                  'token: $token) { __typename } }')
PLUGIN_INVENTORY = 'demo/gitlab.mobb_integrations.yml'
CLOCK_DAYS = 24
WIDTH = 92


class DemoError(RuntimeError):
    """A step did not behave as the demo says it does."""


def say(text=''):
    print(text, flush=True)


def heading(text):
    say()
    say('=' * WIDTH)
    say(text)
    say('=' * WIDTH)


def expect(condition, message):
    if not condition:
        raise DemoError(message)


def env_name(host, what):
    """gitlab-eu.example -> DEMO_GITLAB_EU_URL (the names demo/inventory.yml looks up)."""
    return 'DEMO_' + host.split('.')[0].upper().replace('-', '_') + '_' + what


def host_token_env(url):
    """http://127.0.0.1:40002 -> GITLAB_TOKEN_127_0_0_1_40002 (demo/group_vars/mobb_gitlab_servers.yml)."""
    return 'GITLAB_TOKEN_' + re.sub('[^A-Za-z0-9]', '_', urllib.parse.urlsplit(url).netloc).upper()


class Demo:
    def __init__(self, output_dir, verbose):
        self.output_dir = output_dir
        self.verbose = verbose
        self.seed = yaml.safe_load(open(os.path.join(HERE, 'seed.yml'), encoding='utf-8'))
        self.inventory_path = os.path.join(HERE, 'inventory.yml')
        inventory = yaml.safe_load(open(self.inventory_path, encoding='utf-8'))
        self.hosts = inventory['fleet']['hosts']
        self.outputs = []
        self.added = []  # GitLab servers added in Mobb during the demo
        self.role_tokens = {}  # the GitLab token the playbooks use, per host
        self.hub = self.mobb = None

    # -- servers ---------------------------------------------------------------------------
    def start(self):
        heading(f'Starting {len(self.hosts)} local GitLab servers and Mobb')
        self.hub = start_hub(instances=len(self.hosts))
        self.mobb = start_mobb(ca_path=self.hub.ca_path, stderr=subprocess.DEVNULL)
        self.gitlab = dict(zip(self.hosts, self.hub.started))
        brokered = [urllib.parse.urlsplit(self.gitlab[h].url).netloc
                    for h, variables in self.hosts.items() if variables.get('demo_brokered')]
        seed = self.seed['mobb']
        seeded = self.mobb.seed(
            organizations=[{'name': seed['organization'],
                            'broker_hosts': [{'real_domain': domain} for domain in brokered]}],
            users=[{'email': seed['admin'], 'organization': seed['organization'], 'role': 'Admin'}])
        self.api_key = seeded['users'][0]['api_key']
        for name, gitlab in self.gitlab.items():
            gitlab.seed(**self.seed['gitlab'])
            self.role_tokens[name] = gitlab.admin_token
            via = 'through the broker' if self.hosts[name].get('demo_brokered') else 'directly'
            if self.hosts[name].get('demo_service_account'):
                server = self.seed['service_account_server']
                gitlab.settings(**server['settings'])
                self.role_tokens[name] = gitlab.seed(tokens=server['tokens'])['tokens'][0]['token']
                via += "; kept with a group service account, by alice, an Owner of payments"
            say(f'  {name:24} {gitlab.url}   (Mobb reaches it {via})')
        say(f'  {"Mobb":24} {self.mobb.graphql_url}')
        say(f'  Seeded from demo/seed.yml: user alice (Owner of group payments), project payments/api,\n'
            f'  Mobb organization {seed["organization"]} with Admin {seed["admin"]}.')

    def stop(self):
        if self.mobb is not None:
            self.mobb.stop()
        if self.hub is not None:
            self.hub.stop()

    # -- running playbooks -----------------------------------------------------------------
    def environment(self):
        environment = dict(os.environ)
        environment.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(ROOT, '.cache', 'collections'))
        environment.update({'MOBB_API_URL': self.mobb.graphql_url, 'MOBB_API_KEY': self.api_key,
                            'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_RETRY_FILES_ENABLED': 'False'})
        for name, gitlab in self.gitlab.items():
            environment[env_name(name, 'URL')] = gitlab.url
            environment[env_name(name, 'TOKEN')] = self.role_tokens[name]
            environment[host_token_env(gitlab.url)] = self.role_tokens[name]
        for gitlab in self.added:
            environment[host_token_env(gitlab.url)] = gitlab.admin_token
        return environment

    def playbook(self, name, *extra, inventory=('demo/inventory.yml', 'fleet')):
        command = ['ansible-playbook', f'mobb.scm.{name}', '-i', inventory[0], '-e', f'mobb_scm_hosts={inventory[1]}']
        for gitlab in list(self.gitlab.values()) + self.added:
            gitlab.clear_requests()
        self.mobb.clear_requests()
        completed, output, log = self.command(command + list(extra), name)
        for line in report_lines(output):
            say('    ' + line)
        say(f'  (exit code {completed.returncode}; the whole output is in {os.path.relpath(log, ROOT)})')
        return completed.returncode, report_lines(output)

    def command(self, command, name):
        """Run an Ansible command from the checkout; (completed, output, log path)."""
        say('$ ' + ' '.join(command))
        executable = os.path.join(os.path.dirname(sys.executable), command[0])
        completed = subprocess.run([executable] + command[1:], cwd=ROOT, env=self.environment(),
                                   capture_output=True, text=True, check=False)
        output = completed.stdout + completed.stderr
        self.outputs.append(output)
        log = os.path.join(self.output_dir, f'{len(self.outputs)}-{name}.log')
        with open(log, 'w', encoding='utf-8') as handle:
            handle.write(output)
        if self.verbose:
            say(output)
        return completed, output, log

    def add_in_mobb(self):
        """A new GitLab server, and a token of alice's stored in Mobb as its UI does."""
        gitlab = self.hub.new_instance()
        gitlab.advance_clock(CLOCK_DAYS)
        gitlab.seed(**self.seed['gitlab'])
        token = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'entered-in-mobb'}])['tokens'][0]
        answer = self.mobb.graphql(STORE_MUTATION, {'url': gitlab.url, 'token': token['token']},
                                   api_key=self.api_key).json()
        expect((answer.get('data') or {}).get('updateScmToken') == {'__typename': 'ScmAccessTokenUpdateSuccess'},
               'Mobb did not store the new server\'s token')
        self.added.append(gitlab)
        return gitlab

    # -- what the servers say ----------------------------------------------------------------
    def mobb_uses(self, gitlab):
        """(connected, id of the GitLab token Mobb's own check authenticates with)."""
        seen = max((entry['seq'] for entry in gitlab.requests()), default=0)
        answer = self.mobb.graphql(CHECK_QUERY, {'url': gitlab.url}, api_key=self.api_key).json()
        connected = (answer.get('data') or {}).get('checkScmConnectionStatus') == {'status': 'OK'}
        used = {entry['token_id'] for entry in gitlab.requests()
                if entry['seq'] > seen and entry['path'] == '/api/v4/user'}
        return connected, (used.pop() if len(used) == 1 else None)

    def servers_say(self):
        """One line per server: its active token, and the token Mobb connects with."""
        mobb_writes = len(self.mobb.writes())
        states = {}
        say('  What the servers say:')
        for name, gitlab in self.gitlab.items():
            writes = [entry['method'] for entry in gitlab.writes()]
            active = [t for t in gitlab.tokens() if t['name'] == 'mobb-broker' and t['active']]
            connected, used = self.mobb_uses(gitlab)
            tokens = ', '.join(f'{t["id"]} of {t["username"]} (expires {t["expires_at"]})' for t in active) or 'none'
            mobb = f'connects with token {used}' if connected else 'cannot connect'
            say(f'    {name:24} active token {tokens}; Mobb {mobb}; GitLab writes: {len(writes)}')
            states[name] = {'active': [t['id'] for t in active], 'connected': connected, 'used': used,
                            'writes': writes}
        say(f'    {"Mobb":24} writes: {mobb_writes}')
        return states, mobb_writes

    def show_service_accounts(self):
        """The service account the role created, where it is a member, and who created it."""
        for name, gitlab in self.gitlab.items():
            if not self.hosts[name].get('demo_service_account'):
                continue
            accounts = [user for user in gitlab.users() if user['user_type'] == 'service_account']
            memberships = [f'{m["access_level"]} in {m["source_path"]}' for m in gitlab.members()
                           if accounts and m['user_id'] == accounts[0]['id']]
            writers = sorted({entry['username'] for entry in gitlab.writes()})
            expect(len(accounts) == 1 and accounts[0]['username'] == 'mobb'
                   and accounts[0]['provisioned_by_group_id'] and memberships == ['30 in payments/api'],
                   f'{name}: the service account and its membership are not as declared')
            expect(writers == ['alice'], f'{name}: written with a token that is not alice\'s: {writers}')
            say(f'    {name}: service account mobb of group payments (no seat, no sign-in), member of '
                f'payments/api\n    as Developer (30); created by alice\'s token, an Owner\'s, not an administrator\'s.')

    def secrets(self):
        values = list(self.mobb.secrets())
        for gitlab in list(self.gitlab.values()) + self.added:
            values += gitlab.secrets()
        return values

    # -- the story -------------------------------------------------------------------------
    def run(self):
        self.start()

        heading('1. First run: each server gets a token, and Mobb gets it')
        say('Nothing exists yet: the role creates each token (on gitlab-onprem, first the service account\n'
            'and its membership), stores it in Mobb (which validates it, through the broker for\n'
            'gitlab-onprem), and checks that Mobb connects.')
        code, _lines = self.playbook('rotate')
        states, mobb_writes = self.servers_say()
        expect(code == 0, 'the first run failed')
        for name, state in states.items():
            expect(state['connected'] and state['active'] == [state['used']], f'{name}: Mobb does not use the new token')
        expect(mobb_writes == len(self.hosts), 'Mobb was not written once per server')
        first = {name: state['used'] for name, state in states.items()}
        self.show_service_accounts()

        heading('2. The daily run: nothing to do, nothing written')
        say('Every token has 30 days left and Mobb connects: reads only, nothing written.')
        code, _lines = self.playbook('rotate')
        states, mobb_writes = self.servers_say()
        expect(code == 0, 'the daily run failed')
        expect(all(not state['writes'] for state in states.values()) and mobb_writes == 0,
               'the daily run wrote something')

        heading(f'3. {CLOCK_DAYS} days later: every token has 6 days left (threshold: 7)')
        self.hub.advance_clock(CLOCK_DAYS)
        self.mobb.advance_clock(CLOCK_DAYS)
        say(f'  The GitLab servers\' and Mobb\'s clocks moved {CLOCK_DAYS} days.')

        heading('4. The run that rotates: new token, Mobb switched, old token revoked')
        say('While it runs, the demo asks Mobb every 50 ms whether it can reach each server.')
        with ConnectionWatch(self) as watch:
            code, _lines = self.playbook('rotate')
        states, mobb_writes = self.servers_say()
        say(f'  Mobb connection checks during the run: {watch.checks}, failed: {watch.failures}')
        expect(code == 0, 'the rotation failed')
        expect(watch.checks > 0 and watch.failures == 0, 'Mobb lost its connection during the rotation')
        for name, state in states.items():
            expect(state['active'] == [state['used']] and state['used'] != first[name],
                   f'{name}: not rotated, or Mobb does not use the new token')
            expect(state['writes'] == ['POST', 'DELETE'], f'{name}: expected one create and one revoke')

        heading('5. The check: a report for the whole fleet')
        reports = os.path.join(self.output_dir, 'reports')
        code, _lines = self.playbook('check', '-e', f'mobb_scm_report_dir={reports}')
        expect(code == 0, 'the check found problems')
        say(f'  {os.path.relpath(reports, ROOT)}/gitlab-token-report.md:')
        with open(os.path.join(reports, 'gitlab-token-report.md'), encoding='utf-8') as handle:
            for line in handle.read().splitlines():
                say('    ' + line)

        heading('6. A GitLab server added in Mobb: the next run finds it, no inventory edited')
        added = self.add_in_mobb()
        say(f'  In Mobb, Integrations -> GitLab Server: {added.url} with a token of alice\'s ("entered-in-mobb").')
        say(f'  The inventory plugin lists every GitLab server Mobb holds ({PLUGIN_INVENTORY}):')
        completed, output, _log = self.command(['ansible-inventory', '-i', PLUGIN_INVENTORY, '--graph'], 'inventory')
        expect(completed.returncode == 0, 'ansible-inventory failed')
        graph = [line for line in completed.stdout.splitlines() if line.strip()]
        for line in graph:
            say('    ' + line)
        listed = {line.strip(' |-') for line in graph if '--127.0.0.1:' in line}
        expect(len(listed) == len(self.hosts) + 1, 'the plugin does not list every server Mobb holds')
        code, lines = self.playbook('rotate', inventory=(PLUGIN_INVENTORY, 'mobb_gitlab_servers'))
        expect(code == 0, 'the run with the plugin\'s inventory failed')
        summary = lines[0].split(' - ', 1)[1] if lines else ''
        expect(summary.startswith(f'{len(self.hosts) + 1} token(s) on {len(self.hosts) + 1} host(s): ')
               and sorted(summary.split(': ', 1)[1].split(', ')) == ['created: 1', f'none: {len(self.hosts)}'],
               'the next run did not keep the new server\'s token and leave the others alone')
        connected, used = self.mobb_uses(added)
        active = [t['id'] for t in added.tokens() if t['name'] == 'mobb-broker' and t['active']]
        say(f'  {added.url}: Mobb connects with token {used}, the new mobb-broker token {active}.')
        expect(connected and active == [used], 'Mobb does not use the new server\'s new token')

        heading('Secrets')
        secrets = self.secrets()
        leaked = [path for path in files_under(self.output_dir) if contains_any(path, secrets)]
        leaked += ['playbook output' for output in self.outputs if any(s in output for s in secrets)]
        expect(secrets, 'the servers report no secrets')
        expect(not leaked, f'secrets appear in: {leaked}')
        say(f'  None of the {len(secrets)} tokens and keys the servers issued appears in the output of the\n'
            f'  playbooks or in the files under {os.path.relpath(self.output_dir, ROOT)}.')


class ConnectionWatch:
    """Polls Mobb's connection check for every server while a playbook runs."""

    def __init__(self, demo, interval=0.05):
        self.demo = demo
        self.interval = interval
        self.checks = self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            for gitlab in self.demo.gitlab.values():
                answer = self.demo.mobb.graphql(CHECK_QUERY, {'url': gitlab.url}, api_key=self.demo.api_key).json()
                self.checks += 1
                if (answer.get('data') or {}).get('checkScmConnectionStatus') != {'status': 'OK'}:
                    self.failures += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)


def report_lines(output):
    """The lines the role's report task printed (its debug msg), from a playbook's output."""
    start = output.rfind('TASK [mobb.scm.gitlab_token_rotation : Show the report]')
    if start < 0:
        return []
    arrow = output.find('=> ', start)
    document, _end = json.JSONDecoder().raw_decode(output[arrow + 3:])
    return document.get('msg', [])


def files_under(folder):
    for directory, _dirs, files in os.walk(folder):
        for name in files:
            yield os.path.join(directory, name)


def contains_any(path, secrets):
    with open(path, 'rb') as handle:
        content = handle.read()
    return any(secret.encode() in content for secret in secrets)


def main(make_demo=Demo, output_name='demo', description=__doc__):
    """Run one demo story (``make_demo``, a Demo) with its logs under .cache/<output_name>."""
    parser = argparse.ArgumentParser(description=description.split('\n', 1)[0])
    parser.add_argument('--output-dir', default=os.path.join(ROOT, '.cache', output_name),
                        help='where the logs and reports go (emptied first)')
    parser.add_argument('--verbose', action='store_true', help="also print each playbook's whole output")
    options = parser.parse_args()
    shutil.rmtree(options.output_dir, ignore_errors=True)
    os.makedirs(options.output_dir)
    demo = make_demo(options.output_dir, options.verbose)
    try:
        demo.run()
    except DemoError as error:
        say(f'\nDEMO FAILED: {error}')
        return 1
    finally:
        heading('Stopping the servers')
        demo.stop()
    say('Done.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
