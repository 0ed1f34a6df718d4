# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of mobb.scm.gitlab_server_token, and one token's settings checked before any request.

``ARGUMENT_SPEC`` is the one source of the action's options: its connection options are the
modules' (module_utils/gitlab.py, module_utils/mobb.py) under a ``gitlab_`` or ``mobb_``
prefix, with their environment fallbacks; the role's meta/argument_specs.yml, defaults and
wiring are checked against it (tests/unit/plugins/module_utils/test_server_token_options.py).
``settle_arguments`` turns a task's arguments into the ones to validate: unset options come
from the role's token item, then from module_defaults of the gitlab and mobb action groups.
``Settings`` is one token's settings, checked and normalised; it never holds a secret.
``connections`` builds the GitLab and Mobb clients from the prefixed options.
"""

from __future__ import annotations

import datetime
import hashlib
import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import CONNECTION_ARGSPEC, GitLabModuleError, connect
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import (
    ACCESS_LEVELS,
    PERSONAL_SCOPES,
    RESOURCE_SCOPES,
    check_scopes,
    days_left,
    lifetime_days,
    lifetime_problems,
    parse_access_level,
)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    check_top_level_group,
    parse_memberships,
    role_name,
)
from ansible_collections.mobb.scm.plugins.module_utils.mobb import MOBB_CONNECTION_ARGSPEC, MobbClient
from ansible_collections.mobb.scm.plugins.module_utils.urls import UrlError, normalize_server_url

TOKEN_TYPES = ('personal', 'project', 'group', 'service_account')
# Token types that are personal access tokens (of a human user or a service account).
PERSONAL_TYPES = ('personal', 'service_account')
ROTATION_METHODS = ('create_new', 'rotate', 'self_rotate')
MODES = ('rotate', 'check')
# What Mobb needs of each kind of token (Mobb's GitLab Server guide).
DEFAULT_SCOPES = {'personal': ['api', 'read_user'], 'project': ['api'], 'group': ['api'],
                  'service_account': ['api', 'read_user']}
MOBB_LEAST_ACCESS_LEVEL = ACCESS_LEVELS['developer']
# The description of the tokens the collection issues, unless told otherwise; it tells
# another mobb.scm rotation's token when Mobb holds one.
DESCRIPTION = 'Mobb access to %s through its broker; rotated by Ansible (mobb.scm)'


def _connection_options(module_spec, prefix, names=None):
    """The modules' connection options under this action's names: ``prefix`` + name, or
    ``names[name]``; returns (spec, {this action's name: the modules' name})."""
    names = names or {}
    renamed = {name: names.get(name, prefix + name) for name in module_spec}
    return {renamed[name]: dict(option) for name, option in module_spec.items()}, \
        {action_name: name for name, action_name in renamed.items()}


GITLAB_OPTIONS, GITLAB_NAMES = _connection_options(CONNECTION_ARGSPEC, 'gitlab_', {'api_url': 'gitlab_url'})
# Each host is one GitLab server: its URL is always given, never one GITLAB_URL for the whole fleet.
GITLAB_OPTIONS['gitlab_url'] = dict(type='str', required=True)
MOBB_OPTIONS, MOBB_NAMES = _connection_options(MOBB_CONNECTION_ARGSPEC, 'mobb_')

# The action groups whose module_defaults reach this action, and what each option of theirs is
# called here. The action is in neither group (meta/runtime.yml): both groups name options
# api_url, validate_certs, ca_path and timeout, and ansible-core merges the defaults of a task's
# groups by option name, so one service's URL would overwrite the other's.
CONNECTION_GROUPS = {
    'mobb.scm.gitlab': {name: action_name for action_name, name in GITLAB_NAMES.items()},
    'mobb.scm.mobb': {name: action_name for action_name, name in MOBB_NAMES.items()},
}

# The options of one kept token, as the action (and the role, one per token) takes them.
# plugins/modules/gitlab_server_token.py documents them, and the role mirrors them: a unit test
# checks that all three agree.
ARGUMENT_SPEC = dict(
    GITLAB_OPTIONS,
    **MOBB_OPTIONS,
    mobb_rest_url=dict(type='str'),
    mobb_scm_url=dict(type='str'),
    token_type=dict(type='str', default='personal', choices=list(TOKEN_TYPES)),
    token_name=dict(type='str', default='mobb-broker', no_log=False),
    user=dict(type='str'),
    project=dict(type='str'),
    group=dict(type='str'),
    service_account=dict(type='str'),
    # parse_memberships checks each entry (one target, a role), for the run's own message.
    service_account_memberships=dict(type='list', elements='dict', default=[], options=dict(
        project=dict(type='str'), group=dict(type='str'), access_level=dict(type='raw', default='developer'))),
    service_account_create=dict(type='bool', default=False),
    service_account_name=dict(type='str'),
    scopes=dict(type='list', elements='str'),
    access_level=dict(type='raw', default='developer'),
    description=dict(type='str'),
    expires_in_days=dict(type='int', default=30),
    rotate_before_days=dict(type='int', default=7),
    rotate_at_fraction=dict(type='float'),
    spread_days=dict(type='int', default=0),
    retire_after_days=dict(type='int', default=0),
    rotation_method=dict(type='str', default='create_new', choices=list(ROTATION_METHODS)),
    force=dict(type='bool', default=False),
    verify_retries=dict(type='int', default=10),
    verify_delay=dict(type='int', default=3),
    mode=dict(type='str', default='rotate', choices=list(MODES)),
    check_days=dict(type='int', default=14),
    overrides=dict(type='dict', default={}),
    # Computed by the role over the whole play (module_utils/twins.py): the token cannot be kept.
    refusals=dict(type='list', elements='str', default=[]),
    twins=dict(type='list', elements='str', default=[]),
)
# The GitLab credentials, of which one is used (module_utils/gitlab.py: CREDENTIALS).
MUTUALLY_EXCLUSIVE = [('gitlab_api_token', 'gitlab_api_oauth_token', 'gitlab_api_job_token')]


# The role's variables: every option but COMPUTED_OPTIONS is the variable ROLE_PREFIX + its name.
ROLE_PREFIX = 'gitlab_token_rotation_'
# Options the role computes for each token: its item of gitlab_token_rotation_tokens, and what
# module_utils/twins.py finds over the whole fleet.
COMPUTED_OPTIONS = ('overrides', 'refusals', 'twins')


def role_arguments(variable):
    """The action's arguments from the role's variables: ``variable(name)`` gives one's value."""
    return {name: variable(ROLE_PREFIX + name) for name in ARGUMENT_SPEC if name not in COMPUTED_OPTIONS}


