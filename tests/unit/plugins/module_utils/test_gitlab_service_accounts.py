"""Service accounts and memberships: parse_memberships alone, the classes over real HTTP
against the local GitLab."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    Membership, parse_memberships, role_name)

# ---- parse_memberships -------------------------------------------------------------------


def test_memberships_parse_with_developer_as_the_default_role():
    assert parse_memberships([
        {'project': ' acme/payments '},
        {'group': 'acme', 'access_level': 'Maintainer'},
        {'project': 42, 'access_level': 20},
        {'group': 'acme/platform', 'access_level': '50', 'project': None},
    ]) == [
        Membership('project', 'acme/payments', 30),
        Membership('group', 'acme', 40),
        Membership('project', '42', 20),
        Membership('group', 'acme/platform', 50),
    ]


def test_no_memberships_is_an_empty_list():
    assert parse_memberships([]) == [] and parse_memberships(None) == []


@pytest.mark.parametrize('values, message', [
    ([{'access_level': 'developer'}],
     r'^memberships\[0\] names neither project nor group: give exactly one, as an id or full path, for example '
     r'\{project: acme/app, access_level: developer\}; use one entry per target$'),
    ([{'project': 'acme/app'}, {'project': 'acme/api', 'group': 'acme'}],
     r'^memberships\[1\] names both project and group: give exactly one'),
    ([{'project': '  '}], r'^memberships\[0\] has an empty project: give its id or full path, such as acme/app$'),
    ([{'group': 'acme', 'access_level': 'admin'}],
     r"^memberships\[0\]: access_level must be one of guest, planner, reporter, developer, maintainer, owner "
     r"\(or 10, 15, 20, 30, 40, 50\), got 'admin'$"),
    ([{'project': 'acme/app'}, {'group': 'acme', 'access_level': 5}],
     r'^memberships\[1\]: access_level 5 is below guest, and a membership needs guest \(10\) or higher: to take a '
     r'membership away, leave the entry out and set purge_memberships$'),
    ([{'group': 'acme', 'access_level': 'minimal_access'}], r'^memberships\[0\]: access_level minimal_access is below'),
    ([{'group': 'acme', 'access_level': 0}], r'^memberships\[0\]: access_level 0 is below guest'),
    ([{'project': 'acme/app'}, {'group': 'acme'}, {'project': 'ACME/App', 'access_level': 'maintainer'}],
     r'^memberships\[2\] declares project ACME/App again, as memberships\[0\] did: declare each project or group '
     r'once, with the role the account needs there$'),
    ([{'projet': 'acme/app'}],
     r'^memberships\[0\] has unknown key\(s\) projet: an entry takes project or group, and access_level$'),
    (['acme/app'], r"^memberships\[0\] must be a dict such as \{project: acme/app, access_level: developer\}, "
                   r"got 'acme/app'$"),
])
def test_each_bad_entry_is_named_with_what_to_write(values, message):
    with pytest.raises(GitLabModuleError, match=message):
        parse_memberships(values)


def test_the_option_name_is_the_callers():
    with pytest.raises(GitLabModuleError, match=r'^service_account_memberships\[0\] names neither'):
        parse_memberships([{}], option='service_account_memberships')


def test_the_same_path_as_project_and_as_group_are_two_targets():
    assert len(parse_memberships([{'project': 'acme/app'}, {'group': 'acme/app'}])) == 2


@pytest.mark.parametrize('level, name', [(30, 'developer'), (15, 'planner'), (5, 'minimal_access'),
                                         (60, '60'), (None, None)])
def test_role_names_are_gitlabs(level, name):
    assert role_name(level) == name
