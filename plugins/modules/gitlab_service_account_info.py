#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_service_account_info
short_description: List GitLab service accounts and their active tokens, with days left
version_added: 0.1.0
description:
  - Lists the service accounts of the instance, or of a top-level group, each with its
    active personal access tokens, their expiry and days left by GitLab's date. Never
    returns a token value.
  - Instance service accounts and their tokens need an administrator's O(api_token);
    a group's need the Owner role on the group.
  - GitLab's list of instance service accounts holds those of groups and projects too;
    they are left out here, which costs one request per account (its user, which says
    who provisioned it). Each account's tokens cost one more request.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  group:
    description:
      - The top-level group, by numeric id or full path, whose service accounts to list.
        Omitted, the instance's service accounts.
    type: str
  username:
    description: Only the account with this username (in any case).
    type: str
extends_documentation_fragment:
  - mobb.scm.gitlab
  - mobb.scm.gitlab.attributes
attributes:
  check_mode:
    support: full
    details: Reads only, so it runs the same in check mode.
  diff_mode:
    support: none
notes:
  - Service accounts need GitLab Premium or Ultimate, and python-gitlab 8.3.0 or later
    on the host that runs the module.
seealso:
  - module: mobb.scm.gitlab_service_account
  - module: mobb.scm.gitlab_access_token_info
"""

EXAMPLES = r"""
- name: List the instance's service accounts and their tokens
  mobb.scm.gitlab_service_account_info:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
  register: instance_accounts

- name: Read one service account of the group acme
  mobb.scm.gitlab_service_account_info:
    api_url: "{{ gitlab_url }}"
    api_token: "{{ gitlab_admin_token }}"
    group: acme
    username: acme-mobb-bot
  register: acme_accounts

- name: Warn about service account tokens that expire within two weeks
  ansible.builtin.debug:
    msg: "{{ item.0.username }}: token {{ item.1.name }} ({{ item.1.id }}) expires in {{ item.1.days_left }} days"
  loop: "{{ instance_accounts.service_accounts | subelements('access_tokens') }}"
  loop_control:
    label: "{{ item.1.id }}"
  when: item.1.days_left is not none and item.1.days_left <= 14
"""

RETURN = r"""
service_accounts:
  description: The service accounts, by id; V([]) when none match.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The account's user id.
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
      description: Its e-mail address.
      type: str
      sample: mobb-bot@noreply.gitlab.example.com
    scope:
      description: V(instance) or V(group).
      type: str
      sample: group
    group:
      description: O(group) as given; V(null) for instance accounts.
      type: str
      sample: acme
    access_tokens:
      description: Its active personal access tokens, oldest first.
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
          description: Token description.
          type: str
          sample: Mobb broker access
        scopes:
          description: Scopes of the token.
          type: list
          elements: str
          sample: [api]
        user_id:
          description: The account's user id.
          type: int
          sample: 57
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
          description: Days from GitLab's date to the expiry date; V(null) for a token that never expires.
          type: int
          sample: 12
        state:
          description: V(active) (GitLab lists only active tokens here).
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
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import ServiceAccounts
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import ServiceAccountTokens, info_view

ARGUMENT_SPEC = dict(
    group=dict(type='str'),
    username=dict(type='str'),
)


def list_accounts(accounts, username):
    """The accounts to report, by id: all of them, or the one named ``username``."""
    if username is not None:
        account = accounts.find(username)
        return [account] if account else []
    return sorted(accounts.find_all(), key=lambda account: account['id'])


def main():
    module = GitLabModule(argument_spec=ARGUMENT_SPEC)
    params = module.params
    try:
        accounts = ServiceAccounts(module.connect(), params['group'])
        views = []
        for account in list_accounts(accounts, params['username']):
            owner = ServiceAccountTokens(accounts.client, account['username'], accounts)
            owner.found(account)
            tokens = owner.list_tokens()
            today = accounts.client.today()
            views.append(dict(
                account, scope='instance' if params['group'] is None else 'group', group=params['group'],
                access_tokens=[info_view(token, today, False)
                               for token in sorted(tokens, key=lambda token: token.get('id') or 0)]))
    except GitLabModuleError as error:
        module.fail_json(msg=str(error), exception=error.exception)
    module.exit_json(changed=False, service_accounts=views)


if __name__ == '__main__':
    main()
