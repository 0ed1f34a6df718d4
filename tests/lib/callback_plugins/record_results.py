"""Test-only callback: appends every task result, as Ansible returns it, to a JSON-lines file.

The playbook runner fixture sets RECORD_RESULTS_FILE; results of no_log tasks arrive here
already censored by ansible-core, exactly as any other callback would see them.
"""
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: write task results as JSON lines (tests only)
description: Writes each task result to the file named by RECORD_RESULTS_FILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, status):
        path = os.environ.get('RECORD_RESULTS_FILE')
        if not path:
            return
        entry = {
            'host': result._host.get_name(),
            'task': result._task.get_name(),
            'action': result._task.action,
            'status': status,
            'result': result._result,
        }
        with open(path, 'a', encoding='utf-8') as stream:
            stream.write(json.dumps(entry, default=str) + '\n')

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')
