"""Listing tokens: pagination headers and Link, filters, search, sort."""
from __future__ import annotations

import re

import pytest


def links(response):
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers['Link'])}


def names(response):
    assert response.status_code == 200, response.text
    return [t['name'] for t in response.json()]


@pytest.fixture
def many(gl_api):
    """45 tokens: the admin's own and 44 more for root."""
    gl_api.instance.seed(tokens=[{'kind': 'personal', 'user': 'root', 'name': f'n{i}'} for i in range(44)])
    return gl_api


def test_pagination_headers_and_link_urls(many):
    response = many.admin_raw('GET', '/personal_access_tokens', params={'page': 2, 'per_page': 20, 'revoked': 'false'})
    headers = response.headers
    assert (headers['X-Page'], headers['X-Per-Page'], headers['X-Prev-Page'], headers['X-Next-Page']) == ('2', '20', '1', '3')
    assert (headers['X-Total'], headers['X-Total-Pages']) == ('45', '3')
    base = f'{many.instance.url}/api/v4/personal_access_tokens'
    assert links(response) == {
        'prev': f'{base}?revoked=false&page=1&per_page=20', 'next': f'{base}?revoked=false&page=3&per_page=20',
        'first': f'{base}?revoked=false&page=1&per_page=20', 'last': f'{base}?revoked=false&page=3&per_page=20',
    }
    assert len(response.json()) == 20 and response.json()[0]['id'] == 21

    last = many.admin_raw('GET', '/personal_access_tokens', params={'page': 3})
    assert (last.headers['X-Next-Page'], len(last.json())) == ('', 5)
    assert set(links(last)) == {'prev', 'first', 'last'}
    first = many.admin_raw('GET', '/personal_access_tokens')
    assert (first.headers['X-Prev-Page'], first.headers['X-Page']) == ('', '1')
    assert set(links(first)) == {'next', 'first', 'last'}


def test_per_page_is_capped_at_100_and_beyond_the_end_is_empty(many):
    response = many.admin_raw('GET', '/personal_access_tokens', params={'per_page': 500})
    assert (response.headers['X-Per-Page'], len(response.json())) == ('100', 45)
    beyond = many.admin_raw('GET', '/personal_access_tokens', params={'page': 9})
    assert beyond.json() == [] and beyond.headers['X-Next-Page'] == ''


def test_link_urls_follow_the_host_the_client_used_and_never_carry_the_token(many):
    port = many.instance.url.rsplit(':', 1)[1]
    response = many.raw('GET', '/personal_access_tokens', headers={'Host': f'localhost:{port}'},
                        params={'private_token': many.instance.admin_token})
    assert links(response)['next'] == (
        f'http://localhost:{port}/api/v4/personal_access_tokens?page=2&per_page=20')
    assert many.instance.admin_token not in response.headers['Link']


def test_totals_are_omitted_above_ten_thousand(gl_api):
    gl_api.instance.seed(tokens=[{'kind': 'personal', 'user': 'root', 'name': 'bulk'}] * 10_000)
    response = gl_api.admin_raw('GET', '/personal_access_tokens', params={'per_page': 100})
    assert 'X-Total' not in response.headers and 'X-Total-Pages' not in response.headers
    assert set(links(response)) == {'next', 'first'}
    exact = gl_api.admin_raw('GET', '/personal_access_tokens', params={'search': 'admin'})
    assert exact.headers['X-Total'] == '1'


@pytest.mark.parametrize(('query', 'expected'), [
    ('mobb', ['Mobb broker', 'mobb-ci', 'MOBB']),
    ('broker mob', ['Mobb broker']),
    ('mobb zzz', []),
    ('ci', []),
    ('mobb-ci', ['mobb-ci']),
    ('MOBB', ['Mobb broker', 'mobb-ci', 'MOBB']),
    ('ab', ['ab']),
    ('AB', ['ab']),
])
def test_search_matches_words_of_three_characters_or_the_whole_name(gl_api, query, expected):
    gl_api.instance.seed(tokens=[{'kind': 'personal', 'user': 'root', 'name': n}
                                 for n in ('Mobb broker', 'mobb-ci', 'MOBB', 'ab', 'other')])
    assert names(gl_api.admin_raw('GET', '/personal_access_tokens', params={'search': query})) == expected


