# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service account of a service_account token, made ready before the rotation issues its
token: gitlab_service_accounts.ServiceAccountSetup (with its race handling), with the
rotation's messages and its result's ``service_account``. No secret here.
"""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    ServiceAccountSetup,
    TargetsMissing,
    role_name,
)
from ansible_collections.mobb.scm.plugins.module_utils.rotation_report import Outcome, StepFailed
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import membership_label


class RotationAccountSetup(ServiceAccountSetup):
    """The account the rotation ensures, and how it reports what it found and did."""

    def prepare(self, owner, settings, still_working):
        """Before the token is issued: the account exists and is a member where Mobb needs it.
        What is missing is created with service_account_create (in check mode only predicted:
        then the reason is returned); without it the run stops here, having written nothing.
        Each membership's project or group is looked up first, even in check mode: an unknown
        one stops the run before the account is created. ``still_working()`` is the end of a
        failure's message: which token works, read again."""
        self._find_targets(settings, still_working)
        try:
            self.find_lacking()
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', 'Could not read the memberships of %s (%s). Nothing was '
                                     'changed%s' % (owner.label(), error, still_working())))
        if self.lacking and not settings.service_account_create:
            raise StepFailed(Outcome('membership_missing', '%s lacks %s, which Mobb needs to reach them, so no token '
                                     'was issued. Nothing was changed%s Add the membership in GitLab (or with '
                                     'mobb.scm.gitlab_service_account), or set service_account_create: true (in '
                                     'the role, gitlab_token_rotation_service_account_create) to let the run add it.'
                                     % (owner.label(), self._lacking_text(), still_working())))
        if self.check_mode:
            self.predict()
            return '%s would be given %s' % (owner.label(), self._lacking_text()) if self.lacking else None
        if self.missing:
            self._create(owner, still_working)
        for membership, _level in self.lacking:
            try:
                self.give(membership)
            except GitLabModuleError as error:
                raise StepFailed(Outcome('account_setup_failed', 'Could not give %s %s (%s), so no token was issued%s'
                                         % (owner.label(), membership_label(membership), error, still_working())))
        return None

    def _find_targets(self, settings, still_working):
        """The declared memberships with the ids of their projects and groups."""
        try:
            self.find_targets(settings.memberships, option='service_account_memberships')
        except TargetsMissing as error:
            raise StepFailed(Outcome('target_missing', '%s (in the role, gitlab_token_rotation_service_account_'
                                     'memberships). No token was issued; nothing was changed%s'
                                     % (error, still_working())))
        except GitLabModuleError as error:
            raise StepFailed(Outcome('read_failed', '%s. Nothing was changed%s' % (error, still_working())))

    def _lacking_text(self):
        return '; '.join('%s (%s)' % (membership_label(membership),
                                      'not a member' if level is None else 'it has %s' % role_name(level))
                         for membership, level in self.lacking)

    def _create(self, owner, still_working):
        try:
            self.create()
        except GitLabModuleError as error:
            advice = ' GitLab may have created it: the next run finds it.' if error.maybe_applied else ''
            raise StepFailed(Outcome('account_setup_failed', 'Could not create %s (%s), so no token was issued.%s '
                                     'Nothing else was changed%s' % (owner.label(), error, advice, still_working())))
        owner.found(self.account)

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
