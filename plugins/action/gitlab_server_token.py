# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action mobb.scm.gitlab_server_token: the safe rotation of one token, in-process on the controller.

ansible-core imports this file in its main process before forking workers, so python-gitlab
and requests are imported once per run, not once per host. The protocol lives in
module_utils/rotation.py, the options in module_utils/server_token_options.py; this file
settles and validates the arguments and returns the Rotation's result. The new token's value
never leaves the Rotation object.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.plugins.action import ActionBase

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GITLAB_IMPORT_ERROR
from ansible_collections.mobb.scm.plugins.module_utils.rotation import Rotation
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    SettingsError,
    group_defaults,
    settle_arguments,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    # GitLab and Mobb are reached over HTTP from the controller; the host is only a label.
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            # This worker's copy of the task: the overrides are validated with the rest.
            self._task.args = settle_arguments(self._task.args,
                                               group_defaults(self._task.module_defaults, self._templar.template))
        except SettingsError as error:
            raise AnsibleActionFail(str(error)) from None
        _validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                                          mutually_exclusive=MUTUALLY_EXCLUSIVE)
        if GITLAB_IMPORT_ERROR:
            raise AnsibleActionFail(missing_required_lib('python-gitlab and requests'))
        warnings = []
        rotation = Rotation.from_params(params, check_mode=bool(self._task.check_mode), warn=warnings.append)
        outcome = rotation.run()
        result.update(rotation.result(outcome))
        if self._task.diff and rotation.decision is not None:
            result['diff'] = rotation.diff()
        if warnings:
            result['warnings'] = warnings
        return result
