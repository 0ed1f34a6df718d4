# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action mobb.scm.gitlab_fleet_tokens: the role's tokens of every host of a play batch, kept
in this one process (module_utils/fleet.py), each host's variables read as its own task would.

Run once for the batch (run_once), in one worker. For each host it takes the variables Ansible
would give a task of the role on that host (the variable manager, with the task), templates the
role's variables in that host's context, validates them against the role's argument spec (the
role's own messages; playbooks then import the role with rolespec_validate false, so this
happens once, here), finds twin tokens over the whole batch, and validates each token's
arguments against the per-token action's ARGUMENT_SPEC. mobb.scm.gitlab_fleet_result then gives
each host its part of the result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible import constants as C
from ansible import context
from ansible.errors import AnsibleError
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.template import Templar

from ansible_collections.mobb.scm.plugins.module_utils.fleet import FleetRun, FleetToken
from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GITLAB_IMPORT_ERROR
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    ROLE_PREFIX,
    SettingsError,
    group_defaults,
    role_arguments,
    settle_arguments,
)
from ansible_collections.mobb.scm.plugins.module_utils.transport import one_line
from ansible_collections.mobb.scm.plugins.module_utils.twins import label_of, twin_messages

ROLE_SPEC_FILE = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, 'roles', 'gitlab_token_rotation',
                              'meta', 'argument_specs.yml')
# Set by the mobb.scm.mobb_integrations inventory on a server it cannot tell one integration of.
INVENTORY_PROBLEM = 'mobb_scm_inventory_problem'
TOKENS = ROLE_PREFIX + 'tokens'
ARGUMENTS = dict(hosts=dict(type='list', elements='str', required=True), concurrency=dict(type='int'))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    # GitLab and Mobb are reached over HTTP from the controller; the hosts are only labels.
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENTS)
        concurrency = args['concurrency'] or context.CLIARGS.get('forks') or C.DEFAULT_FORKS
        # What stops the whole run is every host's failure, each said by that host's own task: the
        # role runs this task with no_log (its result holds the whole fleet's), which would hide it.
        problem = None
        if GITLAB_IMPORT_ERROR:
            problem = missing_required_lib('python-gitlab and requests')
        elif concurrency < 1:
            problem = 'gitlab_token_rotation_concurrency must be 1 or more, got %d' % concurrency
        else:
            problem = self._play_problem(task_vars)
        if problem:
            result.update(changed=False, hosts=FleetRun.refused(args['hosts'], problem), concurrency=concurrency,
                          failed_hosts=list(args['hosts']))
            return result
        try:
            servers = self._servers(args['hosts'], task_vars)
            fleet = FleetRun(servers, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                             concurrency=concurrency).run()
        # A failure of the fleet run itself is every host's, each with the message; never a host without one.
        except Exception as error:  # pylint: disable=broad-exception-caught
            fleet = FleetRun.stopped(args['hosts'], error)
        result.update(changed=False, hosts=fleet, concurrency=concurrency,
                      failed_hosts=[host for host, kept in fleet.items()
                                    if any(record['failed'] for record in kept['results'])])
        return result

    def _play_problem(self, task_vars):
        """Why the role's variables that only its run-once tasks read (the report's, delegate_to,
        fail_on_error) break the role's spec, as the running host sees them; None when they do not."""
        spec = _role_options(self._loader)[1]
        validation = ArgumentSpecValidator(spec).validate(_role_values(spec, task_vars, self._templar))
        if validation.error_messages:
            return 'Validation of arguments failed: %s' % '; '.join(validation.error_messages)
        return None

    def _servers(self, hosts, task_vars):
        """[(host, [FleetToken, ...]), ...]: each host's tokens, their arguments from its own variables."""
        role_validator = ArgumentSpecValidator(_role_options(self._loader)[0])
        token_validator = ArgumentSpecValidator(ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE)
        entries = []
        for host in hosts:
            try:
                entries.append((host,) + self._host_arguments(host, task_vars, role_validator))
            except (AnsibleError, SettingsError) as error:
                entries.append((host, None, str(error)))
        twins = twin_messages([(host, index, dict(arguments, **_set(item)), False)
                               for host, tokens, _problem in entries if tokens
                               for index, (arguments, item) in enumerate(tokens)])
        servers = []
        for host, tokens, problem in entries:
            if tokens is None:
                servers.append((host, [FleetToken(refused=problem)]))
                continue
            kept = []
            for index, (arguments, item) in enumerate(tokens):
                arguments = dict(arguments, overrides=item, refusals=[problem] if problem else [],
                                 twins=[twins[(host, index)]] if (host, index) in twins else [])
                kept.append(_token(arguments, token_validator))
            servers.append((host, kept))
        return servers

    def _host_arguments(self, host, task_vars, role_validator):
        """([(the action's arguments, the token's item), ...], the inventory's problem or None)
        for ``host``; AnsibleError when its variables cannot be templated or break the role's spec."""
        hostvars = task_vars['hostvars']
        # What a task of the role on ``host`` would be given: inventory, play, role defaults and
        # parameters, the task's vars, facts and magic variables.
        variables = hostvars._variable_manager.get_vars(  # pylint: disable=protected-access
            play=_play_of(self._task), host=hostvars._inventory.get_host(host),  # pylint: disable=protected-access
            task=self._task, _hosts=task_vars.get('ansible_play_hosts'),
            _hosts_all=task_vars.get('ansible_play_hosts_all'))
        templar = Templar(loader=self._loader, variables=variables)
        spec = role_validator.argument_spec
        provided = _role_values(spec, variables, templar)
        validation = role_validator.validate(provided)
        if validation.error_messages:
            secrets = [value for name, value in provided.items() if spec[name].get('no_log') and value]
            raise AnsibleError(one_line('Validation of arguments failed: %s' % '; '.join(validation.error_messages),
                                        [str(secret) for secret in secrets]))
        arguments = role_arguments(provided.get)
        defaults = group_defaults(self._task.module_defaults, templar.template)
        items = provided.get(TOKENS) or [{}]
        tokens = [(settle_arguments(arguments, defaults), item) for item in items]
        return tokens, variables.get(INVENTORY_PROBLEM) and str(templar.template(variables[INVENTORY_PROBLEM]))


