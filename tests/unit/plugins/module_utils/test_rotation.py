"""The rotation protocol (plugins/module_utils/rotation.py), in-process, over real HTTP.

Each test builds a Rotation exactly as the action does (Rotation.from_params), against a
fresh local GitLab instance and the local Mobb, injects faults through their control APIs,
and checks the named outcome, its message, and what GitLab and Mobb hold afterwards. No
function of the collection is mocked. Every test also proves that no value either server
issued appears in the result (``World.run``). The README's failure table maps onto the
tests named ``test_outcome_*``.
"""
from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.parse

import gitlab as python_gitlab
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import USER_AGENT
from ansible_collections.mobb.scm.plugins.module_utils.rotation import Rotation
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import ARGUMENT_SPEC, Settings

ADMIN = 'admin@acme.example'
CHECK_QUERY = 'query check($url: String!) { checkScmConnectionStatus(scmUrl: $url) { status } }'
STORE_MUTATION = ('mutation store($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", '
                  'url: $url, token: $token) { __typename } }')
PROJECT = {'token_type': 'project', 'project': 'team/app'}
PERSONAL = {'token_type': 'personal', 'user': 'alice'}


def validated(options):
    result = ArgumentSpecValidator(ARGUMENT_SPEC).validate(options)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


class World:
    """One GitLab instance kept for one Mobb organization, and helpers to read both."""

    def __init__(self, gitlab, mobb):
        self.gitlab = gitlab
        self.mobb = mobb
        seeded = mobb.seed(
            organizations=[{'name': 'acme', 'broker_hosts': [
                {'real_domain': urllib.parse.urlsplit(gitlab.url).netloc, 'virtual_domain': 'vd-1'}]}],
            users=[{'email': ADMIN, 'organization': 'acme', 'role': 'Admin'},
                   {'email': 'member@acme.example', 'organization': 'acme', 'role': 'Member'}])
        self.api_key = seeded['users'][0]['api_key']
        self.member_key = seeded['users'][1]['api_key']
        gitlab.seed(users=[{'username': 'alice'}], groups=[{'path': 'team'}], projects=[{'path': 'team/app'}],
                    members=[{'username': 'alice', 'group': 'team', 'access_level': 50}])

    def options(self, **options):
        base = dict(gitlab_url=self.gitlab.url, gitlab_api_token=self.gitlab.admin_token,
                    mobb_api_url=self.mobb.graphql_url, mobb_api_key=self.api_key,
                    verify_retries=2, verify_delay=0, **PROJECT)
        base.update(options)
        return validated(base)

    def rotation(self, check_mode=False, **options):
        warnings = []
        rotation = Rotation.from_params(self.options(**options), check_mode=check_mode, warn=warnings.append)
        rotation.warnings = warnings
        return rotation

    def run(self, check_mode=False, **options):
        """Run a rotation to its end; return (outcome, result), proven free of secrets."""
        rotation = self.rotation(check_mode=check_mode, **options)
        outcome = rotation.run()
        result = rotation.result(outcome)
        self.assert_no_secrets(json.dumps(result) + json.dumps(rotation.warnings) + outcome.msg)
        return outcome, result

    def assert_no_secrets(self, text):
        secrets = list(self.mobb.secrets()) + list(self.gitlab.secrets())
        assert secrets
        assert not [secret for secret in secrets if secret in text], 'a secret leaked into the result'

    def active(self, name='mobb-broker'):
        return sorted((t for t in self.gitlab.tokens() if t['name'] == name and t['active']), key=lambda t: t['id'])

    def mobb_uses(self):
        """(connected, id of the GitLab token Mobb's check presented)."""
        seen = max((entry['seq'] for entry in self.gitlab.requests()), default=0)
        answer = self.mobb.graphql(CHECK_QUERY, {'url': self.gitlab.url}, api_key=self.api_key).json()
        connected = (answer.get('data') or {}).get('checkScmConnectionStatus') == {'status': 'OK'}
        used = {entry['token_id'] for entry in self.gitlab.requests()
                if entry['seq'] > seen and entry['path'] == '/api/v4/user'}
        return connected, (used.pop() if used else None)

    def assert_invariant(self):
        """Mobb connects with a token GitLab lists as active; returns its id."""
        connected, token_id = self.mobb_uses()
        assert connected, 'Mobb holds a token it cannot use'
        assert token_id in [t['id'] for t in self.active()]
        return token_id

    def assert_converged(self):
        """One active token with the name, and Mobb connects with it."""
        active = self.active()
        assert len(active) == 1, active
        assert self.assert_invariant() == active[0]['id']
        return active[0]

    def store_in_mobb(self, token):
        answer = self.mobb.graphql(STORE_MUTATION, {'url': self.gitlab.url, 'token': token}, api_key=self.api_key)
        assert answer.json()['data']['updateScmToken']['__typename'] == 'ScmAccessTokenUpdateSuccess'

    def admin_paths(self, requests):
        """The paths of the requests made with the instance's admin token (the rotation's own)."""
        admin = next(t['id'] for t in self.gitlab.tokens() if t['name'] == 'admin')
        return [entry['path'] for entry in requests if entry['token_id'] == admin]

    def writes(self):
        return [(e['method'], e['path']) for e in self.gitlab.writes()], [e['operation'] for e in self.mobb.writes()]

    def clear_logs(self):
        self.gitlab.clear_requests()
        self.mobb.clear_requests()


@pytest.fixture
def world(gitlab, mobb):
    return World(gitlab, mobb)


@pytest.fixture
def kept(world):
    """A first run has created the project token and stored it; the logs are cleared."""
    outcome, _result = world.run()
    assert outcome.name == 'created', outcome.msg
    world.clear_logs()
    return world.active()[0]


def days_after(moment, days):
    """The ISO date ``days`` after the date of ``moment`` (an ISO date or GitLab time)."""
    return (datetime.date.fromisoformat(moment[:10]) + datetime.timedelta(days=days)).isoformat()


def near_expiry(world):
    world.gitlab.advance_clock(24)


# ---- settings ------------------------------------------------------------------------------

@pytest.mark.parametrize('options, message', [
    ({'token_type': 'project', 'project': None}, 'a project token needs its project (id or full path)'),
    ({'expires_in_days': 7, 'rotate_before_days': 7}, 'expires_in_days (7), not more than rotate_before_days (7)'),
    ({'scopes': ['read_api']}, 'scopes ["read_api"] lack "api"'),
    ({'scopes': ['api', 'read_user']}, 'GitLab does not give project tokens the "read_user" scope'),
    ({'access_level': 'reporter'}, 'access_level "reporter" is below developer'),
    ({'access_level': 35}, 'access_level "35" is not a GitLab role'),
    ({'rotation_method': 'self_rotate'}, 'self_rotate is for a personal token rotated with itself'),
    ({'scopes': ['api', 'wrtie_repository']}, "scopes: unknown scope 'wrtie_repository' for a project access token"),
    ({'gitlab_url': 'gitlab.example.com'}, 'gitlab_url must be an http(s) URL with a host'),
    ({'mobb_api_key': None}, 'api_key is not set'),
    ({'rotate_at_fraction': 1.0}, 'rotate_at_fraction must be above 0 and below 1'),
    ({'rotate_at_fraction': 0}, 'rotate_at_fraction must be above 0 and below 1'),
    ({'spread_days': -1}, 'spread_days must be 0 or more, got -1'),
    ({'spread_days': 23}, 'rotate_before_days (7) plus spread_days (23) make a threshold of 30 days'),
    ({'rotate_at_fraction': 0.1, 'spread_days': 3},
     'rotate_before_days (7) or rotate_at_fraction (0.1) plus spread_days (3) make a threshold of 30 days'),
    ({'retire_after_days': -2}, 'retire_after_days must be 0 or more, got -2'),
    ({'retire_after_days': 3, 'rotation_method': 'rotate'},
     'retire_after_days keeps the old token active after the switch, but rotation_method rotate'),
    ({'retire_after_days': 30}, 'retire_after_days (30) must be less than expires_in_days (30)'),
])
def test_outcome_invalid_settings_sends_nothing(world, options, message):
    outcome, result = world.run(**options)
    assert outcome.name == 'invalid_settings' and result['failed'] and result['action'] == 'failed'
    assert message in outcome.msg and outcome.msg.endswith('Nothing was changed.')
    assert world.gitlab.requests() == [] and world.mobb.requests() == []


