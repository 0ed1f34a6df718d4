"""Python client for the local GitLab server's control APIs (hub ``/_hub/``, instance ``/_test/``).

    hub = start_hub()
    gl = hub.new_instance()
    gl.seed(users=[{'username': 'alice'}], projects=[{'path': 'team/app'}])
    ...
    hub.stop()
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import requests

SERVERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 30.0
CONTROL_TIMEOUT = 30.0


class ControlError(RuntimeError):
    """A control call the server refused; the message is the server's."""


def _check(response):
    if response.status_code >= 400:
        try:
            detail = response.json().get('error', response.text)
        except ValueError:
            detail = response.text
        raise ControlError(f'{response.request.method} {response.url}: {response.status_code} {detail}')
    return response.json() if response.content else None


class GitLabInstance:
    """One local GitLab: its URL and admin token, and the test controls on its ``/_test/`` routes."""

    def __init__(self, document, ca_path=None, session=None):
        self.name = document['name']
        self.url = document['url']
        self.admin_token = document['admin_token']
        self.admin_username = document['admin_username']
        self.ca_path = ca_path if self.url.startswith('https:') else None
        self._session = session or requests.Session()

    def __repr__(self):
        return f'GitLabInstance({self.name!r}, {self.url!r})'

    def _call(self, method, path, body=None):
        response = self._session.request(
            method, f'{self.url}/_test/{path}', json=body, timeout=CONTROL_TIMEOUT,
            verify=self.ca_path or True)
        return _check(response)

    def seed(self, **lists):
        """Add ``users``, ``groups``, ``projects``, ``service_accounts``, ``members``, ``tokens``;
        returns them with ids (service accounts also with ``username`` and ``email``, tokens with
        their ``token`` secret and ``user_id``)."""
        return self._call('POST', 'seed', lists)

    def advance_clock(self, days):
        return self._call('POST', 'clock', {'advance_days': days})['now']

    def set_clock(self, iso):
        return self._call('POST', 'clock', {'now': iso})['now']

    def now(self):
        return self._call('GET', 'clock')['now']

    def settings(self, **kw):
        """Change instance settings (``max_lifetime_days``, ``require_expiry``, ``version``, ``tier``,
        ``licensed_seats``, ``service_access_tokens_expiration_enforced``, ``project_service_accounts``,
        ``allow_top_level_group_owners_to_create_service_accounts``, ...); returns all."""
        return self._call('POST', 'settings', kw) if kw else self._call('GET', 'settings')

    def fault(self, kind, count=1, method=None, path=None, status=None, seconds=None, retry_after=None):
        """Make the next ``count`` matching GitLab requests fail: ``status``, ``html200``, ``delay``,
        ``drop`` or ``rate_limit``. ``path`` is a regex searched in the raw request path."""
        body = {'kind': kind, 'count': count, 'method': method, 'path': path, 'status': status,
                'seconds': seconds, 'retry_after': retry_after}
        return self._call('POST', 'faults', {k: v for k, v in body.items() if v is not None})

    def faults(self):
        """The faults still pending (a fault leaves the list when a request takes it)."""
        return self._call('GET', 'faults')

    def clear_faults(self):
        self._call('DELETE', 'faults')

    def requests(self):
        """Logged GitLab requests: seq, method, path, query, status, token_id, username, fault, time."""
        return self._call('GET', 'requests')

    def clear_requests(self):
        self._call('DELETE', 'requests')

    def writes(self):
        """Logged requests that may change something (method other than GET and HEAD)."""
        return [r for r in self.requests() if r['method'] not in ('GET', 'HEAD')]

    def hook_deliveries(self):
        """Every webhook delivery: hook_id, url, event_uuid, status (null when none came back),
        error, payload and the headers sent (``X-Gitlab-Token`` shown as ``[hook token]``)."""
        return self._call('GET', 'hook_deliveries')

    def clear_hook_deliveries(self):
        self._call('DELETE', 'hook_deliveries')

    def run_expiry_worker(self):
        """Run GitLab's daily expiry worker for today (no interval is sent twice); returns the
        deliveries it made."""
        return self._call('POST', 'hooks/run_expiry_worker')

    def secrets(self):
        """Every token value this instance has issued, to prove none leaked."""
        return self._call('GET', 'secrets')

    def tokens(self):
        """Every token record (no secrets)."""
        return self._call('GET', 'tokens')

    def users(self):
        """Every user record: id, username, name, email, user_type, admin, bot, external,
        provisioned_by_group_id, provisioned_by_project_id."""
        return self._call('GET', 'users')

    def members(self):
        """Every direct membership: user_id, username, source_type (project|group), source_id,
        source_path, access_level, expires_at."""
        return self._call('GET', 'members')

    def close(self):
        """Release this client's pooled connections."""
        self._session.close()

    def reset(self):
        """Back to a fresh instance; the admin token changes."""
        document = self._call('POST', 'reset')
        self.admin_token = document['admin_token']
        return self


