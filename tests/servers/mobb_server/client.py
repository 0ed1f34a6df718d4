"""Python client for the local Mobb server's control API, and a launcher for it.

``start_mobb()`` runs ``python -m mobb_server`` in a subprocess and returns a
``MobbServer`` bound to it; ``MobbServer(url)`` binds to a server started elsewhere.
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


class MobbServerError(RuntimeError):
    """The control API refused a request (its answer says why) or the server did not start."""


class MobbServer:
    def __init__(self, url, process=None):
        self.url = url.rstrip('/')
        self.graphql_url = f'{self.url}/v1/graphql'
        # The REST form of the connection check (its path is this server's choice).
        self.rest_check_url = f'{self.url}/api/rest/check-scm-connection-status'
        self.process = process
        self.http = requests.Session()

    # -- control API ---------------------------------------------------------------------
    def _call(self, method, path, body=None):
        response = self.http.request(method, f'{self.url}/_test/{path}', json=body, timeout=30)
        if response.status_code >= 400:
            try:
                reason = response.json()['error']
            except (ValueError, KeyError, TypeError):
                reason = response.text
            raise MobbServerError(f'{method} /_test/{path}: {response.status_code} {reason}')
        return response.json()

    def seed(self, **lists):
        """Add ``organizations``, ``users``, ``scm_configs`` (and ``settings``); see README.

        Returns the same lists with ids, each user with its ``api_key``.
        """
        return self._call('POST', 'seed', lists)

    def set_broker(self, real_domain, up):
        return self._call('POST', 'broker', {'real_domain': real_domain, 'up': up})

    def settings(self, **changes):
        """Change settings (``return_tokens``, ``check_failure``, ``require_api_scope``,
        ``scm_timeout``); with no arguments, read them."""
        return self._call('POST', 'settings', changes) if changes else self._call('GET', 'settings')

    def fault(self, kind, count=1, status=None, seconds=None, operation=None, **answer):
        """Give the next ``count`` GraphQL requests (optionally only those of ``operation``)
        a fault: ``status`` (HTTP ``status``, default 502, with a proxy's HTML page),
        ``html200`` (a proxy's "Bad Gateway" page with HTTP 200), ``delay`` (``seconds``,
        then the request is served), ``drop`` (connection closed without an answer),
        ``internal_error`` (Hasura's INTERNAL_ERROR, before Mobb sees the request),
        ``internal_error_after`` (the request IS served, a mutation applied, then Hasura's
        INTERNAL_ERROR is the answer: an action handler that failed after writing), ``answer``
        (HTTP 200 with the JSON ``body=...``, whatever it is)."""
        body = {'kind': kind, 'count': count}
        for name, value in (('status', status), ('seconds', seconds), ('operation', operation)):
            if value is not None:
                body[name] = value
        body.update(answer)
        return self._call('POST', 'faults', body)

    def faults(self):
        return self._call('GET', 'faults')

    def clear_faults(self):
        return self._call('DELETE', 'faults')

    def requests(self):
        """The request log: ``seq``, ``operation``, ``operation_type``, ``status``, ``user``,
        ``fault``, ``error_code``, ``result``, ``scm_checks``, ``request_id``, ``response_bytes``
        (the answer body's length, None when dropped); no secret."""
        return self._call('GET', 'requests')

    def clear_requests(self):
        return self._call('DELETE', 'requests')

    def writes(self):
        """Every logged mutation, faulted ones included (their ``fault`` says so): the
        requests that may have changed Mobb's state, and the attempts a client made."""
        return [entry for entry in self.requests() if entry['operation_type'] == 'mutation']

    def secrets(self):
        """Every API key and SCM token this server issued or received since the last reset."""
        return self._call('GET', 'secrets')

    def scm_configs(self):
        """Stored SCM configs with ``token_sha256`` instead of the token."""
        return self._call('GET', 'scm_configs')

    def clock(self):
        return self._call('GET', 'clock')['now']

    def advance_clock(self, days):
        return self._call('POST', 'clock', {'advance_days': days})['now']

    def set_clock(self, now):
        return self._call('POST', 'clock', {'now': now})['now']

    def reset(self):
        """Back to an empty server: no organizations, users, configs, faults or log."""
        return self._call('POST', 'reset')

    # -- GraphQL, as a client would send it ------------------------------------------------------
    def graphql(self, query, variables=None, api_key=None, operation_name=None, timeout=30):
        """POST a GraphQL document with ``requests``; the ``requests.Response``."""
        body = {'query': query, 'variables': variables or {}}
        if operation_name:
            body['operationName'] = operation_name
        headers = {'x-mobb-key': api_key} if api_key is not None else {}
        return requests.post(self.graphql_url, json=body, headers=headers, timeout=timeout)

    def rest_check(self, scm_url=None, api_key=None, timeout=30, method='GET'):
        """The REST connection check with ``requests``; the ``requests.Response``."""
        params = {'scmUrl': scm_url} if scm_url is not None else {}
        headers = {'x-mobb-key': api_key} if api_key is not None else {}
        return requests.request(method, self.rest_check_url, params=params, headers=headers, timeout=timeout)

    # -- process -------------------------------------------------------------------------
    def stop(self):
        """Stop a server started by ``start_mobb`` (SIGTERM, then wait)."""
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.stop()


def start_mobb(ca_path=None, host='127.0.0.1', port=0, seed=None, timeout=20, stderr=None):
    """Start ``python -m mobb_server`` and return a ``MobbServer`` once it is ready.

    ``seed`` is a seed document (dict) loaded at start; ``stderr`` where the server's
    standard error goes (default: inherited).
    """
    with tempfile.TemporaryDirectory(prefix='mobb-server-') as scratch:
        ready_file = os.path.join(scratch, 'ready.json')
        command = [sys.executable, '-m', 'mobb_server', '--host', host, '--port', str(port),
                   '--ready-file', ready_file]
        if ca_path:
            command += ['--ca-path', ca_path]
        if seed is not None:
            seed_file = os.path.join(scratch, 'seed.json')
            with open(seed_file, 'w', encoding='utf-8') as handle:
                json.dump(seed, handle)
            command += ['--seed', seed_file]
        environment = dict(os.environ)
        environment['PYTHONPATH'] = os.pathsep.join(
            [SERVERS_DIR] + [p for p in environment.get('PYTHONPATH', '').split(os.pathsep) if p])
        process = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready_file):
            if process.poll() is not None:
                raise MobbServerError(f'mobb_server exited with status {process.returncode} before it was ready')
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise MobbServerError(f'mobb_server was not ready within {timeout}s')
            time.sleep(0.02)
        with open(ready_file, encoding='utf-8') as handle:
            ready = json.load(handle)
    return MobbServer(ready['url'], process=process)
