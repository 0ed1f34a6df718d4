"""Failures during a rotation: the invariant is that Mobb never holds a dead token while a
working one was revoked, and that the next successful run leaves one active token.

Faults are injected through the local servers' control APIs, some mid-run by a watcher
thread that reacts to a step appearing in a server's request log. Every run is checked
for leaks (rotation_fleet.Fleet.run).
"""
from __future__ import annotations

import datetime
import time

import pytest

from rotation_fleet import Fleet, host, results

PERSONAL = {'gitlab_token_rotation_token_type': 'personal', 'gitlab_token_rotation_user': 'alice'}
STORE_MUTATION = ('mutation store($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", '
                  'url: $url, token: $token) { __typename } }')
MANAGER_ENV = 'MOBB_TEST_ALICE_MANAGER_TOKEN'
KEPT_ENV = 'MOBB_TEST_ALICE_KEPT_TOKEN'


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path, brokered=[gitlab])


def only(run):
    recorded = results(run)
    assert recorded is not None and len(recorded) == 1, recorded
    return recorded[0]


def failure_message(run):
    assert run.rc != 0
    result = only(run)
    assert result['failed'] is True and result['action'] == 'failed'
    return result['msg']


def broker(fleet, up):
    fleet.mobb.set_broker(host(fleet.gitlabs[0].url), up)


def assert_invariant(fleet):
    """Mobb connects, with a token that GitLab lists as active."""
    connected, token_id = fleet.mobb_uses()
    assert connected, 'Mobb holds a token it cannot use'
    assert token_id in [t['id'] for t in fleet.active()]
    return token_id


def near_expiry(fleet):
    """A first run, then GitLab's clock moved to 6 days before the token expires."""
    run = fleet.run(fleet.role_play(**PERSONAL))
    assert run.rc == 0, run.output[-3000:]
    fleet.gitlabs[0].advance_clock(24)
    return fleet.active()[0]


def assert_recovers(fleet, expected_action='rotated'):
    """The next run, with every fault gone, ends with one active token that Mobb uses."""
    fleet.gitlabs[0].clear_faults()
    fleet.mobb.clear_faults()
    broker(fleet, True)
    run = fleet.run(fleet.role_play(**PERSONAL))
    assert run.rc == 0, run.output[-3000:]
    assert only(run)['action'] == expected_action
    assert len(fleet.active()) == 1
    assert assert_invariant(fleet) == fleet.active()[0]['id']


def test_broker_down_before_the_store_rolls_back(fleet):
    old = near_expiry(fleet)
    config = fleet.config()
    gitlab = fleet.gitlabs[0]
    # GitLab holds the issue for half a second: the broker goes down before the store.
    gitlab.fault('delay', method='POST', seconds=0.5)
    run = fleet.run(fleet.role_play(**PERSONAL),
                    watch=(gitlab.requests, lambda e: e['method'] == 'POST', lambda: broker(fleet, False)))
    assert run.fired
    message = failure_message(run)
    new_id = next(t['id'] for t in gitlab.tokens() if t['name'] == 'mobb-broker' and t['id'] != old['id'])
    assert f'Mobb did not store the new token {new_id}' in message
    assert (f'Rolled back: the new token is revoked: token {old["id"]} (expires {old["expires_at"]}) '
            'is still active and still in Mobb, although Mobb cannot reach GitLab right now') in message
    # Both servers agree: the new token is revoked, the old one is active and in Mobb.
    assert [t['id'] for t in fleet.active()] == [old['id']] and fleet.token(0, new_id)['revoked'] is True
    # Mobb refused the store (the broker is down): its integration is as it was.
    assert [e['result'] for e in fleet.mobb.writes()] == ['RepoUnreachableError'] and fleet.config() == config
    assert only(run)['revoked_token_ids'] == [new_id]
    broker(fleet, True)
    assert fleet.mobb_uses() == (True, old['id'])
    assert_recovers(fleet)


