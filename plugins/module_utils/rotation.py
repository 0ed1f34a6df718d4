# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safe rotation of the GitLab token Mobb holds for one GitLab server, in one process.

``Rotation`` runs the protocol for one token's settings (server_token_options.Settings,
checked before any request): it reads GitLab and Mobb (rotation_read.ServerReader), plans
with the token modules' own ``decide()``, and (mode rotate) issues the new token, stores it
in Mobb, verifies, and revokes the old ones; ``InPlaceRotation`` is the same protocol when
GitLab revokes the old token as it issues the new one (rotation_method rotate, self_rotate).
The run ends in a rotation_report.Outcome, with a message that says what still works. The
new token's value lives only in ``Rotation._new_value`` for the length of one run and is
never part of an Outcome. Every network answer may be lost, every run may overlap another one:

- a store whose answer was lost (MobbUnknownOutcomeError) may still land, so it is never
  retried and never a reason to revoke the new token;
- a token is revoked only after Mobb's answer proves that Mobb holds the token this run
  stored: its fingerprint, or (when Mobb does not return tokens) ``tokenLastUpdate``
  unchanged since this run's store; after revoking, Mobb is read once more, and if a
  store of another run landed in between and left Mobb without a working token, this
  run's token (which works) is stored again;
- tokens another run may have in flight (issued after this run's read) are never revoked
  by this run; the next run revokes what is left;
- after a failure, what the message (and the result) says is active, revoked or in Mobb
  comes from GitLab and Mobb read again then (``ServerReader.again``), never from this
  run's earlier read; a new token that Mobb refused because it was revoked meanwhile (an
  overlapping run retired it) is not this run's to roll back, and when Mobb connects with
  a token stored since this run's read, the run was overtaken (``superseded``), not failed.
