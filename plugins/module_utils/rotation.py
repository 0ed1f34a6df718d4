# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safe rotation of the GitLab token Mobb holds for one GitLab server, in one process.

``Settings`` checks one token's settings before any request; ``Rotation`` reads GitLab
and Mobb, plans with the token modules' own ``decide()``, and (mode rotate) issues the
new token, stores it in Mobb, verifies, and revokes the old ones; ``Outcome`` is what
happened, named, with a message that says what still works. The new token's value lives
only in ``Rotation._new_value`` for the length of one run and is never part of an
Outcome. Every network answer may be lost, every run may overlap another one:

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
  comes from GitLab and Mobb read again then (``Rotation._read_again``), never from this
  run's earlier read; a new token that Mobb refused because it was revoked meanwhile (an
  overlapping run retired it) is not this run's to roll back, and when Mobb connects with
  a token stored since this run's read, the run was overtaken (``superseded``), not failed.
"""

from __future__ import annotations

import time

try:
    import gitlab
    import requests
except ImportError:
    pass  # the action reports the missing library before building a Rotation

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError, connect
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import (
    ServiceAccountMissing,
    days_left,
    decide,
    is_active,
    new_expiry,
    token_owner,
)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    ServiceAccounts,
    ServiceAccountSetup,
    TargetsMissing,
    role_name,
)
from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    MobbClient,
    MobbError,
    MobbUnknownOutcomeError,
    broker_host_for,
    find_scm_config,
    token_fingerprint,
)
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    DESCRIPTION,
    GITLAB_NAMES,
    MOBB_NAMES,
    Settings,
    SettingsError,
    membership_label,
)

SCM_TYPE = 'GitLab'


class RotationAccountSetup(ServiceAccountSetup):
    """The service account of a service_account token, ensured as the rotation needs it, and
    how the rotation reports what it found and did; no secret."""

    def written(self):
        """What this run changed about the account, as a sentence ('' when nothing)."""
        if self.predicted:
            return ''
        done = []
        if self.created and self.account:
            done.append("created service account '%s' (id %s)" % (self.account['username'], self.account['id']))
        if self.added:
            done.append('gave it %s' % ', '.join(membership_label(membership) for membership in self.added))
        return ('This run %s, which stays.' % ' and '.join(done)) if done else ''

    def view(self, settings):
        """The result's ``service_account``."""
        levels = dict(self.lacking)
        return dict(username=settings.service_account, group=settings.group,
                    id=self.account['id'] if self.account else None, created=self.created,
                    memberships_added=[{membership.kind: membership.ref, 'access_level': membership.access_level,
                                        'previous_access_level': levels.get(membership)}
                                       for membership in self.added])


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
    """GitLab's active tokens with the name and Mobb's answer, read again after a failure;
    ``tokens`` or ``holding`` is None when that side did not answer (its error beside it)."""

    def __init__(self):
        self.tokens = None
        self.gitlab_error = None
        self.holding = None
        self.mobb_error = None

    def active(self, token_id):
        """True, False, or None when GitLab did not answer."""
        return None if self.tokens is None else any(token['id'] == token_id for token in self.tokens)


class MobbHolding:
    """What Mobb holds for the server, from one answer: never the token itself."""

    def __init__(self, status, scm_url):
        configs = find_scm_config(status['me'].get('scmConfigs'), SCM_TYPE, scm_url)
        config = configs[0] if configs else {}
        self.connected = bool(status['connected'])
        self.message = status['message']
        self.stored = bool(config.get('isTokenAvailable'))
        self.last_update = config.get('tokenLastUpdate')
        value = config.get('token') if self.stored else None
        self.fingerprint = token_fingerprint(value)
        # The value is handed once to Rotation._identify, then dropped.
        self._value = value
        self.brokered = broker_host_for(status['me'], scm_url) is not None
        # managed | other | dead | unproven | none (set by Rotation._identify)
        self.identity = 'unproven' if self.stored else 'none'
        self.token = None
        self.note = None
        if self.stored and not value:
            self.note = 'Mobb does not return the stored token, so which token it holds is unproven'

    def take_value(self):
        value, self._value = self._value, None
        return value

    def view(self):
        """The result's ``mobb_token``: which token Mobb holds, never its value."""
        token = self.token or {}
        return dict(identity=self.identity, fingerprint=self.fingerprint, token_last_update=self.last_update,
                    token_id=token.get('id'), name=token.get('name'), expires_at=token.get('expires_at'),
                    days_left=token.get('days_left'), scopes=token.get('scopes'), note=self.note)


