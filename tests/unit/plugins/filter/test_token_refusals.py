"""The tokens of a play that cannot be kept (plugins/filter/token_refusals.py)."""
from __future__ import annotations

from ansible_collections.mobb.scm.plugins.filter.token_refusals import token_refusals

URL = 'https://gitlab.example.com'


def test_only_hosts_with_a_refused_token_are_in_the_mapping(monkeypatch):
    monkeypatch.setenv('MOBB_API_KEY', 'key')
    hostvars = {
        'a': {'gitlab_token_rotation_gitlab_url': URL},
        'b': {'gitlab_token_rotation_gitlab_url': 'https://b.example.com',
              'gitlab_token_rotation_tokens': [{'token_name': 'x'}, {'token_name': 'y', 'gitlab_url': URL}]},
        'c': {'gitlab_token_rotation_gitlab_url': 'https://c.example.com', 'mobb_scm_inventory_problem': 'two'},
        'd': {'gitlab_token_rotation_gitlab_url': 'https://d.example.com'},
    }
    refused = token_refusals(['a', 'b', 'c', 'd'], hostvars, 'a', {'gitlab_token_rotation_gitlab_url': URL})
    assert sorted(refused) == ['a', 'b', 'c']
    assert sorted(refused['b']) == [1] and refused['b'][1]['refusals'] == []
    assert 'host a token personal:(api user)/mobb-broker and host b token personal:(api user)/y' in \
        refused['b'][1]['twins'][0]
    assert refused['c'] == {0: {'refusals': ['two'], 'twins': []}}


def test_play_values_stand_for_hosts_without_their_own_only_when_the_running_host_has_none(monkeypatch):
    monkeypatch.setenv('MOBB_API_KEY', 'key')
    # The play (or role) sets the URL: as the running host sees it, which may be templated per
    # host (https://{{ inventory_hostname }}), so it makes no twin across hosts...
    play = {'gitlab_token_rotation_gitlab_url': URL}
    assert token_refusals(['a', 'b'], {'a': {}, 'b': {}}, 'a', play) == {}
    # ...but two tokens of one host that both take it are twins.
    play_with_tokens = dict(play, gitlab_token_rotation_tokens=[{'user': 'alice'}, {'user': 'bob'}])
    assert sorted(token_refusals(['a'], {'a': {}}, 'a', play_with_tokens)['a']) == [0, 1]
    # A host's own URL and another host's play value are not compared either.
    hostvars = {'a': {'gitlab_token_rotation_gitlab_url': URL}, 'b': {}}
    assert token_refusals(['a', 'b'], hostvars, 'a', play) == {}
    # Two hosts whose own URLs are one are.
    hostvars = {'a': {'gitlab_token_rotation_gitlab_url': URL}, 'b': {'gitlab_token_rotation_gitlab_url': URL}}
    assert sorted(token_refusals(['a', 'b'], hostvars, 'a', play)) == ['a', 'b']
