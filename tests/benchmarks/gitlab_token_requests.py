"""GitLab requests and wall time per token-module operation, from the local GitLab's request log.

    .venv/bin/python tests/benchmarks/gitlab_token_requests.py [--repeat N]

Each operation runs as one ansible-playbook task against a fresh local GitLab instance
seeded for it; the table shows the requests the module made (writes in brackets) and the
median wall time of the whole ansible-playbook run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'servers'))

from gitlab_server.client import start_hub  # noqa: E402  pylint: disable=wrong-import-position

PERSONAL = 'mobb.scm.gitlab_personal_access_token'
PROJECT = 'mobb.scm.gitlab_project_access_token'
BROKER = {'user': 'mobb-broker', 'name': 'mobb'}
APP = {'project': 'acme/app', 'name': 'mobb'}


def pat(**extra):
    return [dict({'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb'}, **extra)]


def project_token(**extra):
    return [dict({'kind': 'project', 'project': 'acme/app', 'name': 'mobb', 'access_level': 30}, **extra)]


# (label, module, arguments, tokens to seed, use the seeded token as api_token)
OPERATIONS = [
    ('personal: no change', PERSONAL, BROKER, pat(expires_in_days=60), False),
    ('personal: create', PERSONAL, BROKER, [], False),
    ('personal: rotate', PERSONAL, dict(BROKER, rotation_method='rotate'), pat(expires_in_days=3), False),
    ('personal: create_new', PERSONAL, BROKER, pat(expires_in_days=3), False),
    ('personal: replace (scopes)', PERSONAL, dict(BROKER, rotation_method='rotate'), pat(scopes=['api']), False),
    ('personal: revoke', PERSONAL, dict(BROKER, state='absent'), pat(), False),
    ('personal: self_rotate no change', PERSONAL, {'name': 'mobb', 'rotation_method': 'self_rotate'},
     pat(expires_in_days=60), True),
    ('personal: self_rotate', PERSONAL, {'name': 'mobb', 'rotation_method': 'self_rotate'},
     pat(expires_in_days=3), True),
    ('project: no change', PROJECT, APP, project_token(expires_in_days=60), False),
    ('project: create', PROJECT, APP, [], False),
    ('project: rotate', PROJECT, dict(APP, rotation_method='rotate'), project_token(expires_in_days=3), False),
    ('project: create_new', PROJECT, APP, project_token(expires_in_days=3), False),
    ('project: replace (role)', PROJECT, dict(APP, access_level='maintainer', rotation_method='rotate'),
     project_token(), False),
    ('project: revoke', PROJECT, dict(APP, state='absent'), project_token(), False),
]


def run_once(hub, module, arguments, tokens, self_token, workdir):
    instance = hub.new_instance()
    try:
        seeded = instance.seed(users=[{'username': 'mobb-broker'}], projects=[{'path': 'acme/app'}],
                               tokens=tokens)['tokens']
        playbook = os.path.join(workdir, 'playbook.yml')
        with open(playbook, 'w', encoding='utf-8') as handle:
            yaml.safe_dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
                {'name': 'operation', module: dict(arguments, api_url=instance.url), 'no_log': True}]}], handle)
        environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'),
                           GITLAB_TOKEN=seeded[0]['token'] if self_token else instance.admin_token)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
                   f'localhost ansible_connection=local ansible_python_interpreter={sys.executable},', playbook]
        started = time.perf_counter()
        completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f'{module} {arguments} failed:\n{completed.stdout[-2000:]}')
        logged = instance.requests()
        return len(logged), len([entry for entry in logged if entry['method'] not in ('GET', 'HEAD')]), elapsed
    finally:
        hub.remove_instance(instance)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3, help='runs per operation (median time)')
    options = parser.parse_args()
    hub = start_hub()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            print(f'{"operation":34} {"requests":>10} {"median s":>9}')
            for label, module, arguments, tokens, self_token in OPERATIONS:
                runs = [run_once(hub, module, arguments, tokens, self_token, workdir) for _attempt in range(options.repeat)]
                counts = {(total, writes) for total, writes, _elapsed in runs}
                total, writes = counts.pop() if len(counts) == 1 else ('varies', '?')
                print(f'{label:34} {f"{total} ({writes})":>10} {statistics.median(r[2] for r in runs):9.2f}')
    finally:
        hub.stop()


if __name__ == '__main__':
    main()
