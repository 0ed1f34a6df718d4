#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_service_account_access_token
short_description: Ensure a personal access token of a GitLab service account exists and is fresh, or revoke it
version_added: 0.2.0
description:
  - Keeps one active personal access token with a given name for a GitLab service account, with the
    wanted scopes and an expiry that is never closer than O(rotate_before_days).
  - A service account is a GitLab user that uses no seat and cannot sign in; it authenticates only
    with its personal access tokens, and reaches only the projects and groups it is a member of.
    An B(instance) service account (no O(group)) is managed by administrators; a B(group) service
    account belongs to a top-level group (O(group)), whose B(Owner) manages its tokens without an
    administrator. Create the account and its memberships with M(mobb.scm.gitlab_service_account).
  - A run changes nothing, and returns no secret, while such a token exists. When it is
    within O(rotate_before_days) of expiry (or O(force=true)) the token is rotated. By
    default (O(rotation_method=create_new)) a new token is issued and the old one stays
    active until it is revoked. When it is missing, expired or was revoked, a new one is
    created. When its scopes differ, GitLab cannot change them in place, so a replacement
    is issued (RV(action=replaced)).
  - Every token this module issues or rotates gets an explicit expiry date. GitLab otherwise gives a
    rotated service-account token one week (when the instance enforces expiry) or no expiry at all.
  - The new token value is returned once, in RV(token). Register the result on a task
    that sets C(no_log) and pass the value on (for example to
    M(mobb.scm.mobb_integration)); it is never in diffs, warnings or error messages.
  - Several active tokens with the same name are never chosen between silently. The
    newest is managed, the others are listed in RV(duplicate_token_ids) with a warning.
  - A run that changes nothing makes two GitLab requests for a group service account (the
    group's accounts, then the account's token list, filtered by GitLab) and three for an
    instance one (the accounts, the account's user, its token list); with
    O(rotation_method=self_rotate), one.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  service_account:
    description:
      - Username of the service account that owns the token.
    type: str
    required: true
  group:
    description:
      - The top-level group (numeric id or path, V(acme)) the service account belongs to, for a
        group service account. O(api_token) needs the Owner role on it (or an administrator's).
      - Unset, the account is an instance service account, and O(api_token) must be an
        administrator's.
      - GitLab keeps group service accounts on top-level groups; a subgroup is refused.
    type: str
  scopes:
    description:
      - Scopes of the token, compared as a set. Mobb needs V(api) and V(read_user).
      - Valid scopes are those of personal access tokens (see M(mobb.scm.gitlab_personal_access_token)).
    type: list
    elements: str
    default: [api, read_user]
  rotation_method:
    description:
      - How a token is renewed.
      - V(create_new), the default, creates a new token with the same name and leaves the old one
        active, so that its consumer can switch first; revoke the old one afterwards with
        O(state=absent) and O(token_id) set to RV(previous_token_id).
      - V(rotate) uses GitLab's rotate API on the token's id (for a group account, the group's
        route). The new token keeps the name and scopes; the old one is revoked at once.
      - V(self_rotate) rotates O(api_token) itself (C(POST /personal_access_tokens/self/rotate)),
        so O(api_token) must be the service account's token named O(name) (scope V(api) or
        V(self_rotate)); no administrator or Owner is needed. The old value stops working at
        once. Scopes cannot change this way.
    type: str
    choices: [rotate, self_rotate, create_new]
    default: create_new
extends_documentation_fragment:
  - mobb.scm.gitlab
  - mobb.scm.gitlab.attributes
  - mobb.scm.gitlab_token
attributes:
  check_mode:
    support: full
    details: Makes the same decision and reads the same data, and writes nothing.
  diff_mode:
    support: full
    details: Shows id, expiry, scopes and whether the token is active, before and after; never a token value.
notes:
  - Group service-account tokens need python-gitlab 8.3.0 or later on the host that runs the module.
seealso:
  - module: mobb.scm.gitlab_service_account
  - module: mobb.scm.gitlab_personal_access_token
  - module: mobb.scm.gitlab_server_token
  - name: GitLab service accounts API
    description: The REST endpoints of service accounts and their tokens.
    link: https://docs.gitlab.com/api/service_accounts/
"""

EXAMPLES = r"""
- name: Ensure Mobb's group service account has a fresh token (the group Owner's api_token)
  mobb.scm.gitlab_service_account_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_group_owner_token }}"
    group: acme
    service_account: mobb-bot
    name: mobb-broker
    expires_in_days: 30
    rotate_before_days: 7
  register: mobb_sa_token
  no_log: true  # the result holds the new token