def test_broker_down_after_the_store_keeps_both_tokens_until_the_next_run(fleet):
    old = near_expiry(fleet)
    # Mobb holds each connection check for half a second (the read's, then the verification's):
    # the broker goes down once the store has succeeded, before the verification is answered.
    fleet.mobb.fault('delay', count=2, seconds=0.5, operation='checkScmConnectionStatus')
    run = fleet.run(fleet.role_play(**PERSONAL), watch=(
        fleet.mobb.requests, lambda e: e['result'] == 'ScmAccessTokenUpdateSuccess', lambda: broker(fleet, False)))
    assert run.fired
    message = failure_message(run)
    new_id = only(run)['token_id']
    assert f'Mobb stored the new token {new_id} but did not connect with it after 3 checks' in message
    assert f'Mobb holds the new token, so nothing was revoked: tokens {new_id} and {old["id"]} stay active.' in message
    # Mobb holds the new token, which works; the old one was not revoked.
    assert [t['id'] for t in fleet.active()] == [old['id'], new_id]
    assert [e['method'] for e in fleet.gitlab_writes()] == ['POST']
    broker(fleet, True)
    assert fleet.mobb_uses() == (True, new_id)
    assert_recovers(fleet, expected_action='retired')


@pytest.mark.parametrize('status, opening, closing', [
    # A refusal is certain; a 500 answer to a write may hide a token GitLab did issue.
    (403, 'GitLab did not issue a new token (', '. Nothing was changed: '),
    (500, 'GitLab may have issued a new token without answering (',
     '); if it did, that token is unused and the next run replaces it. Nothing else was changed: '),
])
def test_gitlab_refusing_to_issue_changes_nothing(fleet, status, opening, closing):
    old = near_expiry(fleet)
    fleet.gitlabs[0].fault('status', count=10, method='POST', path='personal_access_tokens$', status=status)
    run = fleet.run(fleet.role_play(**PERSONAL))
    message = failure_message(run)
    assert message.startswith('personal:alice/mobb-broker at http://127.0.0.1:')
    gitlab_error = message[message.index(opening) + len(opening):message.index(closing)]
    assert gitlab_error.startswith("Could not create personal access token 'mobb-broker' for user 'alice'")
    assert f'GitLab answered {status}' in gitlab_error
    assert message.endswith(f'{closing}token {old["id"]} (expires {old["expires_at"]}) is still active and '
                            'still in Mobb, which connects with it.')
    assert [t['id'] for t in fleet.active()] == [old['id']] and fleet.mobb.writes() == []
    assert assert_invariant(fleet) == old['id']
    assert_recovers(fleet)


def test_mobb_refusing_the_store_rolls_back(fleet):
    old = near_expiry(fleet)
    # A definite refusal (HTTP 403 before Mobb): the new token is revoked again.
    fleet.mobb.fault('status', count=10, status=403, operation='updateScmToken')
    run = fleet.run(fleet.role_play(**PERSONAL))
    message = failure_message(run)
    assert ('refused the request with HTTP 403: check api_key or MOBB_API_KEY). Rolled back: the new token is '
            'revoked: token') in message
    assert message.endswith('is still active and still in Mobb, which connects with it.')
    assert [t['id'] for t in fleet.active()] == [old['id']]
    assert [e['method'] for e in fleet.gitlab_writes()] == ['POST', 'DELETE']
    assert assert_invariant(fleet) == old['id']
    assert_recovers(fleet)


def test_a_store_whose_answer_is_lost_revokes_nothing(fleet):
    """Mobb applies each write after the client gave up waiting: the store fails, yet Mobb
    holds the new token, so the role must not revoke it."""
    old = near_expiry(fleet)
    fleet.mobb.fault('delay', count=4, seconds=1.5, operation='updateScmToken')
    run = fleet.run(fleet.role_play(gitlab_token_rotation_mobb_timeout=1, **PERSONAL))
    message = failure_message(run)
    new_id = only(run)['token_id']
    assert f"Mobb's answer to storing the new token {new_id} was lost" in message
    assert f'Mobb may hold the new token now, so nothing was revoked: tokens {new_id} and {old["id"]} stay active.' in message
    # The store was sent once: one that may have reached Mobb is never sent again.
    assert [e['operation'] for e in fleet.mobb.writes()] == ['updateScmToken']
    assert [t['id'] for t in fleet.active()] == [old['id'], new_id]
    time.sleep(1.5)  # the store Mobb held back lands
    assert assert_invariant(fleet) == new_id
    assert_recovers(fleet, expected_action='retired')


