#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_service_account
short_description: Ensure a GitLab service account exists with the memberships Mobb needs, or delete it
version_added: 0.1.0
description:
  - Keeps one GitLab service account, found by O(username), with its display name and the
    project and group memberships declared in O(memberships). A service account is a user
    that needs no seat and cannot sign in; it reaches nothing until it is a member, and
    Mobb's token on it (see M(mobb.scm.gitlab_server_token)) reaches what it can.
  - Without O(group), an instance service account, which only administrators manage.
    With O(group), a service account of that top-level group, which its Owners manage
    (creating and deleting one needs an administrator, or a group Owner when the instance
    setting C(allow_top_level_group_owners_to_create_service_accounts) is on).
  - Idempotent. A run that changes nothing lists the service accounts once (and, for an
    instance account, reads its user to make sure no group or project owns it), then
    reads each declared project or group and the account's membership there.
  - Bad input fails before any write, with a message that says what to do. A subgroup as
    O(group), an unknown group, an invalid membership entry and the projects or groups of
    O(memberships) that GitLab does not know or does not show the token (all of them, named
    in one message) are refused before the account is created. Each project or group is
    looked up once; the membership calls then address it by its id.
  - Never handles a token. Issue the account's tokens with M(mobb.scm.gitlab_server_token).
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  state:
    description:
      - V(present) creates the account when it is missing and sets its name and
        memberships; V(absent) deletes it, with its tokens.
    type: str
    choices: [present, absent]
    default: present
  group:
    description:
      - The top-level group, by numeric id or full path (V(acme)), whose service account
        this is. A subgroup is refused (C(acme/team)); give the account a membership of it
        instead.
      - Omitted, the account is an instance service account (GitLab Self-Managed and
        Dedicated), which needs an administrator's O(api_token).
    type: str
  username:
    description:
      - The account's username, which identifies it (in any case) on later runs.
    type: str
    required: true
  name:
    description:
      - The account's display name. Set when the account is created, and changed when it
        differs. Omitted, GitLab's default (C(Service account user)) on creation, and left
        as it is later.
    type: str
  memberships:
    description:
      - Projects and groups the account must be a member of, each with its role. Each
        declared membership is added, or its role changed, to match; others are left alone
        unless O(purge_memberships=true).
      - Ignored with O(state=absent).
    type: list
    elements: dict
    default: []
    suboptions:
      project:
        description: A project, by numeric id or full path (V(acme/payments)). Give this or O(memberships[].group).
        type: str
      group:
        description: A group or subgroup, by numeric id or full path. Give this or O(memberships[].project).
        type: str
      access_level:
        description:
          - The role, by name (V(guest), V(planner), V(reporter), V(developer),
            V(maintainer), V(owner), in any case) or number (V(10) to V(50)). Mobb needs
            V(developer) or higher.
        type: raw
        default: developer
  purge_memberships:
    description:
      - Remove the account's direct memberships that O(memberships) does not declare.
      - Only administrators can list a user's memberships, so this needs an
        administrator's O(api_token).
    type: bool
    default: false
  hard_delete:
    description:
      - With O(state=absent), also delete the account's contributions and the groups it is
        the sole Owner of, instead of moving them to GitLab's ghost user.
    type: bool
    default: false
extends_documentation_fragment:
  - mobb.scm.gitlab
  - mobb.scm.gitlab.attributes
attributes:
  check_mode:
    support: full
    details: Reads the same data, predicts the changes and writes nothing.
  diff_mode:
    support: full
    details: Shows the username, display name and memberships before and after.
notes:
  - Service accounts need GitLab Premium or Ultimate, and python-gitlab 8.3.0 or later
    on the host that runs the module.
  - GitLab deletes users in the background, so a deleted instance account may still be
    listed for a short while.
