"""Benchmark: mobb.scm.rotate beside the same job built from community.general and Ansible's floor.

Starts one local GitLab hub serving 2 x N instances and one local Mobb. The first N
instances are kept by ``mobb.scm.rotate`` (project access tokens), the other N by
``community_general_rotate.yml`` (community.general.gitlab_project_access_token plus
ansible.builtin.uri). Each instance starts with a project token that Mobb holds. First
``ansible_floor.yml`` runs one ansible.builtin.debug task on each of the first N hosts
(same inventory, same forks), three times, the median counting: what ansible-playbook
itself costs for that fleet. Then both
jobs run as a no-op, then (after the servers' clock moves 24 days, past the 7-day
threshold) as a rotation, in this one invocation against the same servers. For each run
it prints the wall time, the GitLab and Mobb requests per token (from the servers'
request logs) and the peak memory of the ansible-playbook process tree, summed as RSS
(shared pages counted once per process) and as PSS (the real memory); then the ratios
community.general / mobb.scm and each job's wall time / the floor's, and the issue's
targets with whether each is met. The last line of stdout is one JSON object of the main
figures, for scripts, among them the Mobb requests of mobb.scm's no-op run and the bytes of
Mobb's answers to them (``mobb_requests_noop``, ``mobb_answer_bytes_noop``). Above
``--cg-max`` tokens (default 200) community.general's runs are skipped: its figures are null
and the table says so, which leaves N=1000 feasible for mobb.scm and the floor. It checks
that every run did its job (exit code, tokens rotated, Mobb connected), and exits non-zero
otherwise; a missed target is only reported. Nothing here is a timed test.

community.general comes from the ``ansible`` 12.x wheel (downloaded with pip, only its
community/general folder extracted under .cache/bench/), so the project's venv stays clean.

    python tests/benchmarks/bench_rotation.py -n 3          # what `make bench-smoke` runs
    python tests/benchmarks/bench_rotation.py -n 50 --forks 20
    python tests/benchmarks/bench_rotation.py -n 1000 --forks 20   # community.general skipped
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))

from gitlab_server.client import start_hub  # noqa: E402  (needs the path above)
from mobb_server.client import start_mobb  # noqa: E402
from mobb_server.scm import USER_AGENT as SCM_CHECK_USER_AGENT  # noqa: E402

BENCH_DIR = os.path.join(ROOT, '.cache', 'bench')
COMMUNITY_COLLECTIONS = os.path.join(BENCH_DIR, 'collections')
OUR_COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
ANSIBLE_WHEEL = 'ansible>=12,<13'
PROJECT = 'team/app'
CLOCK_DAYS = 24
FLOOR_RUNS = 3
FLOOR = 'Ansible floor'
# The targets that depend on the fleet's size: peak PSS (MiB) and community.general's
# no-op wall over mobb.scm's.
PSS_TARGETS = {200: 512, 1000: 1024}
CG_TARGETS = {50: 8, 200: 10}
# community.general runs up to this many tokens by default (--cg-max).
CG_MAX = 200
CHECK_QUERY = 'query check($url: String!) { checkScmConnectionStatus(scmUrl: $url) { status } }'


def community_general():
    """Extract community.general from the ansible 12.x wheel once; return its collections path."""
    marker = os.path.join(COMMUNITY_COLLECTIONS, 'ansible_collections', 'community', 'general', 'MANIFEST.json')
    if os.path.exists(marker):
        return COMMUNITY_COLLECTIONS
    with tempfile.TemporaryDirectory(prefix='ansible-wheel-') as download:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--disable-pip-version-check',
                        '--no-deps', '--only-binary', ':all:', '-d', download, ANSIBLE_WHEEL], check=True)
        wheel = glob.glob(os.path.join(download, 'ansible-*.whl'))[0]
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist()
                       if name.startswith('ansible_collections/community/general/')]
            archive.extractall(COMMUNITY_COLLECTIONS, members)
    return COMMUNITY_COLLECTIONS


def mobb_totals(log):
    """A run's Mobb requests (every request the local Mobb answered, from its request log) and
    the bytes of its answers' bodies (``response_bytes``; a dropped request has none)."""
    return {'mobb_requests': len(log),
            'mobb_answer_bytes': sum(entry['response_bytes'] or 0 for entry in log)}


