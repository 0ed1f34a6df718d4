# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mobb_integrations
short_description: The GitLab servers Mobb is integrated with, as an inventory
version_added: 0.2.0
description:
  - Reads, with one Mobb API key and one request (Mobb's C(me) query), the GitLab Server integrations
    Mobb holds for the key's user (SCM configs of type C(GitLab)) and the broker hosts of the user's
    organizations, and makes one host per GitLab Server URL.
  - A GitLab server added in Mobb's UI is in the inventory of the next run, with no inventory to edit.
  - Each host carries the variables the C(mobb.scm.gitlab_token_rotation) role uses, so C(mobb.scm.rotate)
    runs against it directly. The GitLab credentials (the token that manages Mobb's token) still come
    from you - put a per-host lookup in C(group_vars/mobb_gitlab_servers.yml) beside this file (see
    EXAMPLES), or a vaulted value, or let an AWX credential set E(GITLAB_TOKEN). A group_vars template is
    evaluated only when a task uses it, so C(ansible-inventory --list) shows the template, not the token.
  - O(compose) is evaluated when the inventory is read, so a lookup there puts its value in the
    inventory (and C(ansible-inventory --list)); use it for settings, not for secrets.
  - No token is read from Mobb (the stored token is never asked for), so no host variable, cache
    entry or output holds one. The API key is never printed.
  - The configuration file name must end with C(mobb_integrations.yml) or C(mobb_integrations.yaml).
  - "Host names are the GitLab server's host name, with C(:port) when the port is not the scheme's
    default, then the URL's path, when GitLab is served under one, with C(_) for each C(/)
    (V(gitlab.example.com), V(gitlab.internal:8443), V(git.example.com_gitlab-a) for
    C(https://git.example.com/gitlab-a)). Not C(/): C(host_vars/git.example.com/gitlab-a.yml) would
    also be read for a host C(git.example.com). Host variables:
    C(gitlab_token_rotation_gitlab_url) (the URL, normalised: lower-case scheme and host, no default port,
    no trailing slash), C(gitlab_token_rotation_mobb_api_url) (the Mobb API the server was read from),
    C(mobb_scm_url) (the URL as Mobb stores it), C(mobb_scm_config_id) (the config the host describes),
    C(mobb_scm_config_ids) (every config of the host's URL, or URLs), C(mobb_organization_id),
    C(mobb_brokered) (whether Mobb reaches the server through its broker), C(mobb_broker_virtual_domain)
    (the broker's virtual domain, or null), C(mobb_token_available) and C(mobb_token_last_update)
    (when Mobb's token was last stored, ISO 8601, or null), and C(mobb_scm_inventory_problem)."
  - "C(mobb_scm_inventory_problem) is null, or a one-line message (also shown as a warning) saying why the
    rotation cannot keep the host as it is, and what to do: Mobb holds several integrations of the URL
    (other organizations or C(scmOrg) values), and Mobb's C(updateScmToken) stores into one of them; or
    several URLs make the host's name (C(http://) and C(https://) of one server, paths that differ only
    by C(/) and C(_)). The host then describes the config without C(scmOrg), else the last updated one,
    of the C(https://) URL. The rotation role refuses such a host."
  - "When Mobb cannot be read (a refused key, Mobb unreachable, a timeout, an HTTP error or proxy page,
    an answer that is not a user with a list of C(scmConfigs)), the plugin fails with a message naming
    the Mobb API and what to check, and sets C(mobb_scm_inventory_errors) (the list of these messages)
    on group C(all). Ansible itself only warns and goes on with no host unless
    E(ANSIBLE_INVENTORY_UNPARSED_FAILED) is set (as in AWX's inventory updates); C(mobb.scm.rotate)
    and C(mobb.scm.check) fail with these messages in their first play."
  - A URL Mobb returns with credentials (C(user:token@), a query) is skipped with a warning that shows
    it without them.
  - Groups - every host is in C(mobb_gitlab_servers); the brokered ones also in C(mobb_brokered).
  - Host variables of the plugin beat C(group_vars) files; to point the role elsewhere for one server,
    use C(host_vars/<host>.yml) or O(compose).
author:
  - mobb.scm maintainers (@mobb-dev)
extends_documentation_fragment:
  - mobb.scm.mobb
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin; it marks the YAML file as this plugin's configuration.
    required: true
    type: str
    choices: [mobb.scm.mobb_integrations]
  api_url:
    env:
      - name: MOBB_API_URL
  api_key:
    description:
      - Mobb API key, sent in the C(x-mobb-key) header.
      - The hosts are the integrations of the key's user (Mobb's C(me.scmConfigs)); use the key the rotation
        stores tokens with, of an Admin or Owner of the organization.
      - If not set, the value of the E(MOBB_API_KEY) environment variable is used. One of them is required.
      - Prefer the environment variable (an AWX credential injects it) or an Ansible Vault string
        over a clear value in the file.
    env:
      - name: MOBB_API_KEY
"""

EXAMPLES = r"""
# gitlab.mobb_integrations.yml: every GitLab server Mobb is integrated with. The line
# "plugin: mobb.scm.mobb_integrations" alone is enough, with MOBB_API_KEY (and MOBB_API_URL,
# for a Mobb other than the SaaS) from the environment:
#   ansible-inventory -i gitlab.mobb_integrations.yml --graph
#   ansible-playbook mobb.scm.rotate -i gitlab.mobb_integrations.yml
# Here: a single-tenant Mobb behind an internal CA, with settings composed per host and extra groups.
plugin: mobb.scm.mobb_integrations
api_url: https://mobb.internal.example/v1/graphql
ca_path: /etc/pki/tls/certs/internal-ca.pem
compose:
  # Project tokens on the servers reached through the broker, personal tokens elsewhere.
  gitlab_token_rotation_token_type: "'project' if mobb_brokered else 'personal'"
keyed_groups:
  # One group per Mobb organization: mobb_org_<id> (dashes become underscores).
  - key: mobb_organization_id
    prefix: mobb_org
  # via_broker / via_direct
  - key: "'broker' if mobb_brokered else 'direct'"
    prefix: via
groups:
  # The servers for which Mobb holds no token.
  needs_attention: not mobb_token_available
# Mobb's answer is kept for an hour in a JSON file (it holds no secret).
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/mobb-inventory
cache_timeout: 3600

# group_vars/mobb_gitlab_servers.yml, beside the configuration: the GitLab token of each
# server from an environment variable named after it (GITLAB_TOKEN_GITLAB_EXAMPLE_COM for
# gitlab.example.com), read only when the rotation runs; or one vaulted token for all.
#
#   gitlab_token_rotation_user: mobb-bot
#   gitlab_token_rotation_gitlab_api_token: >-
#     {{ lookup('ansible.builtin.env', 'GITLAB_TOKEN_'
#        ~ (inventory_hostname | regex_replace('[^A-Za-z0-9]', '_') | upper)) }}
"""

from urllib.parse import urlsplit

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    DEFAULT_API_URL,
    MobbClient,
    MobbError,
    MobbOptionError,
    MobbRequestError,
    broker_host_for,
    normalize_scm_url,
)
from ansible_collections.mobb.scm.plugins.module_utils.urls import redact_url

ALL_GROUP = 'mobb_gitlab_servers'
BROKERED_GROUP = 'mobb_brokered'
CACHE_VERSION = 2
# Set on group all when Mobb could not be read: the playbooks fail with it.
ERRORS_VARIABLE = 'mobb_scm_inventory_errors'


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'mobb.scm.mobb_integrations'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('mobb_integrations.yml', 'mobb_integrations.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        servers = None
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                update_cache = True
            else:
                if isinstance(cached, dict) and cached.get('version') == CACHE_VERSION:
                    servers = cached['servers']
                else:
                    update_cache = True
        if servers is None:
            servers = self._read_mobb()
        if update_cache:
            self._cache[cache_key] = {'version': CACHE_VERSION, 'servers': servers}
        self._populate(servers)

    def _read_mobb(self):
        """The GitLab servers of the key's Mobb user, as host records (no secret in them)."""
        api_url = self.get_option('api_url')
        try:
            with MobbClient(
                api_url=api_url,
                api_key=self.get_option('api_key'),
                validate_certs=self.get_option('validate_certs'),
                ca_path=self.get_option('ca_path'),
                timeout=self.get_option('timeout'),
                retries=self.get_option('retries'),
                warn=self.display.warning,
            ) as client:
                me = client.me()
                api_url = client.api_url
            return servers_from_me(me, api_url, self.display.warning)
        except MobbError as exc:
            request = ' (request id %s)' % exc.request_id if exc.request_id else ''
            self._fail('mobb.scm.mobb_integrations: cannot read the GitLab servers from the Mobb API at %s: %s%s'
                       % (redact_url(api_url), exc, request))

    def _fail(self, message):
        """Raise AnsibleParserError, leaving the message in group all's ERRORS_VARIABLE: ansible-core
        keeps what a failed source added, so the playbooks' first play (on localhost) fails with it."""
        errors = list(self.inventory.groups['all'].get_vars().get(ERRORS_VARIABLE) or [])
        self.inventory.set_variable('all', ERRORS_VARIABLE, errors + [message])
        raise AnsibleParserError(message)

    def _populate(self, servers):
        self.inventory.add_group(ALL_GROUP)
        self.inventory.add_group(BROKERED_GROUP)
        strict = self.get_option('strict')
        for server in servers:
            name = server['name']
            self.inventory.add_host(name, group=ALL_GROUP)
            if server['vars']['mobb_brokered']:
                self.inventory.add_host(name, group=BROKERED_GROUP)
            for key, value in server['vars'].items():
                self.inventory.set_variable(name, key, value)
            host_vars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option('compose'), host_vars, name, strict=strict)
            host_vars = self.inventory.get_host(name).get_vars()
            self._add_host_to_composed_groups(self.get_option('groups'), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), host_vars, name, strict=strict)


def servers_from_me(me, api_url, warn):
    """[{name, vars}] sorted by name: one per GitLab Server URL among ``me.scmConfigs``.

    An answer that is not a user with a list of configs raises MobbRequestError: an empty
    fleet must mean that Mobb holds no GitLab integration, never that its answer was not
    understood. A URL that Mobb holds several configs for (other organizations or ``scmOrg``
    values), and URLs that would get one host name, make one host described by the config
    without an org, else the most recently updated one, with ``mobb_scm_inventory_problem``
    saying why the rotation cannot keep it as it is."""
    configs_by_url = _configs_by_url(me, api_url, warn)
    urls_by_name = {}
    for url in configs_by_url:
        urls_by_name.setdefault(host_name(url), []).append(url)
    servers = []
    for name, urls in urls_by_name.items():
        # https before http: of two spellings of one server, the one to keep if a choice is made.
        urls.sort(key=lambda url: (not url.startswith('https://'), url))
        configs = configs_by_url[urls[0]]
        configs.sort(key=lambda c: c.get('tokenLastUpdate') or '', reverse=True)
        configs.sort(key=lambda c: bool(c.get('scmOrg')))
        problem = None
        if len(urls) > 1:
            problem = ('mobb.scm.mobb_integrations: the GitLab integrations %s all make host %s: remove the ones '
                       "that name the same server from Mobb's integrations, keeping one, or leave this host out "
                       '(mobb_scm_hosts, --limit)' % (' and '.join(urls), name))
        elif len(configs) > 1:
            problem = ('mobb.scm.mobb_integrations: Mobb holds %d GitLab integrations of %s (%s): the rotation keeps '
                       "the token of one; remove the others from Mobb's integrations, keeping one, or leave this "
                       'host out (mobb_scm_hosts, --limit)'
                       % (len(configs), urls[0], ', '.join(_describe_config(config) for config in configs)))
        if problem:
            warn(problem)
        config = configs[0]
        broker = broker_host_for(me, urls[0])
        servers.append({'name': name, 'vars': {
            'gitlab_token_rotation_gitlab_url': urls[0],
            'gitlab_token_rotation_mobb_api_url': api_url,
            'mobb_scm_url': config.get('scmUrl'),
            'mobb_scm_config_id': config.get('id'),
            'mobb_scm_config_ids': [c.get('id') for url in urls for c in configs_by_url[url]],
            'mobb_scm_inventory_problem': problem,
            'mobb_organization_id': config.get('orgId'),
            'mobb_brokered': broker is not None,
            'mobb_broker_virtual_domain': broker.get('virtualDomain') if broker else None,
            'mobb_token_available': bool(config.get('isTokenAvailable')),
            'mobb_token_last_update': config.get('tokenLastUpdate'),
        }})
    return sorted(servers, key=lambda server: server['name'])


def _configs_by_url(me, api_url, warn):
    """{normalised URL: [GitLab configs]} of a ``me`` answer, refusing one of the wrong shape."""
    if not isinstance(me, dict):
        raise MobbRequestError('Mobb answered me with %s, not a user: check that api_url is the GraphQL URL of '
                               'Mobb, such as %s' % (_shape(me), DEFAULT_API_URL))
    configs = me.get('scmConfigs')
    if not isinstance(configs, list) or not all(isinstance(config, dict) for config in configs):
        raise MobbRequestError('Mobb answered me with scmConfigs as %s, not a list of objects: check that api_url '
                               'is the GraphQL URL of Mobb, such as %s' % (_shape(configs), DEFAULT_API_URL))
    by_url = {}
    for config in configs:
        if (config.get('scmType') or '').lower() != 'gitlab':
            continue
        try:
            url = normalize_scm_url(config.get('scmUrl'))
        except MobbOptionError as exc:
            warn('mobb.scm.mobb_integrations: skipped the GitLab integration %s of the Mobb API at %s: %s'
                 % (config.get('id'), redact_url(api_url), exc))
            continue
        by_url.setdefault(url, []).append(config)
    return by_url


def host_name(url):
    """The inventory name of a GitLab server's normalised URL: host (and :port), then the path
    with each / as _ (https://git.example.com/gitlab-a: git.example.com_gitlab-a). Not /:
    host_vars/git.example.com/gitlab-a.yml would also be read for host git.example.com."""
    parts = urlsplit(url)
    return parts.netloc + parts.path.replace('/', '_')


def _describe_config(config):
    scm_org = ', scmOrg %s' % config['scmOrg'] if config.get('scmOrg') else ''
    return 'config %s of organization %s%s' % (config.get('id'), config.get('orgId'), scm_org)


def _shape(value):
    return 'null' if value is None else 'a JSON %s' % {
        dict: 'object', list: 'list', str: 'string', bool: 'boolean', int: 'number', float: 'number'}.get(
        type(value), type(value).__name__)
