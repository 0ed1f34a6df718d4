"""One source for every option of mobb.scm.gitlab_server_token (module_utils/server_token_options.py).

The role gitlab_token_rotation takes each option of the action as a variable: documented in
meta/argument_specs.yml and given a value in defaults/main.yml; mobb.scm.gitlab_fleet_tokens reads
them through role_arguments (no hand-written wiring). These tests read the two files and fail on
any difference from the action's ARGUMENT_SPEC, and prove that each kind of change made in one
place alone is found.
"""
from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import CONNECTION_ARGSPEC
from ansible_collections.mobb.scm.plugins.module_utils.mobb import MOBB_CONNECTION_ARGSPEC
from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import (
    ARGUMENT_SPEC,
    GITLAB_NAMES,
    MOBB_NAMES,
    COMPUTED_OPTIONS,
    ROLE_PREFIX,
    SettingsError,
    resolved_options,
    role_arguments,
    settle_arguments,
)

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'gitlab_token_rotation'
PREFIX = ROLE_PREFIX
# The role's own variables, which no option of the action mirrors.
ROLE_ONLY = {'delegate_to', 'tokens', 'concurrency', 'fail_on_error', 'report', 'report_hosts', 'report_title',
             'report_dir', 'report_metrics_file'}
# Connection options are null in defaults/main.yml, so module_defaults and the environment reach the action.
CONNECTION = set(GITLAB_NAMES) | set(MOBB_NAMES)
COMPARED = ('type', 'elements', 'choices', 'default', 'no_log')


def role_sources():
    """(documented options, defaults): the role's two places, as the files hold them."""
    documented = yaml.safe_load((ROLE / 'meta' / 'argument_specs.yml').read_text())['argument_specs']['main']
    defaults = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    return documented['options'], defaults


def _facet(option, key):
    if key == 'type':
        return option.get('type', 'str')
    if key == 'no_log':
        return bool(option.get('no_log'))
    return option.get(key)


def _documented_differently(variable, documented, option, connection):
    """A connection variable is null in defaults/main.yml, and ansible-core refuses a null int or
    bool whose spec has a default: its description names the action's default instead."""
    wanted = dict(option)
    default = wanted.pop('default', None) if connection else None
    found = ['%s: %s is %r in meta/argument_specs.yml, %r in the action' % (
        variable, key, _facet(documented, key), _facet(wanted, key))
        for key in COMPARED if _facet(documented, key) != _facet(wanted, key)]
    description = documented.get('description') or []
    text = ' '.join(' '.join([description] if isinstance(description, str) else description).split())
    shown = 'V(%s)' % (str(default).lower() if isinstance(default, bool) else default)
    if default is not None and shown not in text:
        found.append('%s: meta/argument_specs.yml does not say that unset is %s, the action\'s default'
                     % (variable, shown))
    return found


def disagreements(spec, documented, defaults):
    """Every difference between the action's options and the role's, one line each."""
    found = []
    for name, option in spec.items():
        if name in COMPUTED_OPTIONS:
            continue
        variable = PREFIX + name
        if variable not in documented:
            found.append('%s: not in meta/argument_specs.yml' % variable)
        else:
            found.extend(_documented_differently(variable, documented[variable], option, name in CONNECTION))
        expected = None if name in CONNECTION else option.get('default')
        if defaults.get(variable, 'missing') != expected:
            found.append('%s: %r in defaults/main.yml, %r expected' % (variable, defaults.get(variable, 'missing'),
                                                                       expected))
    for variable in documented:
        name = variable[len(PREFIX):]
        if name not in spec and name not in ROLE_ONLY:
            found.append('%s: documented by the role, but the action has no option %s' % (variable, name))
    return found


def test_the_role_mirrors_every_option_of_the_action():
    assert disagreements(ARGUMENT_SPEC, *role_sources()) == []


def _set(mapping, key, value):
    mapping[key] = value


CHANGES = {
    'a default of the action': (
        lambda spec, documented, defaults: _set(spec['expires_in_days'], 'default', 60),
        ['gitlab_token_rotation_expires_in_days: default is 30 in meta/argument_specs.yml, 60 in the action',
         'gitlab_token_rotation_expires_in_days: 30 in defaults/main.yml, 60 expected']),
    'a type in meta/argument_specs.yml': (
        lambda spec, documented, defaults: _set(documented['gitlab_token_rotation_verify_delay'], 'type', 'str'),
        ["gitlab_token_rotation_verify_delay: type is 'str' in meta/argument_specs.yml, 'int' in the action"]),
    'choices in meta/argument_specs.yml': (
        lambda spec, documented, defaults: documented['gitlab_token_rotation_mode']['choices'].append('x'),
        ["gitlab_token_rotation_mode: choices is ['rotate', 'check', 'x'] in meta/argument_specs.yml, "
         "['rotate', 'check'] in the action"]),
    'no_log of a secret': (
        lambda spec, documented, defaults: documented['gitlab_token_rotation_mobb_api_key'].pop('no_log'),
        ['gitlab_token_rotation_mobb_api_key: no_log is False in meta/argument_specs.yml, True in the action']),
    'a value in defaults/main.yml': (
        lambda spec, documented, defaults: _set(defaults, 'gitlab_token_rotation_check_days', 21),
        ['gitlab_token_rotation_check_days: 21 in defaults/main.yml, 14 expected']),
    'a connection default in defaults/main.yml': (
        lambda spec, documented, defaults: _set(defaults, 'gitlab_token_rotation_gitlab_timeout', 30),
        ['gitlab_token_rotation_gitlab_timeout: 30 in defaults/main.yml, None expected']),
    'a connection default of the action': (
        lambda spec, documented, defaults: _set(spec['mobb_timeout'], 'default', 60),
        ["gitlab_token_rotation_mobb_timeout: meta/argument_specs.yml does not say that unset is V(60), the "
         "action's default"]),
    'a new option of the action': (
        lambda spec, documented, defaults: _set(spec, 'overlap_hours', dict(type='int', default=0)),
        ['gitlab_token_rotation_overlap_hours: not in meta/argument_specs.yml',
         'gitlab_token_rotation_overlap_hours: \'missing\' in defaults/main.yml, 0 expected']),
    'an option the action dropped': (
        lambda spec, documented, defaults: spec.pop('check_days'),
        ['gitlab_token_rotation_check_days: documented by the role, but the action has no option check_days']),
}


