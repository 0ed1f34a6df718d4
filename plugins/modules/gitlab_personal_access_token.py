#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_personal_access_token
short_description: Ensure a GitLab personal access token exists and is fresh, or revoke it
version_added: 0.1.0
description:
  - Keeps one active personal access token with a given name for a GitLab user, with the
    wanted scopes and an expiry that is never closer than O(rotate_before_days).
  - A run changes nothing, and returns no secret, while such a token exists. When it is
    within O(rotate_before_days) of expiry (or O(force=true)) the token is rotated. By
    default (O(rotation_method=create_new)) a new token is issued and the old one stays
    active until it is revoked. When it is missing, expired or was revoked, a new one is
    created. When its scopes differ, GitLab cannot change them in place, so a replacement
    is issued (RV(action=replaced)).
  - The new token value is returned once, in RV(token). Register the result on a task
    that sets C(no_log) and pass the value on (for example to
    M(mobb.scm.mobb_integration)); it is never in diffs, warnings or error messages.
  - Several active tokens with the same name are never chosen between silently. The
    newest is managed, the others are listed in RV(duplicate_token_ids) with a warning.
  - Least privilege. Only an administrator's O(api_token) can B(create) personal access
    tokens with these scopes (for any user). A user can B(rotate) their own existing
    token without an administrator, by id with another of their tokens
    (O(rotation_method=rotate)) or by itself (O(rotation_method=self_rotate)).
  - A run that changes nothing makes two GitLab requests (the user, then the token list
    filtered by GitLab); with O(rotation_method=self_rotate) and no O(user), one.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  user:
    description:
      - Username of the token's owner.
      - Defaults to the user of O(api_token).
    type: str
  scopes:
    description:
      - Scopes of the token, compared as a set. Mobb needs V(api) and V(read_user).
      - Valid scopes are V(ai_features), V(api), V(create_runner), V(k8s_proxy),
        V(manage_runner), V(mcp), V(mcp_orbit), V(read_api), V(read_observability),
        V(read_registry), V(read_repository), V(read_user), V(read_virtual_registry),
        V(self_rotate), V(write_observability), V(write_registry), V(write_repository),
        V(write_virtual_registry), and for administrators V(admin_mode),
        V(read_service_ping) and V(sudo).
    type: list
    elements: str
    default: [api, read_user]
  rotation_method:
    description:
      - How a token is renewed.
      - V(create_new), the default (as in the C(mobb.scm.gitlab_token_rotation) role),
        creates a new token with the same name and leaves the old one active, so that
        its consumer can switch first; revoke the old one afterwards with O(state=absent)
        and O(token_id) set to RV(previous_token_id). Until then later runs list it in
        RV(duplicate_token_ids), with a warning.
      - V(rotate) uses GitLab's rotate API on the token's id. The new token keeps the name,
        scopes and lineage; the old one is revoked at once. Replacing a token whose scopes
        differ creates the new token first, then revokes the old one;
        if GitLab does not confirm that revoke, RV(previous_token_active) is V(true) and a
        warning says why.
      - V(self_rotate) rotates O(api_token) itself (C(POST /personal_access_tokens/self/rotate)),
        so O(api_token) must be the token named O(name). No administrator is needed. The old
        value stops working at once, including for later tasks that use it. Scopes cannot
        change this way.
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
seealso:
  - module: mobb.scm.gitlab_project_access_token
  - module: mobb.scm.gitlab_group_access_token
  - module: mobb.scm.gitlab_access_token_info
  - name: GitLab personal access tokens API
    description: The REST endpoints this module calls.
    link: https://docs.gitlab.com/api/personal_access_tokens/
"""

EXAMPLES = r"""
- name: Ensure the Mobb broker user has a fresh token (admin creates it, issues a new one 7 days before expiry)
  mobb.scm.gitlab_personal_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    user: mobb-broker
    name: mobb-broker
    scopes: [api, read_user]
    expires_in_days: 30
    rotate_before_days: 7
  register: mobb_pat
  no_log: true  # the result holds the new token

- name: Report what happened, without the token
  ansible.builtin.debug:
    msg: "{{ mobb_pat.action }}: token {{ mobb_pat.token_id }} expires {{ mobb_pat.expires_at }} ({{ mobb_pat.days_left }} days)"

- name: Let the token rotate itself, no administrator needed
  mobb.scm.gitlab_personal_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ mobb_pat.token }}"
    name: mobb-broker
    rotation_method: self_rotate
    force: true
  register: mobb_pat
  no_log: true

- name: Issue a new token and keep the old one working until its consumer has switched
  mobb.scm.gitlab_personal_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    user: mobb-broker
    name: mobb-broker
    rotation_method: create_new
    force: true
  register: mobb_pat_new
  no_log: true

- name: Then revoke the old one
  mobb.scm.gitlab_personal_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    user: mobb-broker
    name: mobb-broker
    state: absent
    token_id: "{{ mobb_pat_new.previous_token_id }}"
  when: mobb_pat_new.previous_token_active

- name: Revoke every active token named mobb-broker
  mobb.scm.gitlab_personal_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    user: mobb-broker
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
  description: Id of the token's owner.
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
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_token_run import (
    TOKEN_MUTUALLY_EXCLUSIVE, AccessTokenRun, token_argument_spec)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import PersonalTokens

ARGUMENT_SPEC = dict(
    token_argument_spec(default_scopes=['api', 'read_user'], with_access_level=False),
    user=dict(type='str'),
)


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=TOKEN_MUTUALLY_EXCLUSIVE)
    try:
        owner = PersonalTokens(module.connect(), module.params['user'])
        result = AccessTokenRun(module, owner).run()
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
