"""Two ansible-playbook runs of the role on the same token, overlapping end to end.

Every placement of one run's steps among another's is unit-tested in-process
(tests/unit/plugins/module_utils/test_rotation.py); these tests run a few of them through
two real ansible-playbook processes. A server holds a request with a ``delay`` fault,
the test pauses the run that sent it (SIGSTOP of all its processes) while it is held,
and lets the other run go on: the steps interleave in the same order on every run.
Each run uses its own GitLab administrator's token, so GitLab's request log tells them
apart; they share the Mobb API key, and so Mobb's integration. Afterwards Mobb holds an
active token that connects, and the next run leaves one active token, in Mobb.
"""
from __future__ import annotations

import time

import pytest

from rotation_fleet import PERSONAL, Fleet, results, strike_while_held

HOLD = 1.5
SECOND_ENV = 'MOBB_TEST_GITLAB_SECOND_ADMIN_TOKEN'
STORE = 'updateScmToken'
CHECK = 'checkScmConnectionStatus'
LIST = 'personal_access_tokens$'


@pytest.fixture(params=[True, False], ids=['mobb returns tokens', 'mobb returns no tokens'])
def return_tokens(request):
    return request.param


@pytest.fixture
def fleet(run_playbook, start_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path, start_playbook=start_playbook)


def second_admin(fleet):
    """Another GitLab administrator's token, for the second run."""
    seeded = fleet.gitlabs[0].seed(users=[{'username': 'root2', 'admin': True}], tokens=[
        {'kind': 'personal', 'user': 'root2', 'name': 'admin2', 'scopes': ['api', 'read_user']}])
    return seeded['tokens'][0]


def play(fleet, admin):
    """The rotation, with ``admin``'s token (None: the instance's own admin token)."""
    if admin is None:
        return fleet.role_play(**PERSONAL), None
    token = f"{{{{ lookup('ansible.builtin.env', '{SECOND_ENV}') }}}}"
    return fleet.role_play(**PERSONAL, gitlab_token_rotation_gitlab_api_token=token), {SECOND_ENV: admin['token']}


def last_seq(log):
    return max((entry['seq'] for entry in log), default=0)


def pause_at(fleet, poll, matches, running=None, start=None):
    """Resume ``running`` (or ``start()`` a new run) and pause it while a server holds its
    next request that ``matches`` in ``poll()``; then wait until the server answered it (a
    write lands while the run is paused). Returns the run."""
    seen = last_seq(poll())
    since = time.monotonic()
    if start is not None:
        running = start()
    else:
        running.resume()
    strike_while_held(poll, lambda e: e['seq'] > seen and e['fault'] == 'delay' and matches(e), HOLD,
                      lambda _entry: running.pause(), since, alive=lambda: running.running)
    fleet.settle()
    return running


def start_both(fleet, second):
    """Start two rotations of alice's token together, one with each admin token, and
    pause each while GitLab holds its list of tokens: both read before either writes.
    Returns them in the order they reached GitLab."""
    gitlab = fleet.gitlabs[0]
    gitlab.fault('delay', count=2, method='GET', path=LIST, seconds=HOLD)
    fleet.clear_requests()
    since = time.monotonic()
    runs = {}
    for admin in (None, second):
        plays, env = play(fleet, admin)
        token_id = second['id'] if admin else next(t['id'] for t in gitlab.tokens() if t['name'] == 'admin')
        runs[token_id] = fleet.start(plays, env=env, clear=False)
    order = []
    while len(order) < 2:
        entry, since = strike_while_held(
            gitlab.requests, lambda e: e['fault'] == 'delay' and e['token_id'] in runs and e['token_id'] not in order,
            HOLD, lambda e: runs[e['token_id']].pause(), since)
        order.append(entry['token_id'])
    fleet.settle()
    return [runs[token_id] for token_id in order]


def both_issue(fleet, second):
    """Both runs read the old token; then A issues its token, then B issues its own; each
    is paused once GitLab has created its token, before it is stored."""
    fleet.gitlabs[0].fault('delay', count=2, method='POST', seconds=HOLD)
    first, then = start_both(fleet, second)
    for running in (first, then):
        pause_at(fleet, fleet.gitlabs[0].requests, lambda e: e['method'] == 'POST', running)
    issued = [t['id'] for t in fleet.active()][1:]
    assert len(issued) == 2 and fleet.mobb.writes() == []
    return first, then, issued


def finish(fleet, running):
    running.resume()
    run = fleet.check(running.wait(120))
    recorded = results(run)
    assert len(recorded) == 1, run.output[-3000:]
    return run, recorded[0]


def assert_mobb_connects_with(fleet, token_id):
    assert fleet.mobb_uses() == (True, token_id)
    assert token_id in [t['id'] for t in fleet.active()]


def test_the_run_whose_store_lands_first_sees_itself_superseded_and_revokes_its_token(fleet):
    old = fleet.near_expiry()
    a, b, (a_token, b_token) = both_issue(fleet, second_admin(fleet))
    # A's store lands while A is paused; then B stores, verifies and revokes the old token.
    fleet.mobb.fault('delay', seconds=HOLD, operation=STORE)
    pause_at(fleet, fleet.mobb.requests, lambda e: e['operation'] == STORE, a)
    b_run, b_result = finish(fleet, b)
    assert b_run.rc == 0 and b_result['action'] == 'rotated' and b_result['revoked_token_ids'] == [old['id']]
    # A finds Mobb connected with B's token: it revokes its own, which nobody uses.
    a_run, a_result = finish(fleet, a)
    assert a_run.rc == 0 and a_result['outcome'] == 'superseded' and a_result['revoked_token_ids'] == [a_token]
    assert [e['result'] for e in fleet.mobb.writes()] == ['ScmAccessTokenUpdateSuccess'] * 2
    assert [t['id'] for t in fleet.active()] == [b_token]
    assert_mobb_connects_with(fleet, b_token)
    fleet.assert_converges('none')