@pytest.mark.parametrize('spelling', [
    lambda url: url + '/api/v4/',
    lambda url: 'HTTP://' + url.split('://')[1].upper() + '//',
    lambda url: 'Http://' + url.split('://')[1] + '/API/v4',
], ids=['api suffix', 'upper case', 'mixed case and suffix'])
def test_the_gitlab_url_is_one_spelling_for_gitlab_and_mobb(world, spelling):
    plain = world.gitlab.url
    outcome, result = world.run(gitlab_url=spelling(plain))
    assert outcome.name == 'created', outcome.msg
    assert result['gitlab_url'] == plain and result['scm_url'] == plain
    assert [c['scm_url'] for c in world.mobb.scm_configs()] == [plain]
    world.assert_converged()


@pytest.mark.parametrize('level', ['Developer', 'MAINTAINER', '40'])
def test_access_level_takes_gitlab_role_names_in_any_case(world, level):
    outcome, _result = world.run(access_level=level)
    assert outcome.name == 'created', outcome.msg
    assert world.active()[0]['access_level'] == {'developer': 30, 'maintainer': 40, '40': 40}[level.lower()]


# ---- the happy path --------------------------------------------------------------------------

def test_first_run_creates_then_a_rerun_reads_and_changes_nothing(world):
    outcome, result = world.run()
    assert outcome.name == 'created' and result['changed'] and result['revoked_token_ids'] == []
    token = world.assert_converged()
    assert result['token_id'] == token['id'] and result['new_token_fingerprint']
    world.clear_logs()

    outcome, result = world.run()
    assert outcome.name == 'none' and not result['changed'] and result['reasons'] == []
    assert result['mobb_token']['identity'] == 'managed' and result['mobb_token']['token_id'] == token['id']
    assert result['mobb_token']['fingerprint'] == result['new_token_fingerprint'] or result['new_token_fingerprint'] is None
    assert world.writes() == ([], [])
    # The no-op's cost: the list, and the identification of Mobb's token with that token
    # (beside the two requests Mobb's own check makes with it); one Mobb request.
    requests = world.gitlab.requests()
    assert world.admin_paths(requests) == ['/api/v4/projects/team%2Fapp/access_tokens']
    ours = [e for e in requests if e['user_agent'] == USER_AGENT]
    assert [e['path'] for e in ours] == ['/api/v4/projects/team%2Fapp/access_tokens',
                                         '/api/v4/personal_access_tokens/self']
    assert sorted(e['path'] for e in requests if e['token_id'] == token['id']) == [
        '/api/v4/personal_access_tokens/self', '/api/v4/personal_access_tokens/self', '/api/v4/user']
    assert [e['operation'] for e in world.mobb.requests()] == ['checkScmConnectionStatus']


def test_rotates_at_the_threshold_and_revokes_the_old_token_only_after_mobb_connects(world, kept):
    near_expiry(world)
    outcome, result = world.run()
    assert outcome.name == 'rotated', outcome.msg
    new = world.assert_converged()
    assert new['id'] != kept['id'] and result['token_id'] == new['id']
    assert result['previous_token_id'] == kept['id'] and result['revoked_token_ids'] == [kept['id']]
    assert result['reasons'] == [f'token {kept["id"]} expires on {kept["expires_at"]} (6 days left, threshold 7)']
    gitlab_writes, mobb_writes = world.writes()
    assert [method for method, _path in gitlab_writes] == ['POST', 'DELETE'] and mobb_writes == ['updateScmToken']


def test_rotate_at_fraction_renews_once_that_part_of_the_lifetime_has_passed(world, kept):
    world.gitlab.advance_clock(14)
    outcome, result = world.run(rotate_at_fraction=0.5)
    assert outcome.name == 'none' and result['days_left'] == 16, outcome.msg
    assert result['rotation_threshold_days'] == 15
    assert result['next_rotation'] == days_after(kept['created_at'], 15)
    assert world.writes() == ([], [])

    world.gitlab.advance_clock(1)
    outcome, result = world.run(rotate_at_fraction=0.5)
    assert outcome.name == 'rotated', outcome.msg
    assert result['reasons'] == [f'token {kept["id"]} expires on {kept["expires_at"]} (15 days left, threshold 15)']
    new = world.assert_converged()
    # The new token lives 30 days again: due at half of them, 15 days from now.
    assert result['token_id'] == new['id'] and result['rotation_threshold_days'] == 15
    assert result['next_rotation'] == days_after(new['created_at'], 15)


def test_rotate_before_days_stays_the_latest_point_beside_a_late_fraction(world, kept):
    outcome, result = world.run(rotate_at_fraction=0.9, rotate_before_days=7)
    assert outcome.name == 'none' and result['rotation_threshold_days'] == 7


def spread_offset(world, **options):
    return Settings(world.options(**options)).spread_offset


def test_spread_days_gives_each_token_its_own_fixed_number_of_days_early(world, kept):
    offset = spread_offset(world, spread_days=10)
    assert 0 <= offset <= 10
    _outcome, checked = world.run(check_mode=True, spread_days=10)
    outcome, result = world.run(spread_days=10)
    assert outcome.name == 'none', outcome.msg
    assert result['rotation_threshold_days'] == checked['rotation_threshold_days'] == 7 + offset
    assert result['next_rotation'] == checked['next_rotation'] == days_after(kept['expires_at'], -(7 + offset))
    # Tokens created together spread over the days: the offsets of 20 token names differ.
    offsets = {spread_offset(world, spread_days=10, token_name=f'mobb-{index}') for index in range(20)}
    assert offsets <= set(range(11)) and len(offsets) >= 5
    assert spread_offset(world, spread_days=10) == offset

    world.gitlab.advance_clock(30 - (7 + offset) - 1)
    outcome, _result = world.run(spread_days=10)
    assert outcome.name == 'none', outcome.msg
    world.gitlab.advance_clock(1)
    outcome, result = world.run(spread_days=10)
    assert outcome.name == 'rotated', outcome.msg
    assert result['reasons'] == [f'token {kept["id"]} expires on {kept["expires_at"]} '
                                 f'({7 + offset} days left, threshold {7 + offset})']
    world.assert_converged()


def test_retire_after_days_keeps_the_old_token_until_a_later_run_retires_it(world, kept):
    near_expiry(world)
    outcome, result = world.run(retire_after_days=3)
    assert outcome.name == 'rotated', outcome.msg
    new_id = result['token_id']
    retire_on = days_after(world.gitlab.now(), 3)
    assert result['revoked_token_ids'] == []
    assert result['awaiting_retirement'] == [dict(token_id=kept['id'], expires_at=kept['expires_at'],
                                                  retire_on=retire_on)]
    assert [t['id'] for t in world.active()] == [kept['id'], new_id]
    assert world.assert_invariant() == new_id
    world.clear_logs()

    # Within the window: nothing to do, and the result says what waits for when.
    world.gitlab.advance_clock(2)
    outcome, result = world.run(retire_after_days=3)
    assert outcome.name == 'none' and not result['changed'], outcome.msg
    assert [entry['token_id'] for entry in result['awaiting_retirement']] == [kept['id']]
    assert world.writes() == ([], [])

    world.gitlab.advance_clock(1)
    outcome, result = world.run(check_mode=True, retire_after_days=3)
    assert outcome.name == 'would_retire' and result['changed'] and world.writes() == ([], [])
    outcome, result = world.run(retire_after_days=3)
    assert outcome.name == 'retired' and result['revoked_token_ids'] == [kept['id']], outcome.msg
    assert result['awaiting_retirement'] == []
    assert world.assert_converged()['id'] == new_id