def group_defaults(module_defaults, template):
    """A task's module_defaults for the gitlab and mobb action groups, each templated with
    ``template``: {'mobb.scm.gitlab': {...}, 'mobb.scm.mobb': {...}} (CONNECTION_GROUPS says why
    the action is in neither group)."""
    merged = {}
    for defaults in module_defaults or []:
        merged.update(defaults)
    return {group: template(merged['group/' + group]) for group in CONNECTION_GROUPS if 'group/' + group in merged}


def settle_arguments(arguments, group_defaults=None):
    """The task's arguments to validate: options set to null are unset (the role passes every
    variable, null when the user set none); ``overrides`` (one entry of the role's token list)
    is laid over the rest, its null keys left out; connection options still unset come from ``group_defaults``, the
    module_defaults of the gitlab and mobb action groups (``{'mobb.scm.gitlab': {...}}``).
    Environment fallbacks and defaults follow in validation."""
    arguments = dict(arguments)
    overrides = arguments.pop('overrides', None) or {}
    if not isinstance(overrides, dict):
        raise SettingsError('overrides must be a mapping of this action\'s options, got %s'
                            % type(overrides).__name__)
    unknown = sorted(set(overrides) - set(ARGUMENT_SPEC) | set(overrides) & {'overrides'})
    if unknown:
        raise SettingsError('overrides (in the role, an item of gitlab_token_rotation_tokens): unknown option(s) '
                            '%s; it takes the options of mobb.scm.gitlab_server_token' % ', '.join(unknown))
    arguments.update((name, value) for name, value in overrides.items() if value is not None)
    settled = {name: value for name, value in arguments.items() if value is not None}
    for group, names in CONNECTION_GROUPS.items():
        defaults = (group_defaults or {}).get(group) or {}
        if not isinstance(defaults, dict):
            raise SettingsError('module_defaults for group/%s must be a mapping of options, got %s'
                                % (group, type(defaults).__name__))
        for name, value in defaults.items():
            if name in names and value is not None:
                settled.setdefault(names[name], value)
    return settled