def test_a_store_that_lands_after_the_other_run_ended_leaves_a_working_token(fleet, return_tokens):
    fleet.mobb.settings(return_tokens=return_tokens)
    old = fleet.near_expiry()
    a, b, (a_token, b_token) = both_issue(fleet, second_admin(fleet))
    # B stores, verifies and revokes the old token while A waits with its token unstored.
    b_run, b_result = finish(fleet, b)
    assert b_run.rc == 0 and b_result['action'] == 'rotated' and b_result['revoked_token_ids'] == [old['id']]
    assert_mobb_connects_with(fleet, b_token)
    # Then A's store lands: Mobb takes A's token, which works; A has nothing left to revoke.
    a_run, a_result = finish(fleet, a)
    assert a_run.rc == 0 and a_result['action'] == 'rotated' and a_result['revoked_token_ids'] == []
    assert_mobb_connects_with(fleet, a_token)
    assert [t['id'] for t in fleet.active()] == [a_token, b_token]
    # B's token is the newest but unused: the next run replaces both.
    result = fleet.assert_converges('rotated')
    assert sorted(result['revoked_token_ids']) == [a_token, b_token]


def test_a_store_landing_between_the_proof_and_the_revoke_is_repaired(fleet):
    """B issues before A reads; A proves Mobb holds A's token, B's store lands, A revokes
    B's token (it was in A's read) and, reading Mobb once more, stores its own again."""
    old = fleet.near_expiry()
    gitlab = fleet.gitlabs[0]
    second = second_admin(fleet)
    gitlab.fault('delay', method='POST', seconds=HOLD)
    plays, env = play(fleet, second)
    fleet.clear_requests()
    b = pause_at(fleet, gitlab.requests, lambda e: e['method'] == 'POST',
                 start=lambda: fleet.start(plays, env=env, clear=False))
    b_token = fleet.active()[-1]['id']
    # A reads both tokens, issues, stores, and is paused while Mobb holds its proof read
    # (its second connection check: the read's is let through at once).
    fleet.mobb.fault('delay', seconds=0.01, operation=CHECK)
    fleet.mobb.fault('delay', seconds=HOLD, operation=CHECK)
    seen = last_seq(fleet.mobb.requests())
    a = pause_at(fleet, lambda: [e for e in fleet.mobb.requests() if e['seq'] > seen and e['operation'] == CHECK][1:],
                 lambda e: True, start=lambda: fleet.start(fleet.role_play(**PERSONAL), clear=False))
    a_token = fleet.active()[-1]['id']
    assert [e['result'] for e in fleet.mobb.writes()] == ['ScmAccessTokenUpdateSuccess']
    b_run, b_result = finish(fleet, b)
    assert b_run.rc == 0 and b_result['action'] == 'rotated' and b_result['revoked_token_ids'] == [old['id']]
    a_run, a_result = finish(fleet, a)
    assert a_run.rc == 0 and a_result['action'] == 'rotated' and a_result['revoked_token_ids'] == [b_token]
    assert f'Mobb lost its connection while this run revoked the old tokens; storing token {a_token} again' in a_run.output
    assert [e['result'] for e in fleet.mobb.writes()] == ['ScmAccessTokenUpdateSuccess'] * 3
    assert [t['id'] for t in fleet.active()] == [a_token]
    assert_mobb_connects_with(fleet, a_token)
    fleet.assert_converges('none')


def test_a_run_whose_token_the_other_run_retired_before_its_store_is_superseded(fleet):
    """A issues and is paused before its store; B reads A's token beside the old one,
    rotates, and revokes both. A's store then reaches Mobb, which refuses the revoked
    token: A was overtaken, not failed, and its result says which token Mobb holds now."""
    old = fleet.near_expiry()
    gitlab = fleet.gitlabs[0]
    gitlab.fault('delay', method='POST', seconds=HOLD)
    fleet.clear_requests()
    a = pause_at(fleet, gitlab.requests, lambda e: e['method'] == 'POST',
                 start=lambda: fleet.start(fleet.role_play(**PERSONAL), clear=False))
    a_token = fleet.active()[-1]['id']
    plays, env = play(fleet, second_admin(fleet))
    b_run, b_result = finish(fleet, fleet.start(plays, env=env, clear=False))
    b_token = b_result['token_id']
    assert b_run.rc == 0 and b_result['action'] == 'rotated'
    assert sorted(b_result['revoked_token_ids']) == [old['id'], a_token]
    a_run, a_result = finish(fleet, a)
    assert a_run.rc == 0, a_run.output[-3000:]
    assert a_result['outcome'] == 'superseded' and a_result['action'] == 'superseded'
    assert a_result['revoked_token_ids'] == [] and a_result['token_id'] == b_token
    assert 'is still active' not in a_run.output
    assert [e['result'] for e in fleet.mobb.writes()] == ['ScmAccessTokenUpdateSuccess', 'BadScmCredentials']
    assert [t['id'] for t in fleet.active()] == [b_token]
    assert_mobb_connects_with(fleet, b_token)
    fleet.assert_converges('none')