def test_a_run_killed_after_the_switch_leaves_the_retirement_to_a_later_run(world, kept):
    near_expiry(world)
    rotation = world.rotation(retire_after_days=2)
    steps = rotation.steps()
    assert [next(steps) for _step in range(4)] == ['read', 'plan', 'issue', 'store']
    steps.close()  # killed: Mobb holds the new token, nothing was verified or recorded
    new_id = rotation.issued['id']
    assert world.assert_invariant() == new_id and len(world.active()) == 2
    outcome, result = world.run(retire_after_days=2)
    assert outcome.name == 'none', outcome.msg
    assert [entry['token_id'] for entry in result['awaiting_retirement']] == [kept['id']]
    world.gitlab.advance_clock(2)
    outcome, result = world.run(retire_after_days=2)
    assert outcome.name == 'retired' and result['revoked_token_ids'] == [kept['id']], outcome.msg
    assert world.assert_converged()['id'] == new_id


def test_retire_after_days_needs_mobb_to_show_its_token_else_the_old_one_goes_at_once(world, kept):
    world.mobb.settings(return_tokens=False)
    near_expiry(world)
    rotation = world.rotation(retire_after_days=3)
    outcome = rotation.run()
    result = rotation.result(outcome)
    assert outcome.name == 'rotated' and result['revoked_token_ids'] == [kept['id']], outcome.msg
    assert result['awaiting_retirement'] == []
    assert any('retire_after_days needs Mobb to return the token it stores' in w for w in rotation.warnings)
    world.assert_converged()


def test_check_mode_decides_the_same_and_writes_nothing(world, kept):
    near_expiry(world)
    outcome, result = world.run(check_mode=True)
    assert outcome.name == 'would_rotate' and result['changed'] and result['check_mode']
    assert world.writes() == ([], [])
    assert [t['id'] for t in world.active()] == [kept['id']]


def test_mode_check_reports_the_expiry_of_the_token_mobb_holds(world, kept):
    outcome, result = world.run(mode='check', check_days=14)
    assert outcome.name == 'ok' and result['problems'] == []
    # Someone pastes another token into Mobb that expires in two days.
    pasted = world.gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'pasted',
                                        'expires_in_days': 2}])['tokens'][0]
    world.store_in_mobb(pasted['token'])
    world.clear_logs()
    outcome, result = world.run(mode='check', check_days=14)
    assert outcome.name == 'problem' and not result['failed']
    assert result['mobb_token']['identity'] == 'other'
    assert result['mobb_token']['token_id'] == pasted['id'] and result['mobb_token']['days_left'] == 2
    assert f"Mobb holds token {pasted['id']} ('pasted'" in ' '.join(result['problems'])
    assert 'the token Mobb holds expires on' in ' '.join(result['problems'])
    assert world.writes() == ([], [])

    outcome, result = world.run()
    assert outcome.name == 'rotated', outcome.msg
    assert world.assert_converged()['id'] == result['token_id']


def test_without_returned_tokens_the_identity_is_unproven(world, kept):
    world.mobb.settings(return_tokens=False)
    outcome, result = world.run()
    assert outcome.name == 'none'
    assert result['mobb_token']['identity'] == 'unproven' and 'unproven' in result['mobb_token']['note']
    requests = world.gitlab.requests()
    assert world.admin_paths(requests) == ['/api/v4/projects/team%2Fapp/access_tokens']
    assert [e['path'] for e in requests if e['token_id'] == kept['id']] == [
        '/api/v4/user', '/api/v4/personal_access_tokens/self']


def test_a_token_revoked_behind_the_runs_back_is_replaced(world, kept):
    # An administrator revokes it in GitLab's UI.
    python_gitlab.Gitlab(world.gitlab.url, private_token=world.gitlab.admin_token).projects.get(
        'team/app', lazy=True).access_tokens.delete(kept['id'])
    outcome, result = world.run()
    assert outcome.name == 'created', outcome.msg
    assert 'GitLab has no active token named mobb-broker' in result['reasons']
    world.assert_converged()


def test_outcome_retired_revokes_older_tokens_once_mobb_provably_holds_the_newest(world, kept):
    near_expiry(world)
    world.mobb.fault('delay', count=1, seconds=1.5, operation='updateScmToken')
    outcome, _result = world.run(mobb_timeout=1)
    assert outcome.name == 'store_unknown', outcome.msg
    time.sleep(1.6)
    assert len(world.active()) == 2
    world.clear_logs()
    outcome, result = world.run()
    assert outcome.name == 'retired' and result['revoked_token_ids'] == [kept['id']]
    assert world.writes()[1] == []
    world.assert_converged()


# ---- failures, each with what it leaves ---------------------------------------------------------

def test_outcome_read_failed_when_gitlab_refuses_the_credential(world):
    outcome, result = world.run(gitlab_api_token='glpat-not-a-token-at-all')
    assert outcome.name == 'read_failed' and result['failed']
    assert 'GitLab answered 401' in outcome.msg and 'Nothing was changed; Mobb was not asked.' in outcome.msg
    assert world.mobb.requests() == []


def test_outcome_read_failed_when_mobb_refuses_the_key(world, kept):
    outcome, _result = world.run(mobb_api_key='not-a-key')
    assert outcome.name == 'read_failed' and 'access-denied' in outcome.msg
    assert outcome.msg.endswith(f'Nothing was changed: token {kept["id"]} (expires {kept["expires_at"]}) is still '
                                'active in GitLab.')
    assert world.writes() == ([], [])


@pytest.mark.parametrize('status, name, opening', [
    (403, 'issue_refused', 'GitLab did not issue a new token ('),
    (500, 'issue_unknown', 'GitLab may have issued a new token without answering ('),
])
def test_outcome_issue_failed_changes_nothing_else(world, kept, status, name, opening):
    near_expiry(world)
    world.gitlab.fault('status', count=10, method='POST', path='access_tokens$', status=status)
    outcome, result = world.run()
    assert outcome.name == name and outcome.msg.startswith(opening)
    assert outcome.msg.endswith(f'token {kept["id"]} (expires {kept["expires_at"]}) is still active and still in '
                                'Mobb, which connects with it.')
    assert world.writes()[1] == [] and [t['id'] for t in world.active()] == [kept['id']]
    assert world.assert_invariant() == kept['id']


def test_outcome_store_refused_rolls_back(world, kept):
    near_expiry(world)
    # A definite refusal (HTTP 4xx): a GraphQL INTERNAL_ERROR would be an unknown outcome.
    world.mobb.fault('status', count=1, status=403, operation='updateScmToken')
    outcome, result = world.run()
    assert outcome.name == 'store_refused'
    assert 'Rolled back: the new token is revoked: token' in outcome.msg
    assert [t['id'] for t in world.active()] == [kept['id']]
    assert len(result['revoked_token_ids']) == 1 and result['revoked_token_ids'][0] != kept['id']
    assert world.assert_invariant() == kept['id']
    # Exactly one store was sent: a definite refusal is not retried either.
    assert world.writes()[1] == ['updateScmToken']


def test_a_member_key_is_refused_at_the_store_and_rolled_back(world, kept):
    near_expiry(world)
    outcome, _result = world.run(mobb_api_key=world.member_key)
    assert outcome.name == 'store_refused' and 'permission-error' in outcome.msg
    assert [t['id'] for t in world.active()] == [kept['id']]


