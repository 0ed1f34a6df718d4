"""A fleet kept in one process (plugins/module_utils/fleet.py), over real HTTP to local GitLab
instances and the local Mobb: concurrency, the shared Mobb read, and isolation (a hung server, a
429 storm, one server's failure, a token that raises). Nothing of the collection is mocked; every
run's records are searched for the values the servers issued."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mobb.scm.plugins.module_utils.fleet import FleetRun, FleetToken
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import ARGUMENT_SPEC

ADMIN = 'admin@acme.example'
SERVERS = 4


class Fleet:
    """SERVERS GitLab instances, each one host keeping project team/app's token in one Mobb organization."""

    def __init__(self, gitlabs, mobb):
        self.gitlabs = gitlabs
        self.mobb = mobb
        seeded = mobb.seed(
            organizations=[{'name': 'acme', 'broker_hosts': [
                {'real_domain': urllib.parse.urlsplit(gitlab.url).netloc, 'virtual_domain': 'vd-%d' % index}
                for index, gitlab in enumerate(gitlabs)]}],
            users=[{'email': ADMIN, 'organization': 'acme', 'role': 'Admin'}])
        self.api_key = seeded['users'][0]['api_key']
        for gitlab in gitlabs:
            gitlab.seed(groups=[{'path': 'team'}], projects=[{'path': 'team/app'}])

    def params(self, index, **options):
        base = dict(gitlab_url=self.gitlabs[index].url, gitlab_api_token=self.gitlabs[index].admin_token,
                    mobb_api_url=self.mobb.graphql_url, mobb_api_key=self.api_key, token_type='project',
                    project='team/app', verify_retries=2, verify_delay=0, gitlab_retries=0, gitlab_timeout=5)
        base.update(options)
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(base)
        assert not validation.error_messages, validation.error_messages
        return validation.validated_parameters

    def servers(self, tokens=None, **options):
        """[(host, [FleetToken])]: host gl<index>, one token each unless ``tokens`` {index: [options]}."""
        tokens = tokens or {}
        return [('gl%d' % index, [FleetToken(params=self.params(index, **dict(options, **extra)))
                                  for extra in tokens.get(index, [{}])])
                for index in range(len(self.gitlabs))]

    def run(self, concurrency=SERVERS, servers=None, **options):
        """{host: [outcome of each token]} after one fleet run, its records proven free of secrets."""
        kept = FleetRun(servers or self.servers(**options), concurrency=concurrency).run()
        text = json.dumps(kept)
        secrets = list(self.mobb.secrets()) + [s for gitlab in self.gitlabs for s in gitlab.secrets()]
        assert secrets and not [secret for secret in secrets if secret in text], 'a secret leaked into a record'
        self.records = {host: result['results'] for host, result in kept.items()}
        return {host: [record['outcome'] for record in records] for host, records in self.records.items()}

    def mobb_reads(self):
        return [entry for entry in self.mobb.requests() if entry['operation'] == 'checkScmConnectionStatus']

    def clear_logs(self):
        self.mobb.clear_requests()
        for gitlab in self.gitlabs:
            gitlab.clear_requests()


@pytest.fixture
def fleet(gitlab_hub, mobb):
    gitlabs = gitlab_hub.new_instances(SERVERS)
    yield Fleet(gitlabs, mobb)
    for gitlab in gitlabs:
        gitlab.close()
        gitlab_hub.remove_instance(gitlab)


@pytest.fixture
def kept(fleet):
    assert set(map(tuple, fleet.run().values())) == {('created',)}
    fleet.clear_logs()
    return fleet


def held_while_others_went_on(fleet, run, held=0):
    """Run ``run`` in a thread while a delay fault holds server ``held``'s token list; (whether every
    other server's token list was answered while that request was still unanswered, run's result)."""
    finished = {}
    thread = threading.Thread(target=lambda: finished.update(outcomes=run()))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # Read the held request first: if it is still unanswered after the others were, they went on.
            waiting = [entry['status'] is None for entry in fleet.gitlabs[held].requests() if entry['fault'] == 'delay']
            answered = [any('access_tokens' in entry['path'] and entry['status'] for entry in gitlab.requests())
                        for index, gitlab in enumerate(fleet.gitlabs) if index != held]
            if waiting and all(answered):
                return waiting[0], finished
            time.sleep(0.05)
        return False, finished
    finally:
        thread.join(60)


def test_a_fleet_is_read_from_mobb_once_and_kept_with_one_result_per_server(kept):
    assert kept.run() == {'gl%d' % index: ['none'] for index in range(SERVERS)}
    # One Mobb request for the four servers' first read, instead of one per token.
    [read] = kept.mobb_reads()
    assert read['status'] == 200 and kept.mobb.writes() == []
    assert all(gitlab.writes() == [] for gitlab in kept.gitlabs)
    assert [record['host'] for records in kept.records.values() for record in records] == [
        'gl%d' % index for index in range(SERVERS)]


