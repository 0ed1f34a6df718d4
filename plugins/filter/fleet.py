# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter fleet_problem: why a run of mobb.scm.rotate or mobb.scm.check must stop before it starts."""

from __future__ import annotations


def fleet_problem(inventory_errors, hosts, pattern, allow_empty=False):
    """One line saying why the fleet cannot be kept, or '' when it can.

    ``inventory_errors`` are the messages the mobb.scm.mobb_integrations inventory left when it
    could not read Mobb (group all's ``mobb_scm_inventory_errors``); ``hosts`` are the hosts
    that ``pattern`` (the playbook's target) matches. An unreadable inventory always fails;
    a target with no host fails unless ``allow_empty``: a daily job that keeps nothing must
    not pass for one that kept everything."""
    if inventory_errors:
        return ' | '.join(inventory_errors)
    if not hosts and not allow_empty:
        return ('no host in the inventory matches %r, so no GitLab token would be kept: check the inventory (-i) '
                'and mobb_scm_hosts, or pass -e mobb_scm_allow_empty=true if a fleet with no server is expected'
                % pattern)
    return ''


class FilterModule:

    def filters(self):
        return {'fleet_problem': fleet_problem}