def test_outcome_rollback_failed_names_the_orphan(world, kept):
    near_expiry(world)
    world.mobb.fault('status', count=1, status=403, operation='updateScmToken')
    world.gitlab.fault('html200', count=10, method='DELETE')
    outcome, _result = world.run()
    assert outcome.name == 'rollback_failed'
    assert 'Revoking the new token failed too' in outcome.msg and 'still active' in outcome.msg
    assert world.assert_invariant() == kept['id']
    world.gitlab.clear_faults()
    outcome, _result = world.run()
    assert outcome.name == 'rotated'
    world.assert_converged()


@pytest.mark.parametrize('fault', ['delay', 'drop', 'status'])
def test_outcome_store_unknown_is_neither_retried_nor_rolled_back(world, kept, fault):
    """A store whose answer was lost may still land (the delay fault lands it): the new
    token must not be revoked, and the store not sent again."""
    near_expiry(world)
    world.mobb.fault(fault, count=1, seconds=1.5 if fault == 'delay' else None, operation='updateScmToken')
    outcome, result = world.run(mobb_timeout=1)
    assert outcome.name == 'store_unknown' and result['failed']
    new_id = result['token_id']
    assert 'Mobb may hold the new token now, so nothing was revoked' in outcome.msg
    assert world.writes()[1] == ['updateScmToken']
    assert sorted(t['id'] for t in world.active()) == sorted([kept['id'], new_id])
    time.sleep(1.6)
    world.assert_invariant()
    world.mobb.clear_faults()
    outcome, _result = world.run()
    assert outcome.name in ('retired', 'rotated'), outcome.msg
    world.assert_converged()


@pytest.mark.parametrize('returned', [True, False], ids=['tokens returned', 'tokens not returned'])
def test_a_store_answered_internal_error_after_writing_is_never_rolled_back(world, kept, returned):
    """Hasura's INTERNAL_ERROR after updateScmToken's handler wrote: Mobb holds the new
    token, so revoking it would leave Mobb on a dead token. Read, never revoked."""
    world.mobb.settings(return_tokens=returned)
    near_expiry(world)
    world.mobb.fault('internal_error_after', count=1, operation='updateScmToken')
    outcome, result = world.run()
    new_id = result['token_id']
    assert new_id != kept['id'] and new_id not in result['revoked_token_ids']
    assert world.writes()[1] == ['updateScmToken']
    if returned:
        # The fingerprint proves the store landed: the rotation completes.
        assert outcome.name == 'rotated', outcome.msg
        assert result['revoked_token_ids'] == [kept['id']]
        assert world.assert_converged()['id'] == new_id
    else:
        assert outcome.name == 'store_unknown', outcome.msg
        assert f'nothing was revoked: tokens {new_id} and {kept["id"]} stay active' in outcome.msg
        assert world.assert_invariant() == new_id
        outcome, _result = world.run()
        assert not outcome.failed, outcome.msg
        world.assert_converged()


def test_a_store_answered_internal_error_before_writing_is_unknown_and_the_next_run_converges(world, kept):
    near_expiry(world)
    world.mobb.fault('internal_error', count=1, operation='updateScmToken')
    outcome, result = world.run()
    assert outcome.name == 'store_unknown', outcome.msg
    assert '(INTERNAL_ERROR: Internal Server Error): Mobb may or may not have stored the token' in outcome.msg
    assert result['revoked_token_ids'] == [] and len(world.active()) == 2
    assert world.assert_invariant() == kept['id']
    outcome, _result = world.run()
    assert not outcome.failed, outcome.msg
    world.assert_converged()


def test_a_lost_store_that_lands_during_verification_completes_the_rotation(world, kept):
    near_expiry(world)
    world.mobb.fault('delay', count=1, seconds=1.5, operation='updateScmToken')
    outcome, result = world.run(mobb_timeout=1, verify_retries=5, verify_delay=1)
    assert outcome.name == 'rotated', outcome.msg
    assert result['revoked_token_ids'] == [kept['id']]
    world.assert_converged()


def test_outcome_verify_failed_keeps_both_tokens(world, kept):
    near_expiry(world)
    # The broker goes down right after Mobb stored the new token.
    rotation = world.rotation()
    steps = rotation.steps()
    assert [next(steps) for _step in range(4)] == ['read', 'plan', 'issue', 'store']
    world.mobb.set_broker(urllib.parse.urlsplit(world.gitlab.url).netloc, False)
    assert list(steps) == []
    assert rotation.outcome.name == 'verify_failed'
    assert 'Mobb holds the new token, so nothing was revoked' in rotation.outcome.msg
    assert len(world.active()) == 2
    world.mobb.set_broker(urllib.parse.urlsplit(world.gitlab.url).netloc, True)
    outcome, _result = world.run()
    assert outcome.name == 'retired'
    world.assert_converged()


def test_outcome_retire_failed_when_a_proxy_answers_the_revoke(world, kept):
    near_expiry(world)
    world.gitlab.fault('html200', count=10, method='DELETE')
    outcome, result = world.run()
    assert outcome.name == 'retire_failed' and result['failed']
    assert f'revoking the previous token(s) {kept["id"]} failed' in outcome.msg
    assert kept['id'] not in result['revoked_token_ids']
    assert kept['id'] in [t['id'] for t in world.active()]
    world.assert_invariant()
    world.gitlab.clear_faults()
    outcome, _result = world.run()
    assert outcome.name == 'retired'
    world.assert_converged()


def test_outcome_superseded_when_an_overlapping_store_lands_after_this_runs(world, kept):
    near_expiry(world)
    first, second = world.rotation(), world.rotation()
    a, b = first.steps(), second.steps()
    # Both read and issue; A's store lands first, then B's: Mobb holds B's token.
    assert [next(a), next(a), next(b), next(b), next(a), next(b), next(a), next(b)] == [
        'read', 'plan', 'read', 'plan', 'issue', 'issue', 'store', 'store']
    assert list(a) == []
    assert first.outcome.name == 'superseded' and not first.outcome.failed
    assert first.revoked_ids == [first.issued['id']]
    assert list(b) == ['verify', 'retire'] and second.outcome.name == 'rotated'
    assert world.assert_converged()['id'] == second.issued['id']


# ---- in place ----------------------------------------------------------------------------------

def test_rotate_in_place_refuses_while_mobb_cannot_connect(world, kept):
    near_expiry(world)
    world.mobb.set_broker(urllib.parse.urlsplit(world.gitlab.url).netloc, False)
    outcome, _result = world.run(rotation_method='rotate')
    assert outcome.name == 'blocked' and 'would revoke token' in outcome.msg
    assert world.writes() == ([], [])


def test_outcome_rotate_unknown_says_the_old_token_may_be_revoked(world, kept):
    near_expiry(world)
    world.gitlab.fault('status', count=1, method='POST', path='rotate$', status=500)
    outcome, _result = world.run(rotation_method='rotate')
    assert outcome.name == 'rotate_unknown'
    assert f'If it did, token {kept["id"]} is revoked, Mobb may hold a dead token' in outcome.msg
    assert world.writes()[1] == []


def test_outcome_in_place_store_failed_says_how_to_recover(world, kept):
    near_expiry(world)
    world.mobb.fault('internal_error', count=10, operation='updateScmToken')
    outcome, result = world.run(rotation_method='rotate')
    assert outcome.name == 'in_place_store_failed'
    assert f'GitLab rotated token {kept["id"]} into {result["token_id"]}' in outcome.msg
    assert 'run again with force (gitlab_token_rotation_force=true in the role)' in outcome.msg
    # The store was tried once per verification attempt, never after Mobb held the token.
    assert world.writes()[1] == ['updateScmToken'] * 3
    world.mobb.clear_faults()
    outcome, _result = world.run(rotation_method='rotate', force=True)
    assert outcome.name == 'rotated'
    world.assert_converged()