def test_mobb_is_read_in_batches(kept):
    # Batches of 3 servers: the 4 servers' first reads are 2 Mobb requests, and Mobb's me comes once.
    outcomes = FleetRun(kept.servers(), concurrency=SERVERS, batch_size=3).run()
    assert {host: [r['outcome'] for r in result['results']] for host, result in outcomes.items()} == {
        'gl%d' % index: ['none'] for index in range(SERVERS)}
    first, second = kept.mobb_reads()
    # The Mobb user's integrations come once, with the first batch: the second asks only its checks.
    assert first['response_bytes'] > 2 * second['response_bytes']


def test_when_mobb_fails_a_batch_each_server_is_asked_on_its_own(kept):
    kept.mobb.set_broker(urllib.parse.urlsplit(kept.gitlabs[1].url).netloc, False)
    outcomes = kept.run()
    # Mobb fails the whole batch for one disconnected server; each then asks for itself, and only
    # gl1 acts: its new token is refused by Mobb (the broker is down) and rolled back.
    assert outcomes == {'gl0': ['none'], 'gl1': ['store_refused'], 'gl2': ['none'], 'gl3': ['none']}
    assert len(kept.mobb_reads()) == 1 + SERVERS + 1
    assert 'Mobb cannot reach' in ' '.join(kept.records['gl1'][0]['reasons'])


def test_a_mobb_that_does_not_answer_the_batch_fails_each_servers_read_and_changes_nothing(kept):
    kept.mobb.fault('status', count=10, status=500, operation='checkScmConnectionStatus')
    outcomes = kept.run()
    assert set(map(tuple, outcomes.values())) == {('read_failed',)}
    assert all('Could not ask Mobb about' in records[0]['msg'] for records in kept.records.values())
    assert all(gitlab.writes() == [] for gitlab in kept.gitlabs) and kept.mobb.writes() == []


def test_servers_are_kept_at_once_and_a_hung_one_holds_only_its_own_token(kept):
    # gl0 answers its token list only after its client gave up (gitlab_timeout 1, no retry).
    kept.gitlabs[0].fault('delay', seconds=4, method='GET', path='access_tokens')
    servers = kept.servers()
    servers[0] = ('gl0', [FleetToken(params=kept.params(0, gitlab_timeout=1))])
    went_on, finished = held_while_others_went_on(kept, lambda: kept.run(servers=servers))
    assert went_on, 'the other servers waited for the hung one'
    assert finished['outcomes'] == {'gl0': ['read_failed'], 'gl1': ['none'], 'gl2': ['none'], 'gl3': ['none']}
    assert 'Nothing was changed' in kept.records['gl0'][0]['msg']


def test_a_429_storm_on_one_server_is_waited_out_by_that_server_alone(kept):
    kept.gitlabs[2].fault('rate_limit', count=3, method='GET', path='access_tokens', retry_after=1)
    servers = kept.servers(tokens={2: [{}, {'token_name': 'mobb-second'}]}, gitlab_retries=3)
    outcomes = kept.run(servers=servers)
    # Both of gl2's tokens were kept after GitLab's Retry-After; no other server saw a 429.
    assert outcomes == {'gl0': ['none'], 'gl1': ['none'], 'gl2': ['none', 'created'], 'gl3': ['none']}
    limited = [entry for entry in kept.gitlabs[2].requests() if entry['fault'] == 'rate_limit']
    assert len(limited) == 3 and all(entry['status'] == 429 for entry in limited)
    assert not [entry for index in (0, 1, 3) for entry in kept.gitlabs[index].requests() if entry['fault']]


def test_one_servers_failure_changes_nothing_for_another(fleet):
    fleet.gitlabs[3].fault('status', count=1, method='POST', path='access_tokens', status=403)
    outcomes = fleet.run(concurrency=2)
    assert outcomes == {'gl0': ['created'], 'gl1': ['created'], 'gl2': ['created'], 'gl3': ['issue_refused']}
    assert 'GitLab did not issue a new token' in fleet.records['gl3'][0]['msg']
    held = {config['scm_url'] for config in fleet.mobb.scm_configs() if config['is_token_available']}
    assert held == {gitlab.url for gitlab in fleet.gitlabs[:3]}


def test_a_token_that_raises_fails_alone_and_its_servers_other_tokens_are_kept(kept):
    servers = kept.servers()
    broken = dict(kept.params(1, token_name='mobb-broken'))
    del broken['verify_retries']  # arguments no validation would give: the Rotation raises KeyError
    servers[1] = ('gl1', [FleetToken(params=broken, label='project:team/app/mobb-broken')] + servers[1][1])
    outcomes = kept.run(servers=servers)
    assert outcomes['gl1'] == ['unexpected_error', 'none']
    assert kept.records['gl1'][0]['label'] == 'project:team/app/mobb-broken'
    assert 'The fleet run stopped keeping this token on an unexpected error (KeyError' in kept.records['gl1'][0]['msg']
    assert outcomes['gl0'] == outcomes['gl2'] == outcomes['gl3'] == ['none']


def test_a_refused_token_is_recorded_with_its_message_and_sends_nothing(kept):
    servers = kept.servers()
    servers[2] = ('gl2', [FleetToken(refused='Validation of arguments failed: gitlab_token_rotation_mode must be '
                                             'one of rotate, check', label='-')])
    outcomes = kept.run(servers=servers)
    assert outcomes['gl2'] == ['invalid_settings'] and kept.records['gl2'][0]['failed'] is True
    assert kept.gitlabs[2].requests() == []
