"""In-memory state of the local Mobb server: organizations, users, SCM configs, settings.

Everything the GraphQL API and the /_test/ control API read or change lives in one
``MobbState``; nothing is written to disk. Secret values (API keys, SCM tokens) are kept
here and in ``secrets`` only, never in the request log or in control answers other than
``/_test/secrets``.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import secrets as token_source
import urllib.parse
import uuid

ROLES = ('Owner', 'Admin', 'Member')
# Mobb's user guide: only these organization roles may change the SCM integration.
INTEGRATION_ROLES = ('Owner', 'Admin')
SCM_TYPES = ('GitHub', 'GitLab', 'Ado', 'Bitbucket')

DEFAULT_SETTINGS = {
    # Whether me.scmConfigs.token/refreshToken come back in clear (deployment dependent).
    'return_tokens': True,
    # How checkScmConnectionStatus reports "not connected": "errors" (GraphQL errors with
    # a message) or "status" (data with status Error). Mobb documents both.
    'check_failure': 'errors',
    # Refuse GitLab tokens whose scopes (GET /personal_access_tokens/self) lack "api".
    'require_api_scope': True,
    # Seconds Mobb waits for GitLab before calling it unreachable.
    'scm_timeout': 5.0,
}


class StateError(ValueError):
    """Bad control input: the /_test/ API answers 400 with this message."""


class NotFound(LookupError):
    """A control request names something that does not exist: 404."""


def fingerprint(value):
    """SHA-256 hex digest of a secret, for assertions that must not see the secret."""
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def normalise_url(url):
    """The form under which SCM URLs are stored and compared.

    Lower-case scheme and host, default port dropped, no trailing slash, no query or
    fragment: ``HTTPS://GitLab.Example:443/`` and ``https://gitlab.example`` are one SCM.
    """
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or '').lower()
    if scheme not in ('http', 'https') or not host:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if ':' in host:
        host = f'[{host}]'
    default_port = 443 if scheme == 'https' else 80
    netloc = host if port in (None, default_port) else f'{host}:{port}'
    return urllib.parse.urlunsplit((scheme, netloc, parts.path.rstrip('/'), '', ''))


def url_host(url):
    """``(host, host:port)`` of a normalised URL, both lower-case."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or '', parts.netloc


@dataclasses.dataclass
class BrokerHost:
    real_domain: str
    virtual_domain: str
    up: bool = True

    def serves(self, url):
        """True when Mobb reaches ``url`` through this broker host.

        ``real_domain`` is a host name, compared case-insensitively. The local servers all
        listen on 127.0.0.1, so a ``real_domain`` with a port (``127.0.0.1:8443``) matches
        only that port.
        """
        host, netloc = url_host(url)
        domain = self.real_domain.lower()
        return domain == (netloc if ':' in domain else host)

    def document(self):
        return {'real_domain': self.real_domain, 'virtual_domain': self.virtual_domain, 'up': self.up}


@dataclasses.dataclass
class Organization:
    id: str
    name: str
    broker_hosts: list

    def document(self):
        return {'id': self.id, 'name': self.name,
                'broker_hosts': [host.document() for host in self.broker_hosts]}


@dataclasses.dataclass
class User:
    id: str
    email: str
    api_key: str
    # organization id -> role, in the order the memberships were seeded.
    roles: dict

    def integration_organization(self, organizations):
        """The first organization in which this user may change the SCM integration."""
        for org_id, role in self.roles.items():
            if role in INTEGRATION_ROLES:
                return organizations[org_id]
        return None


@dataclasses.dataclass
class ScmConfig:
    id: str
    org_id: str
    user_id: str
    scm_type: str
    scm_url: str
    scm_org: str | None
    scm_username: str | None
    token: str | None
    refresh_token: str | None
    token_last_update: str | None
    is_token_oauth: bool = False
    writes: int = 0

    @property
    def key(self):
        return (self.user_id, self.scm_type, self.scm_url, self.scm_org or None)

    def control_document(self, users):
        return {
            'id': self.id, 'org_id': self.org_id, 'user_id': self.user_id,
            'user': users[self.user_id].email, 'scm_type': self.scm_type,
            'scm_url': self.scm_url, 'scm_org': self.scm_org, 'scm_username': self.scm_username,
            'token_sha256': fingerprint(self.token),
            'refresh_token_sha256': fingerprint(self.refresh_token),
            'token_last_update': self.token_last_update,
            'is_token_available': self.token is not None, 'is_token_oauth': self.is_token_oauth,
            'writes': self.writes,
        }


