#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mobb_integration
short_description: Store a GitLab access token in Mobb's GitLab Server integration
version_added: 0.1.0
description:
  - Puts an SCM access token into Mobb's integration for one SCM server, as the Mobb web app's
    Integrations, GitLab Server, Configure does, with Mobb's C(updateScmToken) mutation.
  - Reads the stored integrations first (C(me.scmConfigs)). When Mobb returns the stored token and
    its SHA-256 equals that of O(token), nothing is written and the task is not changed.
  - Some Mobb deployments do not return stored tokens. Then equality cannot be proven, so the token
    is written, the task is changed and it warns.
  - With O(validate=true), Mobb checks the token against the SCM (through the broker for an
    on-premises server) with C(validateScmToken) before anything is stored.
  - A rejected token, an unreachable SCM or a refused API key fail the task and leave Mobb as it was.
  - A store (C(updateScmToken)) is retried only when no connection to Mobb could be opened, which proves
    Mobb never saw it. When the request may have reached Mobb but its answer was lost or unreadable (a
    timeout, a dropped connection, an HTTP 5xx or a proxy's error page, an answer that is not GraphQL
    JSON), or Mobb answered with an error that does not say it refused the store (Hasura's C(INTERNAL_ERROR),
    which an action handler may give after writing; C(unexpected); an unknown code), the task fails
    without retrying and says that Mobb may or may not hold the new token, since
    a store that timed out can still land and a repeat could land after a rollback. Run the task again;
    it reads what Mobb holds first and stores the token only when Mobb does not hold it already.
  - Every other failure of a store is a definite refusal and means Mobb did not store it. That is, the SCM
    rejected the token or is unreachable, Mobb refused the API key (C(access-denied)), the role
    (C(permission-error)) or the request (C(validation-failed), an HTTP 4xx), or the connection could not be opened.
  - Runs on the controller (or any host with C(requests)); delegate it to C(localhost).