def resolved_options(options, environ=None):
    """``options`` with each option of ARGUMENT_SPEC left unset (or null) given what validation
    would give it: its environment fallback (from ``environ``), else its default. For code that
    reads the options before the action does (module_utils/twins.py)."""
    environ = os.environ if environ is None else environ
    resolved = dict(options)
    for name, option in ARGUMENT_SPEC.items():
        if resolved.get(name) is not None:
            continue
        fallback = option.get('fallback')
        variables = fallback[1] if fallback and fallback[0] is env_fallback else []
        value = next((environ[variable] for variable in variables if environ.get(variable)), None)
        resolved[name] = option.get('default') if value is None else value
    return resolved


def connections(params, gitlab_url, warn=None):
    """The clients for ``params`` (validated against ARGUMENT_SPEC), built as the modules build
    theirs: (GitLab client, Mobb client, a factory of GitLab clients that authenticate with
    another token of the same server, the value of the GitLab credential). Raises
    GitLabModuleError or MobbError for connection options no client can be built from."""
    gitlab_params = {name: params[option] for option, name in GITLAB_NAMES.items()}
    gitlab_params['api_url'] = gitlab_url
    mobb_params = {name: params[option] for option, name in MOBB_NAMES.items()}
    gitlab_client, credentials = connect(gitlab_params)
    # The connection check through Mobb's REST endpoint when given: a choice of the client,
    # so read and verify ask the same way.
    mobb_client = MobbClient(warn=warn, rest_url=params.get('mobb_rest_url'), **mobb_params)

    def token_client(value):
        # The kept or a new token, never the manager's other credential kinds beside it.
        return connect(dict(gitlab_params, api_token=value, api_oauth_token=None, api_job_token=None))[0]

    return gitlab_client, mobb_client, token_client, credentials[0]


class SettingsError(Exception):
    """The settings cannot work; nothing was sent anywhere."""


