"""The inventory plugin is loaded by name, as ansible-core loads it, which needs
ansible-core's collection loader in place before the first ``ansible_collections``
import. That loader also makes ``AnsibleModule`` report warnings to the controller
instead of in the module's JSON, which the module tests read: so this folder runs in
a pytest process of its own (``make units``).
"""
from __future__ import annotations

import os

from ansible.plugins.loader import init_plugin_loader

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

init_plugin_loader([os.path.join(REPO_ROOT, '.cache', 'collections')])