def test_revoking_the_old_token_failing_leaves_mobb_on_the_new_one(fleet):
    old = near_expiry(fleet)
    fleet.gitlabs[0].fault('status', count=10, method='DELETE', status=503)
    run = fleet.run(fleet.role_play(**PERSONAL))
    message = failure_message(run)
    new_id = only(run)['token_id']
    assert f'Mobb now uses token {new_id} and connects with it, but revoking the previous token(s) {old["id"]} failed (' in message
    assert '503' in message
    assert message.endswith('They stay active until the next run, which revokes them.')
    assert [t['id'] for t in fleet.active()] == [old['id'], new_id]
    assert assert_invariant(fleet) == new_id
    # Mobb provably holds the newest token: the next run only revokes the old one.
    assert_recovers(fleet, expected_action='retired')


def test_a_store_answered_internal_error_after_writing_completes_the_rotation(fleet):
    """INTERNAL_ERROR does not say Mobb refused: Mobb is read, holds the new token, and the
    rotation goes on; a rollback would have left Mobb on a revoked token."""
    old = near_expiry(fleet)
    fleet.mobb.fault('internal_error_after', operation='updateScmToken')
    run = fleet.run(fleet.role_play(**PERSONAL))
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated' and result['revoked_token_ids'] == [old['id']]
    assert [e['error_code'] for e in fleet.mobb.writes()] == ['INTERNAL_ERROR']
    assert [t['id'] for t in fleet.active()] == [result['token_id']]
    assert assert_invariant(fleet) == result['token_id']


def test_a_failed_rollback_is_reported_and_cleaned_up_by_the_next_run(fleet):
    old = near_expiry(fleet)
    fleet.mobb.fault('status', count=10, status=403, operation='updateScmToken')
    fleet.gitlabs[0].fault('status', count=10, method='DELETE', status=503)
    run = fleet.run(fleet.role_play(**PERSONAL))
    message = failure_message(run)
    new_id = only(run)['token_id']
    assert 'Mobb was not changed: token' in message and 'Revoking the new token failed too (' in message
    assert 'the next run revokes it.' in message
    assert [t['id'] for t in fleet.active()] == [old['id'], new_id]
    assert assert_invariant(fleet) == old['id']
    assert_recovers(fleet)


# -- rotation without an administrator's token ----------------------------------------------

def alice_tokens(fleet, days_left=5):
    """alice's own tokens: a manager token (api) and the kept one, stored in Mobb."""
    gitlab = fleet.gitlabs[0]
    today = datetime.date.fromisoformat(gitlab.now()[:10])
    manager, kept = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'alice', 'name': 'manager', 'scopes': ['api']},
        {'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker', 'scopes': ['api', 'read_user'],
         'expires_at': (today + datetime.timedelta(days=days_left)).isoformat()},
    ])['tokens']
    answer = fleet.mobb.graphql(STORE_MUTATION, {'url': gitlab.url, 'token': kept['token']},
                                api_key=fleet.api_key).json()
    assert answer['data']['updateScmToken']['__typename'] == 'ScmAccessTokenUpdateSuccess'
    assert fleet.mobb_uses() == (True, kept['id'])
    return manager, kept


def own_token_play(fleet, method, credential_env, **extra):
    return fleet.role_play(gitlab_token_rotation_rotation_method=method,
                           gitlab_token_rotation_gitlab_api_token=f"{{{{ lookup('ansible.builtin.env', '{credential_env}') }}}}",
                           **extra)


