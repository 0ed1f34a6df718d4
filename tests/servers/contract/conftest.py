"""Shared pieces of the GitLab contract tests: python-gitlab clients and a standard team.

The ``gitlab``, ``gitlab_tls`` and ``gitlab_hub`` fixtures come from ``gitlab_server.fixtures``;
helpers are reached through the ``gl_api`` and ``gl_team`` fixtures (test modules never
import a conftest).
"""
from __future__ import annotations

import datetime as dt

import gitlab as python_gitlab
import pytest
import requests

# Who holds which role in the standard team (see ``gl_team``); erin belongs nowhere.
TEAM_SEED = {
    'users': [{'username': name} for name in ('alice', 'bob', 'carol', 'dave', 'erin')],
    'groups': [{'path': 'team/sub'}],
    'projects': [{'path': 'team/app'}, {'path': 'team/sub/lib'}, {'path': 'other/secret'}],
    'members': [
        {'username': 'alice', 'group': 'team', 'access_level': 50},
        {'username': 'dave', 'group': 'team', 'access_level': 40},
        {'username': 'carol', 'project': 'team/app', 'access_level': 40},
        {'username': 'bob', 'project': 'team/app', 'access_level': 30},
    ],
    'tokens': [
        {'kind': 'personal', 'user': name, 'name': 'work', 'scopes': ['api', 'read_user']}
        for name in ('alice', 'bob', 'carol', 'dave', 'erin')
    ],
}


class Api:
    """python-gitlab clients and plain HTTP calls against one instance."""

    def __init__(self, instance):
        self.instance = instance

    def gl(self, token=None, **options):
        """python-gitlab with this token (default: the administrator's)."""
        return python_gitlab.Gitlab(
            self.instance.url, private_token=token or self.instance.admin_token,
            ssl_verify=self.instance.ca_path or True, **options)

    def raw(self, method, path, token=None, **kwargs):
        """One HTTP request to ``/api/v4<path>`` with ``PRIVATE-TOKEN`` when a token is given."""
        headers = kwargs.pop('headers', {})
        if token is not None:
            headers['PRIVATE-TOKEN'] = token
        return requests.request(method, f'{self.instance.url}/api/v4{path}', headers=headers,
                                timeout=30, verify=self.instance.ca_path or True, **kwargs)

    def admin_raw(self, method, path, **kwargs):
        return self.raw(method, path, token=self.instance.admin_token, **kwargs)

    def today(self):
        return dt.date.fromisoformat(self.instance.now()[:10])

    def day(self, offset):
        """The instance's today plus ``offset`` days, as GitLab writes dates."""
        return (self.today() + dt.timedelta(days=offset)).isoformat()


class Team(Api):
    """The standard team on one instance: user ids and each user's working PAT (``work``)."""

    def __init__(self, instance, seeded):
        super().__init__(instance)
        self.user_ids = {u['username']: u['id'] for u in seeded['users']}
        self.user_ids['root'] = 1
        self.secrets = {t['user']: t['token'] for t in seeded['tokens']}
        self.secrets['root'] = instance.admin_token
        self.token_ids = {t['user']: t['id'] for t in seeded['tokens']}
        self.token_ids['root'] = 1

    def as_user(self, username, **options):
        """python-gitlab acting as this user, with the user's ``work`` token."""
        return self.gl(self.secrets[username], **options)


@pytest.fixture
def gl_api(gitlab):
    return Api(gitlab)


@pytest.fixture
def gl_team(gitlab):
    return Team(gitlab, gitlab.seed(**TEAM_SEED))