def test_state_and_revoked_filters(gl_api):
    gl_api.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'root', 'name': 'live', 'expires_in_days': 10},
        {'kind': 'personal', 'user': 'root', 'name': 'today', 'expires_in_days': 0},
        {'kind': 'personal', 'user': 'root', 'name': 'past', 'expires_in_days': -1},
        {'kind': 'personal', 'user': 'root', 'name': 'revoked', 'revoked': True},
    ])

    def listed(**params):
        return names(gl_api.admin_raw('GET', '/personal_access_tokens', params=params))

    assert listed(state='active') == ['admin', 'live']
    # A token expiring today is neither: GitLab's scopes compare with < and > today.
    assert listed(state='inactive') == ['past', 'revoked']
    assert listed(revoked='true') == ['revoked']
    assert listed(revoked='false', state='inactive') == ['past']
    bad = gl_api.admin_raw('GET', '/personal_access_tokens', params={'state': 'expired'})
    assert (bad.status_code, bad.json()) == (400, {'error': 'state does not have a valid value'})
    bad = gl_api.admin_raw('GET', '/personal_access_tokens', params={'revoked': 'maybe'})
    assert (bad.status_code, bad.json()) == (400, {'error': 'revoked is invalid'})


def test_date_filters(gl_api):
    gl_api.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'root', 'name': 'old', 'created_days_ago': 40, 'last_used_days_ago': 30,
         'expires_in_days': 5},
        {'kind': 'personal', 'user': 'root', 'name': 'new', 'created_days_ago': 1, 'last_used_days_ago': 1,
         'expires_in_days': 50},
        {'kind': 'personal', 'user': 'root', 'name': 'unused', 'created_days_ago': 2, 'expires_at': None},
    ])

    def listed(**params):
        return names(gl_api.admin_raw('GET', '/personal_access_tokens', params=params))

    ten_days_ago = f'{gl_api.day(-10)}T00:00:00Z'
    assert listed(created_before=ten_days_ago) == ['old']
    assert listed(created_after=ten_days_ago) == ['admin', 'new', 'unused']
    assert listed(last_used_before=ten_days_ago) == ['old']
    assert listed(last_used_after=ten_days_ago) == ['admin', 'new']
    assert listed(expires_before=gl_api.day(5)) == []
    assert listed(expires_before=gl_api.day(6)) == ['old']
    assert listed(expires_after=gl_api.day(50)) == ['new']
    bad = gl_api.admin_raw('GET', '/personal_access_tokens', params={'created_before': 'yesterday'})
    assert (bad.status_code, bad.json()) == (400, {'error': 'created_before is invalid'})


@pytest.mark.parametrize(('sort', 'expected'), [
    ('name_asc', ['a', 'admin', 'b', 'c']),
    ('name_desc', ['c', 'b', 'admin', 'a']),
    ('created_asc', ['c', 'b', 'a', 'admin']),
    ('created_desc', ['admin', 'a', 'b', 'c']),
    ('expires_asc', ['a', 'c', 'b', 'admin']),
    ('expires_desc', ['b', 'c', 'a', 'admin']),
    ('last_used_desc', ['admin', 'b', 'a', 'c']),
    ('last_used_asc', ['a', 'b', 'admin', 'c']),
    ('created_at_desc', ['admin', 'a', 'b', 'c']),
])
def test_sort_orders_and_unknown_sorts_are_ignored(gl_api, sort, expected):
    gl_api.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'root', 'name': 'a', 'created_days_ago': 1, 'expires_in_days': 5,
         'last_used_days_ago': 3},
        {'kind': 'personal', 'user': 'root', 'name': 'b', 'created_days_ago': 2, 'expires_in_days': 30,
         'last_used_days_ago': 2},
        {'kind': 'personal', 'user': 'root', 'name': 'c', 'created_days_ago': 3, 'expires_in_days': 9},
    ])
    # The admin token never expires and was last used by this very request.
    assert names(gl_api.admin_raw('GET', '/personal_access_tokens', params={'sort': sort})) == expected


def test_project_token_lists_filter_the_same_way(gl_team):
    gl_team.instance.seed(tokens=[
        {'kind': 'project', 'project': 'team/app', 'name': 'deploy bot', 'access_level': 30},
        {'kind': 'project', 'project': 'team/app', 'name': 'old bot', 'revoked': True},
        {'kind': 'project', 'project': 'team/sub/lib', 'name': 'elsewhere'},
    ])
    response = gl_team.raw('GET', '/projects/team%2Fapp/access_tokens', token=gl_team.secrets['carol'],
                           params={'state': 'active'})
    assert names(response) == ['deploy bot'] and response.json()[0]['access_level'] == 30
    everything = gl_team.raw('GET', '/projects/team%2Fapp/access_tokens', token=gl_team.secrets['carol'])
    assert names(everything) == ['deploy bot', 'old bot'] and everything.headers['X-Total'] == '2'
    searched = gl_team.raw('GET', '/groups/team/access_tokens', token=gl_team.secrets['alice'], params={'search': 'bot'})
    assert names(searched) == []