def test_a_user_rotates_their_own_token_with_another_of_their_tokens(fleet):
    manager, kept = alice_tokens(fleet)
    run = fleet.run(own_token_play(fleet, 'rotate', MANAGER_ENV), env={MANAGER_ENV: manager['token']})
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated' and result['previous_token_id'] == kept['id']
    new = fleet.active()[0]
    assert [t['id'] for t in fleet.active()] == [new['id']] and new['previous_id'] == kept['id']
    assert fleet.mobb_uses() == (True, new['id'])
    # No administrator: the rotate API, with alice's manager token.
    assert [(e['method'], e['username']) for e in fleet.gitlab_writes()] == [('POST', 'alice')]
    assert fleet.gitlab_writes()[0]['path'].endswith(f'/personal_access_tokens/{kept["id"]}/rotate')


def test_a_token_rotates_itself_after_mobb_took_it_once_more(fleet):
    _manager, kept = alice_tokens(fleet)
    run = fleet.run(own_token_play(fleet, 'self_rotate', KEPT_ENV), env={KEPT_ENV: kept['token']})
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated' and result['previous_token_id'] == kept['id']
    new = fleet.active()[0]
    assert new['previous_id'] == kept['id'] and fleet.mobb_uses() == (True, new['id'])
    assert [e['path'] for e in fleet.gitlab_writes()] == ['/api/v4/personal_access_tokens/self/rotate']
    # Mobb returns stored tokens: it already held the current one and connected with it, so
    # the only write is the new token.
    assert [e['operation'] for e in fleet.mobb.writes()] == ['updateScmToken']


def test_self_rotate_stops_before_rotating_when_mobb_does_not_take_the_token(fleet):
    _manager, kept = alice_tokens(fleet)
    broker(fleet, False)
    run = fleet.run(own_token_play(fleet, 'self_rotate', KEPT_ENV), env={KEPT_ENV: kept['token']})
    message = failure_message(run)
    assert 'Mobb holds the current token for' in message and 'but does not connect with it' in message
    assert f'so it was not rotated: token {kept["id"]} is still active.' in message
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    broker(fleet, True)
    assert fleet.mobb_uses() == (True, kept['id'])


def test_self_rotate_gives_mobb_the_token_without_rotating_a_fresh_one(fleet):
    gitlab = fleet.gitlabs[0]
    kept = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker',
                                'scopes': ['api', 'read_user']}])['tokens'][0]
    run = fleet.run(own_token_play(fleet, 'self_rotate', KEPT_ENV), env={KEPT_ENV: kept['token']})
    assert run.rc == 0, run.output[-3000:]
    assert only(run)['action'] == 'stored' and only(run)['token_id'] == kept['id']
    assert fleet.gitlab_writes() == [] and fleet.mobb_uses() == (True, kept['id'])


def test_rotate_refuses_while_mobb_cannot_connect_and_force_shows_the_remaining_risk(fleet):
    manager, kept = alice_tokens(fleet)
    broker(fleet, False)
    env = {MANAGER_ENV: manager['token']}
    refused = fleet.run(own_token_play(fleet, 'rotate', MANAGER_ENV), env=env)
    message = failure_message(refused)
    assert f'rotation_method rotate would revoke token {kept["id"]} at once, so nothing was changed' in message
    assert 'gitlab_token_rotation_force=true' in message
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []

    forced = fleet.run(own_token_play(fleet, 'rotate', MANAGER_ENV, gitlab_token_rotation_force=True), env=env)
    message = failure_message(forced)
    new_id = only(forced)['token_id']
    assert (f'GitLab rotated token {kept["id"]} into {new_id}, revoking {kept["id"]} at once (rotation_method '
            'rotate), but Mobb did not store the new token') in message
    assert 'Mobb still holds the revoked token' in message
    assert 'run again with force (gitlab_token_rotation_force=true in the role)' in message
    assert [t['id'] for t in fleet.active()] == [new_id]

    broker(fleet, True)
    recovered = fleet.run(own_token_play(fleet, 'rotate', MANAGER_ENV, gitlab_token_rotation_force=True), env=env)
    assert recovered.rc == 0, recovered.output[-3000:]
    assert fleet.mobb_uses() == (True, fleet.active()[0]['id'])