@pytest.mark.parametrize('place', sorted(CHANGES))
def test_a_change_in_one_place_alone_is_found(place):
    change, expected = CHANGES[place]
    spec = copy.deepcopy(ARGUMENT_SPEC)
    documented, defaults = copy.deepcopy(role_sources())
    change(spec, documented, defaults)
    assert disagreements(spec, documented, defaults) == expected


def test_the_role_gives_every_option_but_the_computed_ones_as_its_variable():
    arguments = role_arguments(lambda variable: 'value of ' + variable)
    assert sorted(arguments) == sorted(set(ARGUMENT_SPEC) - set(COMPUTED_OPTIONS))
    assert arguments['force'] == 'value of gitlab_token_rotation_force'


def test_the_connection_options_are_the_modules_own_under_a_prefix():
    for module_name, option in CONNECTION_ARGSPEC.items():
        action_name = 'gitlab_url' if module_name == 'api_url' else 'gitlab_' + module_name
        assert GITLAB_NAMES[action_name] == module_name
        if module_name != 'api_url':
            assert ARGUMENT_SPEC[action_name] == option
    for module_name, option in MOBB_CONNECTION_ARGSPEC.items():
        assert MOBB_NAMES['mobb_' + module_name] == module_name and ARGUMENT_SPEC['mobb_' + module_name] == option
    # Each host is its own GitLab server: no GITLAB_URL for the whole fleet.
    assert ARGUMENT_SPEC['gitlab_url'] == dict(type='str', required=True)


def test_unset_options_come_from_the_role_item_then_the_groups_module_defaults():
    groups = {'mobb.scm.gitlab': {'api_url': 'https://group.example', 'api_token': 'g', 'timeout': 9,
                                  'state': 'present', 'name': 'ignored: an option of the token modules'},
              'mobb.scm.mobb': {'api_url': 'https://mobb.example/v1/graphql', 'api_key': 'k', 'timeout': None}}
    settled = settle_arguments({'gitlab_url': None, 'gitlab_timeout': None, 'mobb_timeout': 5,
                                'overrides': {'gitlab_url': 'https://item.example', 'user': None}}, groups)
    assert settled == {'gitlab_url': 'https://item.example', 'gitlab_api_token': 'g', 'gitlab_timeout': 9,
                       'mobb_timeout': 5, 'mobb_api_url': 'https://mobb.example/v1/graphql', 'mobb_api_key': 'k'}


def test_module_defaults_that_are_not_a_mapping_are_refused():
    with pytest.raises(SettingsError, match='^module_defaults for group/mobb.scm.mobb must be a mapping of '
                                            'options, got list$'):
        settle_arguments({'gitlab_url': 'https://a'}, {'mobb.scm.mobb': ['api_key']})


def test_resolved_options_take_the_environment_then_the_defaults():
    environ = {'MOBB_API_KEY': 'from-env', 'GITLAB_URL': 'https://not-a-fallback.example'}
    resolved = resolved_options({'gitlab_url': None, 'mobb_api_url': None, 'token_name': None}, environ)
    assert resolved['mobb_api_key'] == 'from-env' and resolved['gitlab_url'] is None
    assert resolved['mobb_api_url'] == 'https://api.mobb.ai/v1/graphql' and resolved['token_name'] == 'mobb-broker'
    assert resolved_options({'mobb_api_url': None}, {'MOBB_API_URL': 'https://m/v1/graphql'})['mobb_api_url'] == \
        'https://m/v1/graphql'


def test_overrides_win_over_the_options_beside_them():
    settled = settle_arguments({'gitlab_url': 'https://a', 'token_type': 'personal', 'user': 'bob',
                                'overrides': {'token_type': 'project', 'project': 'x/y', 'user': None}})
    assert settled == {'gitlab_url': 'https://a', 'token_type': 'project', 'user': 'bob', 'project': 'x/y'}
    assert settle_arguments({'gitlab_url': 'https://a'}) == {'gitlab_url': 'https://a'}


@pytest.mark.parametrize('overrides, message', [
    ({'tokne_type': 'project'}, 'overrides (in the role, an item of gitlab_token_rotation_tokens): unknown '
                                'option(s) tokne_type; it takes the options of mobb.scm.gitlab_server_token'),
    ({'overrides': {}}, 'overrides (in the role, an item of gitlab_token_rotation_tokens): unknown option(s) '
                        'overrides'),
    (['project'], 'overrides must be a mapping'),
])
def test_overrides_are_checked(overrides, message):
    with pytest.raises(SettingsError, match='^' + message.replace('(', r'\(').replace(')', r'\)')):
        settle_arguments({'gitlab_url': 'https://a', 'overrides': overrides})