- name: Report what happened, without the token
  ansible.builtin.debug:
    msg: "{{ mobb_sa_token.action }}: token {{ mobb_sa_token.token_id }} expires {{ mobb_sa_token.expires_at }}"

- name: The token of an instance service account (an administrator's api_token)
  mobb.scm.gitlab_service_account_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    service_account: mobb-instance-bot
    name: mobb-broker
  register: mobb_instance_token
  no_log: true

- name: Let the service account's token rotate itself
  mobb.scm.gitlab_service_account_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ mobb_sa_token.token }}"
    group: acme
    service_account: mobb-bot
    name: mobb-broker
    rotation_method: self_rotate
    force: true
  register: mobb_sa_token
  no_log: true

- name: Revoke the token named mobb-broker
  mobb.scm.gitlab_service_account_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_group_owner_token }}"
    group: acme
    service_account: mobb-bot
    name: mobb-broker
    state: absent
"""

RETURN = r"""
action:
  description:
    - V(created) (no active token had the name), V(rotated) (it was near expiry, or
      O(force)), V(replaced) (its scopes differed), V(revoked) (O(state=absent)) or
      V(none).
  returned: always
  type: str
  sample: rotated
token:
  description:
    - The new token's value. Only when a token was issued (never in check mode); register
      the result with C(no_log) on the task.
  returned: when a token was issued
  type: str
  sample: glpat-xxxxxxxxxxxxxxxxxxxx
token_id:
  description:
    - Id of the token now in use (the new one after a change, the revoked one with
      O(state=absent)); V(null) in check mode when a token would be issued.
  returned: always
  type: int
  sample: 42
previous_token_id:
  description: Id of the token that was rotated or replaced; V(null) when none was.
  returned: always
  type: int
  sample: 41
previous_token_active:
  description:
    - Whether the previous token still works. V(true) with O(rotation_method=create_new)
      (revoke it once its consumer has the new one) or when revoking it failed (a warning
      says why).
  returned: always
  type: bool
  sample: false
revoked_token_ids:
  description: Ids of the tokens revoked (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: int
  sample: [41]
name:
  description: Name of the token.
  returned: always
  type: str
  sample: mobb-broker
user_id:
  description: Id of the service account.
  returned: always
  type: int
  sample: 7
scopes:
  description: Scopes of the token in use.
  returned: always
  type: list
  elements: str
  sample: [api, read_user]
expires_at:
  description: Expiry date of the token in use, V(YYYY-MM-DD).
  returned: always
  type: str
  sample: "2026-01-31"
days_left:
  description: Days from GitLab's date to RV(expires_at); 0 or less means expired.
  returned: always
  type: int
  sample: 30
duplicate_token_ids:
  description:
    - With O(state=present), ids of other active tokens with the same name that this run
      left alone. A warning is issued when there are any.
  returned: always
  type: list
  elements: int
  sample: []
"""

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModule, GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import ServiceAccounts
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_token_run import (
    TOKEN_MUTUALLY_EXCLUSIVE, AccessTokenRun, token_argument_spec)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import ServiceAccountTokens

ARGUMENT_SPEC = dict(
    token_argument_spec(default_scopes=['api', 'read_user'], with_access_level=False),
    service_account=dict(type='str', required=True),
    group=dict(type='str'),
)


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=TOKEN_MUTUALLY_EXCLUSIVE)
    try:
        client = module.connect()
        accounts = ServiceAccounts(client, module.params['group'])
        owner = ServiceAccountTokens(client, module.params['service_account'], accounts)
        result = AccessTokenRun(module, owner).run()
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
