# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter token_refusals: which tokens of a play cannot be kept, found once for the whole play."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.mobb.scm.plugins.module_utils.twins import twin_messages

PREFIX = 'gitlab_token_rotation_'
# The role variables that name a token and the Mobb integration it feeds.
OPTIONS = ('gitlab_url', 'mobb_scm_url', 'mobb_api_url', 'mobb_api_key', 'token_type', 'token_name', 'user',
           'project', 'group', 'service_account')
# The options that name the GitLab URL Mobb knows the server by.
URL_OPTIONS = ('gitlab_url', 'mobb_scm_url')
# Set by the mobb.scm.mobb_integrations inventory on a server it cannot tell one integration of.
INVENTORY_PROBLEM = 'mobb_scm_inventory_problem'


def token_refusals(hosts, hostvars, running_host, play_values):
    """{host: {index: {'refusals': [...], 'twins': [...]}}} for the tokens of ``hosts`` (each
    index one item of gitlab_token_rotation_tokens, or 0) that cannot be kept; hosts whose
    tokens all can are left out, so each host's task reads a small mapping.

    ``hostvars`` holds each host's inventory and extra variables, not the play's, the role's
    defaults nor task vars: ``play_values`` are the role variables as ``running_host`` sees
    them, which stand for every host when ``running_host`` has no inventory value of its own.
    A token whose URL comes from them is compared only with the tokens of its own host: a
    play's ``https://{{ inventory_hostname }}`` is one URL per host, not the running host's.
    """
    running = hostvars[running_host]

    def value(variables, name):
        if name in variables:
            return variables[name]
        return None if name in running else play_values.get(name)

    refused = {}
    tokens = []
    for host in hosts:
        variables = hostvars[host]
        options = {name: value(variables, PREFIX + name) for name in OPTIONS}
        own_url = any(PREFIX + name in variables for name in URL_OPTIONS)
        problem = variables.get(INVENTORY_PROBLEM)
        for index, entry in enumerate(value(variables, PREFIX + 'tokens') or [{}]):
            if problem:
                refused.setdefault(host, {})[index] = {'refusals': [str(problem)], 'twins': []}
            if isinstance(entry, Mapping):
                token = dict(options)
                token.update((name, setting) for name, setting in entry.items() if setting is not None)
                within_host = not (own_url or any(entry.get(name) for name in URL_OPTIONS))
                tokens.append((host, index, token, within_host))
    for (host, index), message in twin_messages(tokens).items():
        refused.setdefault(host, {}).setdefault(index, {'refusals': [], 'twins': []})['twins'] = [message]
    return refused


class FilterModule:

    def filters(self):
        return {'token_refusals': token_refusals}
