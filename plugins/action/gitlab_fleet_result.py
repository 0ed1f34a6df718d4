# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action mobb.scm.gitlab_fleet_result: one host's part of a mobb.scm.gitlab_fleet_tokens result
as that host's own task result: changed or failed, its diff and warnings, and its results as the
facts gitlab_token_rotation_results and gitlab_token_rotation_result. No request is made.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ARGUMENTS = dict(fleet=dict(type='str', required=True), fail_on_error=dict(type='bool', default=True))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENTS)
        # The fleet's result is read here, by name, not templated into the task's arguments: a
        # template would make every host's worker walk (and copy) the whole fleet's result.
        registered = task_vars.get(args['fleet'])
        hosts = registered.get('hosts') if isinstance(registered, dict) else None
        kept = hosts.get(task_vars['inventory_hostname']) if isinstance(hosts, dict) else None
        if not isinstance(kept, dict) or 'results' not in kept:
            raise AnsibleActionFail("The fleet run did not keep this server's tokens (%s holds no result for it; the "
                                    "run's own error is shown above). Nothing is known of them from this run: run "
                                    'again.' % args['fleet'])
        records = kept['results']
        failures = [record for record in records if record.get('failed')]
        result.update(
            changed=any(record.get('changed') for record in records),
            ansible_facts=dict(gitlab_token_rotation_results=records,
                               gitlab_token_rotation_result=records[-1] if records else None),
            msg=' | '.join(record['msg'] for record in failures) if failures else '%d token(s): %s' % (
                len(records), ', '.join('%s %s' % (record['label'], record['action']) for record in records)),
        )
        if kept.get('diff') and self._task.diff:
            result['diff'] = kept['diff']
        if kept.get('warnings'):
            result['warnings'] = list(kept['warnings'])
        if failures and args['fail_on_error']:
            result['failed'] = True
        return result
