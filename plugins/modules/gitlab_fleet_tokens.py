#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_fleet_tokens
short_description: Keep the GitLab tokens Mobb holds for every server of a play batch, in one controller process
version_added: 0.2.0
description:
  - The engine of the role C(mobb.scm.gitlab_token_rotation) (entry point C(main)) and so of the playbook
    C(mobb.scm.rotate). Run once for the play batch (C(run_once)), it keeps every token of every host in
    O(hosts), each host being one GitLab server described by the role's C(gitlab_token_rotation_*) variables,
    in this one process on the controller; then M(mobb.scm.gitlab_fleet_result) gives each host its own status,
    results and diff from RV(hosts).
  - B(The protocol is the per-token one.) Each token goes through the same safe rotation as
    M(mobb.scm.gitlab_server_token) (read, decide, issue, store, verify, and revoke only after Mobb's answer
    proves that it holds this run's token), with the same failure messages, check mode and diff.
  - B(Each host's variables are its own.) For each host the action takes the variables a task of the role on
    that host would have (inventory, play, role defaults and parameters, facts), templated for that host, and
    validates them against the role's argument spec, with the role's messages. A host whose variables do not
    pass fails alone. Twin tokens (two tokens feeding one Mobb integration) are found over the whole batch.
  - B(Concurrency.) O(concurrency) servers at a time, each in its own thread, its tokens one after the other
    over one GitLab client per credential. A slow or hung server holds only its own thread, for its own
    timeout; GitLab's 429 with C(Retry-After) is honoured in the thread of that server, the only one talking to
    it; an error of one server or token is that token's outcome only.
  - B(Mobb is read once per 50 servers.) The first Mobb read of every token (connection check and stored
    token) is one GraphQL request per 50 servers of one Mobb user instead of one per token. When Mobb fails
    such a request because a check failed, each of its servers is asked on its own, as before.
  - Never returns or prints a token or key; the new tokens' values live only inside this process.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  hosts:
    description:
      - The inventory hosts whose tokens to keep, usually V({{ ansible_play_batch }}).
    type: list
    elements: str
    required: true
  concurrency:
    description:
      - How many servers are kept at once. Unset, the run's forks (C(-f)), as many as the per-token action
        would keep at once.
    type: int
attributes:
  check_mode:
    support: full
    description: Nothing is written; each token's result says what a run would do (RV(hosts)).
  diff_mode:
    support: full
    description: Each host's diffs are in RV(hosts); M(mobb.scm.gitlab_fleet_result) shows them under the host.
notes:
  - The action reads the role's variables; use it through the role, which runs it once and then
    M(mobb.scm.gitlab_fleet_result) on each host. To keep one token from a playbook of your own, use
    M(mobb.scm.gitlab_server_token).
seealso:
  - module: mobb.scm.gitlab_fleet_result
  - module: mobb.scm.gitlab_server_token
"""

EXAMPLES = r"""
# What the role gitlab_token_rotation runs (use the role, or the playbook mobb.scm.rotate).
- name: Keep the tokens of every server of the play batch
  mobb.scm.gitlab_fleet_tokens:
    hosts: "{{ ansible_play_batch }}"
  run_once: true
  register: fleet

- name: Give each server its status, results and diff
  mobb.scm.gitlab_fleet_result:
    fleet: fleet
"""

RETURN = r"""
hosts:
  description:
    - Each host's part, by inventory hostname.
    - C(results), one record per token, as the role's fact C(gitlab_token_rotation_results) holds them (see
      M(mobb.scm.gitlab_server_token) for the fields), each with its C(host); C(diff), the tokens' diffs when
      the task runs with diff; C(warnings), the warnings of the host's tokens.
  returned: always
  type: dict
  sample:
    gitlab-eu:
      results:
        - label: project:team/app/mobb-broker
          action: none
          outcome: none
          changed: false
          failed: false
          host: gitlab-eu
      diff: []
      warnings: []
failed_hosts:
  description: The hosts with at least one token that could not be kept.
  returned: always
  type: list
  elements: str
concurrency:
  description: How many servers were kept at once, at most.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # The action plugin of the same name does the work on the controller; this file gives
    # ansible-doc and the sanity tests the documentation and the argument spec.
    module = AnsibleModule(argument_spec=dict(hosts=dict(type='list', elements='str', required=True),
                                              concurrency=dict(type='int')), supports_check_mode=True)
    module.fail_json(msg='mobb.scm.gitlab_fleet_tokens runs as an action on the controller; '
                         'this module file only documents it')


if __name__ == '__main__':
    main()