class Clock:
    """The server's notion of now: real time plus an offset that tests can move."""

    def __init__(self):
        self.offset = datetime.timedelta()

    def now(self):
        return datetime.datetime.now(datetime.timezone.utc) + self.offset

    def iso_now(self):
        return self.now().isoformat(timespec='milliseconds').replace('+00:00', 'Z')

    def advance(self, days):
        self.offset += datetime.timedelta(days=days)

    def set(self, when):
        moment = datetime.datetime.fromisoformat(when.replace('Z', '+00:00'))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        self.offset = moment - datetime.datetime.now(datetime.timezone.utc)


class MobbState:
    def __init__(self):
        self.reset()

    def reset(self):
        self.organizations = {}
        self.users = {}
        self.users_by_key = {}
        self.scm_configs = {}
        self.settings = dict(DEFAULT_SETTINGS)
        self.clock = Clock()
        self.secrets = []

    # -- secrets -------------------------------------------------------------------------
    def saw_secret(self, value):
        if value and value not in self.secrets:
            self.secrets.append(value)

    # -- settings ------------------------------------------------------------------------
    def update_settings(self, changes):
        unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
        if unknown:
            raise StateError(f'unknown setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}')
        if 'return_tokens' in changes and not isinstance(changes['return_tokens'], bool):
            raise StateError('return_tokens must be true or false')
        if 'require_api_scope' in changes and not isinstance(changes['require_api_scope'], bool):
            raise StateError('require_api_scope must be true or false')
        if 'check_failure' in changes and changes['check_failure'] not in ('errors', 'status'):
            raise StateError('check_failure must be "errors" or "status"')
        if 'scm_timeout' in changes:
            timeout = changes['scm_timeout']
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                raise StateError('scm_timeout must be a number of seconds above 0')
        self.settings.update(changes)
        return dict(self.settings)

    # -- seed ----------------------------------------------------------------------------
    def seed(self, document):
        """Add organizations, users and SCM configs; answer what was added, with secrets.

        The whole document is checked before anything is added, so bad input adds nothing.
        """
        if not isinstance(document, dict):
            raise StateError('seed expects a JSON object')
        unknown = sorted(set(document) - {'organizations', 'users', 'scm_configs', 'settings'})
        if unknown:
            raise StateError(f'unknown seed key(s) {unknown}; known: organizations, users, scm_configs, settings')
        organizations = self._check_organizations(document.get('organizations', []))
        org_by_name = {org.name: org for org in self.organizations.values()}
        org_by_name.update({org.name: org for org in organizations})
        users = self._check_users(document.get('users', []), org_by_name)
        configs = self._check_scm_configs(document.get('scm_configs', []), users)
        if 'settings' in document:
            self.update_settings(document['settings'])

        for org in organizations:
            self.organizations[org.id] = org
        answer_users = []
        for user, created, org_id, role in users:
            user.roles[org_id] = role
            if created:
                self.users[user.id] = user
                self.users_by_key[user.api_key] = user
                self.saw_secret(user.api_key)
            answer_users.append({'id': user.id, 'email': user.email, 'api_key': user.api_key,
                                 'organizations': [{'id': member_of, 'name': self.organizations[member_of].name,
                                                    'role': member_role}
                                                   for member_of, member_role in user.roles.items()]})
        for config in configs:
            self.scm_configs[config.id] = config
            self.saw_secret(config.token)
            self.saw_secret(config.refresh_token)
        return {'organizations': [org.document() for org in organizations], 'users': answer_users,
                'scm_configs': [config.control_document(self.users) for config in configs]}

    def _check_organizations(self, entries):
        if not isinstance(entries, list):
            raise StateError('organizations must be a list')
        names = {org.name for org in self.organizations.values()}
        organizations = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get('name'), str) or not entry['name']:
                raise StateError('each organization needs a "name"')
            if entry['name'] in names:
                raise StateError(f'organization {entry["name"]!r} already exists')
            names.add(entry['name'])
            hosts = []
            for host in entry.get('broker_hosts', []):
                if not isinstance(host, dict) or not isinstance(host.get('real_domain'), str) or not host['real_domain']:
                    raise StateError(f'each broker host of {entry["name"]!r} needs a "real_domain"')
                virtual = host.get('virtual_domain') or str(uuid.uuid4())
                hosts.append(BrokerHost(host['real_domain'], virtual, bool(host.get('up', True))))
            organizations.append(Organization(str(uuid.uuid4()), entry['name'], hosts))
        return organizations

    def _check_users(self, entries, org_by_name):
        if not isinstance(entries, list):
            raise StateError('users must be a list')
        by_email = {user.email.lower(): user for user in self.users.values()}
        keys = set()
        checked = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get('email'), str) or '@' not in entry['email']:
                raise StateError('each user needs an "email"')
            org = org_by_name.get(entry.get('organization'))
            if org is None:
                raise StateError(f'user {entry["email"]!r}: unknown organization {entry.get("organization")!r}')
            role = entry.get('role', 'Admin')
            if role not in ROLES:
                raise StateError(f'user {entry["email"]!r}: role must be one of {list(ROLES)}, got {role!r}')
            api_key = entry.get('api_key')
            if api_key is not None and (not isinstance(api_key, str) or len(api_key) < 16):
                raise StateError(f'user {entry["email"]!r}: api_key must be a string of at least 16 characters')
            if api_key in self.users_by_key or api_key in keys:
                raise StateError(f'user {entry["email"]!r}: api_key is already in use')
            user = by_email.get(entry['email'].lower())
            created = user is None
            if created:
                user = User(str(uuid.uuid4()), entry['email'], api_key or token_source.token_urlsafe(32), {})
                by_email[user.email.lower()] = user
                keys.add(user.api_key)
            # Memberships are added by seed() once the whole document has been checked.
            checked.append((user, created, org.id, role))
        return checked

    def _check_scm_configs(self, entries, seeded_users):
        if not isinstance(entries, list):
            raise StateError('scm_configs must be a list')
        by_email = {user.email.lower(): user for user in self.users.values()}
        memberships = {}
        for user, _created, org_id, _role in seeded_users:
            by_email[user.email.lower()] = user
            memberships.setdefault(user.id, org_id)
        configs = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise StateError('each scm config must be an object')
            user = by_email.get(str(entry.get('user', '')).lower())
            if user is None:
                raise StateError(f'scm config: unknown user {entry.get("user")!r}')
            scm_type = entry.get('scm_type', 'GitLab')
            if scm_type not in SCM_TYPES:
                raise StateError(f'scm config: scm_type must be one of {list(SCM_TYPES)}')
            url = normalise_url(str(entry.get('scm_url', '')))
            if url is None:
                raise StateError(f'scm config: scm_url must be an http(s) URL, got {entry.get("scm_url")!r}')
            for name in ('token', 'org', 'username', 'refresh_token'):
                if entry.get(name) is not None and not isinstance(entry[name], str):
                    raise StateError(f'scm config: {name} must be a string')
            days = entry.get('updated_days_ago', 0)
            if isinstance(days, bool) or not isinstance(days, (int, float)):
                raise StateError('scm config: updated_days_ago must be a number')
            org_id = next(iter(user.roles), None) or memberships[user.id]
            when = self.clock.now() - datetime.timedelta(days=days)
            token = entry.get('token')
            configs.append(ScmConfig(
                id=str(uuid.uuid4()), org_id=org_id, user_id=user.id, scm_type=scm_type, scm_url=url,
                scm_org=entry.get('org'), scm_username=entry.get('username'), token=token,
                refresh_token=entry.get('refresh_token'),
                token_last_update=when.isoformat(timespec='milliseconds').replace('+00:00', 'Z') if token else None,
            ))
        return configs

    # -- broker ---------------------------------------------------------------------------
    def set_broker(self, real_domain, up):
        hosts = [host for org in self.organizations.values() for host in org.broker_hosts
                 if host.real_domain.lower() == str(real_domain).lower()]
        if not hosts:
            raise NotFound(f'no broker host with real_domain {real_domain!r}')
        for host in hosts:
            host.up = bool(up)
        return [host.document() for host in hosts]

    def broker_for(self, user, url):
        """The broker host through which ``user``'s organizations reach ``url``, if any."""
        for org_id in user.roles:
            for host in self.organizations[org_id].broker_hosts:
                if host.serves(url):
                    return host
        return None

    # -- SCM configs ------------------------------------------------------------------------
    def configs_of(self, user):
        return [config for config in self.scm_configs.values() if config.user_id == user.id]

    def config_for_url(self, user, url):
        """The caller's config for this URL; a token-bearing one first when several exist."""
        matches = [config for config in self.configs_of(user) if config.scm_url == url]
        matches.sort(key=lambda config: config.token is None)
        return matches[0] if matches else None

    def store_token(self, user, org, scm_type, url, token, scm_org, username, refresh_token):
        """Create or overwrite the config for (user, scmType, url, org): always a write."""
        key = (user.id, scm_type, url, scm_org or None)
        config = next((c for c in self.scm_configs.values() if c.key == key), None)
        if config is None:
            config = ScmConfig(id=str(uuid.uuid4()), org_id=org.id, user_id=user.id, scm_type=scm_type,
                               scm_url=url, scm_org=scm_org or None, scm_username=None, token=None,
                               refresh_token=None, token_last_update=None)
            self.scm_configs[config.id] = config
        config.token = token
        config.refresh_token = refresh_token
        config.scm_username = username
        config.token_last_update = self.clock.iso_now()
        config.writes += 1
        return config