def test_rotate_in_place(world, kept):
    near_expiry(world)
    outcome, result = world.run(rotation_method='rotate')
    assert outcome.name == 'rotated', outcome.msg
    assert result['previous_token_id'] == kept['id']
    world.assert_converged()


# ---- overlapping runs ------------------------------------------------------------------------

def interleavings(count):
    """Where B's whole run goes among A's steps (0 = before A's first), then lockstep."""
    return [('b inside a', gap) for gap in range(count + 1)] + [('a inside b', gap) for gap in range(count + 1)] + \
        [('lockstep', None)]


CREATE_NEW_STEPS = ['read', 'plan', 'issue', 'store', 'verify', 'retire']


def drive(first, second, how, gap):
    steps = {id(first): first.steps(), id(second): second.steps()}
    if how == 'lockstep':
        pending = [first, second]
        while pending:
            for rotation in list(pending):
                if next(steps[id(rotation)], None) is None:
                    pending.remove(rotation)
        return
    outer, inner = (first, second) if how == 'b inside a' else (second, first)
    for _step in range(gap):
        next(steps[id(outer)], None)
    list(steps[id(inner)])
    list(steps[id(outer)])


@pytest.mark.parametrize('returned', [True, False], ids=['tokens returned', 'tokens not returned'])
@pytest.mark.parametrize('how, gap', interleavings(len(CREATE_NEW_STEPS)))
def test_two_overlapping_runs_keep_the_invariant(world, kept, how, gap, returned):
    world.mobb.settings(return_tokens=returned)
    near_expiry(world)
    first, second = world.rotation(), world.rotation()
    drive(first, second, how, gap)
    for rotation in (first, second):
        assert rotation.outcome is not None
        world.assert_no_secrets(rotation.outcome.msg)
        # A run overtaken by the other is superseded, not failed.
        assert rotation.outcome.name != 'store_refused', rotation.outcome.msg
        assert not (returned and rotation.outcome.failed), rotation.outcome.msg
    # Mobb holds an active token that connects, whatever the interleaving.
    world.assert_invariant()
    # The next run leaves one.
    outcome, _result = world.run()
    assert not outcome.failed, outcome.msg
    world.assert_converged()


# ---- the connection check through Mobb's REST endpoint (mobb_rest_url) -----------------------

def endpoint_log(world):
    return [(entry['endpoint'], entry['operation']) for entry in world.mobb.requests()]


def test_mobb_rest_url_asks_connectivity_through_rest_and_the_stored_token_through_graphql(world, kept):
    near_expiry(world)
    outcome, result = world.run(mobb_rest_url=world.mobb.rest_check_url)
    assert outcome.name == 'rotated', outcome.msg
    assert result['connected'] is True and result['revoked_token_ids'] == [kept['id']]
    check, me = ('rest', 'checkScmConnectionStatus'), ('graphql', 'Me')
    log = endpoint_log(world)
    # Read, then store, then verify (and the check after the revoke): each connection answer
    # from REST, each stored-token reading from GraphQL right after it, the store through GraphQL.
    assert log[:3] == [check, me, ('graphql', 'updateScmToken')]
    assert len(log) >= 5 and log[3:] == [check, me] * ((len(log) - 3) // 2), log
    world.assert_converged()


def test_mobb_rest_url_verify_failed_when_rest_says_not_connected(world, kept):
    near_expiry(world)
    rotation = world.rotation(mobb_rest_url=world.mobb.rest_check_url)
    steps = rotation.steps()
    assert [next(steps) for _step in range(4)] == ['read', 'plan', 'issue', 'store']
    world.mobb.set_broker(urllib.parse.urlsplit(world.gitlab.url).netloc, False)
    world.mobb.clear_requests()
    assert list(steps) == []
    assert rotation.outcome.name == 'verify_failed'
    assert 'Mobb could not reach the repository' in rotation.outcome.msg
    assert len(world.active()) == 2
    assert {endpoint for endpoint, _operation in endpoint_log(world)[:2]} == {'rest', 'graphql'}
    assert endpoint_log(world)[0] == ('rest', 'checkScmConnectionStatus')


def test_mobb_rest_url_at_a_wrong_path_fails_the_read_and_changes_nothing(world, kept):
    near_expiry(world)
    wrong = world.mobb.url + '/api/rest/nope'
    outcome, result = world.run(mobb_rest_url=wrong)
    assert outcome.name == 'read_failed' and result['failed']
    assert f'no Mobb REST endpoint at {wrong} (HTTP 404)' in outcome.msg
    assert world.writes() == ([], [])


# ---- a service account's token (token_type service_account) ---------------------------------

BOT = 'mobb-bot'
APP_DEVELOPER = [{'project': 'team/app', 'access_level': 'developer'}]


def service_account(group='team', **options):
    """The options of a group (or, with group None, instance) service account's token."""
    return dict(dict(token_type='service_account', project=None, group=group, service_account=BOT,
                     service_account_memberships=APP_DEVELOPER), **options)


def owner_token(world):
    """A token of alice, Owner of group team and no administrator."""
    return world.gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'ops'}])['tokens'][0]['token']


def accounts(world):
    return [user for user in world.gitlab.users() if user['user_type'] == 'service_account']


def memberships(world, user_id):
    return [(m['source_type'], m['source_path'], m['access_level'])
            for m in world.gitlab.members() if m['user_id'] == user_id]


def paths_of(requests, token_value_id):
    return [(entry['method'], entry['path']) for entry in requests if entry['token_id'] == token_value_id]


def token_id_of(world, name):
    return next(t['id'] for t in world.gitlab.tokens() if t['name'] == name)


def gitlab_id(world, kind, path):
    """The id of a project or group, read with the administrator's token."""
    client = python_gitlab.Gitlab(world.gitlab.url, private_token=world.gitlab.admin_token)
    return (client.projects if kind == 'project' else client.groups).get(path).id


@pytest.fixture
def group_owner(world):
    """Alice's token, and the instance setting that lets a top-level group's Owner create its accounts."""
    world.gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    return owner_token(world)


def test_service_account_first_run_creates_the_account_its_membership_and_token_then_a_rerun_reads(world,
                                                                                                   group_owner):
    options = service_account(gitlab_api_token=group_owner, service_account_create=True, service_account_name='Mobb')
    outcome, result = world.run(**options)
    assert outcome.name == 'created', outcome.msg
    account = accounts(world)[0]
    team = python_gitlab.Gitlab(world.gitlab.url, private_token=world.gitlab.admin_token).groups.get('team')
    assert (account['username'], account['name'], account['provisioned_by_group_id']) == (BOT, 'Mobb', team.id)
    assert memberships(world, account['id']) == [('project', 'team/app', 30)]
    assert result['service_account'] == {
        'username': BOT, 'group': 'team', 'id': account['id'], 'created': True,
        'memberships_added': [{'project': 'team/app', 'access_level': 30, 'previous_access_level': None}]}
    assert result['reasons'][0] == "GitLab has no service account 'mobb-bot' of group 'team' yet " \
                                   '(service_account_create: true creates it)'
    assert result['label'] == 'service_account:team/mobb-bot/mobb-broker' and result['owner'] == 'team/mobb-bot'
    token = world.assert_converged()
    assert token['user_id'] == account['id'] and sorted(token['scopes']) == ['api', 'read_user']
    assert result['days_left'] == 30
    ops = token_id_of(world, 'ops')
    assert paths_of(world.gitlab.writes(), ops) == [
        ('POST', '/api/v4/groups/team/service_accounts'),
        ('POST', f'/api/v4/projects/{gitlab_id(world, "project", "team/app")}/members'),
        ('POST', f'/api/v4/groups/team/service_accounts/{account["id"]}/personal_access_tokens')]
    world.clear_logs()

    outcome, result = world.run(**options)
    assert outcome.name == 'none' and not result['changed'] and result['reasons'] == []
    assert result['service_account'] == {'username': BOT, 'group': 'team', 'id': account['id'], 'created': False,
                                         'memberships_added': []}
    assert world.writes() == ([], [])
    # The no-op reads the account and its tokens, never the memberships.
    assert paths_of(world.gitlab.requests(), ops) == [
        ('GET', '/api/v4/groups/team/service_accounts'),
        ('GET', f'/api/v4/groups/team/service_accounts/{account["id"]}/personal_access_tokens')]


