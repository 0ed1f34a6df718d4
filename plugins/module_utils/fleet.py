# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation of a whole fleet of GitLab servers in one process, each server kept on its own.

``FleetRun`` keeps every token of many servers (Ansible hosts) with the one protocol of
module_utils/rotation.py. Each server is kept by one thread, its tokens one after the other,
over one GitLab client (one HTTP session) per server and credential; ``concurrency`` servers
at a time. Threads, because python-gitlab and requests spend a rotation waiting on the network
(with the GIL released) and a thread costs no fork, no copy of the controller and no pickling of
results: the worker process per host and task is what this replaces. A slow or hung server
holds only its own thread, for its own timeout; its GitLab's 429 and Retry-After are honoured
by python-gitlab in that thread, the only one that talks to that server; an error of one server,
or of one token, is that token's outcome and nobody else's.

The first Mobb read of every token is shared (``MobbBatches``): the connection checks of
BATCH_SIZE servers of one Mobb user in one request, and that user's ``me`` (which lists all its
integrations) once for the whole fleet, instead of one request per token that lists them all each
time: Mobb's answers grow with the fleet, not with its square. The ``me`` a token decides on may
be some seconds older than its GitLab read, as a single run's read may be older than an
overlapping run's store; the protocol never revokes on it, only on Mobb's answer after this run's
store. Everything after that read stays each token's own, as in the per-token action: the store,
the proof that Mobb holds this run's token before any revoke, and the reads after a failure.
"""

from __future__ import annotations

import concurrent.futures
import copy
import threading
from urllib.parse import urlsplit

from ansible_collections.mobb.scm.plugins.module_utils.mobb import MobbError, normalize_scm_url
from ansible_collections.mobb.scm.plugins.module_utils.rotation import Rotation
from ansible_collections.mobb.scm.plugins.module_utils.rotation_report import token_record
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    ARGUMENT_SPEC,
    GITLAB_NAMES,
    MOBB_NAMES,
    Settings,
    connections,
)
from ansible_collections.mobb.scm.plugins.module_utils.transport import one_line

# Servers per Mobb request of the shared first read: small enough that one answer stays small
# and that a batch is read shortly before its tokens are kept, large enough that a fleet of a
# thousand servers asks Mobb twenty times, not a thousand.
BATCH_SIZE = 50
SECRET_OPTIONS = tuple(name for name, option in ARGUMENT_SPEC.items() if option.get('no_log'))
MOBB_ACCOUNT_OPTIONS = tuple(sorted(MOBB_NAMES)) + ('mobb_rest_url',)
CONNECTION_OPTIONS = tuple(sorted(GITLAB_NAMES)) + MOBB_ACCOUNT_OPTIONS


class FleetToken:
    """One token of a server: its arguments validated against ARGUMENT_SPEC (``params``), or
    ``refused``, why they cannot be (``label`` then names it as well as it can)."""

    def __init__(self, params=None, refused=None, label='-'):
        self.params = params
        self.refused = refused
        self.label = label
        self.first_status = None


class _Account:
    """One Mobb user's share of the first reads: its ``me`` (every integration and stored token of
    the user), read once, by the first of its batches to ask Mobb, for the whole fleet, and
    indexed once, so that each token's answer holds only its server's integrations and broker
    hosts (mobb.MobbHolding then looks among those, not among the whole fleet's)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.me = None
        self._configs = {}
        self._brokers = {}

    def keep(self, me):
        self.me = me
        for config in me.get('scmConfigs') or []:
            try:
                url = normalize_scm_url((config or {}).get('scmUrl'))
            except MobbError:
                continue
            self._configs.setdefault(url, []).append(config)
        for membership in me.get('userOrganizationsAndUserOrganizationRoles') or []:
            for broker in ((membership or {}).get('organization') or {}).get('brokerHosts') or []:
                if broker:
                    self._brokers.setdefault((broker.get('realDomain') or '').strip().lower(), []).append(broker)

    def me_for(self, url):
        """``me`` as it concerns the server at ``url``: its integrations and its broker hosts."""
        parts = urlsplit(normalize_scm_url(url))
        brokers = [broker for name in sorted({parts.hostname.lower(), parts.netloc.lower()})
                   for broker in self._brokers.get(name, [])]
        return dict(self.me, scmConfigs=self._configs.get(normalize_scm_url(url), []),
                    userOrganizationsAndUserOrganizationRoles=[{'organization': {'brokerHosts': brokers}}])


class _Batch:
    """Up to BATCH_SIZE SCM URLs of one Mobb user, their connection checks asked in one request by
    the first of their tokens to read Mobb (with the user's ``me`` when no batch read it yet); the
    others take their part of that answer."""

    def __init__(self, account):
        self.account = account
        self.urls = []
        self._lock = threading.Lock()
        self._asked = False
        self._answer = None
        self._error = None

    def first_status(self, url):
        """rotation_read.ServerReader's ``first_status`` for the token of ``url``."""
        def answer(client):
            with self._lock:
                if not self._asked:
                    self._asked = True
                    try:
                        self._answer = self._ask(client)
                    except MobbError as error:
                        self._error = error
            if self._error is not None:
                # Each token reports the one failed read as its own, as if it had asked.
                raise copy.copy(self._error)
            status = (self._answer or {}).get(url)
            if status is not None:
                client.adopt(status)
            return status
        return answer

    def _ask(self, client):
        account = self.account
        answer = None
        with account.lock:
            first = account.me is None
            if first:
                answer = client.connection_statuses(self.urls)
                if answer:
                    account.keep(next(iter(answer.values()))['me'])
        if not first:
            answer = client.connection_statuses(self.urls, me=account.me)
        if not answer:
            return answer
        return {url: dict(status, me=account.me_for(url)) for url, status in answer.items()}


class MobbBatches:
    """Puts every token whose Mobb read can be shared into a batch of its Mobb user (the same
    API, key and TLS settings; not through Mobb's REST check, which takes one URL), in the
    order the tokens are kept, and gives it its ``first_status``."""

    def __init__(self, tokens, size=BATCH_SIZE):
        accounts = {}
        open_batches = {}
        for token, settings in tokens:
            params = token.params
            if params.get('mobb_rest_url'):
                continue
            key = tuple(repr(params.get(name)) for name in MOBB_ACCOUNT_OPTIONS)
            batch = open_batches.get(key)
            if batch is None or (settings.scm_url not in batch.urls and len(batch.urls) >= size):
                batch = open_batches[key] = _Batch(accounts.setdefault(key, _Account()))
            if settings.scm_url not in batch.urls:
                batch.urls.append(settings.scm_url)
            token.first_status = batch.first_status(settings.scm_url)


class FleetRun:
    """Keeps the tokens of ``servers``, [(host, [FleetToken, ...]), ...], ``concurrency`` servers
    at a time, their first Mobb reads shared by ``batch_size`` servers; ``run()`` returns
    {host: {results, diff, warnings}} for every host, whatever failed: ``results`` are the role's
    records (rotation_report.token_record), ``diff`` the tokens' diffs when ``diff`` is set."""

    def __init__(self, servers, check_mode=False, diff=False, concurrency=10, batch_size=BATCH_SIZE):
        self.servers = list(servers)
        self.check_mode = check_mode
        self.diff = diff
        self.concurrency = max(1, concurrency)
        shared = []
        for _host, tokens in self.servers:
            for token in tokens:
                if token.params is None:
                    continue
                try:
                    settings = Settings(token.params)
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # arguments no validation gives: keep_server reports what they raise
                if not settings.problems:
                    shared.append((token, settings))
        MobbBatches(shared, batch_size)

    def run(self):
        if not self.servers:
            return {}
        workers = min(self.concurrency, len(self.servers))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix='mobb-fleet') as pool:
            futures = [(host, pool.submit(self.keep_server, host, tokens)) for host, tokens in self.servers]
            return {host: future.result() for host, future in futures}

    @staticmethod
    def stopped(hosts, error):
        """{host: {results, diff, warnings}} for ``hosts`` when the fleet run itself failed: one
        failed record each, saying so."""
        msg = ('The fleet run stopped on an unexpected error (%s: %s) before it gave this server a result. The next '
               'run reads GitLab and Mobb again and goes on from what they hold.' % (type(error).__name__,
                                                                                     one_line(error)))
        return {host: dict(results=[_failed_record(host, '-', msg, outcome='unexpected_error')], diff=[], warnings=[])
                for host in hosts}

    @staticmethod
    def refused(hosts, problem):
        """{host: {results, diff, warnings}} for ``hosts`` when the run cannot start (``problem``),
        before any request."""
        msg = '%s. Nothing was changed.' % problem
        return {host: dict(results=[_failed_record(host, '-', msg)], diff=[], warnings=[]) for host in hosts}

    def keep_server(self, host, tokens):
        """Keep one server's tokens in turn; never raises: a token that fails is a failed record."""
        records, diffs, warnings = [], [], []
        clients = {}

        def connect(params, gitlab_url, warn):
            # One GitLab client (one HTTP session) and one Mobb client per credential of this server.
            key = tuple(repr(params.get(name)) for name in CONNECTION_OPTIONS) + (gitlab_url,)
            if key not in clients:
                clients[key] = connections(params, gitlab_url, warn)
            return clients[key]

        for token in tokens:
            if token.refused is not None:
                records.append(_failed_record(host, token.label, token.refused))
                continue
            try:
                rotation = Rotation.from_params(token.params, check_mode=self.check_mode, warn=warnings.append,
                                                connect=connect, first_status=token.first_status)
                outcome = rotation.run()
                records.append(token_record(rotation.result(outcome), host))
                if self.diff and rotation.decision is not None:
                    diffs.append(rotation.diff())
            # Isolation: whatever one token raises ends that token only, never the fleet.
            except Exception as error:  # pylint: disable=broad-exception-caught
                secrets = [token.params.get(name) for name in SECRET_OPTIONS]
                records.append(_failed_record(host, token.label, (
                    'The fleet run stopped keeping this token on an unexpected error (%s: %s). The next run reads '
                    'GitLab and Mobb again and goes on from what they hold.'
                    % (type(error).__name__, one_line(error, [secret for secret in secrets if secret]))),
                    outcome='unexpected_error'))
        return dict(results=records, diff=diffs, warnings=warnings)


def _failed_record(host, label, msg, outcome='invalid_settings'):
    """The record of a token that was not kept: refused before any request, or stopped."""
    record = token_record(dict(failed=True, msg=msg), host)
    record.update(label=label, outcome=outcome)
    return record
