# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the personal, project and group access token modules, documented once.

They match token_argument_spec in module_utils/gitlab_token_run.py. Each module documents
what differs itself: its owner option, access_level, rotation_method (which names the
module's endpoints) and, for personal access tokens, scopes.
"""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  name:
    description:
      - Name of the token. It identifies the token between runs; GitLab does not require
        names to be unique, this module treats them as if it did.
    type: str
    required: true
  description:
    description:
      - Description stored with a token this module creates (on personal access tokens,
        GitLab 17.7 or later). Rotation keeps the description; a different description
        does not trigger a change.
    type: str
  expires_at:
    description:
      - Expiry date, V(YYYY-MM-DD), of a token this module issues. Must be in the future
        and further away than O(rotate_before_days).
      - Mutually exclusive with O(expires_in_days).
    type: str
  expires_in_days:
    description:
      - Lifetime in days of a token this module issues, counted from GitLab's date.
      - Defaults to V(30) when O(expires_at) is not set. GitLab caps lifetimes at 365
        days unless an administrator set less.
    type: int
  rotate_before_days:
    description:
      - Issue a new token when the current one expires in this many days or fewer.
    type: int
    default: 7
  state:
    description:
      - V(present) ensures a fresh token; V(absent) revokes the active tokens with this
        name (only O(token_id) when it is given).
      - A revoke counts only when GitLab answers it with C(204 No Content), or when reading
        the token back shows it revoked. Any other answer (for example a proxy's error page
        with status 200) fails the task with a message that names the token as still active.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Rotate now, even if the token is far from expiry.
    type: bool
    default: false
  token_id:
    description:
      - With O(state=absent), revoke only the active token with this id and this name.
    type: int
"""

    # Project and group access tokens take the same scopes.
    RESOURCE_SCOPES = r"""
options:
  scopes:
    description:
      - Scopes of the token, compared as a set. Mobb needs V(api).
      - Valid scopes are V(ai_features), V(api), V(create_runner), V(k8s_proxy),
        V(manage_runner), V(mcp), V(mcp_orbit), V(read_api), V(read_observability),
        V(read_registry), V(read_repository), V(read_virtual_registry), V(self_rotate),
        V(write_observability), V(write_registry), V(write_repository) and
        V(write_virtual_registry). V(read_user) is for personal access tokens only.
    type: list
    elements: str
    default: [api]
"""