"""

from __future__ import annotations

import time

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import new_expiry
from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    MobbError,
    MobbUnknownOutcomeError,
    token_fingerprint,
)
from ansible_collections.mobb.scm.plugins.module_utils.rotation_account import RotationAccountSetup
from ansible_collections.mobb.scm.plugins.module_utils.rotation_read import SCM_TYPE, ServerReader, token_owner_for
from ansible_collections.mobb.scm.plugins.module_utils.rotation_report import (
    Outcome,
    StepFailed,
    task_diff,
    task_result,
)
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    Settings,
    SettingsError,
    connections,
)


class Rotation:
    """One token's run: read, plan, then (mode rotate) issue, store, verify, retire."""

    def __init__(self, settings, gitlab_client, mobb_client, token_client_factory, manager_token=None,
                 check_mode=False, sleep=time.sleep, warn=None, first_status=None):
        """``token_client_factory(value)`` builds a GitLab client that authenticates with
        ``value`` (the token Mobb holds, or a freshly issued one), with the same TLS
        settings. ``manager_token`` is the value of ``gitlab_client``'s credential, needed
        only by self_rotate, which stores it in Mobb before rotating it. ``first_status``
        answers the first Mobb read (rotation_read.ServerReader)."""
        self.settings = settings
        self.mobb = mobb_client
        self.token_client = token_client_factory
        self._manager_token = manager_token
        self.check_mode = check_mode
        self.sleep = sleep
        self.warn = warn or (lambda message: None)
        self.owner = token_owner_for(settings, gitlab_client) if gitlab_client is not None else None
        self.account = None
        if settings.token_type == 'service_account':
            self.account = RotationAccountSetup(self.owner and self.owner.accounts, settings.service_account,
                                                settings.service_account_name, check_mode, inherited=True)
        self.reader = ServerReader(settings, self.owner, mobb_client, token_client_factory, self.account,
                                   first_status=first_status)
        self.today = None
        self.tokens = []            # the active tokens with the name, as read
        self.decision = None
        self.holding = None         # Mobb's answer before any write
        self.latest = None          # Mobb's latest answer
        self.reasons = []
        self.issued = None          # the new token's record, without its value
        self.previous_id = None
        self._new_value = None
        self.stored_last_update = None
        self.store_error = None
        self.verify_error = None
        self.revoked_ids = []
        self.awaiting = []          # older tokens kept active until retire_after_days have passed
        self.now = None             # ReadAgain, once a failure read GitLab and Mobb again
        self.outcome = None

    @classmethod
    def from_params(cls, params, check_mode=False, warn=None, connect=connections, first_status=None):
        """The rotation for ``params`` validated against server_token_options.ARGUMENT_SPEC
        (environment fallbacks applied), with its clients (``connect``, by default
        server_token_options.connections; a fleet shares them between the tokens of one server):
        an InPlaceRotation when GitLab revokes the old token as it issues the new one.
        Unusable settings build no client: run() reports them."""
        settings = Settings(params)
        if not settings.problems:
            try:
                gitlab_client, mobb_client, token_client, manager_token = connect(params, settings.gitlab_url, warn)
            except (GitLabModuleError, MobbError) as error:
                settings.problems.append(str(error))
            else:
                kind = InPlaceRotation if settings.in_place else NewTokenRotation
                return kind(settings, gitlab_client, mobb_client, token_client, manager_token=manager_token,
                            check_mode=check_mode, warn=warn, first_status=first_status)
        return cls(settings, None, None, None, check_mode=check_mode, warn=warn)

    # ---- the run ----------------------------------------------------------------------

    def run(self):
        """Run every step; return the Outcome (a failure is an Outcome, not an exception)."""
        for _step in self.steps():
            pass
        return self.outcome

    def steps(self):
        """Do the steps one by one, yielding each one's name once it is done; ``outcome``
        holds the end. Tests interleave the steps of two runs through this."""
        try:
            self.settings.check()
            self.read()
            yield 'read'
            plan = self.plan()
            yield 'plan'
            if self.settings.mode == 'check':
                self.outcome = Outcome('problem' if self.reasons else 'ok')
                return
            if plan == 'none':
                self.outcome = Outcome('none')
                return
            if plan in ('create', 'rotate') and self.account is not None:
                self.prepare_account()
                yield 'account'
            if self.check_mode:
                self.outcome = Outcome('would_' + plan)
            elif plan == 'retire':
                self.retire(self.decision.duplicates)
                yield 'retire'
                self.outcome = Outcome('retired')
            else:
                yield from self.replace(plan)
        except SettingsError as error:
            self.outcome = Outcome('invalid_settings', str(error))
        except StepFailed as failure:
            self.outcome = failure.outcome
            if self.account is not None and self.account.written():
                self.outcome.msg = '%s %s' % (self.outcome.msg, self.account.written())
        finally:
            self._new_value = None
            self._manager_token = None

    # ---- read and plan ----------------------------------------------------------------

    def read(self):
        """GitLab's active tokens with the name; Mobb's state, and which token it holds."""
        try:
            self.tokens = self.reader.tokens()
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', '%s. Nothing was changed; Mobb was not asked.' % error))
        self.today = self.reader.today
        try:
            self.holding = self.latest = self.reader.mobb_holding(identify_among=self.tokens)
        except MobbError as error:
            raise StepFailed(Outcome('read_failed', 'Could not ask Mobb about %s (%s). Nothing was changed%s'
                                     % (self.settings.scm_url, error, self._gitlab_still())))

    def plan(self):
        """'none', 'create', 'rotate', 'store' (self_rotate gives Mobb the current token) or
        'retire' (Mobb holds the managed token; older ones with the name are revoked)."""
        settings, holding = self.settings, self.holding
        self.decision = decision = self.reader.decide(self.tokens, force=settings.force and settings.mode == 'rotate')
        token_reasons = list(decision.reasons)
        if self.account is not None and self.account.missing:
            token_reasons.insert(0, 'GitLab has no %s yet (service_account_create: true creates it)'
                                 % self.owner.label())
        mobb_reasons = []
        if not holding.stored:
            mobb_reasons.append('Mobb holds no token for %s' % settings.scm_url)
        elif not holding.connected:
            detail = ': %s' % holding.message if holding.message else ''
            mobb_reasons.append('Mobb cannot reach %s%s' % (settings.scm_url, detail))
        if holding.identity == 'other':
            mobb_reasons.append(holding.note)
            left = holding.token['days_left']
            if left is not None and left <= settings.threshold_days:
                mobb_reasons.append('the token Mobb holds expires on %s (%d days left, threshold %d)'
                                    % (holding.token['expires_at'], left, settings.threshold_days))
        elif holding.identity == 'dead' and holding.connected:
            mobb_reasons.append(holding.note)
        elif holding.identity == 'unproven' and decision.duplicates:
            token_reasons.append('%d active tokens are named %s (ids %s) and the one Mobb holds cannot be told apart'
                                 % (len(self.tokens), settings.token_name,
                                    ', '.join(str(t['id']) for t in sorted(self.tokens, key=lambda t: t['id']))))
        twins = settings.twins if settings.mode == 'check' else []
        self.reasons = twins + token_reasons + mobb_reasons
        if not self.reasons:
            if not decision.duplicates or holding.identity != 'managed':
                return 'none'
            if self.today < settings.retire_on(decision.current['created_at']):
                self._keep_until_retired(decision.duplicates, decision.current)
                return 'none'
            return 'retire'
        if settings.rotation_method == 'self_rotate' and not token_reasons and decision.current:
            return 'store'
        return 'rotate' if decision.current else 'create'

    # ---- the service account of a service_account token --------------------------------

    def prepare_account(self):
        """Before a service account's token is issued: the account and its memberships
        (rotation_account.RotationAccountSetup.prepare)."""
        reason = self.account.prepare(self.owner, self.settings, self._still_working)
        if reason:
            self.reasons.append(reason)

    # ---- store, verify, retire: what every way of replacing a token shares --------------

    def replace(self, plan):
        """Replace the current token, or create the first one (plan create or rotate), yielding
        each step's name: NewTokenRotation and InPlaceRotation are the two ways."""
        raise NotImplementedError

    def _keep_until_retired(self, tokens, managed):
        """Record ``tokens`` (but ``managed``) as active until retire_after_days after ``managed``."""
        retire_on = self.settings.retire_on(managed.get('created_at') or self.today.isoformat()).isoformat()
        self.awaiting = [dict(token_id=token['id'], expires_at=token.get('expires_at'), retire_on=retire_on)
                         for token in tokens if token['id'] != managed['id']]

    def planned_expiry(self):
        """The new token's expiry."""
        settings = self.settings
        return new_expiry(self.today, None, settings.expires_in_days, settings.rotate_before_days)

    def _took(self, issued):
        """Keep the new token's value in this object only; the record keeps a fingerprint."""
        self._new_value = issued.pop('token')
        self.issued = dict(issued, fingerprint=token_fingerprint(self._new_value))

    def store(self, value=None):
        """True: Mobb stored it; False: Mobb refused it (definite); None: the outcome is unknown."""
        try:
            self.mobb.update_scm_token(SCM_TYPE, self.settings.scm_url, value or self._new_value)
        except MobbUnknownOutcomeError as error:
            self.store_error = str(error)
            return None
        except MobbError as error:
            self.store_error = str(error)
            return False
        self.store_error = None
        return True

    def _holds_ours(self, holding):
        """True, False, or None when Mobb's answer cannot tell."""
        if holding.fingerprint is not None:
            return holding.fingerprint == self.issued['fingerprint']
        if not holding.stored:
            return False
        if self.stored_last_update is None:
            return None
        return holding.last_update == self.stored_last_update

    def _ask_mobb(self, attempts=None, wait_first=False):
        """Mobb's answers, ``verify_delay`` apart (``verify_retries`` + 1 of them unless
        told); an attempt Mobb did not answer yields None, its error in ``verify_error``."""
        settings = self.settings
        for attempt in range(settings.verify_retries + 1 if attempts is None else attempts):
            if attempt or wait_first:
                self.sleep(settings.verify_delay)
            try:
                self.latest = self.reader.mobb_holding()
            except MobbError as error:
                self.verify_error = str(error)
                yield None
            else:
                yield self.latest

    def verify(self, stored):
        """Ask Mobb until it connects with the token this run stored, within the retries.

        ``stored`` is store()'s answer; after an unknown one Mobb is only read, never written.
        """
        for holding in self._ask_mobb():
            if holding is None:
                continue
            if stored and self.stored_last_update is None and holding.fingerprint is None:
                # The first answer after a store Mobb confirmed: this last update is ours.
                self.stored_last_update = holding.last_update
            ours = self._holds_ours(holding)
            if ours and holding.connected:
                return
            if ours is False and stored and holding.fingerprint is not None and holding.connected:
                self._superseded()
            self.verify_error = holding.message or 'Mobb does not hold the new token'
        self._verify_failed(stored)

    def _superseded(self):
        """Mobb confirmed this run's store and now connects with another token: a run that
        overlaps this one stored after it. This run's token is unused and nobody else has
        its value, so it is revoked; the other run retires the rest."""
        try:
            self.owner.revoke(self.issued)
        except GitLabModuleError as error:
            self.warn("Revoking this run's unused token %s failed (%s); the next run revokes it"
                      % (self.issued['id'], error))
        else:
            self.revoked_ids.append(self.issued['id'])
        now = self._read_again()
        raise StepFailed(Outcome('superseded', 'Mobb stored the new token %s, then took the token of a run that '
                                 'overlaps this one, and connects with it: this run revoked its own unused token and '
                                 'left the others to that run%s' % (self.issued['id'], now.text())))

    def _verify_failed(self, stored):
        new_id = self.issued['id']
        now = self._read_again()
        kept = now.staying_text()
        if stored is None:
            raise StepFailed(Outcome('store_unknown', "Mobb's answer to storing the new token %s was lost (%s). Mobb "
                                     'may hold the new token now, so nothing was revoked: %s. Run again once Mobb '
                                     'connects; that run keeps one token and revokes the others.'
                                     % (new_id, self.store_error, kept)))
        ours = self._holds_ours(now.holding) if now.holding is not None else None
        holds = {True: 'Mobb holds the new token', False: 'Mobb no longer holds the new token'}.get(
            ours, 'Mobb may hold the new token')
        raise StepFailed(Outcome('verify_failed', 'Mobb stored the new token %s but did not connect with it after %d '
                                 'checks (%s). %s, so nothing was revoked: %s. Run again once '
                                 'Mobb connects; that run keeps one token and revokes the others.'
                                 % (new_id, self.settings.verify_retries + 1, self.verify_error, holds, kept)))

    def retire(self, tokens, owner=None):
        """Revoke ``tokens`` (read before this run issued anything: never a token an
        overlapping run may have in flight) once Mobb's latest answer proves it holds the
        token this run keeps."""
        keep = self.issued['id'] if self.issued else self.decision.current['id']
        tokens = [token for token in tokens if token['id'] != keep]
        if tokens and self.issued is not None:
            # An overlapping run may have revoked some of them since this run's read.
            try:
                still_active = {token['id'] for token in (owner or self.owner).list_tokens(self.settings.token_name)}
            except GitLabModuleError as error:
                self.warn('Could not list the tokens again before revoking (%s)' % error)
            else:
                tokens = [token for token in tokens if token['id'] in still_active]
        if not tokens:
            return
        proven = self._holds_ours(self.latest) if self.issued else self.latest.identity == 'managed'
        if not proven:
            raise StepFailed(Outcome('verify_failed', 'Mobb does not prove that it holds token %s, so nothing was '
                                     'revoked: %s stay active until a run can prove it.'
                                     % (keep, ', '.join(str(t['id']) for t in tokens))))
        failures = []
        for token in tokens:
            try:
                (owner or self.owner).revoke(token)
            except GitLabModuleError as error:
                failures.append((token['id'], str(error)))
            else:
                self.revoked_ids.append(token['id'])
        if self.issued is not None:
            self._after_retire()
        if failures:
            ids = ', '.join(str(token_id) for token_id, _error in failures)
            raise StepFailed(Outcome('retire_failed', 'Mobb now uses token %s and connects with it, but revoking the '
                                     'previous token(s) %s failed (%s). They stay active until the next run, which '
                                     'revokes them.' % (keep, ids, '; '.join(error for _id, error in failures))))

    def _after_retire(self):
        """A store of an overlapping run may have landed between the proof and the revokes,
        leaving Mobb with a token this run revoked: then store this run's token again."""
        try:
            holding = self.latest = self.reader.mobb_holding()
        except MobbError as error:
            self.warn('Could not ask Mobb once more after revoking (%s)' % error)
            return
        if holding.connected:
            return
        self.warn('Mobb lost its connection while this run revoked the old tokens; storing token %s again'
                  % self.issued['id'])
        if self.store():
            self.stored_last_update = None
            self.verify(True)

    # ---- messages -----------------------------------------------------------------------

    def _gitlab_still(self):
        current = self.reader.decide(self.tokens, force=False).current if self.tokens else None
        if current:
            return ': token %s (expires %s) is still active in GitLab.' % (current['id'], current['expires_at'])
        return '.'

    def _still_working(self):
        """After a failure that changed nothing in Mobb: which token works, read again now."""
        return self._read_again().text()

    def _read_again(self):
        """GitLab and Mobb read now (rotation_read.ServerReader.again), kept for the result."""
        self.now = self.reader.again(self.holding, self.decision.current if self.decision else None, self.issued,
                                     self.tokens)
        if self.now.holding is not None:
            self.latest = self.now.holding
        return self.now

    # ---- the result ---------------------------------------------------------------------

    def result(self, outcome):
        """The task's result for ``outcome`` (rotation_report.task_result): never a secret."""
        return task_result(self, outcome)

    def diff(self):
        """The task's diff (rotation_report.task_diff)."""
        return task_diff(self)


