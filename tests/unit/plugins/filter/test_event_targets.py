"""The servers that keep the token a GitLab webhook event names (plugins/filter/event_targets.py)."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mobb.scm.plugins.filter.event_targets import event_targets

URL = 'https://gitlab.example.com'
EVENT = {'gitlab_token': {'gitlab_url': URL, 'kind': 'project', 'source_id': 7, 'source_path': 'payments/api',
                          'token_id': 27, 'token_name': 'mobb-broker', 'expires_at': '2027-01-08'}}
ROLE = {'gitlab_token_rotation_token_type': 'personal', 'gitlab_token_rotation_token_name': 'mobb-broker'}


def project_host(url=URL, project='payments/api', **others):
    variables = {'gitlab_token_rotation_gitlab_url': url, 'gitlab_token_rotation_token_type': 'project',
                 'gitlab_token_rotation_project': project}
    variables.update(('gitlab_token_rotation_' + name, value) for name, value in others.items())
    return variables


def targets(hostvars, event=None, play=None):
    return event_targets(event or EVENT, list(hostvars), dict(hostvars, localhost={}), 'localhost',
                         ROLE if play is None else play)


def test_a_server_keeps_the_token_by_url_type_name_and_project_path_or_id():
    hostvars = {
        'by-path': project_host(url='https://GitLab.example.com:443/'),
        'by-id': project_host(url='https://gitlab.example.com/api/v4', project=7),
        'other-server': project_host(url='https://gitlab2.example.com'),
        'other-project': project_host(project='payments/web'),
        'other-name': project_host(token_name='ci-bot'),
        'group-token': project_host(token_type='group', group='payments'),
        'personal': {'gitlab_token_rotation_gitlab_url': URL},
    }
    chosen = targets(hostvars)
    assert chosen['hosts'] == ['by-path', 'by-id']
    assert chosen['message'] == ("GitLab warns that project token 27 'mobb-broker' of project payments/api on "
                                 'https://gitlab.example.com, expiring 2027-01-08 expires: keeping the tokens of '
                                 'by-path, by-id.')


def test_mobb_scm_url_and_items_of_gitlab_token_rotation_tokens_count():
    hostvars = {
        'internal-url': project_host(url='http://10.0.0.5', mobb_scm_url=URL),
        'second-item': {'gitlab_token_rotation_gitlab_url': URL, 'gitlab_token_rotation_tokens': [
            {'user': 'alice'}, {'token_type': 'project', 'project': 'Payments/API'}]},
        'item-on-other-server': {'gitlab_token_rotation_gitlab_url': URL, 'gitlab_token_rotation_tokens': [
            {'token_type': 'project', 'project': 'payments/api', 'gitlab_url': 'https://gitlab2.example.com'}]},
    }
    assert targets(hostvars)['hosts'] == ['internal-url', 'second-item']


def test_the_roles_values_stand_for_hosts_without_their_own():
    play = dict(ROLE, gitlab_token_rotation_token_type='group', gitlab_token_rotation_group='parent/child')
    event = {'gitlab_token': dict(EVENT['gitlab_token'], kind='group', source_id=35, source_path='parent/child')}
    hostvars = {'a': {'gitlab_token_rotation_gitlab_url': URL}}
    assert targets(hostvars, event, play)['hosts'] == ['a']
    # ...unless the running host has a value of its own, which is not every host's.
    running = {'localhost': {'gitlab_token_rotation_group': 'elsewhere'}}
    assert event_targets(event, ['a'], dict(hostvars, **running), 'localhost', play)['hosts'] == []


def test_no_server_keeping_the_token_says_what_would_have_matched():
    chosen = targets({'a': project_host(url='https://gitlab2.example.com')})
    assert chosen['hosts'] == []
    assert 'no server of this fleet keeps it, so nothing runs' in chosen['message']
    assert "a project token named 'mobb-broker' of project payments/api (or id 7)" in chosen['message']


def test_an_event_of_another_source_chooses_nothing_and_a_broken_one_fails():
    assert targets({'a': project_host()}, event={'payload': {}})['hosts'] == []
    with pytest.raises(AnsibleFilterError, match='the event lacks token_name'):
        targets({'a': project_host()}, event={'gitlab_token': dict(EVENT['gitlab_token'], token_name='')})