class GitLabHub:
    """A running hub process and its control port."""

    def __init__(self, document, process=None, state_dir=None):
        self.control_url = document['control_url']
        self.ca_path = document['ca_path']
        self.process = process
        self._state_dir = state_dir
        self._session = requests.Session()
        self.started = [self._instance(d) for d in document.get('instances', [])]

    def _instance(self, document):
        return GitLabInstance(document, ca_path=self.ca_path)

    def _call(self, method, path, body=None):
        response = self._session.request(method, f'{self.control_url}/_hub/{path}', json=body,
                                         timeout=CONTROL_TIMEOUT)
        return _check(response)

    def new_instance(self, tls=False):
        return self.new_instances(1, tls=tls)[0]

    def new_instances(self, count, tls=False):
        return [self._instance(d) for d in self._call('POST', 'instances', {'count': count, 'tls': tls})]

    def instances(self):
        return [self._instance(d) for d in self._call('GET', 'instances')]

    def remove_instance(self, instance):
        self._call('DELETE', f'instances/{getattr(instance, "name", instance)}')

    def advance_clock(self, days):
        return self._call('POST', 'clock', {'advance_days': days})

    def stop(self):
        """Stop the hub process (SIGTERM, then kill after a grace period)."""
        self._session.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._state_dir is not None:
            self._state_dir.cleanup()
            self._state_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def start_hub(tls=False, instances=0, seed=None, host='127.0.0.1', timeout=START_TIMEOUT):
    """Launch ``python -m gitlab_server`` as a subprocess and wait until it is ready."""
    state_dir = tempfile.TemporaryDirectory(prefix='gitlab-hub-')
    ready_file = os.path.join(state_dir.name, 'ready.json')
    command = [sys.executable, '-m', 'gitlab_server', '--host', host, '--instances', str(instances),
               '--state-dir', state_dir.name, '--ready-file', ready_file]
    if tls:
        command.append('--tls')
    if seed is not None:
        seed_path = os.path.join(state_dir.name, 'seed.json')
        with open(seed_path, 'w', encoding='utf-8') as handle:
            json.dump(seed, handle)
        command += ['--seed', seed_path]
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [SERVERS_DIR, env.get('PYTHONPATH')]))
    # The server's stderr goes to a file: a pipe nobody drains could fill up and block it.
    error_path = os.path.join(state_dir.name, 'stderr.log')
    with open(error_path, 'wb') as error_file:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=error_file)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready_file):
        if process.poll() is not None:
            with open(error_path, encoding='utf-8', errors='replace') as handle:
                error = handle.read()
            state_dir.cleanup()
            raise RuntimeError(f'gitlab_server exited with {process.returncode}: {error.strip()}')
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            state_dir.cleanup()
            raise RuntimeError(f'gitlab_server was not ready within {timeout} s')
        time.sleep(0.02)
    with open(ready_file, encoding='utf-8') as handle:
        document = json.load(handle)
    return GitLabHub(document, process=process, state_dir=state_dir)