class NewTokenRotation(Rotation):
    """rotation_method create_new: a new token beside the old one, which keeps working until
    Mobb is proven to use the new one (and, with retire_after_days, that many days longer)."""

    def replace(self, plan):
        """Put a new token in Mobb in place of the current one (rotation_method create_new)."""
        self.issue()
        yield 'issue'
        stored = self.store()
        yield 'store'
        if stored is False:
            self.roll_back()
        self.verify(stored)
        yield 'verify'
        if self._overlaps():
            self._keep_until_retired(self.tokens, self.issued)
        else:
            self.retire(self.tokens)
            yield 'retire'
        self.outcome = Outcome('created' if plan == 'create' else 'rotated')

    def _overlaps(self):
        """Whether the old tokens stay active for retire_after_days: only when Mobb's answer
        shows its token, so that a later run can prove which one Mobb holds before revoking."""
        if not self.settings.retire_after_days or not any(t['id'] != self.issued['id'] for t in self.tokens):
            return False
        if self.latest.fingerprint is None:
            self.warn('retire_after_days needs Mobb to return the token it stores, so that a later run can prove '
                      'which one Mobb holds: the old token(s) are revoked now')
            return False
        return True

    def issue(self):
        settings = self.settings
        attributes = dict(name=settings.token_name, scopes=list(settings.scopes),
                          expires_at=self.planned_expiry().isoformat(), description=settings.description)
        if self.owner.has_access_level:
            attributes['access_level'] = settings.access_level
        try:
            issued = self.owner.create(attributes)
        except GitLabModuleError as error:
            if error.maybe_applied:
                raise StepFailed(Outcome('issue_unknown', 'GitLab may have issued a new token without answering (%s); '
                                         'if it did, that token is unused and the next run replaces it. Nothing else '
                                         'was changed%s' % (error, self._still_working())))
            raise StepFailed(Outcome('issue_refused', 'GitLab did not issue a new token (%s). Nothing was changed%s'
                                     % (error, self._still_working())))
        self._took(issued)

    def roll_back(self):
        """Mobb refused the new token: revoke it; the old one is untouched. A new token
        already revoked (an overlapping run read it and retired it) is not revoked again, and
        when Mobb connects with a token stored since this run's read, this run was overtaken."""
        new_id = self.issued['id']
        what = 'Mobb did not store the new token %s (%s).' % (new_id, self.store_error)
        now = self._read_again()
        if now.active(new_id) is False:
            if now.holding is not None and now.holding.connected and now.mobb_moved():
                raise StepFailed(Outcome('superseded', 'Mobb refused the new token %s, which was revoked meanwhile, '
                                         'not by this run (a run that overlaps this one retires the tokens it read), '
                                         'and Mobb took a token since this run read it. This run was overtaken and '
                                         'has nothing to undo%s' % (new_id, now.text())))
            raise StepFailed(Outcome('store_refused', '%s The new token was revoked meanwhile, not by this run, so '
                                     'there was nothing to roll back%s' % (what, now.text())))
        try:
            self.owner.revoke(self.issued)
        except GitLabModuleError as error:
            raise StepFailed(Outcome('rollback_failed', '%s Mobb was not changed%s Revoking the new token failed too '
                                     '(%s); the next run revokes it.' % (what, now.text(), error)))
        self.revoked_ids.append(new_id)
        raise StepFailed(Outcome('store_refused', '%s Rolled back: the new token is revoked%s'
                                 % (what, now.text())))


