# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rotation tells: its ``Outcome``, what still works after a failure, its result and diff.

A failure's message says which token is active and which one Mobb holds only from GitLab
and Mobb read again at that moment (``ReadAgain``), never from the run's earlier read: an
overlapping run may have stored or revoked since. Nothing here holds a token's value.
"""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import days_left


class StepFailed(Exception):
    """Ends the run with this outcome."""

    def __init__(self, outcome):
        super().__init__(outcome.msg)
        self.outcome = outcome


class Outcome:
    """What a run did, named. ``failed`` outcomes carry a message saying what still works."""

    # name -> (action reported, failed)
    NAMES = {
        'none': ('none', False),
        'created': ('created', False),
        'rotated': ('rotated', False),
        'stored': ('stored', False),
        'retired': ('retired', False),
        'superseded': ('superseded', False),
        'would_create': ('would_create', False),
        'would_rotate': ('would_rotate', False),
        'would_store': ('would_store', False),
        'would_retire': ('would_retire', False),
        'ok': ('ok', False),
        'problem': ('problem', False),
        'invalid_settings': ('failed', True),
        'read_failed': ('failed', True),
        'blocked': ('failed', True),
        'issue_refused': ('failed', True),
        'issue_unknown': ('failed', True),
        'store_refused': ('failed', True),
        'rollback_failed': ('failed', True),
        'store_unknown': ('failed', True),
        'verify_failed': ('failed', True),
        'retire_failed': ('failed', True),
        'in_place_store_failed': ('failed', True),
        'in_place_verify_failed': ('failed', True),
        'rotate_unknown': ('failed', True),
        'preflight_failed': ('failed', True),
        'account_missing': ('failed', True),
        'membership_missing': ('failed', True),
        'account_setup_failed': ('failed', True),
        'target_missing': ('failed', True),
    }

    def __init__(self, name, msg=''):
        if name not in self.NAMES:
            raise ValueError('unknown outcome %r' % name)
        self.name = name
        self.action, self.failed = self.NAMES[name]
        self.msg = msg


class ReadAgain:
    """GitLab's active tokens with the name and Mobb's answer (a mobb.MobbHolding), read again
    after a failure; ``tokens`` or ``holding`` is None when that side did not answer (its
    error beside it). ``before`` is Mobb's answer at the run's read, ``found`` the token that
    read kept, ``issued`` this run's new token: records, never values."""

    def __init__(self, token_name, before, found, issued):
        self.token_name = token_name
        self.before = before
        self.found = found
        self.issued = issued
        self.tokens = None
        self.gitlab_error = None
        self.holding = None
        self.mobb_error = None

    def active(self, token_id):
        """True, False, or None when GitLab did not answer."""
        return None if self.tokens is None else any(token['id'] == token_id for token in self.tokens)

    def mobb_moved(self):
        """Whether Mobb's token changed since the run's read (a store of another run landed)."""
        before, holding = self.before, self.holding
        if holding.fingerprint is not None and before.fingerprint is not None:
            return holding.fingerprint != before.fingerprint
        return holding.stored != before.stored or holding.last_update != before.last_update

    def mobb_token(self):
        """The token Mobb holds now as {id, expires_at, active}: identified by GitLab now, or,
        when Mobb has not been written since the run's read, the one that read identified;
        None when Mobb's answer cannot tell."""
        holding, before = self.holding, self.before
        if holding.token is not None:
            return dict(holding.token, active=holding.identity != 'dead')
        if before is None or before.token is None or self.mobb_moved():
            return None
        return dict(before.token, active=False if holding.identity == 'dead' else self.active(before.token['id']))

    def gitlab_text(self):
        """What GitLab lists as active now, beside the token the run's read kept."""
        found = self.found
        if self.tokens is None:
            return 'GitLab did not answer when asked again (%s)' % self.gitlab_error
        issued_id = self.issued['id'] if self.issued else None
        if found and self.active(found['id']):
            return 'token %s (expires %s) is still active' % (found['id'], found['expires_at'])
        others = [token for token in self.tokens if token['id'] != issued_id]
        lost = 'token %s is no longer active, and ' % found['id'] if found else ''
        if not others:
            return '%sGitLab %s no active token named %s' % (lost, 'has' if found else 'had', self.token_name)
        listed = ', '.join('token %s (expires %s)' % (token['id'], token['expires_at']) for token in others)
        return '%sGitLab lists %s as active' % (lost, listed)

    def staying_text(self):
        """Which tokens GitLab lists as active now, this run's new one first."""
        new_id = self.issued['id'] if self.issued else None
        ids = sorted((token['id'] for token in self.tokens or []), key=lambda token_id: (token_id != new_id, token_id))
        if self.tokens is None:
            return 'GitLab did not answer when asked again (%s)' % self.gitlab_error
        if len(ids) > 1:
            return 'tokens %s stay active' % ' and '.join(str(token_id) for token_id in ids)
        if ids:
            return 'token %s stays active' % ids[0]
        return 'GitLab lists no active token named %s' % self.token_name

    def text(self):
        """': <which token is active and which one Mobb holds>.'"""
        found, holding = self.found, self.holding
        gitlab_text = self.gitlab_text()
        if holding is None:
            return ': %s; Mobb did not answer when asked again (%s).' % (gitlab_text, self.mobb_error)
        if holding.connected:
            reach = 'which connects with it'
        else:
            reach = 'although Mobb cannot reach GitLab right now (%s)' % (holding.message or 'no answer')
        if not holding.stored:
            return ': %s, and Mobb keeps no token.' % gitlab_text
        token = self.mobb_token()
        if token is None:
            held = 'the token it held' if not self.mobb_moved() else 'a token stored since this run read it'
            return ': %s; Mobb keeps %s (it does not show which), %s.' % (gitlab_text, held, reach)
        if found and token['id'] == found['id'] and token['active']:
            return ': token %s (expires %s) is still active and still in Mobb, %s.' % (
                found['id'], found['expires_at'], reach)
        state = {True: 'active', False: 'no longer active'}.get(token['active'], 'its state unknown')
        return ': %s; Mobb holds token %s (expires %s), %s, %s.' % (
            gitlab_text, token['id'], token['expires_at'], state, reach)

    def kept(self, ours):
        """The token a result names: ``ours`` (this run's new token, unless revoked) or the one
        the run's read kept, if still active, else the active one Mobb holds; or None."""
        wanted = [token['id'] for token in (ours, self.found) if token]
        held = self.mobb_token() if self.holding is not None else None
        if held and held['active']:
            wanted.append(held['id'])
        active = {token['id']: token for token in self.tokens}
        return next((active[token_id] for token_id in wanted if token_id in active), None)