seealso:
  - module: mobb.scm.gitlab_service_account_info
  - module: mobb.scm.gitlab_server_token
  - name: GitLab service accounts API
    description: The REST endpoints this module calls.
    link: https://docs.gitlab.com/api/service_accounts/
  - name: GitLab group and project members API
    description: How the memberships are added, changed and removed.
    link: https://docs.gitlab.com/api/members/
"""

EXAMPLES = r"""
- name: Ensure the instance service account Mobb uses, with Developer access to two projects
  mobb.scm.gitlab_service_account:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    username: mobb-bot
    name: Mobb
    memberships:
      - project: acme/payments
        access_level: developer
      - group: acme/platform
        access_level: developer
  register: mobb_account

- name: Show the account and its roles
  ansible.builtin.debug:
    msg: "{{ mobb_account.service_account.username }}: {{ mobb_account.memberships | map(attribute='path') | join(', ') }}"

- name: Preview taking away every membership not declared here
  mobb.scm.gitlab_service_account:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    username: mobb-bot
    memberships:
      - project: acme/payments
    purge_memberships: true
  check_mode: true
  diff: true

- name: Ensure a service account of the top-level group acme (an Owner's token, once allowed)
  mobb.scm.gitlab_service_account:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    group: acme
    username: acme-mobb-bot
    memberships:
      - group: acme
        access_level: developer

- name: Delete the group's service account and its tokens
  mobb.scm.gitlab_service_account:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    group: acme
    username: acme-mobb-bot
    state: absent

- name: Delete the instance service account
  mobb.scm.gitlab_service_account:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    username: mobb-bot
    state: absent
"""

RETURN = r"""
service_account:
  description:
    - The account after the run; with O(state=absent), the account that was deleted
      (V(null) when there was none).
  returned: always
  type: dict
  contains:
    id:
      description: The account's user id; V(null) in check mode for an account not yet created.
      type: int
      sample: 57
    username:
      description: Its username.
      type: str
      sample: mobb-bot
    name:
      description: Its display name.
      type: str
      sample: Mobb
    email:
      description: Its e-mail address (GitLab makes a no-reply one); V(null) in check mode for an account not yet created.
      type: str
      sample: mobb-bot@noreply.gitlab.example.com
    scope:
      description: V(instance) or V(group).
      type: str
      sample: instance
    group:
      description: O(group) as given; V(null) for an instance account.
      type: str
      sample: acme
memberships:
  description: The declared memberships as GitLab holds them after the run (as it would, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(project) or V(group).
      type: str
      sample: project
    ref:
      description: The project or group as given in O(memberships).
      type: str
      sample: acme/payments
    id:
      description: Its numeric id.
      type: int
      sample: 12
    path:
      description: Its full path.
      type: str
      sample: acme/payments
    access_level:
      description: The account's role there, as GitLab's number.
      type: int
      sample: 30
    role:
      description: The role's name.
      type: str
      sample: developer
removed_memberships:
  description: The memberships O(purge_memberships) removed (or would remove, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(project) or V(group).
      type: str
      sample: group
    id:
      description: The project's or group's id.
      type: int
      sample: 7
    name:
      description: Its name.
      type: str
      sample: legacy
    access_level:
      description: The role the account had there, as GitLab's number.
      type: int
      sample: 40
    role:
      description: The role's name.
      type: str
      sample: maintainer
"""

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModule, GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_account_run import ServiceAccountRun

ARGUMENT_SPEC = dict(
    state=dict(type='str', default='present', choices=['present', 'absent']),
    group=dict(type='str'),
    username=dict(type='str', required=True),
    name=dict(type='str'),
    memberships=dict(type='list', elements='dict', default=[], options=dict(
        project=dict(type='str'),
        group=dict(type='str'),
        access_level=dict(type='raw', default='developer'),
    )),
    purge_memberships=dict(type='bool', default=False),
    hard_delete=dict(type='bool', default=False),
)


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC)
    try:
        result = ServiceAccountRun(module, module.connect()).run()
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