class InPlaceRotation(NewTokenRotation):
    """rotation_method rotate and self_rotate: GitLab revokes the old token as it issues the
    new one, so Mobb holds a dead token until the new one is stored."""

    def replace(self, plan):
        if self.settings.rotation_method == 'self_rotate':
            self.outcome = self.self_rotate(plan)
        elif plan == 'rotate':
            self.outcome = self.rotate_in_place()
        else:
            yield from super().replace(plan)

    def rotate_in_place(self):
        """rotation_method rotate: refuse while Mobb cannot connect (the store would fail
        too), rotate, then store with the retries the verification has."""
        settings, holding, current = self.settings, self.holding, self.decision.current
        if holding.stored and not holding.connected and not settings.force:
            raise StepFailed(Outcome('blocked', 'Mobb cannot reach %s%s and rotation_method rotate would revoke '
                                     'token %s at once, so nothing was changed. Fix the broker or the integration, '
                                     'or run with force (gitlab_token_rotation_force=true in the role) to rotate anyway.' % (
                                         settings.scm_url, ' (%s)' % holding.message if holding.message else '',
                                         current['id'])))
        self._rotate(current, self_rotate=False)
        self._store_rotated()
        self.retire(self.decision.duplicates)
        return Outcome('rotated')

    def self_rotate(self, plan):
        """rotation_method self_rotate: the kept token is the credential. Store it in Mobb
        first (which proves that Mobb takes a token for this server now), then rotate it."""
        settings, current = self.settings, self.decision.current
        if current is None:
            raise StepFailed(Outcome('blocked', "self_rotate rotates the token in gitlab_api_token, but its user has "
                                     'no active token named %s: set token_name to that token\'s name. Nothing was '
                                     'changed.' % settings.token_name))
        self._check_self_token(current)
        stored_current = False
        if self.holding.fingerprint == token_fingerprint(self._manager_token):
            if not self.holding.connected:
                self._wait_connected(current, 'Mobb holds the current token for %s but does not connect with it')
        elif not self.holding.connected or self.holding.identity in ('other', 'dead'):
            if not self.store(self._manager_token):
                raise StepFailed(Outcome('preflight_failed', 'Mobb did not take the current token for %s (%s), so '
                                         'it was not rotated: token %s is still active.'
                                         % (settings.scm_url, self.store_error, current['id'])))
            stored_current = True
            self._wait_connected(current, 'Mobb took the current token for %s but does not connect with it')
        if plan == 'store':
            return Outcome('stored' if stored_current else 'none')
        self._rotate(current, self_rotate=True)
        self._store_rotated()
        rotated_owner = token_owner_for(self.settings, self.token_client(self._new_value))
        self.retire(self.decision.duplicates, owner=rotated_owner)
        return Outcome('rotated')

    def _check_self_token(self, current):
        try:
            token = self.owner.self_token()
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', '%s. Nothing was changed.' % error))
        if token.get('id') != current['id']:
            raise StepFailed(Outcome('blocked', 'self_rotate rotates gitlab_api_token itself, but gitlab_api_token is '
                                     'token %s (%r), not the managed token %s: give the managed token as '
                                     'gitlab_api_token. Nothing was changed.'
                                     % (token.get('id'), token.get('name'), current['id'])))

    def _wait_connected(self, current, what):
        """Ask Mobb until it connects; else stop before rotating, saying ``what`` % url."""
        for holding in self._ask_mobb():
            if holding is None:
                continue
            if holding.connected:
                return
            self.verify_error = holding.message
        raise StepFailed(Outcome('preflight_failed', '%s (%s), so it was not rotated: token %s is still active.'
                                 % (what % self.settings.scm_url, self.verify_error, current['id'])))

    def _rotate(self, current, self_rotate):
        try:
            rotated = self.owner.rotate(current, self.planned_expiry(), self_rotate=self_rotate)
        except GitLabModuleError as error:
            if error.maybe_applied:
                raise StepFailed(Outcome('rotate_unknown', 'GitLab may have rotated the token without answering (%s). '
                                         'If it did, token %s is revoked, Mobb may hold a dead token, and the new '
                                         "token's value is lost: run again with force to issue and store a new one "
                                         "(with self_rotate the API token was that token: first make a new one in "
                                         "GitLab's UI)." % (error, current['id'])))
            raise StepFailed(Outcome('issue_refused', 'GitLab did not rotate the token (%s). Nothing was changed%s'
                                     % (error, self._still_working())))
        self.previous_id = current['id']
        self._took(rotated)

    def _store_rotated(self):
        """Mobb holds a revoked token until the rotated one is stored: store it, and store
        again (the same value) while Mobb neither holds it nor connects, within the retries."""
        settings = self.settings
        stored = self.store()
        if not stored:
            for holding in self._ask_mobb(attempts=settings.verify_retries, wait_first=True):
                if holding is not None and (self._holds_ours(holding) or holding.connected):
                    break
                stored = self.store()
                if stored:
                    break
        if not stored and not (self.latest and self._holds_ours(self.latest)):
            raise StepFailed(Outcome('in_place_store_failed', self._in_place_lost()))
        try:
            self.verify(stored)
        except StepFailed as failure:
            if failure.outcome.name == 'superseded':
                raise
            raise StepFailed(Outcome('in_place_verify_failed', 'GitLab rotated token %s into %s and Mobb stored it, '
                                     'but Mobb did not connect with it after %d checks (%s). Mobb holds the working '
                                     'token %s; run again once Mobb reports connected.'
                                     % (self.previous_id, self.issued['id'], settings.verify_retries + 1,
                                        self.verify_error, self.issued['id'])))

    def _in_place_lost(self):
        settings = self.settings
        text = ('GitLab rotated token %s into %s, revoking %s at once (rotation_method %s), but Mobb did not store the '
                'new token (%s). Mobb still holds the revoked token and cannot reach GitLab until a working token is '
                'stored.' % (self.previous_id, self.issued['id'], self.previous_id, settings.rotation_method,
                             self.store_error))
        if settings.rotation_method == 'rotate':
            return text + (" The new token's value existed only in this run: once Mobb and the broker answer, run "
                           'again with force (gitlab_token_rotation_force=true in the role), which rotates token %s '
                           'and stores the result.' % self.issued['id'])
        return text + (" The new token's value existed only in this run, and the token in gitlab_api_token is "
                       'revoked: create a personal access token named %s (scopes %s) in GitLab and run again with it.'
                       % (settings.token_name, ', '.join(settings.scopes)))