@pytest.fixture
def due_account_token(world, group_owner):
    """A first run made the group's account, its membership and its token, stored in Mobb; the
    token is now due for rotation and the logs are cleared. Returns (options, token)."""
    options = service_account(gitlab_api_token=group_owner, service_account_create=True)
    return options, first_run_then_due(world, options)


def first_run_then_due(world, options):
    """A first run with ``options`` creates and stores the token; the clock then moves near
    its expiry and the logs are cleared. Returns the token's record."""
    outcome, _result = world.run(**options)
    assert outcome.name == 'created', outcome.msg
    token = world.assert_converged()
    near_expiry(world)
    world.clear_logs()
    return token


@pytest.mark.parametrize('method', ['create_new', 'rotate'])
def test_service_account_token_rotates_after_the_clock_moves_with_an_explicit_expiry(world, due_account_token, method):
    options, old = due_account_token
    outcome, result = world.run(rotation_method=method, **options)
    assert outcome.name == 'rotated', outcome.msg
    new = world.assert_converged()
    assert new['id'] != old['id'] and result['previous_token_id'] == old['id']
    # Sent with the run's expiry: without it GitLab would give the rotated token a week.
    assert result['days_left'] == 30 and new['expires_at'] == result['expires_at']
    assert result['service_account']['memberships_added'] == []
    gitlab_writes, mobb_writes = world.writes()
    account_tokens = f'/api/v4/groups/team/service_accounts/{old["user_id"]}/personal_access_tokens'
    assert gitlab_writes == ([('POST', account_tokens), ('DELETE', f'{account_tokens}/{old["id"]}')]
                             if method == 'create_new' else [('POST', f'{account_tokens}/{old["id"]}/rotate')])
    assert mobb_writes == ['updateScmToken']
    # Before issuing, the run looked the project up once, then checked the membership there by its id.
    reads = [(e['method'], e['path']) for e in world.gitlab.requests() if '/projects/' in e['path']]
    app = gitlab_id(world, 'project', 'team/app')
    assert reads == [('GET', '/api/v4/projects/team%2Fapp'),
                     ('GET', f'/api/v4/projects/{app}/members/all/{old["user_id"]}')]


def test_instance_service_account_as_an_administrator(world):
    options = service_account(group=None, service_account_create=True)
    outcome, result = world.run(**options)
    assert outcome.name == 'created', outcome.msg
    account = accounts(world)[0]
    assert account['provisioned_by_group_id'] is None and result['service_account']['id'] == account['id']
    old = world.assert_converged()
    assert old['user_id'] == account['id']
    assert (('POST', f'/api/v4/users/{account["id"]}/personal_access_tokens')
            in [(e['method'], e['path']) for e in world.gitlab.writes()])
    near_expiry(world)
    outcome, result = world.run(rotation_method='rotate', **options)
    assert outcome.name == 'rotated' and result['days_left'] == 30, outcome.msg
    assert world.assert_converged()['previous_id'] == old['id']


def test_outcome_account_missing_without_service_account_create_writes_nothing(world):
    outcome, result = world.run(**service_account())
    assert outcome.name == 'account_missing' and result['failed']
    assert outcome.msg.startswith("GitLab has no service account 'mobb-bot' in group 'team' (or the api_token "
                                  'cannot see it). Nothing was changed; Mobb was not asked.')
    assert 'service_account_create: true (in the role, gitlab_token_rotation_service_account_create)' in outcome.msg
    assert 'mobb.scm.gitlab_service_account' in outcome.msg
    assert world.writes() == ([], []) and world.mobb.requests() == []


@pytest.mark.parametrize('seeded_level, found', [(None, 'not a member'), (20, 'it has reporter')])
def test_outcome_membership_missing_without_service_account_create_writes_nothing(world, seeded_level, found):
    world.gitlab.seed(service_accounts=[{'username': BOT, 'group': 'team'}],
                      members=[] if seeded_level is None else [
                          {'username': BOT, 'project': 'team/app', 'access_level': seeded_level}])
    before = world.gitlab.members()
    outcome, result = world.run(**service_account())
    assert outcome.name == 'membership_missing' and result['failed'], outcome.msg
    assert outcome.msg.startswith(f"service account 'mobb-bot' of group 'team' lacks the developer role in project "
                                  f"'team/app' ({found}), which Mobb needs to reach them, so no token was issued. "
                                  'Nothing was changed: GitLab had no active token named mobb-broker, and Mobb keeps '
                                  'no token.')
    assert outcome.msg.endswith('or set service_account_create: true (in the role, '
                                'gitlab_token_rotation_service_account_create) to let the run add it.')
    assert world.writes() == ([], []) and world.gitlab.members() == before and world.active() == []


def test_a_missing_membership_of_a_kept_token_stops_its_rotation_and_the_old_token_stays(world, group_owner):
    options = service_account(gitlab_api_token=group_owner, service_account_create=True)
    outcome, _result = world.run(**options)
    assert outcome.name == 'created', outcome.msg
    kept = world.assert_converged()
    # Someone removes the account from the project; at the next rotation the run notices.
    python_gitlab.Gitlab(world.gitlab.url, private_token=world.gitlab.admin_token).projects.get(
        'team/app', lazy=True).members.delete(kept['user_id'])
    near_expiry(world)
    world.clear_logs()
    outcome, _result = world.run(**dict(options, service_account_create=False))
    assert outcome.name == 'membership_missing'
    assert (f'Nothing was changed: token {kept["id"]} (expires {kept["expires_at"]}) is still active and still in '
            'Mobb, which connects with it.') in outcome.msg
    assert world.writes() == ([], [])
    outcome, result = world.run(**options)
    assert outcome.name == 'rotated', outcome.msg
    assert result['service_account']['memberships_added'] == [
        {'project': 'team/app', 'access_level': 30, 'previous_access_level': None}]
    world.assert_converged()


def test_check_mode_predicts_the_account_and_its_memberships_and_writes_nothing(world, group_owner):
    outcome, result = world.run(check_mode=True, **service_account(
        gitlab_api_token=group_owner, service_account_create=True,
        service_account_memberships=APP_DEVELOPER + [{'group': 'team', 'access_level': 'maintainer'}]))
    assert outcome.name == 'would_create' and result['changed'], outcome.msg
    assert result['service_account'] == {
        'username': BOT, 'group': 'team', 'id': None, 'created': True,
        'memberships_added': [{'project': 'team/app', 'access_level': 30, 'previous_access_level': None},
                              {'group': 'team', 'access_level': 40, 'previous_access_level': None}]}
    assert ("service account 'mobb-bot' of group 'team' would be given the developer role in project 'team/app' "
            "(not a member); the maintainer role in group 'team' (not a member)") in result['reasons']
    assert world.writes() == ([], []) and accounts(world) == []


def test_outcome_read_failed_when_a_non_administrator_asks_for_an_instance_account(world):
    outcome, result = world.run(**service_account(group=None, gitlab_api_token=owner_token(world),
                                                  service_account_create=True))
    assert outcome.name == 'read_failed' and result['failed']
    assert outcome.msg.startswith('Could not list the service accounts of the instance: GitLab answered 403: '
                                  "Forbidden. Only administrators manage instance service accounts: use an "
                                  "administrator's token")
    assert outcome.msg.endswith('Nothing was changed; Mobb was not asked.')
    assert world.writes() == ([], []) and accounts(world) == []


