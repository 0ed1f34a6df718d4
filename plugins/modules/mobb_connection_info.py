#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mobb_connection_info
short_description: Ask Mobb whether it reaches a GitLab Server with the stored token
version_added: 0.1.0
description:
  - Runs Mobb's own connection check (C(checkScmConnectionStatus)) for one SCM URL, and reports what
    Mobb stores for it and whether Mobb reaches it through the broker (C(me)).
  - One request to Mobb; two when the check fails and Mobb answers without partial data (as Hasura
    does), because C(me) is then read on its own.
  - By default the check goes through Mobb's GraphQL API (O(api_url)). With O(rest_url), it goes
    through Mobb's REST endpoint for the check instead, and C(me) (the stored integration and broker)
    is still read through GraphQL, in a second request.
  - Mobb is asked about O(scm_url) normalised (scheme and host lowercased, default port, trailing
    slashes and a trailing C(/api/v4) dropped), the spelling M(mobb.scm.mobb_integration) gives a new
    integration and the GitLab modules use.
  - A negative answer (broker down, token revoked or expired, no token stored) is a result, not a
    failure; RV(connected) is false and RV(message) says why. The task fails only when Mobb cannot be
    asked, for example a refused API key or an unreachable API.
  - Read-only; runs on the controller (or any host with C(requests)); delegate it to C(localhost).
options:
  scm_url:
    description:
      - Base URL of the SCM server as users know it, for example V(https://gitlab.internal.example).
      - Matched against stored integrations with scheme and host lowercased, the default port, trailing
        slashes and a trailing C(/api/v4) dropped.
    type: str
    required: true
  scm_type:
    description:
      - Mobb's SCM type of the integration to report on. V(GitLab) for a GitLab Server.
    type: str
    default: GitLab
  rest_url:
    description:
      - Full URL of Mobb's REST endpoint that checks the SCM connection status (a Hasura REST endpoint
        under C(/api/rest/) on the same host as O(api_url)). Its path is not public; take it from Mobb's
        API docs, where the "check SCM connection status" endpoint is described.
      - When set, the connection check is a C(GET) of this URL with the SCM URL as the C(scmUrl) query
        parameter and the same C(x-mobb-key) header, retried as GraphQL reads are; RV(connected) and
        RV(message) come from its answer. Everything else still comes from GraphQL at O(api_url).
      - When not set (the default), the check goes through GraphQL (C(checkScmConnectionStatus)).
    type: str
    version_added: 0.2.0
extends_documentation_fragment:
  - mobb.scm.mobb
attributes:
  check_mode:
    description: Can run in check mode; it reads only, so it runs the same.
    support: full
  diff_mode:
    description: Returns no diff; it changes nothing.
    support: N/A
  action_group:
    description: Use C(group/mobb.scm.mobb) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mobb.scm.mobb
seealso:
  - module: mobb.scm.mobb_integration
    description: Store the token that this module checks.
author:
  - mobb.scm maintainers (@mobb-dev)
"""

EXAMPLES = r"""
- name: Ask Mobb whether it reaches the GitLab Server
  mobb.scm.mobb_connection_info:
    api_url: "{{ mobb_api_url }}"  # https://api.mobb.ai/v1/graphql for Mobb's SaaS
    api_key: "{{ mobb_api_key }}"
    scm_url: "{{ gitlab_url }}"
  delegate_to: localhost
  register: mobb_connection

- name: Ask through Mobb's REST endpoint instead (its URL is in Mobb's API docs)
  mobb.scm.mobb_connection_info:
    api_url: "{{ mobb_api_url }}"
    api_key: "{{ mobb_api_key }}"
    rest_url: "{{ mobb_rest_url }}"  # https://api.mobb.ai/api/rest/... as Mobb's API docs give it
    scm_url: "{{ gitlab_url }}"
  delegate_to: localhost
  register: mobb_connection

- name: Stop when Mobb cannot reach GitLab
  ansible.builtin.assert:
    that: mobb_connection.connected
    fail_msg: >-
      Mobb cannot reach {{ gitlab_url }}
      {{ '(through broker ' ~ mobb_connection.broker_virtual_domain ~ ')' if mobb_connection.brokered else '' }}:
      {{ mobb_connection.message }}
    success_msg: Mobb reaches {{ gitlab_url }}; token stored {{ mobb_connection.token_last_update }}
"""

RETURN = r"""
connected:
  description: Whether Mobb reaches the SCM at O(scm_url) with the token it stores.
  returned: success
  type: bool
  sample: true
status:
  description: V(OK) when connected, else V(Error).
  returned: success
  type: str
  sample: OK
message:
  description: Why Mobb is not connected, in Mobb's words; null when connected.
  returned: success
  type: str
  sample: Mobb could not reach the repository
token_stored:
  description: Whether Mobb stores a token for O(scm_url).
  returned: success
  type: bool
  sample: true
token_last_update:
  description: When the stored token was last updated, as Mobb reports it (ISO 8601); null when none is stored.
  returned: success
  type: str
  sample: "2025-11-25T12:00:00.000Z"
scm_config_id:
  description: Mobb's id of the integration for O(scm_url); null when there is none.
  returned: success
  type: str
  sample: 6f1c1b8e-3a47-4f5e-9a3a-2f54c2d0b1aa
brokered:
  description: Whether Mobb reaches this host through its broker (a broker host's real domain equals the URL's host).
  returned: success
  type: bool
  sample: true
broker_virtual_domain:
  description: The broker's virtual domain for this host; null when not brokered.
  returned: success
  type: str
  sample: 0f9c7d4e-5b1a-4c53-9e0b-7f1d2a3b4c5d
request_id:
  description: The C(x-hasura-request-id) of the failed call to Mobb, for Mobb support.
  returned: when Mobb answered a call with an error
  type: str
  sample: 0b6d6d3e-3f62-4f61-8a6c-5bd6a1c2e9f4
"""

from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    broker_host_for,
    find_scm_config,
    normalize_scm_url,
    run_module,
)


def connection_info(module, client):
    scm_type = module.params['scm_type']
    scm_url = normalize_scm_url(module.params['scm_url'])
    answer = client.connection_status(scm_url)
    matches = find_scm_config(answer['me'].get('scmConfigs'), scm_type, scm_url)
    config = matches[0] if matches else None
    broker_host = broker_host_for(answer['me'], scm_url)
    return {
        'changed': False,
        'connected': answer['connected'],
        'status': 'OK' if answer['connected'] else 'Error',
        'message': answer['message'],
        'token_stored': bool(config and config.get('isTokenAvailable')),
        'token_last_update': config.get('tokenLastUpdate') if config else None,
        'scm_config_id': config.get('id') if config else None,
        'brokered': broker_host is not None,
        'broker_virtual_domain': broker_host.get('virtualDomain') if broker_host else None,
    }


def main():
    run_module(
        dict(
            scm_url=dict(type='str', required=True),
            scm_type=dict(type='str', default='GitLab'),
            rest_url=dict(type='str'),
        ),
        connection_info,
        supports_check_mode=True,
    )


if __name__ == '__main__':
    main()
