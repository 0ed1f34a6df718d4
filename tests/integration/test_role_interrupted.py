"""A rotation killed at each step converges on the next run.

Each test rotates a token near expiry and SIGKILLs every process of the ``ansible-playbook``
run, its process group and its workers (which ansible-core puts in sessions of their own),
as an OOM kill of the job or a stopped container does, while one of the servers holds a
request of the rotation with a ``delay`` fault: the kill lands at a known step, and the
held request is still served after it, as a real server serves a request whose client
died. Then: the killed run printed and left on disk no value the servers issued (Ansible's
cleanup did not run, so its temporary folders are still there to search), and the next
normal run exits 0 and leaves exactly one active token with the name, the one Mobb
connects with.
"""
from __future__ import annotations

import signal
import time

import pytest

from rotation_fleet import PERSONAL, Fleet, results, strike_while_held

# How long a server holds the request the kill waits for: the watcher polls every 20 ms.
HOLD = 1.5
CHECK = 'checkScmConnectionStatus'
STORED = 'ScmAccessTokenUpdateSuccess'


@pytest.fixture
def fleet(run_playbook, start_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path, start_playbook=start_playbook)


def after(entries, first):
    """The entries logged after the first one that satisfies ``first`` (none before it)."""
    for index, entry in enumerate(entries):
        if first(entry):
            return entries[index + 1:]
    return []


def kill_when(fleet, poll, matches, **role_vars):
    """Start a rotation, SIGKILL all its processes while the request ``matches`` picks in
    ``poll()`` is held, let the held request land, and check what the killed run left."""
    since = time.monotonic()
    running = fleet.start(fleet.role_play(**PERSONAL, **role_vars))
    strike_while_held(poll, matches, HOLD, lambda _entry: running.kill(), since, alive=lambda: running.running)
    run = running.wait(60)
    assert run.rc == -signal.SIGKILL, run.output[-3000:]
    # Killed in the middle of the rotation's task: it started and never returned.
    assert 'TASK [mobb.scm.gitlab_token_rotation : Keep the tokens of every server of the play batch, concurrently]' \
        in run.output
    assert 'PLAY RECAP' not in run.output
    assert not [entry for entry in run.results if entry['action'] == 'mobb.scm.gitlab_fleet_tokens']
    fleet.settle()
    # Nothing cleaned up after the kill: Ansible's local temporary folder is still there,
    # and the leak check searches it with the playbook folder and the remote temp folder.
    assert list((fleet.tmp_path / 'ansible-tmp').glob('ansible-local-*'))
    fleet.check(run)
    return run


def test_killed_after_the_issue_leaves_an_orphan_that_the_next_run_revokes(fleet):
    old = fleet.near_expiry()
    gitlab = fleet.gitlabs[0]
    gitlab.fault('delay', method='POST', seconds=HOLD)
    kill_when(fleet, gitlab.requests, lambda e: e['method'] == 'POST')
    # GitLab issued the token after the run died: nobody holds its value. Mobb was not asked.
    orphan = [t for t in fleet.active() if t['id'] != old['id']]
    assert [e['status'] for e in fleet.gitlab_writes()] == [201] and len(orphan) == 1
    assert fleet.mobb.writes() == []
    assert fleet.mobb_uses() == (True, old['id'])
    # The orphan is the newest token and Mobb holds the old one: the next run rotates and
    # revokes both.
    result = fleet.assert_converges('rotated')
    assert sorted(result['revoked_token_ids']) == [old['id'], orphan[0]['id']]


@pytest.mark.parametrize('moment', ['after the store', 'during verify'])
def test_killed_after_the_store_leaves_mobb_on_the_new_token(fleet, moment):
    old = fleet.near_expiry()
    # The read's connection check passes at once; the verification's is held.
    fleet.mobb.fault('delay', seconds=0.01, operation=CHECK)
    fleet.mobb.fault('delay', seconds=HOLD, operation=CHECK)
    if moment == 'after the store':
        # Mobb answered the store after the last poll that did not show it began: the
        # verification's check, sent after that answer, is held past the kill.
        kill_when(fleet, fleet.mobb.requests, lambda e: e['result'] == STORED)
    else:
        kill_when(fleet, lambda: after(fleet.mobb.requests(), lambda e: e['result'] == STORED),
                  lambda e: e['operation'] == CHECK and e['fault'] == 'delay')
    # Mobb stored the new token and connects with it; nothing was revoked.
    assert [e['result'] for e in fleet.mobb.writes()] == [STORED]
    assert [e['method'] for e in fleet.gitlab_writes()] == ['POST']
    new = fleet.active()[-1]
    assert [t['id'] for t in fleet.active()] == [old['id'], new['id']]
    assert fleet.mobb_uses() == (True, new['id'])
    result = fleet.assert_converges('retired')
    assert result['token_id'] == new['id'] and result['revoked_token_ids'] == [old['id']]


def test_killed_during_the_revoke_leaves_mobb_on_the_new_token(fleet):
    old = fleet.near_expiry()
    gitlab = fleet.gitlabs[0]
    gitlab.fault('delay', method='DELETE', seconds=HOLD)
    kill_when(fleet, gitlab.requests, lambda e: e['method'] == 'DELETE')
    # The revoke GitLab held lands after the kill: the old token is revoked, Mobb holds the new one.
    assert [(e['method'], e['status']) for e in fleet.gitlab_writes()] == [('POST', 201), ('DELETE', 204)]
    assert fleet.token(0, old['id'])['revoked'] is True
    new = fleet.active()
    assert len(new) == 1 and fleet.mobb_uses() == (True, new[0]['id'])
    assert fleet.assert_converges('none')['token_id'] == new[0]['id']


def test_killed_after_the_switch_within_a_window_a_later_run_still_retires_the_old_token(fleet):
    window = {'gitlab_token_rotation_retire_after_days': 2}
    old = fleet.near_expiry(**window)
    fleet.mobb.fault('delay', seconds=0.01, operation=CHECK)
    fleet.mobb.fault('delay', seconds=HOLD, operation=CHECK)
    kill_when(fleet, lambda: after(fleet.mobb.requests(), lambda e: e['result'] == STORED),
              lambda e: e['operation'] == CHECK and e['fault'] == 'delay', **window)
    new = fleet.active()[-1]
    assert [t['id'] for t in fleet.active()] == [old['id'], new['id']]
    assert fleet.mobb_uses() == (True, new['id'])
    # The killed run recorded nothing: the next run, within the window, finds Mobb on the new
    # token from GitLab's and Mobb's answers alone and keeps the old one until the window ends.
    fleet.mobb.clear_faults()
    within = fleet.run(fleet.role_play(**PERSONAL, **window))
    assert within.rc == 0, within.output[-3000:]
    [result] = results(within)
    assert result['token_id'] == new['id'] and result['revoked_token_ids'] == []
    assert [waiting['token_id'] for waiting in result['awaiting_retirement']] == [old['id']]
    assert [t['id'] for t in fleet.active()] == [old['id'], new['id']]
    fleet.gitlabs[0].advance_clock(2)
    result = fleet.assert_converges('retired', **window)
    assert result['token_id'] == new['id'] and result['revoked_token_ids'] == [old['id']]