class PeakMemory:
    """Samples the memory of a process and all its descendants (Linux /proc) and keeps the peaks.

    Two sums over the tree: RSS counts a page shared by several processes (the forks share
    most of ansible-playbook's) once per process, so it overstates what the tree holds; PSS
    splits each shared page among the processes that map it, so it sums to the real memory.
    Both come from one read of /proc/PID/smaps_rollup per process.
    """

    def __init__(self, pid, interval=0.05):
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _children():
        parents = {}
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                try:
                    with open(f'/proc/{entry}/stat', encoding='utf-8') as handle:
                        fields = handle.read().rsplit(')', 1)[1].split()
                    parents.setdefault(int(fields[1]), []).append(int(entry))
                except (OSError, IndexError):
                    continue
        return parents

    def _tree(self):
        parents = self._children()
        pending, tree = [self.pid], []
        while pending:
            pid = pending.pop()
            tree.append(pid)
            pending.extend(parents.get(pid, []))
        return tree

    @staticmethod
    def _rss_and_pss(pid):
        """One process's RSS and PSS in bytes; zero for a process that has exited since the listing."""
        sizes = {'Rss': 0, 'Pss': 0}
        try:
            with open(f'/proc/{pid}/smaps_rollup', encoding='utf-8') as handle:
                lines = handle.readlines()
        except OSError:  # reaped (ENOENT) or a zombie (ESRCH): it holds no memory any more
            return 0, 0
        # After a header line of the address range, lines like 'Pss:   36769 kB'.
        for line in lines:
            name, _colon, value = line.partition(':')
            if name in sizes:
                sizes[name] = int(value.split()[0]) * 1024
        return sizes['Rss'], sizes['Pss']

    def _sample(self):
        while not self._stop.is_set():
            sizes = [self._rss_and_pss(pid) for pid in self._tree()]
            self.peak_rss = max(self.peak_rss, sum(rss for rss, _pss in sizes))
            self.peak_pss = max(self.peak_pss, sum(pss for _rss, pss in sizes))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)