class Settings:
    """One token's settings, checked and normalised; never holds a secret."""

    def __init__(self, params):
        problems = []
        self.token_type = params['token_type']
        self.token_name = (params['token_name'] or '').strip()
        self.user = params.get('user') or None
        self.project = params.get('project') or None
        self.group = params.get('group') or None
        self.service_account = params.get('service_account') or None
        self.service_account_create = bool(params.get('service_account_create'))
        self.service_account_name = params.get('service_account_name') or None
        self.memberships = []
        self.owner = token_owner_name(self.token_type, self.user, self.project, self.group, self.service_account)
        self.rotation_method = params['rotation_method']
        self.force = bool(params['force'])
        self.mode = params['mode']
        self.expires_in_days = params['expires_in_days']
        self.rotate_before_days = params['rotate_before_days']
        self.rotate_at_fraction = params.get('rotate_at_fraction')
        self.spread_days = params.get('spread_days') or 0
        self.retire_after_days = params.get('retire_after_days') or 0
        self.check_days = params['check_days']
        self.verify_retries = params['verify_retries']
        self.verify_delay = params['verify_delay']
        self.scopes = list(params.get('scopes') or DEFAULT_SCOPES[self.token_type])
        # A check reads and reports twins as problems; a rotation must not start (module_utils/twins.py).
        self.twins = list(params.get('twins') or [])
        problems.extend(params.get('refusals') or [])
        if self.mode == 'rotate':
            problems.extend(self.twins)

        self.gitlab_url = self._url(params.get('gitlab_url'), 'gitlab_url', problems)
        self.scm_url = self.gitlab_url
        if params.get('mobb_scm_url'):
            self.scm_url = self._url(params['mobb_scm_url'], 'mobb_scm_url', problems)
        self.description = params.get('description') or DESCRIPTION % (self.gitlab_url or '?')

        if self.token_type in ('project', 'group') and not self.owner:
            problems.append('a %s token needs its %s (id or full path): set %s (in the role, '
                            'gitlab_token_rotation_%s)' % ((self.token_type,) * 4))
        if not self.token_name:
            problems.append('the token name is empty: set token_name (in the role, gitlab_token_rotation_token_name)')
        if 'api' not in self.scopes:
            problems.append('scopes %s lack "api", which Mobb needs to open merge requests: add it'
                            % _json_list(self.scopes))
        personal = self.token_type in PERSONAL_TYPES
        if not personal and 'read_user' in self.scopes:
            problems.append('GitLab does not give %s tokens the "read_user" scope: remove it (Mobb needs only '
                            '"api" there)' % self.token_type)
        else:
            try:
                check_scopes(self.scopes, PERSONAL_SCOPES if personal else RESOURCE_SCOPES,
                             'personal access token' if personal else '%s access token' % self.token_type)
            except GitLabModuleError as error:
                problems.append(str(error))
        self.access_level = None
        if not personal:
            self.access_level = _access_level(params['access_level'], problems)
        if self.token_type == 'service_account':
            self._check_service_account(params.get('service_account_memberships') or [], problems)
        problems.extend(lifetime_problems(self.expires_in_days, self.rotate_before_days))
        problems.extend(self._schedule_problems())
        problems.extend(self._window_problems())
        if self.rotation_method == 'self_rotate' and self.token_type == 'service_account':
            problems.append("self_rotate is not offered for a service account's token here: use create_new (or "
                            "rotate) with an administrator's token, or for a group service account its group "
                            "Owner's token")
        elif self.rotation_method == 'self_rotate' and self.token_type != 'personal':
            problems.append("self_rotate is for a personal token rotated with itself; replace %s tokens with "
                            "create_new and a Maintainer's or Owner's token" % self.token_type)
        if self.verify_retries < 0 or self.verify_delay < 0:
            problems.append('verify_retries and verify_delay must be 0 or more')
        self.problems = problems

    def _check_service_account(self, memberships, problems):
        """A service account token: the account, its group (top-level), the memberships Mobb needs."""
        if not self.service_account:
            problems.append("a service_account token needs the service account's username: set service_account "
                            '(in the role, gitlab_token_rotation_service_account)')
        if self.group:
            try:
                check_top_level_group(self.group)
            except GitLabModuleError as error:
                problems.append('%s; or set no group, for an instance service account, which an administrator '
                                'manages' % error)
        if not memberships:
            problems.append('a service account reaches nothing until it is a member of the projects or groups Mobb '
                            'needs: list them in service_account_memberships (in the role, '
                            'gitlab_token_rotation_service_account_memberships), for example '
                            '[{project: team/app, access_level: developer}]')
            return
        try:
            self.memberships = parse_memberships(memberships, option='service_account_memberships')
        except GitLabModuleError as error:
            problems.append(str(error))
            return
        for membership in self.memberships:
            if membership.access_level < MOBB_LEAST_ACCESS_LEVEL:
                problems.append('service_account_memberships: %s is below developer, the least Mobb needs: use '
                                'developer' % membership_label(membership))

    def _schedule_problems(self):
        """rotate_at_fraction and spread_days, checked against a new token's lifetime."""
        fraction, spread, lifetime = self.rotate_at_fraction, self.spread_days, self.expires_in_days
        if fraction is not None and not 0 < fraction < 1:
            return ['rotate_at_fraction must be above 0 and below 1 (the part of the lifetime after which a token '
                    'is rotated, for example 0.67), got %s' % fraction]
        if spread < 0:
            return ['spread_days must be 0 or more, got %d' % spread]
        if lifetime is None or lifetime < 1 or not spread and fraction is None:
            return []
        threshold = max(self.rotate_before_days, _fraction_days(lifetime, fraction)) + spread
        if threshold >= lifetime:
            return ['a new token lives expires_in_days (%d) and would be due at once: rotate_before_days (%d)%s plus '
                    'spread_days (%d) make a threshold of %d days; give a longer lifetime, a larger '
                    'rotate_at_fraction or fewer spread_days'
                    % (lifetime, self.rotate_before_days,
                       ' or rotate_at_fraction (%s)' % fraction if fraction is not None else '', spread, threshold)]
        return []

    def _window_problems(self):
        """retire_after_days: a window the old token can be kept for, with a method that keeps it."""
        window = self.retire_after_days
        if window < 0:
            return ['retire_after_days must be 0 or more, got %d' % window]
        if window and self.in_place:
            return ['retire_after_days keeps the old token active after the switch, but rotation_method %s has '
                    'GitLab revoke it at once: use rotation_method create_new, or retire_after_days 0'
                    % self.rotation_method]
        if window and self.expires_in_days and window >= self.expires_in_days:
            return ['retire_after_days (%d) must be less than expires_in_days (%d): the new token would be due '
                    'before the old one is retired' % (window, self.expires_in_days)]
        return []

    def retire_on(self, created_at):
        """The date from which the tokens older than the managed one, created at ``created_at``
        (GitLab's time or date), may be revoked: retire_after_days later."""
        return datetime.date.fromisoformat(str(created_at)[:10]) + datetime.timedelta(days=self.retire_after_days)

    @property
    def spread_offset(self):
        """This token's days of spread: the same number on every run, from the GitLab server
        and the token's label, between 0 and spread_days."""
        if not self.spread_days:
            return 0
        digest = hashlib.sha256(('%s %s' % (self.gitlab_url, self.label)).encode('utf-8')).hexdigest()
        return int(digest, 16) % (self.spread_days + 1)

    def rotation_threshold(self, token):
        """The days left at which ``token`` is rotated: rotate_before_days, or the rest of its
        lifetime after rotate_at_fraction of it when that is more, plus the spread."""
        days = self.rotate_before_days
        if self.rotate_at_fraction is not None:
            days = max(days, _fraction_days(lifetime_days(token), self.rotate_at_fraction))
        return days + self.spread_offset

    def threshold_for(self, token):
        """The days left at which ``token`` is due: in mode check, check_days."""
        return self.check_days if self.mode == 'check' else self.rotation_threshold(token)

    def next_rotation(self, token, today):
        """The date the rotation plans to replace ``token`` (today when it is already due), or
        None for a token without expiry."""
        left = days_left(token.get('expires_at'), today)
        if left is None:
            return None
        return (today + datetime.timedelta(days=max(0, left - self.rotation_threshold(token)))).isoformat()

    @staticmethod
    def _url(value, option, problems):
        try:
            return normalize_server_url(value, option)
        except UrlError as error:
            problems.append(str(error))
            return None

    @property
    def label(self):
        return token_label(self.token_type, self.owner, self.token_name)

    @property
    def in_place(self):
        return self.rotation_method in ('rotate', 'self_rotate')

    @property
    def threshold_days(self):
        return self.check_days if self.mode == 'check' else self.rotate_before_days

    def check(self):
        if self.problems:
            raise SettingsError('%s: %s. Nothing was changed.' % (self.label, '; '.join(self.problems)))