class Rotation:
    """One token's run: read, plan, then (mode rotate) issue, store, verify, retire."""

    def __init__(self, settings, gitlab_client, mobb_client, token_client_factory, manager_token=None,
                 check_mode=False, sleep=time.sleep, warn=None):
        """``token_client_factory(value)`` builds a GitLab client that authenticates with
        ``value`` (the token Mobb holds, or a freshly issued one), with the same TLS
        settings. ``manager_token`` is the value of ``gitlab_client``'s credential, needed
        only by self_rotate, which stores it in Mobb before rotating it."""
        self.settings = settings
        self.gitlab = gitlab_client
        self.mobb = mobb_client
        self.token_client = token_client_factory
        self._manager_token = manager_token
        self.check_mode = check_mode
        self.sleep = sleep
        self.warn = warn or (lambda message: None)
        self.owner = self._owner_through(gitlab_client) if gitlab_client is not None else None
        self.account = None
        if settings.token_type == 'service_account':
            self.account = RotationAccountSetup(self.owner and self.owner.accounts, settings.service_account,
                                                settings.service_account_name, check_mode, inherited=True)
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
        self.now = None             # ReadAgain, once a failure read GitLab and Mobb again
        self.outcome = None

    @classmethod
    def from_params(cls, params, check_mode=False, warn=None):
        """The rotation for ``params`` validated against server_token_options.ARGUMENT_SPEC
        (environment fallbacks applied), with its GitLab and Mobb clients, built as the
        modules build theirs. Unusable settings build no client: run() reports them."""
        settings = Settings(params)
        if settings.problems:
            return cls(settings, None, None, None, check_mode=check_mode, warn=warn)
        gitlab_params = {name: params[option] for option, name in GITLAB_NAMES.items()}
        gitlab_params['api_url'] = settings.gitlab_url
        mobb_params = {name: params[option] for option, name in MOBB_NAMES.items()}
        try:
            gitlab_client, credentials = connect(gitlab_params)
            # The connection check through Mobb's REST endpoint when given: a choice of the
            # client, so read and verify ask the same way.
            mobb_client = MobbClient(warn=warn, rest_url=params.get('mobb_rest_url'), **mobb_params)
        except (GitLabModuleError, MobbError) as error:
            settings.problems.append(str(error))
            return cls(settings, None, None, None, check_mode=check_mode, warn=warn)

        def token_client(value):
            # The kept or a new token, never the manager's other credential kinds beside it.
            return connect(dict(gitlab_params, api_token=value, api_oauth_token=None, api_job_token=None))[0]

        return cls(settings, gitlab_client, mobb_client, token_client, manager_token=credentials[0],
                   check_mode=check_mode, warn=warn)

    def _owner_through(self, client):
        """The kept token's owner (whose tokens, through which endpoints), read with ``client``."""
        settings = self.settings
        accounts = ServiceAccounts(client, settings.group) if settings.token_type == 'service_account' else None
        return token_owner(client, settings.token_type, settings.user, settings.project, settings.group,
                           settings.service_account, accounts)

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
            elif self.settings.rotation_method == 'self_rotate':
                self.outcome = self.self_rotate(plan)
            elif self.settings.rotation_method == 'rotate' and plan == 'rotate':
                self.outcome = self.rotate_in_place()
            else:
                yield from self.create_new(plan)
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
            tokens = self._list_tokens()
            self.today = self.gitlab.today()
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', '%s. Nothing was changed; Mobb was not asked.' % error))
        self.tokens = [token for token in tokens if is_active(token, self.today)]
        try:
            self.holding = self.latest = self._read_mobb(identify=True)
        except MobbError as error:
            raise StepFailed(Outcome('read_failed', 'Could not ask Mobb about %s (%s). Nothing was changed%s'
                                     % (self.settings.scm_url, error, self._gitlab_still())))

    def _list_tokens(self):
        """The tokens with the name; none for a service account this run will create."""
        try:
            tokens = self.owner.list_tokens(self.settings.token_name)
        except ServiceAccountMissing as error:
            if not self.settings.service_account_create:
                raise StepFailed(Outcome('account_missing', '%s. Nothing was changed; Mobb was not asked. Set '
                                         'service_account_create: true (in the role, '
                                         'gitlab_token_rotation_service_account_create) to let the run create it '
                                         'with its memberships, or create it with mobb.scm.gitlab_service_account.'
                                         % error.what))
            self.account.missing = True
            return []
        if self.account is not None:
            self.account.account = self.owner.account()
        return tokens

    def _read_mobb(self, identify=False, tokens=None):
        """Mobb's answer now; the stored token's value, if Mobb returns it, is only hashed
        (and, with ``identify``, shown to GitLab once), never kept."""
        status = self.mobb.connection_status(self.settings.scm_url, with_tokens=True)
        holding = MobbHolding(status, self.settings.scm_url)
        value = holding.take_value()
        if identify:
            self._identify(holding, value, tokens)
        return holding

    def _identify(self, holding, value, tokens=None):
        """Ask GitLab which token Mobb holds: GET /personal_access_tokens/self with it;
        'managed' is the current one of ``tokens`` (default: the run's read)."""
        if not value:
            return
        try:
            token = self.token_client(value).personal_access_tokens.get('self').asdict()
        except gitlab.exceptions.GitlabAuthenticationError:
            holding.identity = 'dead'
            holding.note = 'GitLab refuses the token Mobb holds (revoked, expired or unknown)'
            return
        except (gitlab.exceptions.GitlabError, requests.exceptions.RequestException) as error:
            holding.note = 'which token Mobb holds is unproven: GitLab did not say (%s)' % type(error).__name__
            return
        holding.token = dict(id=token.get('id'), name=token.get('name'), expires_at=token.get('expires_at'),
                             scopes=list(token.get('scopes') or []),
                             days_left=days_left(token.get('expires_at'), self.today))
        current = self._decide(force=False, tokens=tokens).current
        if current is not None and token.get('id') == current['id']:
            holding.identity = 'managed'
        elif not is_active(token, self.today):
            holding.identity = 'dead'
            holding.note = 'the token Mobb holds (id %s) is no longer active' % token.get('id')
        else:
            holding.identity = 'other'
            holding.note = 'Mobb holds token %s (%r, expires %s), not the managed token %s' % (
                token.get('id'), token.get('name'), token.get('expires_at') or 'never',
                current['id'] if current else '(none)')
            if self._managed_elsewhere(token, self.tokens if tokens is None else tokens):
                holding.note = ('another mobb.scm rotation keeps token %s (%r, user %s) in Mobb, not the managed '
                                'token %s: two managed tokens feed this integration, and each run replaces the '
                                "other's; keep one of them"
                                % (token.get('id'), token.get('name'), token.get('user_id'),
                                   current['id'] if current else '(none)'))

    def _managed_elsewhere(self, token, own_tokens):
        """Whether a token GitLab describes (personal_access_tokens/self) is one another mobb.scm rotation
        keeps: not one of ``own_tokens`` (this rotation's tokens with the name: an older one is its own to
        retire), but issued with the collection's description, or with the name this rotation keeps."""
        if token.get('id') in {own['id'] for own in own_tokens}:
            return False
        description = token.get('description') or ''
        return description.endswith(DESCRIPTION.split('%s', 1)[1]) or token.get('name') == self.settings.token_name

    def _decide(self, force, tokens=None):
        settings = self.settings
        return decide(self.tokens if tokens is None else tokens, settings.token_name, settings.scopes,
                      settings.access_level,
                      settings.threshold_days, force, self.today)

    def plan(self):
        """'none', 'create', 'rotate', 'store' (self_rotate gives Mobb the current token) or
        'retire' (Mobb holds the managed token; older ones with the name are revoked)."""
        settings, holding = self.settings, self.holding
        self.decision = decision = self._decide(force=settings.force and settings.mode == 'rotate')
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
            return 'retire' if decision.duplicates and holding.identity == 'managed' else 'none'
        if settings.rotation_method == 'self_rotate' and not token_reasons and decision.current:
            return 'store'
        return 'rotate' if decision.current else 'create'

    # ---- the service account of a service_account token --------------------------------

    def prepare_account(self):
        """Before a service account's token is issued: the account exists and is a member
        where Mobb needs it. What is missing is created with service_account_create (in
        check mode only predicted); without it the run stops here, having written nothing.
        Each membership's project or group is looked up first, even in check mode: an unknown
        one stops the run before the account is created."""
        settings, setup = self.settings, self.account
        self._find_targets()
        try:
            setup.find_lacking()
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', 'Could not read the memberships of %s (%s). Nothing was '
                                     'changed%s' % (self.owner.label(), error, self._still_working())))
        if setup.lacking and not settings.service_account_create:
            raise StepFailed(Outcome('membership_missing', '%s lacks %s, which Mobb needs to reach them, so no token '
                                     'was issued. Nothing was changed%s Add the membership in GitLab (or with '
                                     'mobb.scm.gitlab_service_account), or set service_account_create: true (in '
                                     'the role, gitlab_token_rotation_service_account_create) to let the run add it.'
                                     % (self.owner.label(), self._lacking_text(), self._still_working())))
        if self.check_mode:
            setup.predict()
            if setup.lacking:
                self.reasons.append('%s would be given %s' % (self.owner.label(), self._lacking_text()))
            return
        if setup.missing:
            self._create_account()
        for membership, _level in setup.lacking:
            try:
                setup.give(membership)
            except GitLabModuleError as error:
                raise StepFailed(Outcome('account_setup_failed', 'Could not give %s %s (%s), so no token was issued%s'
                                         % (self.owner.label(), membership_label(membership), error,
                                            self._still_working())))

    def _find_targets(self):
        """The declared memberships with the ids of their projects and groups."""
        try:
            self.account.find_targets(self.settings.memberships, option='service_account_memberships')
        except TargetsMissing as error:
            raise StepFailed(Outcome('target_missing', '%s (in the role, gitlab_token_rotation_service_account_'
                                     'memberships). No token was issued; nothing was changed%s'
                                     % (error, self._still_working())))
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', '%s. Nothing was changed%s' % (error, self._still_working())))

    def _lacking_text(self):
        return '; '.join('%s (%s)' % (membership_label(membership),
                                      'not a member' if level is None else 'it has %s' % role_name(level))
                         for membership, level in self.account.lacking)

    def _create_account(self):
        try:
            self.account.create()
        except GitLabModuleError as error:
            advice = ' GitLab may have created it: the next run finds it.' if error.maybe_applied else ''
            raise StepFailed(Outcome('account_setup_failed', 'Could not create %s (%s), so no token was issued.%s '
                                     'Nothing else was changed%s'
                                     % (self.owner.label(), error, advice, self._still_working())))
        self.owner.found(self.account.account)

    # ---- create_new: issue, store, verify, retire ---------------------------------------

    def create_new(self, plan):
        self.issue()
        yield 'issue'
        stored = self.store()
        yield 'store'
        if stored is False:
            self.roll_back()
        self.verify(stored)
        yield 'verify'
        self.retire(self.tokens)
        yield 'retire'
        self.outcome = Outcome('created' if plan == 'create' else 'rotated')

    def _expiry(self):
        settings = self.settings
        return new_expiry(self.today, None, settings.expires_in_days, settings.rotate_before_days)

    def issue(self):
        settings = self.settings
        attributes = dict(name=settings.token_name, scopes=list(settings.scopes), expires_at=self._expiry().isoformat(),
                          description=settings.description)
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

    def roll_back(self):
        """Mobb refused the new token: revoke it; the old one is untouched. A new token
        already revoked (an overlapping run read it and retired it) is not revoked again, and
        when Mobb connects with a token stored since this run's read, this run was overtaken."""
        new_id = self.issued['id']
        what = 'Mobb did not store the new token %s (%s).' % (new_id, self.store_error)
        now = self._read_again()
        if now.active(new_id) is False:
            if now.holding is not None and now.holding.connected and self._mobb_moved(now.holding):
                raise StepFailed(Outcome('superseded', 'Mobb refused the new token %s, which was revoked meanwhile, '
                                         'not by this run (a run that overlaps this one retires the tokens it read), '
                                         'and Mobb took a token since this run read it. This run was overtaken and '
                                         'has nothing to undo%s' % (new_id, self._now_text(now))))
            raise StepFailed(Outcome('store_refused', '%s The new token was revoked meanwhile, not by this run, so '
                                     'there was nothing to roll back%s' % (what, self._now_text(now))))
        try:
            self.owner.revoke(self.issued)
        except GitLabModuleError as error:
            raise StepFailed(Outcome('rollback_failed', '%s Mobb was not changed%s Revoking the new token failed too '
                                     '(%s); the next run revokes it.' % (what, self._now_text(now), error)))
        self.revoked_ids.append(new_id)
        raise StepFailed(Outcome('store_refused', '%s Rolled back: the new token is revoked%s'
                                 % (what, self._now_text(now))))

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
                self.latest = self._read_mobb()
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
                                 'left the others to that run%s' % (self.issued['id'], self._now_text(now))))

    def _verify_failed(self, stored):
        new_id = self.issued['id']
        now = self._read_again()
        ids = sorted((token['id'] for token in now.tokens or []), key=lambda token_id: (token_id != new_id, token_id))
        if now.tokens is None:
            kept = 'GitLab did not answer when asked again (%s)' % now.gitlab_error
        elif len(ids) > 1:
            kept = 'tokens %s stay active' % ' and '.join(str(token_id) for token_id in ids)
        elif ids:
            kept = 'token %s stays active' % ids[0]
        else:
            kept = 'GitLab lists no active token named %s' % self.settings.token_name
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
            holding = self.latest = self._read_mobb()
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

    # ---- in place: GitLab revokes the old token as it issues the new one -----------------

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
        self.retire(self.decision.duplicates, owner=self._owner_through(self.token_client(self._new_value)))
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
            rotated = self.owner.rotate(current, self._expiry(), self_rotate=self_rotate)
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

    # ---- messages -----------------------------------------------------------------------

    def _gitlab_still(self):
        current = self._decide(force=False).current if self.tokens else None
        if current:
            return ': token %s (expires %s) is still active in GitLab.' % (current['id'], current['expires_at'])
        return '.'

    def _still_working(self):
        """After a failure that changed nothing in Mobb: which token works, read again now."""
        return self._now_text(self._read_again())

    def _read_again(self):
        """GitLab's active tokens with the name and Mobb's state (which token it holds), read
        now: the only source of what a failure's message says is active or in Mobb."""
        now = self.now = ReadAgain()
        try:
            now.tokens = [token for token in self.owner.list_tokens(self.settings.token_name)
                          if is_active(token, self.today)]
        except ServiceAccountMissing:
            now.tokens = []
        except GitLabModuleError as error:
            now.gitlab_error = str(error)
        try:
            now.holding = self.latest = self._read_mobb(identify=True, tokens=now.tokens)
        except MobbError as error:
            now.mobb_error = str(error)
        return now

    def _mobb_moved(self, holding):
        """Whether Mobb's token changed since this run's read (a store of another run landed)."""
        before = self.holding
        if holding.fingerprint is not None and before.fingerprint is not None:
            return holding.fingerprint != before.fingerprint
        return holding.stored != before.stored or holding.last_update != before.last_update

    def _mobb_token(self, now):
        """The token Mobb holds now as {id, expires_at, active}: identified by GitLab now, or,
        when Mobb has not been written since this run's read, the one that read identified;
        None when Mobb's answer cannot tell."""
        holding = now.holding
        if holding.token is not None:
            return dict(holding.token, active=holding.identity != 'dead')
        if self.holding is None or self.holding.token is None or self._mobb_moved(holding):
            return None
        known = self.holding.token
        return dict(known, active=False if holding.identity == 'dead' else now.active(known['id']))

    def _gitlab_text(self, now, found):
        """What GitLab lists as active now, beside ``found`` (the token this run's read kept)."""
        if now.tokens is None:
            return 'GitLab did not answer when asked again (%s)' % now.gitlab_error
        issued_id = self.issued['id'] if self.issued else None
        if found and now.active(found['id']):
            return 'token %s (expires %s) is still active' % (found['id'], found['expires_at'])
        others = [token for token in now.tokens if token['id'] != issued_id]
        lost = 'token %s is no longer active, and ' % found['id'] if found else ''
        if not others:
            return '%sGitLab %s no active token named %s' % (lost, 'has' if found else 'had', self.settings.token_name)
        listed = ', '.join('token %s (expires %s)' % (token['id'], token['expires_at']) for token in others)
        return '%sGitLab lists %s as active' % (lost, listed)

    def _now_text(self, now):
        """': <which token is active and which one Mobb holds, read again>.'"""
        found = self.decision.current if self.decision else None
        gitlab_text = self._gitlab_text(now, found)
        holding = now.holding
        if holding is None:
            return ': %s; Mobb did not answer when asked again (%s).' % (gitlab_text, now.mobb_error)
        if holding.connected:
            reach = 'which connects with it'
        else:
            reach = 'although Mobb cannot reach GitLab right now (%s)' % (holding.message or 'no answer')
        if not holding.stored:
            return ': %s, and Mobb keeps no token.' % gitlab_text
        token = self._mobb_token(now)
        if token is None:
            held = 'the token it held' if not self._mobb_moved(holding) else 'a token stored since this run read it'
            return ': %s; Mobb keeps %s (it does not show which), %s.' % (gitlab_text, held, reach)
        if found and token['id'] == found['id'] and token['active']:
            return ': token %s (expires %s) is still active and still in Mobb, %s.' % (
                found['id'], found['expires_at'], reach)
        state = {True: 'active', False: 'no longer active'}.get(token['active'], 'its state unknown')
        return ': %s; Mobb holds token %s (expires %s), %s, %s.' % (
            gitlab_text, token['id'], token['expires_at'], state, reach)

    # ---- the result ---------------------------------------------------------------------

    def result(self, outcome):
        """The task's result for ``outcome``: ids, expiry, fingerprints, never a secret."""
        settings = self.settings
        current = self.decision.current if self.decision else None
        kept = self.issued if self.issued is not None and self.issued['id'] not in self.revoked_ids else current
        if self.now is not None and self.now.tokens is not None:
            kept = self._kept_now(current)
        latest = self.latest
        reasons = list(self.reasons)
        problems = []
        if settings.mode == 'check':
            problems = reasons + ([outcome.msg] if outcome.failed else [])
        changed = (bool(self.issued or self.revoked_ids) or outcome.name in ('stored', 'retired')
                   or outcome.name.startswith('would_') or bool(self.account and self.account.written()))
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
            check_mode=self.check_mode,
            reasons=reasons,
            problems=problems,
            token_id=kept.get('id') if kept else None,
            expires_at=kept.get('expires_at') if kept else None,
            days_left=days_left(kept.get('expires_at'), self.today) if kept and self.today else None,
            new_token_fingerprint=self.issued['fingerprint'] if self.issued else None,
            previous_token_id=(self.previous_id or (current['id'] if current else None)) if self.issued else None,
            revoked_token_ids=list(self.revoked_ids),
            duplicate_token_ids=[token['id'] for token in self.decision.duplicates] if self.decision else [],
            connected=latest.connected if latest else None,
            connection_status=('OK' if latest.connected else 'Error') if latest else None,
            connection_message=latest.message if latest else None,
            brokered=latest.brokered if latest else None,
            token_last_update=latest.last_update if latest else None,
            mobb_token=self.holding.view() if self.holding else None,
            service_account=self.account.view(settings) if self.account else None,
            failed=outcome.failed,
            msg=('%s at %s: %s' % (settings.label, settings.gitlab_url, outcome.msg)) if outcome.failed else '',
        )

    def _kept_now(self, current):
        """The token the result names after a failure read GitLab again: this run's new token
        or the one its read kept, if still active, else the active one Mobb holds; or none."""
        now = self.now
        ours = self.issued if self.issued is not None and self.issued['id'] not in self.revoked_ids else None
        wanted = [token['id'] for token in (ours, current) if token]
        held = self._mobb_token(now) if now.holding is not None else None
        if held and held['active']:
            wanted.append(held['id'])
        active = {token['id']: token for token in now.tokens}
        return next((active[token_id] for token_id in wanted if token_id in active), None)

    def diff(self):
        """Before and after: the kept token's id and expiry, and Mobb's fingerprint."""
        current = self.decision.current
        before = dict(token_id=current['id'] if current else None,
                      expires_at=current['expires_at'] if current else None,
                      mobb_fingerprint=self.holding.fingerprint if self.holding else None)
        if self.issued is not None:
            after = dict(token_id=self.issued['id'], expires_at=self.issued['expires_at'],
                         mobb_fingerprint=self.issued['fingerprint'])
        elif self.check_mode and self.reasons:
            after = dict(token_id='(new)', expires_at=self._expiry().isoformat(), mobb_fingerprint='(new)')
        else:
            after = before
        return dict(before=before, after=after)