def test_outcome_account_setup_failed_when_a_group_owner_may_not_create_accounts(world):
    # The instance setting allow_top_level_group_owners_to_create_service_accounts is off.
    outcome, result = world.run(**service_account(gitlab_api_token=owner_token(world), service_account_create=True))
    assert outcome.name == 'account_setup_failed' and result['failed']
    assert outcome.msg.startswith("Could not create service account 'mobb-bot' of group 'team' (Could not create "
                                  "service account 'mobb-bot' of group 'team': GitLab answered 400")
    assert 'allow_top_level_group_owners_to_create_service_accounts' in outcome.msg
    assert 'so no token was issued.' in outcome.msg
    assert accounts(world) == [] and world.active() == [] and world.mobb.writes() == []
    assert [(e['method'], e['status']) for e in world.gitlab.writes()] == [('POST', 400)]


def test_outcome_account_setup_failed_names_what_the_run_created(world, group_owner):
    world.gitlab.fault('status', count=1, method='POST', path='/members$', status=403)
    options = service_account(gitlab_api_token=group_owner, service_account_create=True)
    outcome, _result = world.run(**options)
    assert outcome.name == 'account_setup_failed'
    account = accounts(world)[0]
    assert outcome.msg.startswith("Could not give service account 'mobb-bot' of group 'team' the developer role in "
                                  "project 'team/app' (")
    assert outcome.msg.endswith(f"This run created service account 'mobb-bot' (id {account['id']}), which stays.")
    assert world.active() == [] and world.mobb.writes() == []
    outcome, result = world.run(**options)
    assert outcome.name == 'created' and result['service_account']['created'] is False, outcome.msg
    assert memberships(world, account['id']) == [('project', 'team/app', 30)]
    world.assert_converged()


SERVICE_ACCOUNT_FIRST_STEPS = ['read', 'plan', 'account', 'issue', 'store', 'verify', 'retire']


@pytest.mark.parametrize('how, gap', interleavings(len(SERVICE_ACCOUNT_FIRST_STEPS)))
def test_two_overlapping_first_runs_make_one_account_and_keep_the_invariant(world, group_owner, how, gap):
    """Both runs read no account; whichever creates it second finds it taken and uses it. As
    for any two overlapping runs, one may lose its token to the other (superseded), never
    the account or its membership, and neither fails."""
    options = service_account(gitlab_api_token=group_owner, service_account_create=True)
    first, second = world.rotation(**options), world.rotation(**options)
    drive(first, second, how, gap)
    for rotation in (first, second):
        assert rotation.outcome.name != 'account_setup_failed', rotation.outcome.msg
        assert not rotation.outcome.failed, rotation.outcome.msg
        world.assert_no_secrets(rotation.outcome.msg)
    made = accounts(world)
    assert len(made) == 1 and memberships(world, made[0]['id']) == [('project', 'team/app', 30)]
    assert [rotation.account.created for rotation in (first, second)].count(True) == 1
    world.assert_invariant()
    outcome, _result = world.run(**options)
    assert not outcome.failed, outcome.msg
    world.assert_converged()


def test_an_account_create_whose_answer_was_lost_is_found_by_the_next_run(world, group_owner):
    world.gitlab.fault('delay', method='POST', path='/service_accounts$', seconds=2)
    options = service_account(gitlab_api_token=group_owner, service_account_create=True)
    outcome, _result = world.run(gitlab_timeout=1, **options)
    assert outcome.name == 'account_setup_failed', outcome.msg
    assert 'GitLab may have created it: the next run finds it.' in outcome.msg
    assert world.active() == [] and world.mobb.writes() == []
    deadline = time.monotonic() + 10
    while not accounts(world) and time.monotonic() < deadline:
        time.sleep(0.1)
    outcome, result = world.run(**options)
    assert outcome.name == 'created' and result['service_account']['created'] is False, outcome.msg
    assert len(accounts(world)) == 1
    world.assert_converged()


def test_a_membership_another_run_adds_meanwhile_is_taken_as_added(world, group_owner):
    """The run's POST reaches GitLab after an overlapping run added the membership: 409, then
    the membership is read again and is there, so the run goes on."""
    world.gitlab.seed(service_accounts=[{'username': BOT, 'group': 'team'}])
    world.gitlab.fault('delay', method='POST', path='/members$', seconds=1)

    def add_while_the_post_waits():
        deadline = time.monotonic() + 10
        while world.gitlab.faults() and time.monotonic() < deadline:
            time.sleep(0.02)
        world.gitlab.seed(members=[{'username': BOT, 'project': 'team/app', 'access_level': 30}])

    other_run = threading.Thread(target=add_while_the_post_waits)
    other_run.start()
    outcome, result = world.run(**service_account(gitlab_api_token=group_owner, service_account_create=True))
    other_run.join()
    assert outcome.name == 'created', outcome.msg
    assert ('POST', 409) in [(entry['method'], entry['status']) for entry in world.gitlab.writes()]
    assert result['service_account']['memberships_added'] == []
    world.assert_converged()


TARGETS_ADVICE = ("not found or not visible to the token: check the full path (or id) of each, and that the token's "
                  'user can see it: a member there, or an administrator (in the role, '
                  'gitlab_token_rotation_service_account_memberships). No token was issued; nothing was changed')


@pytest.mark.parametrize('check_mode', [False, True], ids=['real', 'check mode'])
@pytest.mark.parametrize('declared, named', [
    ([{'project': 'team/nope'}], "project 'team/nope'"),
    ([{'group': 'gone'}], "group 'gone'"),
    (APP_DEVELOPER + [{'group': 'team/gone'}, {'group': 'team'}], "group 'team/gone'"),
    ([{'project': 'team/nope'}, {'project': 'team/app'}, {'group': 'gone'}], "project 'team/nope' and group 'gone'"),
    ([{'project': 'other/app'}], "project 'other/app'"),
], ids=['unknown project', 'unknown group', 'one unknown among two good', 'two unknown', 'not visible'])
def test_outcome_target_missing_names_every_unknown_target_before_the_account_is_created(
        world, group_owner, check_mode, declared, named):
    world.gitlab.seed(projects=[{'path': 'other/app'}])  # alice is no member there: GitLab answers her 404
    outcome, result = world.run(check_mode=check_mode, **service_account(
        gitlab_api_token=group_owner, service_account_create=True, service_account_memberships=declared))
    assert outcome.name == 'target_missing' and result['failed'] and not result['changed'], outcome.msg
    assert outcome.msg == (f'service_account_memberships: {named} {TARGETS_ADVICE}: GitLab had no active token named '
                           'mobb-broker, and Mobb keeps no token.')
    assert world.writes() == ([], []) and accounts(world) == []
    assert result['service_account'] == {'username': BOT, 'group': 'team', 'id': None, 'created': False,
                                         'memberships_added': []}
    # Every target was looked up (not only up to the first unknown one), each once.
    looked_up = [e['path'] for e in world.gitlab.requests()
                 if e['path'].startswith(('/api/v4/projects', '/api/v4/groups/'))
                 and not e['path'].startswith('/api/v4/groups/team/service_accounts')]
    assert len(looked_up) == len(declared) == len(set(looked_up))


def test_an_unknown_target_stops_the_rotation_of_a_kept_token_and_the_old_token_stays(world, due_account_token):
    options, kept = due_account_token
    declared = APP_DEVELOPER + [{'project': 'team/nope'}]
    outcome, _result = world.run(**dict(options, service_account_memberships=declared))
    assert outcome.name == 'target_missing', outcome.msg
    assert outcome.msg == (f"service_account_memberships: project 'team/nope' {TARGETS_ADVICE}: token {kept['id']} "
                           f"(expires {kept['expires_at']}) is still active and still in Mobb, which connects with it.")
    assert world.writes() == ([], [])
    assert world.assert_converged()['id'] == kept['id']


