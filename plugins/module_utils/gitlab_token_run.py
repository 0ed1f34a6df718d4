# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The token modules (gitlab_personal_access_token, gitlab_project_access_token,
gitlab_group_access_token, gitlab_service_account_access_token): their shared options and
one run (check the input, read, decide, write, report) over the TokenOwner each builds."""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import (
    check_scopes,
    days_left,
    decide,
    diff_view,
    is_active,
    lifetime_problems,
    new_expiry,
    newest_first,
    parse_access_level,
    parse_date,
)


def token_argument_spec(default_scopes, with_access_level):
    """The options every token module shares; the module adds its owner option.

    doc_fragments/gitlab_token.py documents them, except scopes (its RESOURCE_SCOPES
    covers project and group tokens), rotation_method and access_level, which each
    module documents itself: change both places together.
    """
    spec = dict(
        name=dict(type='str', required=True),
        scopes=dict(type='list', elements='str', default=list(default_scopes)),
        description=dict(type='str'),
        expires_at=dict(type='str'),
        expires_in_days=dict(type='int'),
        rotate_before_days=dict(type='int', default=7),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        force=dict(type='bool', default=False),
        rotation_method=dict(type='str', default='create_new',
                             choices=['rotate', 'self_rotate', 'create_new']),
        token_id=dict(type='int'),
    )
    if with_access_level:
        spec['access_level'] = dict(type='raw', default='developer')
    return spec


TOKEN_MUTUALLY_EXCLUSIVE = [('expires_at', 'expires_in_days')]


class AccessTokenRun:
    """One run of a token module: check the input, read, decide, write, report."""

    def __init__(self, module, owner):
        self.module = module
        self.owner = owner
        self.params = module.params
        self.access_level = None

    def validate(self):
        """Checks that need no GitLab; failures here happen before any request."""
        params = self.params
        if not params['name'].strip():
            raise GitLabModuleError('name must not be empty')
        if params['token_id'] is not None and params['state'] != 'absent':
            raise GitLabModuleError('token_id only applies with state=absent')
        problems = lifetime_problems(params['expires_in_days'], params['rotate_before_days'])
        if problems:
            raise GitLabModuleError(problems[0])
        if params['expires_at']:
            parse_date(params['expires_at'], 'expires_at')
        if params['state'] == 'present':
            check_scopes(params['scopes'], self.owner.allowed_scopes, self.owner.noun)
            if self.owner.has_access_level:
                self.access_level = parse_access_level(params['access_level'])

    def run(self):
        self.validate()
        if self.params['state'] == 'absent':
            return self._absent()
        return self._present()

    def _present(self):
        params = self.params
        method = params['rotation_method']
        if method == 'self_rotate':
            tokens = [self._self_token()]
        else:
            tokens = self.owner.list_tokens(params['name'])
        today = self.owner.client.today()
        expiry = new_expiry(today, params['expires_at'], params['expires_in_days'],
                            params['rotate_before_days'])
        decision = decide(tokens, params['name'], params['scopes'], self.access_level,
                          params['rotate_before_days'], params['force'], today)
        current = decision.current
        if method == 'self_rotate' and decision.action == 'replaced':
            raise GitLabModuleError(
                '%s %s (%r) has scopes %s%s, and GitLab cannot change those in place; '
                'self_rotate keeps them: use rotation_method=rotate or create_new with a token '
                'allowed to create tokens, or ask for the scopes it has' % (
                    self.owner.noun, current['id'], current['name'], sorted(current['scopes']),
                    '' if current.get('access_level') is None
                    else ' and access level %s' % current['access_level']))
        if decision.duplicates:
            self.module.warn(
                'Other active %ss named %r exist besides the newest (id %s), which this run '
                'manages: ids %s. Revoke them with state=absent and token_id.' % (
                    self.owner.noun, params['name'], current['id'],
                    ', '.join(str(token['id']) for token in decision.duplicates)))

        issued, previous_active = self._apply(decision, method, expiry)
        if decision.action == 'none':
            outcome = current
        elif issued is not None:
            outcome = issued
        else:
            outcome = self._predicted(decision, method, expiry)
        result = dict(
            changed=decision.action != 'none',
            action=decision.action,
            token_id=outcome.get('id'),
            previous_token_id=current['id'] if current and decision.action != 'none' else None,
            previous_token_active=previous_active,
            name=params['name'],
            scopes=list(outcome.get('scopes') or []),
            expires_at=outcome.get('expires_at'),
            days_left=days_left(outcome.get('expires_at'), today),
            duplicate_token_ids=[token['id'] for token in decision.duplicates],
        )
        result.update(self.owner.result_fields(outcome))
        if issued is not None:
            result['token'] = issued['token']
            if not self.module.no_log:
                self.module.warn('This result holds the new token and the task does not set '
                                 'no_log: true, so Ansible may print it; set no_log on the task.')
        if self.module._diff:
            level = self.owner.has_access_level
            result['diff'] = dict(before=diff_view(current, level),
                                  after=diff_view(outcome, level))
        return result

    def _predicted(self, decision, method, expiry):
        """In check mode, the token GitLab would hold after the run (its id is unknown)."""
        if decision.action == 'rotated' and method != 'create_new':
            # GitLab's rotation keeps scopes, role and (project and group) bot user.
            return dict(decision.current, id=None, expires_at=expiry.isoformat())
        return dict(id=None, name=self.params['name'], expires_at=expiry.isoformat(),
                    scopes=list(self.params['scopes']), access_level=self.access_level,
                    user_id=None)

    def _self_token(self):
        token = self.owner.self_token()
        if token.get('name') != self.params['name']:
            raise GitLabModuleError(
                'rotation_method=self_rotate rotates the api_token itself, but api_token is the '
                'token named %r (id %s), not %r: give the token being managed as api_token'
                % (token.get('name'), token.get('id'), self.params['name']))
        self.owner.check_self_token(token)
        return token

    def _apply(self, decision, method, expiry):
        """Make the writes the decision needs; return (issued token or None, old still active)."""
        action, current = decision.action, decision.current
        if action == 'none':
            return None, False
        keeps_old = current is not None and method == 'create_new'
        if self.module.check_mode:
            return None, keeps_old
        if action == 'rotated' and method != 'create_new':
            return self.owner.rotate(current, expiry, self_rotate=method == 'self_rotate'), False
        attributes = dict(name=self.params['name'], scopes=list(self.params['scopes']),
                          expires_at=expiry.isoformat())
        if self.params['description'] is not None:
            attributes['description'] = self.params['description']
        if self.owner.has_access_level:
            attributes['access_level'] = self.access_level
        issued = self.owner.create(attributes)
        if action == 'replaced' and method == 'rotate':
            # Create first, then revoke: if the revoke fails the new token is still
            # returned, so the caller never loses both.
            try:
                self.owner.revoke(current)
            except GitLabModuleError as error:
                self.module.warn('The new token was issued but the old one is still active: %s' % error)
                return issued, True
        return issued, keeps_old

    def _absent(self):
        params = self.params
        tokens = self.owner.list_tokens(params['name'])
        today = self.owner.client.today()
        active = newest_first(token for token in tokens if is_active(token, today))
        if params['token_id'] is not None:
            active = [token for token in active if token['id'] == params['token_id']]
        revoked = []
        if not self.module.check_mode:
            for token in active:
                try:
                    self.owner.revoke(token)
                except GitLabModuleError as error:
                    if not revoked:
                        raise
                    raise GitLabModuleError('Revoked token(s) %s, then: %s' % (
                        ', '.join(str(token_id) for token_id in revoked), error))
                revoked.append(token['id'])
        first = active[0] if active else None
        result = dict(
            changed=bool(active),
            action='revoked' if active else 'none',
            token_id=first['id'] if first else None,
            revoked_token_ids=[token['id'] for token in active],
            previous_token_id=None,
            previous_token_active=False,
            name=params['name'],
            scopes=list(first['scopes']) if first else [],
            expires_at=first.get('expires_at') if first else None,
            days_left=days_left(first.get('expires_at'), today) if first else None,
            duplicate_token_ids=[],
        )
        result.update(self.owner.result_fields(first))
        if self.module._diff:
            level = self.owner.has_access_level
            result['diff'] = dict(before=diff_view(first, level),
                                  after=diff_view(first, level, active=False))
        return result
