#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_access_token_info
short_description: List the access tokens of a GitLab user, project or group, with days left
version_added: 0.1.0
description:
  - Lists the personal access tokens of a user, or the access tokens of a project or a
    group, with their expiry, days left by GitLab's date, and whether each is active,
    expired or revoked. Never returns a token value.
  - With none of O(user), O(project) and O(group), lists the personal access tokens of
    the user of O(api_token).
  - Reading needs what managing needs, without writing anything; an administrator's
    token for other users' tokens, the Maintainer role or higher on a project, the Owner
    role on a group.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  user:
    description: Username whose personal access tokens to list.
    type: str
  project:
    description: Project, by numeric id or full path, whose access tokens to list.
    type: str
  group:
    description: Group, by numeric id or full path, whose access tokens to list.
    type: str
  name:
    description: Only tokens with exactly this name.
    type: str
  state:
    description:
      - V(active) lists only tokens that work now; V(inactive) only expired and revoked
        ones; V(all) both.
    type: str
    choices: [active, inactive, all]
    default: all
extends_documentation_fragment:
  - mobb.scm.gitlab
  - mobb.scm.gitlab.attributes
attributes:
  check_mode:
    support: full
    details: Reads only, so it runs the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: mobb.scm.gitlab_personal_access_token
  - module: mobb.scm.gitlab_project_access_token
  - module: mobb.scm.gitlab_group_access_token
"""

EXAMPLES = r"""
- name: List the personal access tokens of the Mobb broker user
  mobb.scm.gitlab_access_token_info:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    user: mobb-broker
  register: broker_tokens

- name: Find the active tokens named mobb on a project
  mobb.scm.gitlab_access_token_info:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    project: acme/payments
    name: mobb
    state: active
  register: project_tokens

- name: Warn about tokens that expire within two weeks
  ansible.builtin.debug:
    msg: "Token {{ item.name }} ({{ item.id }}) expires in {{ item.days_left }} days"
  loop: "{{ project_tokens.access_tokens | selectattr('days_left', 'le', 14) }}"
  loop_control:
    label: "{{ item.id }}"
"""

RETURN = r"""
access_tokens:
  description: The tokens, oldest first; V([]) when none match.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Token id.
      type: int
      sample: 42
    name:
      description: Token name.
      type: str
      sample: mobb
    description:
      description: Token description (V(null) on GitLab before 17.7).
      type: str
      sample: Mobb broker access
    scopes:
      description: Scopes of the token.
      type: list
      elements: str
      sample: [api]
    access_level:
      description: Role of a project or group token, as GitLab's number (30 is Developer).
      type: int
      returned: for project and group tokens
      sample: 30
    user_id:
      description: Id of the token's user (for project and group tokens, its bot user).
      type: int
      sample: 118
    created_at:
      description: When the token was created, ISO 8601.
      type: str
      sample: "2025-07-01T10:00:00.000Z"
    last_used_at:
      description: When the token was last used, ISO 8601; V(null) if never.
      type: str
      sample: "2025-07-20T08:12:31.000Z"
    expires_at:
      description: Expiry date, V(YYYY-MM-DD); V(null) for a token that never expires.
      type: str
      sample: "2025-09-29"
    days_left:
      description: Days from GitLab's date to RV(access_tokens[].expires_at); 0 or less means expired.
      type: int
      sample: 12
    state:
      description: V(active), V(expired) or V(revoked).
      type: str
      sample: active
    revoked:
      description: Whether the token was revoked.
      type: bool
      sample: false
    active:
      description: Whether the token works now.
      type: bool
      sample: true
"""

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModule, GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import info_view, token_owner

ARGUMENT_SPEC = dict(
    user=dict(type='str'),
    project=dict(type='str'),
    group=dict(type='str'),
    name=dict(type='str'),
    state=dict(type='str', default='all', choices=['active', 'inactive', 'all']),
)


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC,
                          mutually_exclusive=[('user', 'project', 'group')])
    params = module.params
    state = params['state']
    try:
        token_type = 'project' if params['project'] else 'group' if params['group'] else 'personal'
        owner = token_owner(module.connect(), token_type, params['user'], params['project'], params['group'])
        # GitLab's state=inactive counts a token expiring today as active; decide here.
        tokens = owner.list_tokens(params['name'], active_only=state == 'active')
        today = owner.client.today()
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    views = [info_view(token, today, owner.has_access_level)
             for token in sorted(tokens, key=lambda token: token.get('id') or 0)]
    if state != 'all':
        views = [view for view in views if (view['state'] == 'active') == (state == 'active')]
    module.exit_json(changed=False, access_tokens=views)


if __name__ == '__main__':
    main()