def _token(arguments, validator):
    """A FleetToken for the role's arguments of one token, as the per-token action would take them."""
    try:
        label = label_of(dict(arguments, **_set(arguments.get('overrides'))))
    except (AttributeError, TypeError):
        label = '-'  # a token_name that is not a string: the validation below says so
    try:
        settled = settle_arguments(arguments)
    except SettingsError as error:
        return FleetToken(refused=str(error), label=label)
    validation = validator.validate(settled)
    if validation.error_messages:
        secrets = [value for name, value in settled.items() if ARGUMENT_SPEC.get(name, {}).get('no_log') and value]
        return FleetToken(refused=one_line('; '.join(validation.error_messages), secrets), label=label)
    return FleetToken(params=validation.validated_parameters, label=label)


def _role_values(spec, variables, templar):
    """The role's variables of ``spec`` that ``variables`` set, templated with ``templar``, as plain data."""
    return {name: _plain(templar.template(variables[name]) if _templated(variables[name]) else variables[name])
            for name in spec if name in variables}


def _templated(value):
    """Whether ``value`` holds a template: most of the role's variables are its literal defaults,
    and templating each of them for every host would cost more than the rest of the read."""
    if isinstance(value, str):
        return '{{' in value or '{%' in value
    if isinstance(value, Mapping):
        return any(_templated(key) or _templated(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_templated(item) for item in value)
    return False


def _plain(value):
    """``value`` as plain Python data (dict, list, str, int, float, bool, None): ansible-core's
    tagged and lazy containers cost the argument validators' deep copies a hundred times more."""
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _set(item):
    """The keys of a token's item that are set (a null key leaves the role's variable in force)."""
    return {name: value for name, value in (item or {}).items() if value is not None} if isinstance(item, dict) else {}


def _play_of(task):
    node = task
    while node is not None:
        play = getattr(node, '_play', None)
        if play is not None:
            return play
        node = getattr(node, '_parent', None)
    return None


_ROLE_OPTIONS = []


def _role_options(loader):
    """The options of the role's main entry point (meta/argument_specs.yml), read once, as two
    specs: the variables each host's tokens are made of (validated for every host), and the
    others, which only the role's run-once tasks read (validated once, for the running host)."""
    if not _ROLE_OPTIONS:
        specs = _plain(loader.load_from_file(os.path.realpath(ROLE_SPEC_FILE)))
        options = specs['argument_specs']['main']['options']
        per_host = set(role_arguments(lambda variable: variable).values()) | {TOKENS}
        _ROLE_OPTIONS.extend([{name: option for name, option in options.items() if name in per_host},
                              {name: option for name, option in options.items() if name not in per_host}])
    return _ROLE_OPTIONS
