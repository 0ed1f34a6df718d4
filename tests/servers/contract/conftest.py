"""Shared pieces of the GitLab contract tests: python-gitlab clients and a standard team.

The ``gitlab``, ``gitlab_tls`` and ``gitlab_hub`` fixtures come from ``gitlab_server.fixtures``;
helpers are reached through the ``gl_api`` and ``gl_team`` fixtures (test modules never
import a conftest).
"""
from __future__ import annotations

import copy
import datetime as dt
import pathlib
import re

import gitlab as python_gitlab
import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

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


class OpenApiExtract:
    """One of GitLab's OpenAPI extracts beside these tests, with its quirks fixed in a copy: the
    ones every extract shares (``shared_quirks``), then the ones ``patch`` fixes."""

    def __init__(self, filename, patch, token_entities):
        path = pathlib.Path(__file__).with_name(filename)
        self.raw = yaml.safe_load(path.read_text(encoding='utf-8'))
        self.patched = patch(self.shared_quirks(copy.deepcopy(self.raw), token_entities))
        self.openapi = OpenAPI.from_dict(self.patched)

    @staticmethod
    def shared_quirks(spec, token_entities):
        """The server and the access-token entities (named in ``token_entities``) fixed."""
        schemas = spec['components']['schemas']
        # Any local instance (http or https, any port) instead of https://{hostname}.
        spec['servers'] = [{'url': '/'}]
        for name in token_entities:
            properties = schemas[name]['properties']
            # `type: array` without `items` is invalid OpenAPI 3.0; the values are scope names.
            properties['scopes']['items'] = {'type': 'string'}
            # GitLab sends `expires_at` as a date ("2025-01-31"), not a date-time, and null when
            # the token never expires (service-account tokens may); description and last_used_at
            # are null when unset.
            properties['expires_at'] = {'type': 'string', 'format': 'date', 'nullable': True}
            properties['description']['nullable'] = True
            properties['last_used_at']['nullable'] = True
        schemas['APIEntitiesPersonalAccessTokenGranularScope']['properties']['permissions']['items'] = {
            'type': 'string'}
        return spec

    def operations(self):
        """(method, path template, operationId) of every operation in the extract."""
        return [(method.upper(), path, operation['operationId'])
                for path, item in self.raw['paths'].items()
                for method, operation in item.items()]

    def declared_statuses(self, operation_id):
        """The statuses the patched extract declares for an operation."""
        return next(set(operation['responses'])
                    for item in self.patched['paths'].values() for operation in item.values()
                    if operation['operationId'] == operation_id)

    def operation_of(self, response):
        """The operationId whose method and path template match this request; literal segments win."""
        path = response.request.path_url.split('?', 1)[0]
        candidates = []
        for method, template, operation_id in self.operations():
            pattern = '^' + re.sub(r'\\\{[^}]+\\\}', '[^/]+', re.escape(template)) + '$'
            if method == response.request.method and re.match(pattern, path):
                candidates.append((template.count('{'), operation_id))
        assert candidates, f'{response.request.method} {path} is no operation of the extract'
        return min(candidates)[1]

    def check(self, operation_id, expected, response):
        """The response has the expected status, which the extract declares, and validates against it."""
        assert self.operation_of(response) == operation_id
        assert response.status_code == expected, f'{response.request.method} {response.request.url}: {response.text}'
        assert str(expected) in self.declared_statuses(operation_id)
        self.validate(response)

    def validate(self, response):
        self.openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


@pytest.fixture(scope='session')
def openapi_extract():
    """The :class:`OpenApiExtract` class, for test modules (which never import a conftest)."""
    return OpenApiExtract


@pytest.fixture
def gl_api(gitlab):
    return Api(gitlab)


@pytest.fixture
def gl_team(gitlab):
    return Team(gitlab, gitlab.seed(**TEAM_SEED))