@pytest.mark.parametrize('group, message', [
    ('nope', "Could not list the service accounts of group 'nope': GitLab answered 404: Group Not Found"),
    ('999', "Could not list the service accounts of group '999': GitLab answered 404: Group Not Found"),
], ids=['path', 'id'])
def test_outcome_read_failed_for_an_unknown_group(world, group, message):
    outcome, _result = world.run(**service_account(group=group, service_account_create=True))
    assert outcome.name == 'read_failed' and outcome.msg.startswith(message), outcome.msg
    assert world.writes() == ([], [])


@pytest.mark.parametrize('options, message', [
    ({'group': 'team/sub'}, "group: service accounts belong to top-level groups, and 'team/sub' is a subgroup: use "
                            "'team'"),
    ({'service_account': None}, "a service_account token needs the service account's username"),
    ({'service_account_memberships': []}, 'a service account reaches nothing until it is a member'),
    ({'service_account_memberships': [{'project': 'team/app', 'access_level': 'reporter'}]},
     "service_account_memberships: the reporter role in project 'team/app' is below developer"),
    ({'service_account_memberships': [{'project': 'team/app', 'group': 'team'}]},
     'service_account_memberships[0] names both project and group'),
    ({'rotation_method': 'self_rotate'}, "self_rotate is not offered for a service account's token here"),
    ({'scopes': ['api', 'wrtie_repository']}, "unknown scope 'wrtie_repository' for a personal access token"),
], ids=['subgroup', 'no account', 'no membership', 'below developer', 'two targets', 'self_rotate',
        'unknown scope'])
def test_service_account_settings_are_checked_before_any_request(world, options, message):
    outcome, _result = world.run(**service_account(**options))
    assert outcome.name == 'invalid_settings' and message in outcome.msg, outcome.msg
    assert world.gitlab.requests() == [] and world.mobb.requests() == []


# ---- after a failure, the message says what GitLab and Mobb hold now -------------------------

def first_run_kept(world, kind):
    """The options of a kept token of ``kind`` (its first run done, the clock near its
    expiry, the logs cleared) and the kept token's record."""
    if kind == 'personal':
        options = dict(PERSONAL, project=None)
    else:
        world.gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
        options = service_account(gitlab_api_token=owner_token(world), service_account_create=True)
    return options, first_run_then_due(world, options)


@pytest.mark.parametrize('kind', ['personal', 'service_account'])
def test_a_run_whose_new_token_an_overlapping_run_retired_before_its_store_is_superseded(world, kind):
    """A issues; B reads A's token with the old one, rotates and retires both; then A's
    store reaches Mobb, which refuses the revoked token. A was overtaken: Mobb connects
    with B's token, and A's word says so, neither the old token nor its own as active."""
    options, old = first_run_kept(world, kind)
    first, second = world.rotation(**options), world.rotation(**options)
    a = first.steps()
    before_issue = ['read', 'plan'] + (['account'] if kind == 'service_account' else [])
    assert [next(a) for _step in before_issue + ['issue']] == before_issue + ['issue']
    assert second.run().name == 'rotated', second.outcome.msg
    b_token = second.issued['id']
    assert sorted(second.revoked_ids) == sorted([old['id'], first.issued['id']])
    assert list(a) == ['store']
    outcome = first.outcome
    result = first.result(outcome)
    world.assert_no_secrets(json.dumps(result) + outcome.msg)
    assert outcome.name == 'superseded' and not outcome.failed and not result['failed'], outcome.msg
    assert outcome.msg.startswith(f'Mobb refused the new token {first.issued["id"]}, which was revoked meanwhile, '
                                  'not by this run')
    b_record = next(t for t in world.active() if t['id'] == b_token)
    assert outcome.msg.endswith(f'nothing to undo: token {old["id"]} is no longer active, and GitLab lists token '
                                f'{b_token} (expires {b_record["expires_at"]}) as active; Mobb holds token {b_token} '
                                f'(expires {b_record["expires_at"]}), active, which connects with it.')
    # Neither revoked by this run, nor reported as active, what the other run revoked.
    assert result['revoked_token_ids'] == [] and result['token_id'] == b_token and result['connected'] is True
    assert world.assert_converged()['id'] == b_token


def stored_after(world, behind_the_runs_back):
    """A rotation of the project token run to its issue, then ``behind_the_runs_back(rotation)``
    (what someone does in GitLab's UI, or Mobb's broker), then the rest of its steps."""
    near_expiry(world)
    rotation = world.rotation()
    steps = rotation.steps()
    assert [next(steps) for _step in range(3)] == ['read', 'plan', 'issue']
    behind_the_runs_back(rotation)
    assert list(steps) == ['store']
    world.assert_no_secrets(rotation.outcome.msg)
    return rotation.outcome, rotation.result(rotation.outcome), rotation


def revoke_in_the_ui(world, token_id):
    python_gitlab.Gitlab(world.gitlab.url, private_token=world.gitlab.admin_token).projects.get(
        'team/app', lazy=True).access_tokens.delete(token_id)


def test_a_new_token_revoked_behind_the_runs_back_is_not_rolled_back_again(world, kept):
    # Someone revokes the new token in GitLab's UI before the run stores it.
    outcome, result, _rotation = stored_after(world, lambda rotation: revoke_in_the_ui(world, rotation.issued['id']))
    assert outcome.name == 'store_refused' and result['failed'], outcome.msg
    assert 'BadScmCredentials' in outcome.msg
    assert outcome.msg.endswith(f'The new token was revoked meanwhile, not by this run, so there was nothing to roll '
                                f'back: token {kept["id"]} (expires {kept["expires_at"]}) is still active and still '
                                'in Mobb, which connects with it.')
    assert result['revoked_token_ids'] == [] and result['token_id'] == kept['id']
    # The one DELETE is the UI's: the run revoked nothing.
    assert [method for method, _path in world.writes()[0]] == ['POST', 'DELETE']
    assert world.assert_converged()['id'] == kept['id']


def test_a_rollback_message_tells_of_an_old_token_revoked_behind_the_runs_back(world, kept):
    def revoke_the_old_token_and_stop_the_broker(_rotation):
        # The old token is revoked in GitLab's UI, and the broker goes down: Mobb refuses the store.
        revoke_in_the_ui(world, kept['id'])
        world.mobb.set_broker(urllib.parse.urlsplit(world.gitlab.url).netloc, False)

    outcome, result, rotation = stored_after(world, revoke_the_old_token_and_stop_the_broker)
    assert outcome.name == 'store_refused' and 'RepoUnreachableError' in outcome.msg, outcome.msg
    assert (f'Rolled back: the new token is revoked: token {kept["id"]} is no longer active, and GitLab has no active '
            f'token named mobb-broker; Mobb holds token {kept["id"]} (expires {kept["expires_at"]}), no longer '
            'active, although Mobb cannot reach GitLab right now (Mobb could not reach the repository') in outcome.msg
    assert 'still active' not in outcome.msg
    assert result['revoked_token_ids'] == [rotation.issued['id']] and result['token_id'] is None
    assert world.active() == []


def test_an_older_token_of_its_own_that_mobb_holds_is_not_called_another_rotations(world, kept):
    """Mobb holds the kept token while a newer one with the name exists (a run whose store was
    lost, say): that is this rotation's own token to retire, not a twin's."""
    newer = world.gitlab.seed(tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'mobb-broker'}])['tokens'][0]
    assert newer['id'] > kept['id']
    outcome, result = world.run(mode='check')
    assert outcome.name == 'problem'
    assert result['mobb_token']['identity'] == 'other' and result['mobb_token']['token_id'] == kept['id']
    assert result['mobb_token']['note'].startswith(f"Mobb holds token {kept['id']} ('mobb-broker'")
    assert not [text for text in result['problems'] if 'another mobb.scm rotation' in text]
