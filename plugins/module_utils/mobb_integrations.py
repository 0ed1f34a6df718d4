# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What mobb.scm.mobb_integration does: make Mobb's integration for one SCM URL hold a token.

Mobb is read first (with the stored tokens, compared by fingerprint), so a token Mobb holds
already is not written again, and a write whose outcome is unknown can be re-run safely.
"""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    MobbError,
    MobbOptionError,
    MobbUnknownOutcomeError,
    describe_scm_config,
    find_scm_config,
    normalize_scm_url,
    token_fingerprint,
)

UNKNOWN_FINGERPRINT = 'unknown'


def _check_token(token):
    if not token.strip():
        raise MobbOptionError('token is empty: give the GitLab access token to store')
    if any(character.isspace() for character in token):
        raise MobbOptionError('token contains whitespace (a trailing newline from a file lookup?): strip it')


def _stored_fingerprint(config):
    """Fingerprint of the token Mobb holds: None when none, UNKNOWN when Mobb hides it."""
    if not config or not config.get('isTokenAvailable'):
        return None
    if config.get('token') is None:
        return UNKNOWN_FINGERPRINT
    return token_fingerprint(config['token'])


def _diff_view(scm_config):
    return {key: scm_config[key] for key in ('scm_type', 'scm_url', 'org', 'token_fingerprint')}


def ensure_integration(module, client):
    """The mobb_integration result for the module's params: the token stored (unless Mobb holds
    it already or in check mode), ``scm_config`` and the diff. MobbError on any failure."""
    params = module.params
    scm_type = params['scm_type']
    org = params['org'] or None
    token = params['token']
    wanted_url = normalize_scm_url(params['scm_url'])
    _check_token(token)
    wanted = token_fingerprint(token)

    matches = find_scm_config(client.me(with_tokens=True).get('scmConfigs'), scm_type, params['scm_url'], org)
    config = matches[0] if matches else None
    if len(matches) > 1:
        module.warn('Mobb holds %d integrations for %s; using %s' % (len(matches), wanted_url, config.get('id')))
    # Write to the record Mobb already has, spelt as Mobb stored it, so no duplicate appears.
    scm_url = config['scmUrl'] if config else wanted_url
    stored = _stored_fingerprint(config)
    before = describe_scm_config(config, scm_type, scm_url, org, stored)
    result = {'changed': False, 'written': False}

    if stored == wanted:
        result['scm_config'] = before
        result['diff'] = {'before': _diff_view(before), 'after': _diff_view(before)}
        return result

    if stored == UNKNOWN_FINGERPRINT:
        module.warn('Mobb does not return the token it holds for %s, so it cannot be compared: the token is '
                    'written and the task reports changed on every run' % scm_url)
    if params['validate']:
        client.validate_scm_token(scm_type, scm_url, token, org)

    after = dict(before, is_token_available=True, token_fingerprint=wanted)
    result.update(changed=True, scm_config=after, diff={'before': _diff_view(before), 'after': _diff_view(after)})
    if module.check_mode:
        return result

    try:
        config_id = client.update_scm_token(scm_type, scm_url, token, org)
    except MobbUnknownOutcomeError as exc:
        raise MobbUnknownOutcomeError(
            '%s. Mobb may hold the new token now: run the task again, it reads what Mobb holds first and '
            'stores the token only if Mobb does not hold it' % exc, exc.request_id) from exc
    result['written'] = True
    try:
        configs = client.me().get('scmConfigs') or []
    except MobbError as exc:
        raise MobbError('the token was stored in Mobb, but reading the integration back failed: %s' % exc,
                        exc.request_id) from exc
    stored_config = next((item for item in configs if item and item.get('id') == config_id), None)
    if stored_config is None:
        result['scm_config'] = dict(after, id=config_id)
    else:
        result['scm_config'] = describe_scm_config(stored_config, scm_type, scm_url, org, wanted)
    return result
