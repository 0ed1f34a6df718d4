# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run of the module gitlab_service_account: the account, its name and memberships made
as declared (through ServiceAccountSetup), undeclared memberships purged, or the account
deleted; the result and diff the module returns."""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    Memberships, ServiceAccounts, ServiceAccountSetup, membership_view, parse_memberships, role_name)


def diff_memberships(entries):
    """Memberships as a diff shows them: target and role, sorted."""
    return sorted(({entry['kind']: entry['target'], 'role': role_name(entry['access_level'])}
                   for entry in entries), key=lambda view: sorted(view.items()))


class ServiceAccountRun:
    """One run of the module gitlab_service_account: check the input, read, write what
    differs, report."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.check_mode = module.check_mode
        self.setup = None
        # What this run changed so far, for a failure half way.
        self.done = []

    def validate(self):
        """Checks that need no GitLab, before any request; returns the declared memberships."""
        params = self.params
        username = params['username'].strip()
        if not username:
            raise GitLabModuleError('username must not be empty')
        if params['name'] is not None and not params['name'].strip():
            raise GitLabModuleError("name must not be empty: leave it out to keep GitLab's")
        memberships = parse_memberships(params['memberships']) if params['state'] == 'present' else []
        self.setup = ServiceAccountSetup(ServiceAccounts(self.client, params['group']), username, params['name'],
                                         self.check_mode)
        return memberships

    def run(self):
        memberships = self.validate()
        self.setup.found(self.setup.accounts.find(self.setup.username))
        try:
            if self.params['state'] == 'absent':
                return self._absent()
            return self._present(memberships)
        except GitLabModuleError as error:
            if not self.done:
                raise
            raise GitLabModuleError('%s; then: %s' % ('; '.join(self.done), error),
                                    exception=error.exception, maybe_applied=error.maybe_applied) from None

    # ---- present

    def _present(self, memberships):
        setup, purge = self.setup, self.params['purge_memberships']
        setup.find_targets(memberships)
        before = setup.account
        extras = []
        if purge:
            if before is None:
                self._require_admin()
            else:
                extras = self._undeclared(before)
        self._ensure_account()
        levels = self._ensure_memberships()
        if purge and before is None and not self.check_mode:
            extras = self._undeclared(setup.account)
        self._remove(extras)

        changed = setup.created or setup.renamed or bool(extras) or any(old != new for old, new in levels)
        result = dict(
            changed=changed,
            service_account=self._account_result(setup.account),
            memberships=[membership_view(membership, target, new)
                         for membership, target, (_old, new) in zip(setup.memberships, setup.targets, levels)],
            removed_memberships=[dict(extra, role=role_name(extra['access_level'])) for extra in extras],
        )
        if self.module._diff:
            result['diff'] = self._present_diff(before, levels, extras)
        return result

    def _require_admin(self):
        with self.client.errors("read the api_token's user (/user)"):
            self.client.auth()
        if not self.client.user.attributes.get('is_admin'):
            raise GitLabModuleError(
                "purge_memberships needs an administrator's api_token: only administrators can "
                "list a user's memberships (GET /users/:id/memberships); use one, or leave "
                'purge_memberships false')

    def _undeclared(self, account):
        declared = {(target['kind'], target['id']) for target in self.setup.targets}
        held = Memberships(self.client, account['id'], account['username']).all()
        return [entry for entry in held if (entry['kind'], entry['id']) not in declared]

    def _ensure_account(self):
        setup = self.setup
        if setup.account is None:
            setup.create()
            if setup.created and not self.check_mode:
                self.done.append('created %s' % setup.accounts.account_label(setup.account))
            return
        label = setup.accounts.account_label(setup.account)
        setup.rename()
        if setup.renamed and not self.check_mode:
            self.done.append('renamed %s to %r' % (label, setup.name))

    def _ensure_memberships(self):
        """(level before, level after) per declared membership."""
        levels = []
        for membership in self.setup.memberships:
            old, new = self.setup.give(membership)
            if old != new and not self.check_mode:
                self.done.append('gave it the %s role in %s %s' % (role_name(new), membership.kind, membership.ref))
            levels.append((old, new))
        return levels

    def _remove(self, extras):
        if self.check_mode or not extras:
            return
        account = self.setup.account
        memberships = Memberships(self.client, account['id'], account['username'])
        for extra in extras:
            memberships.remove(extra['kind'], extra['id'])
            self.done.append('removed its membership of %s %s' % (extra['kind'], extra['name']))

    def _account_result(self, account):
        if account is None:
            return None
        return dict(account, scope='instance' if self.params['group'] is None else 'group',
                    group=self.params['group'])

    def _present_diff(self, before, levels, extras):
        after, targets = self.setup.account, self.setup.targets
        held_before = [dict(kind=target['kind'], target=target['path'], access_level=old)
                       for target, (old, _new) in zip(targets, levels) if old is not None]
        held_before += [dict(kind=extra['kind'], target=extra['name'], access_level=extra['access_level'])
                        for extra in extras]
        held_after = [dict(kind=target['kind'], target=target['path'], access_level=new)
                      for target, (_old, new) in zip(targets, levels)]
        return dict(
            before={} if before is None else dict(username=before['username'], name=before['name'],
                                                  memberships=diff_memberships(held_before)),
            after=dict(username=after['username'], name=after['name'],
                       memberships=diff_memberships(held_after)))

    # ---- absent

    def _absent(self):
        account = self.setup.account
        if account is not None and not self.check_mode:
            self.setup.accounts.delete(account, hard_delete=self.params['hard_delete'])
        result = dict(changed=account is not None, service_account=self._account_result(account),
                      memberships=[], removed_memberships=[])
        if self.module._diff:
            result['diff'] = dict(
                before={} if account is None else dict(username=account['username'], name=account['name']),
                after={})
        return result
