#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_fleet_result
short_description: Give one GitLab server its status from a mobb.scm.gitlab_fleet_tokens run
version_added: 0.2.0
description:
  - The one task per host of the role C(mobb.scm.gitlab_token_rotation) (entry point C(main)). It takes the
    host's part of a registered M(mobb.scm.gitlab_fleet_tokens) result and makes it that host's own task result, so that
    each GitLab server ends ok, changed or failed in C(ansible-playbook), in AWX and in retry files.
  - Sets the facts C(gitlab_token_rotation_results) (one record per token) and C(gitlab_token_rotation_result)
    (the last one), shows the host's diff (with C(--diff)) and warnings, and fails the host when a token could
    not be kept and O(fail_on_error) is true, with each failed token's message.
  - Makes no request and never holds a secret.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  fleet:
    description:
      - The name of the variable that registered the M(mobb.scm.gitlab_fleet_tokens) result, read by this action
        itself (a template of the whole fleet's result in each host's arguments would cost every host the fleet's
        size). Without this host's entry (the fleet run did not finish this host), the host fails and says so.
    type: str
    required: true
  fail_on_error:
    description:
      - Fail the host when one of its tokens could not be kept. V(false) records the failure in the facts only.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports what the fleet run in check mode predicted.
  diff_mode:
    support: full
    description: Shows the host's diffs from the fleet run.
seealso:
  - module: mobb.scm.gitlab_fleet_tokens
"""

EXAMPLES = r"""
- name: Give each server its status, results and diff
  mobb.scm.gitlab_fleet_result:
    fleet: fleet
    fail_on_error: true
"""

RETURN = r"""
changed:
  description: Whether a token of this host was (or, in check mode, would be) changed.
  returned: always
  type: bool
msg:
  description: The failed tokens' messages, each saying what still works; else one line per host's tokens.
  returned: always
  type: str
ansible_facts:
  description: The facts set on the host.
  returned: always
  type: complex
  contains:
    gitlab_token_rotation_results:
      description: One record per token (see M(mobb.scm.gitlab_server_token) for the fields).
      returned: always
      type: list
      elements: dict
    gitlab_token_rotation_result:
      description: The last of them.
      returned: always
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # The action plugin of the same name does the work on the controller; this file gives
    # ansible-doc and the sanity tests the documentation and the argument spec.
    module = AnsibleModule(argument_spec=dict(fleet=dict(type='str', required=True),
                                              fail_on_error=dict(type='bool', default=True)),
                           supports_check_mode=True)
    module.fail_json(msg='mobb.scm.gitlab_fleet_result runs as an action on the controller; '
                         'this module file only documents it')


if __name__ == '__main__':
    main()