options:
  scm_url:
    description:
      - Base URL of the SCM server as users know it, for example V(https://gitlab.internal.example),
        not the broker's virtual domain.
      - Sent to Mobb and matched against stored integrations with scheme and host lowercased, the default
        port, trailing slashes and a trailing C(/api/v4) dropped, the spelling the GitLab modules use, so
        V(HTTPS://GitLab.Internal.Example:443/api/v4/) names the same integration as
        V(https://gitlab.internal.example).
    type: str
    required: true
  scm_type:
    description:
      - Mobb's SCM type. V(GitLab) for GitLab.com and GitLab Server; Mobb also knows V(GitHub),
        V(Ado) and V(Bitbucket).
    type: str
    default: GitLab
  org:
    description:
      - SCM organization the integration is scoped to, when Mobb stores one per organization.
      - Leave unset for a GitLab Server.
    type: str
  token:
    description:
      - The access token to store. For GitLab, a personal access token with scopes C(api) and
        C(read_user), or a project or group access token with role Developer or higher and scope C(api).
      - Required when O(state=present).
    type: str
  validate:
    description:
      - Ask Mobb to check the token against the SCM before storing it. The check writes nothing, and
        runs in check mode too.
      - With V(false), Mobb still validates while storing and refuses a bad token.
    type: bool
    default: true
  state:
    description:
      - V(present) makes Mobb hold O(token) for O(scm_url).
    type: str
    choices: [present]
    default: present
extends_documentation_fragment:
  - mobb.scm.mobb
attributes:
  check_mode:
    description: Can run in check mode and return the changed status without modifying Mobb.
    support: full
    details: Reads and, with O(validate=true), validates the token; never writes.
  diff_mode:
    description: Returns the fingerprint of the stored token before and after.
    support: full
  action_group:
    description: Use C(group/mobb.scm.mobb) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mobb.scm.mobb
seealso:
  - module: mobb.scm.mobb_connection_info
    description: Check that Mobb reaches the GitLab Server with the stored token.
  - name: Mobb's open-source CLI, whose public GraphQL schema this module follows
    description: The C(mobbdev) package (Bugsy); the collection README's Mobb section lists what is assumed.
    link: https://github.com/mobb-dev/bugsy
author:
  - mobb.scm maintainers (@mobb-dev)
"""

EXAMPLES = r"""
- name: Keep Mobb's GitLab Server token current; a re-run with the same token changes nothing
  module_defaults:
    group/mobb.scm.mobb:
      api_url: "{{ mobb_api_url }}"  # https://api.mobb.ai/v1/graphql for Mobb's SaaS
      api_key: "{{ mobb_api_key }}"
  delegate_to: localhost
  block:
    - name: Preview without writing
      mobb.scm.mobb_integration:
        scm_url: "{{ gitlab_url }}"
        token: "{{ gitlab_token }}"
      check_mode: true
      diff: true
      register: mobb_integration_preview

    - name: Store the token in Mobb
      mobb.scm.mobb_integration:
        scm_url: "{{ gitlab_url }}"
        token: "{{ gitlab_token }}"
      register: mobb_integration_result

    - name: Show what Mobb holds now
      ansible.builtin.debug:
        msg: >-
          Mobb integration {{ mobb_integration_result.scm_config.id }} holds token
          {{ mobb_integration_result.scm_config.token_fingerprint }}, updated
          {{ mobb_integration_result.scm_config.token_last_update }}

- name: Store a token with the connection from MOBB_API_URL and MOBB_API_KEY, skipping the separate check
  mobb.scm.mobb_integration:
    scm_url: "{{ gitlab_url }}"
    token: "{{ gitlab_token }}"
    validate: false
  delegate_to: localhost
"""

RETURN = r"""
scm_config:
  description:
    - Mobb's integration for O(scm_url) after the task (in check mode, as it would be).
  returned: success
  type: dict
  contains:
    id:
      description: Mobb's id of the integration; null in check mode when none exists yet.
      type: str
      sample: 6f1c1b8e-3a47-4f5e-9a3a-2f54c2d0b1aa
    scm_type:
      description: The SCM type.
      type: str
      sample: GitLab
    scm_url:
      description: The SCM URL as Mobb stores it.
      type: str
      sample: https://gitlab.internal.example
    org:
      description: The SCM organization, or null.
      type: str
      sample: null
    token_last_update:
      description: When the token was last stored, as Mobb reports it (ISO 8601); null in check mode before a first write.
      type: str
      sample: "2025-11-25T12:00:00.000Z"
    is_token_available:
      description: Whether Mobb holds a token for this integration.
      type: bool
      sample: true
    token_fingerprint:
      description:
        - First 12 hex characters of the SHA-256 of the stored token; never the token.
        - V(unknown) when Mobb holds a token it does not return and the task did not write one.
      type: str
      sample: 3f7a9c01b2de
written:
  description: Whether the token was written to Mobb by this task.
  returned: success
  type: bool
  sample: true
request_id:
  description: The C(x-hasura-request-id) of the failed call to Mobb, for Mobb support.
  returned: when Mobb answered a call with an error
  type: str
  sample: 0b6d6d3e-3f62-4f61-8a6c-5bd6a1c2e9f4
"""

from ansible_collections.mobb.scm.plugins.module_utils.mobb import run_module
from ansible_collections.mobb.scm.plugins.module_utils.mobb_integrations import ensure_integration


def main():
    run_module(
        dict(
            scm_url=dict(type='str', required=True),
            scm_type=dict(type='str', default='GitLab'),
            org=dict(type='str'),
            token=dict(type='str', no_log=True),
            validate=dict(type='bool', default=True),
            state=dict(type='str', default='present', choices=['present']),
        ),
        ensure_integration,
        required_if=[('state', 'present', ['token'])],
        supports_check_mode=True,
    )


if __name__ == '__main__':
    main()
