#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_project_access_token
short_description: Ensure a GitLab project access token exists and is fresh, or revoke it
version_added: 0.1.0
description:
  - Keeps one active project access token with a given name, with the wanted role and
    scopes and an expiry that is never closer than O(rotate_before_days).
  - A run changes nothing, and returns no secret, while such a token exists. When it is
    within O(rotate_before_days) of expiry (or O(force=true)) the token is rotated. By
    default (O(rotation_method=create_new)) a new token is issued and the old one stays
    active until it is revoked; O(rotation_method=rotate) keeps its bot user and so its
    role. When it is missing, expired or was revoked, a new one is created. When its
    scopes or role differ, GitLab cannot change them in place, so a replacement is issued
    (RV(action=replaced)).
  - The new token value is returned once, in RV(token). Register the result on a task
    that sets C(no_log) and pass the value on (for example to
    M(mobb.scm.mobb_integration)); it is never in diffs, warnings or error messages.
  - Several active tokens with the same name are never chosen between silently. The
    newest is managed, the others are listed in RV(duplicate_token_ids) with a warning.
  - Least privilege. O(api_token) needs the Maintainer role or higher on the project to list, create,
    rotate and revoke its tokens, and cannot give a token a higher role than its own. A
    project access token with the C(api) scope can also rotate itself
    (O(rotation_method=self_rotate)).
  - A run that changes nothing makes one GitLab request (the token list, filtered by
    GitLab). The project is addressed by its path or id without being read.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  project:
    description:
      - The project, by numeric id or full path (V(acme/payments)).
    type: str
    required: true
  access_level:
    description:
      - Role of the token's bot user in the project, by name (V(guest), V(planner),
        V(reporter), V(developer), V(maintainer), V(owner)) or number (V(10), V(15),
        V(20), V(30), V(40), V(50)). Names are GitLab's role names in any case
        (V(Developer) works too). Mobb needs V(developer) or higher.
    type: raw
    default: developer
  rotation_method:
    description:
      - How a token is renewed.
      - V(create_new), the default (as in the C(mobb.scm.gitlab_token_rotation) role),
        creates a new token with the same name and leaves the old one active, so that
        its consumer can switch first; revoke the old one afterwards with O(state=absent)
        and O(token_id) set to RV(previous_token_id). Until then later runs list it in
        RV(duplicate_token_ids), with a warning.
      - V(rotate) uses GitLab's rotate API on the token's id. The new token keeps the name,
        scopes, role and bot user; the old one is revoked at once. Replacing a token whose
        scopes or role differ creates the new token first, then revokes the old one;
        if GitLab does not confirm that revoke, RV(previous_token_active) is V(true) and a
        warning says why.
      - V(self_rotate) rotates O(api_token) itself
        (C(POST /projects/:id/access_tokens/self/rotate)), so O(api_token) must be the token
        named O(name). The old value stops working at once, including for later tasks
        that use it. Scopes and role cannot change this way.
    type: str
    choices: [rotate, self_rotate, create_new]
    default: create_new
extends_documentation_fragment:
  - mobb.scm.gitlab
  - mobb.scm.gitlab.attributes
  - mobb.scm.gitlab_token
  - mobb.scm.gitlab_token.resource_scopes
attributes:
  check_mode:
    support: full
    details: Makes the same decision and reads the same data, and writes nothing.
  diff_mode:
    support: full
    details: Shows id, expiry, scopes, role and whether the token is active, before and after; never a token value.
seealso:
  - module: mobb.scm.gitlab_group_access_token
  - module: mobb.scm.gitlab_personal_access_token
  - module: mobb.scm.gitlab_access_token_info
  - name: GitLab project access tokens API
    description: The REST endpoints this module calls.
    link: https://docs.gitlab.com/api/project_access_tokens/
"""

EXAMPLES = r"""
- name: Ensure Mobb has a Developer token with the api scope on acme/payments
  mobb.scm.gitlab_project_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    project: acme/payments
    name: mobb
    access_level: developer
    scopes: [api]
    expires_in_days: 90
    rotate_before_days: 14
  register: mobb_token
  no_log: true  # the result holds the new token

- name: Report what happened, without the token
  ansible.builtin.debug:
    msg: "{{ mobb_token.action }}: token {{ mobb_token.token_id }} ({{ mobb_token.access_level }}) expires {{ mobb_token.expires_at }}"

- name: Set the connection once for several tasks
  module_defaults:
    group/mobb.scm.gitlab:
      api_url: "{{ gitlab_url }}"
      api_token: "{{ gitlab_admin_token }}"
  block:
    - name: Preview a rotation without changing anything
      mobb.scm.gitlab_project_access_token:
        project: acme/payments
        name: mobb
        expires_in_days: 90
        rotate_before_days: 14
        force: true
      check_mode: true
      diff: true
      register: preview

    - name: Issue a new token and keep the old one until its consumer has switched
      mobb.scm.gitlab_project_access_token:
        project: acme/payments
        name: mobb
        expires_in_days: 90
        rotate_before_days: 14
        rotation_method: create_new
        force: true
      register: mobb_token
      no_log: true

    - name: Then revoke the old one
      mobb.scm.gitlab_project_access_token:
        project: acme/payments
        name: mobb
        state: absent
        token_id: "{{ mobb_token.previous_token_id }}"
      when: mobb_token.previous_token_active

- name: Let the token rotate itself, with its own value as api_token
  mobb.scm.gitlab_project_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ mobb_token.token }}"
    project: acme/payments
    name: mobb
    expires_in_days: 90
    rotate_before_days: 14
    rotation_method: self_rotate
    force: true
  register: mobb_token
  no_log: true

- name: Revoke every active token named mobb
  mobb.scm.gitlab_project_access_token:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    project: acme/payments
    name: mobb
    state: absent
"""

RETURN = r"""
action:
  description:
    - V(created) (no active token had the name), V(rotated) (it was near expiry, or
      O(force)), V(replaced) (its scopes or role differed), V(revoked) (O(state=absent))
      or V(none).
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
  sample: mobb
project_id:
  description:
    - Numeric id of the project, when GitLab names it in the token (GitLab 17.x and later
      send C(resource_id)) or O(project) is a number; V(null) otherwise, because
      resolving a path would cost a request.
  returned: always
  type: int
  sample: 12
user_id:
  description: Id of the token's bot user; V(null) in check mode for a token not yet created.
  returned: always
  type: int
  sample: 118
access_level:
  description: Role of the token in use, as GitLab's number (30 is Developer).
  returned: always
  type: int
  sample: 30
scopes:
  description: Scopes of the token in use.
  returned: always
  type: list
  elements: str
  sample: [api]
expires_at:
  description: Expiry date of the token in use, V(YYYY-MM-DD).
  returned: always
  type: str
  sample: "2026-01-31"
days_left:
  description: Days from GitLab's date to RV(expires_at); 0 or less means expired.
  returned: always
  type: int
  sample: 90
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
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import ProjectTokens

ARGUMENT_SPEC = dict(
    token_argument_spec(default_scopes=['api'], with_access_level=True),
    project=dict(type='str', required=True),
)


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=TOKEN_MUTUALLY_EXCLUSIVE)
    try:
        owner = ProjectTokens(module.connect(), module.params['project'])
        result = AccessTokenRun(module, owner).run()
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