def task_result(rotation, outcome):
    """The task's result for a Rotation's ``outcome``: ids, expiry, fingerprints, never a secret."""
    settings = rotation.settings
    current = rotation.decision.current if rotation.decision else None
    issued = rotation.issued
    ours = issued if issued is not None and issued['id'] not in rotation.revoked_ids else None
    kept = ours or current
    if rotation.now is not None and rotation.now.tokens is not None:
        kept = rotation.now.kept(ours)
    latest = rotation.latest
    reasons = list(rotation.reasons)
    problems = []
    if settings.mode == 'check':
        problems = reasons + ([outcome.msg] if outcome.failed else [])
    changed = (bool(issued or rotation.revoked_ids) or outcome.name in ('stored', 'retired')
               or outcome.name.startswith('would_') or bool(rotation.account and rotation.account.written()))
    return dict(
        label=settings.label,
        gitlab_url=settings.gitlab_url,
        scm_url=settings.scm_url,
        token_type=settings.token_type,
        owner=settings.owner,
        token_name=settings.token_name,
        rotation_method=settings.rotation_method,
        action=outcome.action,
        outcome=outcome.name,
        changed=changed,
        check_mode=rotation.check_mode,
        reasons=reasons,
        problems=problems,
        token_id=kept.get('id') if kept else None,
        expires_at=kept.get('expires_at') if kept else None,
        days_left=days_left(kept.get('expires_at'), rotation.today) if kept and rotation.today else None,
        rotation_threshold_days=settings.rotation_threshold(kept) if kept else None,
        next_rotation=settings.next_rotation(kept, rotation.today) if kept and rotation.today else None,
        new_token_fingerprint=issued['fingerprint'] if issued else None,
        previous_token_id=(rotation.previous_id or (current['id'] if current else None)) if issued else None,
        revoked_token_ids=list(rotation.revoked_ids),
        awaiting_retirement=list(rotation.awaiting),
        duplicate_token_ids=[token['id'] for token in rotation.decision.duplicates] if rotation.decision else [],
        connected=latest.connected if latest else None,
        connection_status=('OK' if latest.connected else 'Error') if latest else None,
        connection_message=latest.message if latest else None,
        brokered=latest.brokered if latest else None,
        token_last_update=latest.last_update if latest else None,
        mobb_token=rotation.holding.view() if rotation.holding else None,
        service_account=rotation.account.view(settings) if rotation.account else None,
        failed=outcome.failed,
        msg=('%s at %s: %s' % (settings.label, settings.gitlab_url, outcome.msg)) if outcome.failed else '',
    )


def task_diff(rotation):
    """Before and after: the kept token's id and expiry, and Mobb's fingerprint."""
    current = rotation.decision.current
    holding = rotation.holding
    before = dict(token_id=current['id'] if current else None,
                  expires_at=current['expires_at'] if current else None,
                  mobb_fingerprint=holding.fingerprint if holding else None)
    if rotation.issued is not None:
        after = dict(token_id=rotation.issued['id'], expires_at=rotation.issued['expires_at'],
                     mobb_fingerprint=rotation.issued['fingerprint'])
    elif rotation.check_mode and rotation.reasons:
        after = dict(token_id='(new)', expires_at=rotation.planned_expiry().isoformat(), mobb_fingerprint='(new)')
    else:
        after = before
    return dict(before=before, after=after)


# What a result of mobb.scm.gitlab_server_token keeps in the role's results (never a secret).
RECORD_KEYS = (
    'label', 'gitlab_url', 'scm_url', 'token_type', 'owner', 'token_name', 'rotation_method', 'action', 'outcome',
    'changed', 'check_mode', 'reasons', 'problems', 'token_id', 'expires_at', 'days_left', 'rotation_threshold_days',
    'next_rotation', 'new_token_fingerprint', 'previous_token_id', 'revoked_token_ids', 'awaiting_retirement',
    'duplicate_token_ids', 'connected', 'connection_status', 'connection_message', 'brokered', 'token_last_update',
    'mobb_token', 'service_account', 'failed', 'msg',
)


def token_record(result, host):
    """The role's record of one token's result (task_result, or a failure without one), with its host."""
    record = {key: result.get(key) for key in RECORD_KEYS}
    record['host'] = host
    if record['label'] is None:
        # The rotation did not run (its arguments were refused): keep the refusal's message.
        record.update(label='-', action='failed', outcome='invalid_settings', failed=True, changed=False,
                      reasons=[], problems=[], revoked_token_ids=[], msg=result.get('msg', 'failed'))
    return record