class Bench:
    def __init__(self, count, forks, workdir, cg_max=CG_MAX):
        self.count = count
        self.forks = forks
        self.workdir = workdir
        # Above cg_max tokens community.general's runs are skipped (at 200 they already take minutes).
        self.cg_max = cg_max
        self.jobs = ('mobb.scm',) if count > cg_max else ('mobb.scm', 'community.general')
        self.rows = []
        self.logs = {}
        self.leaks = {}

    def start(self):
        self.hub = start_hub(instances=len(self.jobs) * self.count)
        self.mobb = start_mobb(ca_path=self.hub.ca_path, stderr=subprocess.DEVNULL)
        self.api_key = self.mobb.seed(
            organizations=[{'name': 'acme'}],
            users=[{'email': 'bench@acme.example', 'organization': 'acme', 'role': 'Admin'}])['users'][0]['api_key']
        self.instances = self.hub.started
        configs = []
        for gitlab in self.instances:
            token = gitlab.seed(projects=[{'path': PROJECT}], tokens=[
                {'kind': 'project', 'project': PROJECT, 'name': 'mobb-broker', 'scopes': ['api'],
                 'access_level': 30, 'expires_at': self._in_days(gitlab, 30)}])['tokens'][0]
            configs.append({'user': 'bench@acme.example', 'scm_url': gitlab.url, 'token': token['token']})
        self.mobb.seed(scm_configs=configs)
        self.ours, self.theirs = self.instances[:self.count], self.instances[self.count:]
        self.inventory = self._inventory()

    @staticmethod
    def _in_days(gitlab, days):
        import datetime
        today = datetime.date.fromisoformat(gitlab.now()[:10])
        return (today + datetime.timedelta(days=days)).isoformat()

    def stop(self):
        self.mobb.stop()
        self.hub.stop()

    def _inventory(self):
        """Two groups of hosts; admin tokens only as lookups of environment variables."""
        def token(index):
            return f"{{{{ lookup('ansible.builtin.env', 'BENCH_GITLAB_TOKEN_{index}') }}}}"

        ours = {f'ours{i}': {'gitlab_token_rotation_gitlab_url': g.url,
                             'gitlab_token_rotation_gitlab_api_token': token(i)}
                for i, g in enumerate(self.ours)}
        theirs = {f'theirs{i}': {'bench_gitlab_url': g.url, 'bench_gitlab_token': token(self.count + i)}
                  for i, g in enumerate(self.theirs)}
        document = {
            'ours': {'hosts': ours, 'vars': {
                'gitlab_token_rotation_token_type': 'project', 'gitlab_token_rotation_project': PROJECT,
                'gitlab_token_rotation_verify_delay': 1}},
            'theirs': {'hosts': theirs, 'vars': {'bench_project': PROJECT, 'bench_mobb_url': self.mobb.graphql_url}},
            'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                            'ansible_python_interpreter': sys.executable}}},
        }
        path = os.path.join(self.workdir, 'inventory.yml')
        with open(path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(document, handle)
        return path

    def environment(self):
        environment = dict(os.environ)
        environment.update({
            'ANSIBLE_COLLECTIONS_PATH': os.pathsep.join([OUR_COLLECTIONS, community_general()]),
            'ANSIBLE_HOME': os.path.join(self.workdir, 'ansible-home'),
            'ANSIBLE_LOCAL_TEMP': os.path.join(self.workdir, 'tmp'),
            'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_RETRY_FILES_ENABLED': 'False',
            'MOBB_API_URL': self.mobb.graphql_url, 'MOBB_API_KEY': self.api_key,
        })
        for index, gitlab in enumerate(self.instances):
            environment[f'BENCH_GITLAB_TOKEN_{index}'] = gitlab.admin_token
        return environment

    def _play(self, name, phase, playbook, extra_vars):
        """Run one ansible-playbook over the inventory; fail unless it exits 0.

        Returns its row (wall time and peak memory of its process tree) and its log's path.
        """
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), playbook,
                   '-i', self.inventory, '-f', str(self.forks), '-e', extra_vars]
        log_path = os.path.join(self.workdir, f'{name}-{phase}.log'.replace(' ', '-'))
        started = time.monotonic()
        with open(log_path, 'w', encoding='utf-8') as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.environment(), stdout=log,
                                       stderr=subprocess.STDOUT)
            with PeakMemory(process.pid) as memory:
                code = process.wait()
        wall = time.monotonic() - started
        if code != 0:
            raise SystemExit(f'{name} {phase} failed with exit code {code}; see {log_path}')
        row = {'job': name, 'phase': phase, 'exit_code': code, 'wall_seconds': round(wall, 2),
               'peak_rss_mib': round(memory.peak_rss / 2 ** 20, 1),
               'peak_pss_mib': round(memory.peak_pss / 2 ** 20, 1)}
        return row, log_path

    def run_floor(self, runs=FLOOR_RUNS):
        """Ansible's floor: one debug task on each of the N hosts the mobb.scm job keeps.

        It divides every ratio and takes about a second, so one unlucky run on a shared
        machine would move them all: the run with the median wall time counts.
        """
        playbook = os.path.join(HERE, 'ansible_floor.yml')
        rows = sorted((self._play(FLOOR, 'debug', playbook, 'bench_hosts=ours')[0] for _run in range(runs)),
                      key=lambda row: row['wall_seconds'])
        self.rows.append(rows[len(rows) // 2])

    def run(self, job, phase):
        if job == 'mobb.scm':
            playbook, instances, extra_vars = 'mobb.scm.rotate', self.ours, 'mobb_scm_hosts=ours'
        else:
            playbook = os.path.join(HERE, 'community_general_rotate.yml')
            instances, extra_vars = self.theirs, 'bench_hosts=theirs'
        for gitlab in instances:
            gitlab.clear_requests()
        self.mobb.clear_requests()
        row, log_path = self._play(job, phase, playbook, extra_vars)
        self.logs.setdefault(job, []).append(log_path)
        log = [entry for g in instances for entry in g.requests()]
        mobb_log = self.mobb.requests()
        # Mobb's checks of the kept token name themselves; every other request is the job's
        # (with the admin token, or, for mobb.scm, with the token Mobb holds, to identify it).
        by_job = [entry for entry in log if entry['user_agent'] != SCM_CHECK_USER_AGENT]
        row.update({'gitlab_requests_per_token': round(len(by_job) / self.count, 2),
                    'gitlab_writes_per_token': round(sum(e['method'] != 'GET' for e in by_job) / self.count, 2),
                    'mobb_requests_per_token': round(len(mobb_log) / self.count, 2),
                    'mobb_checks_in_gitlab_per_token': round((len(log) - len(by_job)) / self.count, 2)})
        row.update(mobb_totals(mobb_log))
        self.rows.append(row)
        return instances

    def row(self, job, phase):
        """The run's row; None for a run that was skipped (community.general above --cg-max)."""
        return next((row for row in self.rows if row['job'] == job and row['phase'] == phase), None)

    def skipped(self):
        return f'skipped (N > {self.cg_max})'

    def verify(self, instances, rotated):
        """Each instance: one active token (a new one after a rotation) that Mobb connects with."""
        for gitlab in instances:
            active = [t for t in gitlab.tokens() if t['name'] == 'mobb-broker' and t['active']]
            fresh = [t for t in active if t['id'] != 2]  # id 2: the seeded token (1 is the admin's)
            answer = self.mobb.graphql(CHECK_QUERY, {'url': gitlab.url}, api_key=self.api_key).json()
            connected = (answer.get('data') or {}).get('checkScmConnectionStatus') == {'status': 'OK'}
            if len(active) != 1 or bool(fresh) != rotated or not connected:
                raise SystemExit(f'{gitlab.url}: active tokens {active}, Mobb connected: {connected}')

    def search_logs(self):
        """Count the secret values the servers issued that appear in each job's output."""
        secrets = list(self.mobb.secrets())
        for gitlab in self.instances:
            secrets += gitlab.secrets()
        for job, paths in self.logs.items():
            text = ''.join(open(path, encoding='utf-8').read() for path in paths)
            self.leaks[job] = sum(1 for secret in set(secrets) if secret in text)
        if self.leaks['mobb.scm']:
            raise SystemExit(f'{self.leaks["mobb.scm"]} secret value(s) appear in the output of mobb.scm.rotate')

    def main(self):
        self.start()
        try:
            self.run_floor()
            for job in self.jobs:
                self.verify(self.run(job, 'no-op'), rotated=False)
            self.hub.advance_clock(CLOCK_DAYS)
            self.mobb.advance_clock(CLOCK_DAYS)
            for job in self.jobs:
                self.verify(self.run(job, 'rotation'), rotated=True)
            self.search_logs()
        finally:
            self.stop()


def print_table(bench):
    columns = [('job', 'job', '<18'), ('phase', 'run', '<9'), ('wall_seconds', 'wall s', '>8'),
               ('gitlab_requests_per_token', 'GitLab req/token', '>16'),
               ('gitlab_writes_per_token', 'of them writes', '>14'),
               ('mobb_requests_per_token', 'Mobb req/token', '>14'),
               ('peak_rss_mib', 'peak RSS MiB', '>12'), ('peak_pss_mib', 'peak PSS MiB', '>12')]
    print(f'N={bench.count} tokens per job, forks={bench.forks}. GitLab requests are the job\'s own '
          '(Mobb\'s token checks against GitLab are left out). Memory is summed over the '
          'ansible-playbook process tree: RSS counts pages the forks share once per process, '
          'PSS is the real memory.')
    print('  '.join(format(title, spec) for _key, title, spec in columns))
    for row in bench.rows:
        # The floor makes no requests: '-' in those columns.
        print('  '.join(format(row.get(key, '-'), spec) for key, _title, spec in columns))
    for phase in ('no-op', 'rotation'):
        ours, theirs = bench.row('mobb.scm', phase), bench.row('community.general', phase)
        if theirs is None:
            print('  '.join([format('community.general', '<18'), format(phase, '<9'), bench.skipped()]))
            print('  '.join([format('ratio cg/mobb.scm', '<18'), format(phase, '<9'), bench.skipped()]))
            continue
        # No ratio where mobb.scm's figure is zero (writes on the no-op run): '-' says so.
        ratios = [format(theirs[key] / ours[key], spec.replace('<', '>') + '.2f') if ours[key]
                  else format('-', spec.replace('<', '>'))
                  for key, _title, spec in columns[2:]]
        print('  '.join([format('ratio cg/mobb.scm', '<18'), format(phase, '<9')] + ratios))
    floor = bench.row(FLOOR, 'debug')['wall_seconds']
    print(format('ratio wall/floor', '<18') + '  ' + '; '.join(
        f'{job} ' + (', '.join(f'{phase} {bench.row(job, phase)["wall_seconds"] / floor:.2f}'
                               for phase in ('no-op', 'rotation')) if job in bench.jobs else bench.skipped())
        for job in ('mobb.scm', 'community.general')))
    print('Secret values in the output: ' + ', '.join(f'{job} {count}' for job, count in bench.leaks.items()))


def summary(bench):
    """The figures scripts read (the last line of stdout): every wall time (community.general's
    null when skipped), and mobb.scm's peak memory over its two runs, its requests per token on
    the no-op run, and that run's Mobb requests and bytes of Mobb's answers in all."""
    mobb_runs = [bench.row('mobb.scm', phase) for phase in ('no-op', 'rotation')]

    def cg_wall(phase):
        row = bench.row('community.general', phase)
        return None if row is None else row['wall_seconds']

    return {
        'n': bench.count, 'forks': bench.forks,
        'floor_s': bench.row(FLOOR, 'debug')['wall_seconds'],
        'mobb_noop_s': mobb_runs[0]['wall_seconds'],
        'cg_noop_s': cg_wall('no-op'),
        'mobb_rotation_s': mobb_runs[1]['wall_seconds'],
        'cg_rotation_s': cg_wall('rotation'),
        'pss_peak_mib': max(run['peak_pss_mib'] for run in mobb_runs),
        'rss_peak_mib': max(run['peak_rss_mib'] for run in mobb_runs),
        'gitlab_req_per_token_noop': mobb_runs[0]['gitlab_requests_per_token'],
        'mobb_req_per_token_noop': mobb_runs[0]['mobb_requests_per_token'],
        'mobb_requests_noop': mobb_runs[0]['mobb_requests'],
        'mobb_answer_bytes_noop': mobb_runs[0]['mobb_answer_bytes'],
    }


def targets(summary_figures):
    """The issue's targets for mobb.scm.rotate: (what, target, measured, met).

    ``met`` is None where the issue states no target for this N (community.general's ratio:
    N=50 and 200; peak PSS: N=200 and 1000), and ``measured`` too where community.general was
    skipped. Wall per host is compared with N=50's in the README, across invocations.
    """
    n = summary_figures['n']
    noop_over_floor = summary_figures['mobb_noop_s'] / summary_figures['floor_s']
    cg_over_mobb = (None if summary_figures['cg_noop_s'] is None
                    else summary_figures['cg_noop_s'] / summary_figures['mobb_noop_s'])
    cg_target = CG_TARGETS.get(n)
    rotation_over_noop = summary_figures['mobb_rotation_s'] / summary_figures['mobb_noop_s']
    mobb_requests = summary_figures['mobb_requests_noop']
    pss_peak = summary_figures['pss_peak_mib']
    pss_target = PSS_TARGETS.get(n)
    return [
        ('mobb.scm / floor wall, no-op', '<= 1.5', noop_over_floor, noop_over_floor <= 1.5),
        ('community.general / mobb.scm wall, no-op', '>= %s' % (cg_target or '-'), cg_over_mobb,
         None if cg_over_mobb is None or cg_target is None else cg_over_mobb >= cg_target),
        ('mobb.scm rotation / no-op wall', '<= 1.5', rotation_over_noop, rotation_over_noop <= 1.5),
        ('Mobb requests per no-op run', '<= %g' % (1 + n / 50), mobb_requests, mobb_requests <= 1 + n / 50),
        ('Mobb answer bytes per token, no-op', 'linear', summary_figures['mobb_answer_bytes_noop'] / n, None),
        ('peak PSS of the process tree, MiB', '< %s' % (pss_target or '-'), pss_peak,
         None if pss_target is None else pss_peak < pss_target),
    ]


def print_targets(summary_figures):
    print('Targets (informational: a missed target does not fail the benchmark):')
    for what, target, measured, met in targets(summary_figures):
        if measured is None:
            print(f'  {what:<44} {target:>6} {"-":>9}  not measured (community.general skipped)')
            continue
        verdict = {True: 'met', False: 'missed', None: f'not stated for N={summary_figures["n"]}'}[met]
        if target == 'linear':
            verdict = 'compare across N'
        print(f'  {what:<44} {target:>6} {measured:>9.2f}  {verdict}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('-n', '--count', type=int, default=3, help='tokens (GitLab instances) per job')
    parser.add_argument('--forks', type=int, default=10)
    parser.add_argument('--cg-max', type=int, default=CG_MAX, metavar='N',
                        help=f'skip community.general\'s runs above N tokens (default {CG_MAX})')
    parser.add_argument('--json', help='also write every run\'s figures to this file')
    options = parser.parse_args()
    community_general()
    workdir = os.path.join(BENCH_DIR, f'run-{options.count}')
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    bench = Bench(options.count, options.forks, workdir, cg_max=options.cg_max)
    bench.main()
    print_table(bench)
    summary_figures = summary(bench)
    print_targets(summary_figures)
    if options.json:
        with open(options.json, 'w', encoding='utf-8') as handle:
            json.dump({'count': bench.count, 'forks': bench.forks, 'runs': bench.rows,
                       'secrets_in_output': bench.leaks}, handle, indent=2)
    print(json.dumps(summary_figures))
    return 0


if __name__ == '__main__':
    sys.exit(main())
