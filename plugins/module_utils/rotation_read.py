# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one rotation reads, and never writes: GitLab's tokens with the managed name, and Mobb's
answer with the token it holds identified by GitLab.

The value of the token Mobb holds (when Mobb returns it) is shown to GitLab once, to ask
which token it is (gitlab_tokens.token_itself), and dropped; only its fingerprint stays.
"""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import ServiceAccounts
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import (
    ServiceAccountMissing,
    days_left,
    decide,
    is_active,
    token_itself,
    token_owner,
)
from ansible_collections.mobb.scm.plugins.module_utils.mobb import MobbError, MobbHolding
from ansible_collections.mobb.scm.plugins.module_utils.rotation_report import Outcome, ReadAgain, StepFailed
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import DESCRIPTION

SCM_TYPE = 'GitLab'


def token_owner_for(settings, client):
    """The managed token's owner (whose tokens, through which endpoints), read with ``client``."""
    accounts = ServiceAccounts(client, settings.group) if settings.token_type == 'service_account' else None
    return token_owner(client, settings.token_type, settings.user, settings.project, settings.group,
                       settings.service_account, accounts)


class ServerReader:
    """Reads GitLab (through ``owner``, a gitlab_tokens.TokenOwner) and Mobb for one token's
    settings. ``token_client(value)`` builds a GitLab client that authenticates with
    ``value``; ``account`` is the rotation's service-account setup, or None. ``first_status``,
    when given, answers the run's first Mobb read instead of a request of its own: it returns
    Mobb's connection_status answer (read for many servers at once, fleet.MobbBatches), or None
    to let this reader ask."""

    def __init__(self, settings, owner, mobb_client, token_client, account=None, first_status=None):
        self.settings = settings
        self.owner = owner
        self.mobb = mobb_client
        self.token_client = token_client
        self.account = account
        self.today = None
        self._first_status = first_status

    def tokens(self):
        """The active tokens with the name, on GitLab's date (``today``, from its answer);
        none for a service account this run will create."""
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
            tokens = []
        else:
            if self.account is not None:
                self.account.account = self.owner.account()
        self.today = self.owner.client.today()
        return [token for token in tokens if is_active(token, self.today)]

    def decide(self, tokens, force):
        """gitlab_tokens.decide() for the settings' name, scopes, access level and each token's
        threshold (Settings.threshold_for)."""
        settings = self.settings
        return decide(tokens, settings.token_name, settings.scopes, settings.access_level,
                      settings.threshold_for, force, self.today)

    def mobb_holding(self, identify_among=None):
        """Mobb's answer now (a MobbHolding). With ``identify_among`` (the active tokens with the
        name), GitLab is asked which token Mobb holds."""
        status = None
        if self._first_status is not None:
            first, self._first_status = self._first_status, None
            status = first(self.mobb)
        if status is None:
            status = self.mobb.connection_status(self.settings.scm_url, with_tokens=True)
        holding = MobbHolding(status, SCM_TYPE, self.settings.scm_url)
        value = holding.take_value()
        if identify_among is not None and value:
            self._identify(holding, value, identify_among)
        return holding

    def again(self, before, found, issued, read_tokens):
        """GitLab's active tokens with the name and Mobb's answer, read now (a ReadAgain): the
        only source of what a failure's message says is active or in Mobb. Mobb's token is
        identified among the tokens GitLab lists now, or ``read_tokens`` (the run's read) when
        GitLab does not answer."""
        now = ReadAgain(self.settings.token_name, before, found, issued)
        try:
            now.tokens = [token for token in self.owner.list_tokens(self.settings.token_name)
                          if is_active(token, self.today)]
        except ServiceAccountMissing:
            now.tokens = []
        except GitLabModuleError as error:
            now.gitlab_error = str(error)
        try:
            now.holding = self.mobb_holding(identify_among=read_tokens if now.tokens is None else now.tokens)
        except MobbError as error:
            now.mobb_error = str(error)
        return now

    def _identify(self, holding, value, tokens):
        """'managed' is the current one of ``tokens``; 'dead' a token GitLab refuses or lists
        as inactive; 'other' any other token, which another rotation may keep."""
        try:
            token = token_itself(self.token_client(value))
        except GitLabModuleError as error:
            holding.note = 'which token Mobb holds is unproven: %s' % error
            return
        if token is None:
            holding.identity = 'dead'
            holding.note = 'GitLab refuses the token Mobb holds (revoked, expired or unknown)'
            return
        holding.token = dict(id=token.get('id'), name=token.get('name'), expires_at=token.get('expires_at'),
                             scopes=list(token.get('scopes') or []),
                             days_left=days_left(token.get('expires_at'), self.today))
        current = self.decide(tokens, force=False).current
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
            if self._managed_elsewhere(token, tokens):
                holding.note = ('another mobb.scm rotation keeps token %s (%r, user %s) in Mobb, not the managed '
                                'token %s: two managed tokens feed this integration, and each run replaces the '
                                "other's; keep one of them"
                                % (token.get('id'), token.get('name'), token.get('user_id'),
                                   current['id'] if current else '(none)'))

    def _managed_elsewhere(self, token, own_tokens):
        """Whether a token GitLab describes is one another mobb.scm rotation keeps: not one of
        ``own_tokens`` (this rotation's tokens with the name: an older one is its own to
        retire), but issued with the collection's description, or with the name kept here."""
        if token.get('id') in {own['id'] for own in own_tokens}:
            return False
        description = token.get('description') or ''
        return description.endswith(DESCRIPTION.split('%s', 1)[1]) or token.get('name') == self.settings.token_name
