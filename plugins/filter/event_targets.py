# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter event_targets: the servers of a fleet that keep the token a GitLab webhook event names."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mobb.scm.plugins.module_utils.urls import UrlError, normalize_server_url

PREFIX = 'gitlab_token_rotation_'
# The role variables that say which token a host keeps and on which server.
OPTIONS = ('gitlab_url', 'mobb_scm_url', 'token_type', 'token_name', 'project', 'group')
EVENT_FIELDS = ('gitlab_url', 'kind', 'source_id', 'source_path', 'token_id', 'token_name', 'expires_at')


def _server(value):
    try:
        return normalize_server_url(value, 'gitlab_url')
    except UrlError:
        return None


def _same_source(configured, source_id, source_path):
    """A host names its project or group by id or by full path, as GitLab's API accepts both."""
    text = str(configured or '').strip().strip('/')
    return bool(text) and (text == str(source_id) or text.lower() == str(source_path).lower())


def _keeps(token, event, server):
    if token.get('token_type') != event['kind'] or token.get('token_name') != event['token_name']:
        return False
    if server not in (_server(token.get('gitlab_url')), _server(token.get('mobb_scm_url'))):
        return False
    return _same_source(token.get(event['kind']), event['source_id'], event['source_path'])


def event_targets(event, hosts, hostvars, running_host, play_values):
    """``{'hosts': [...], 'message': '...'}``: the hosts of ``hosts`` with a token that ``event``
    (an event of the mobb.scm.gitlab_token_webhook source) names, matched by GitLab server URL
    (gitlab_url or mobb_scm_url), token type, token name and project or group (id or path), and
    one line saying what was matched. ``hostvars`` holds each host's inventory and extra
    variables, not the play's, the role's defaults nor task vars: ``play_values``, the role's
    values as ``running_host`` sees them, stand for hosts without their own."""
    if not isinstance(event, Mapping) or not isinstance(event.get('gitlab_token'), Mapping):
        return {'hosts': [], 'message': 'The event is not one of the mobb.scm.gitlab_token_webhook source '
                                        '(it has no gitlab_token): no server is kept.'}
    token_event = event['gitlab_token']
    missing = [field for field in EVENT_FIELDS if token_event.get(field) in (None, '')]
    if missing:
        raise AnsibleFilterError('event_targets: the event lacks %s' % ', '.join(missing))
    server = _server(token_event['gitlab_url'])
    running = hostvars[running_host]

    def value(variables, name):
        if name in variables:
            return variables[name]
        return None if name in running else play_values.get(name)

    targets = []
    for host in hosts:
        variables = hostvars[host]
        options = {name: value(variables, PREFIX + name) for name in OPTIONS}
        for entry in value(variables, PREFIX + 'tokens') or [{}]:
            if not isinstance(entry, Mapping):
                continue
            token = dict(options)
            token.update((name, setting) for name, setting in entry.items() if setting is not None)
            if _keeps(token, token_event, server):
                targets.append(host)
                break
    described = "%s token %s '%s' of %s %s on %s, expiring %s" % (
        token_event['kind'], token_event['token_id'], token_event['token_name'], token_event['kind'],
        token_event['source_path'], server or token_event['gitlab_url'], token_event['expires_at'])
    if targets:
        message = 'GitLab warns that %s expires: keeping the tokens of %s.' % (described, ', '.join(targets))
    else:
        message = ('GitLab warns that %s expires, but no server of this fleet keeps it, so nothing runs. A server '
                   'keeps it when its gitlab_url (or mobb_scm_url) is %s and one of its tokens is a %s token named '
                   "'%s' of %s %s (or id %s)." % (
                       described, server or token_event['gitlab_url'], token_event['kind'],
                       token_event['token_name'], token_event['kind'], token_event['source_path'],
                       token_event['source_id']))
    return {'hosts': targets, 'message': message}


class FilterModule:

    def filters(self):
        return {'event_targets': event_targets}