def token_owner_name(token_type, user, project, group, service_account):
    """Whose token it is, as the label names it: the user, project, group, or [group/]account."""
    if token_type == 'service_account':
        return '%s/%s' % (group, service_account) if service_account and group else service_account
    return {'personal': user, 'project': project, 'group': group}.get(token_type)


def token_label(token_type, owner, token_name):
    """personal:alice/mobb-broker"""
    owner = owner or ('(api user)' if token_type == 'personal' else '(no %s)' % token_type)
    return '%s:%s/%s' % (token_type, owner, token_name)


def _json_list(values):
    return '[%s]' % ', '.join('"%s"' % value for value in values)


def _access_level(value, problems):
    try:
        level = parse_access_level(value)
    except GitLabModuleError:
        problems.append('access_level "%s" is not a GitLab role: use one of %s or its number'
                        % (value, ', '.join(ACCESS_LEVELS)))
        return None
    if level < MOBB_LEAST_ACCESS_LEVEL:
        problems.append('access_level "%s" is below developer, the least Mobb needs: use developer' % value)
    return level


def _fraction_days(lifetime, fraction):
    """The days left once ``fraction`` of a ``lifetime`` (days) has passed; 0 when either is unknown."""
    if lifetime is None or fraction is None:
        return 0
    # The small term keeps 30 * (1 - 0.5) at 15 despite floating point.
    return max(0, int(lifetime * (1 - fraction) + 1e-9))


def membership_label(membership):
    """the developer role in project 'team/app'"""
    return "the %s role in %s '%s'" % (role_name(membership.access_level), membership.kind, membership.ref)
