# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failures of the Mobb client, each one line without a secret. They are part of the
client's interface: callers import them from module_utils/mobb.py, whose docstring says what
each means for a stored token."""

from __future__ import annotations

from ansible_collections.mobb.scm.plugins.module_utils import urls


class MobbError(Exception):
    """A failure talking to Mobb, described in one line that holds no secret."""

    def __init__(self, message, request_id=None):
        # The URLs it names (api_url, rest_url, an SCM URL) may carry a credential.
        super().__init__(urls.redact_text(message))
        self.request_id = request_id

    def result_fields(self):
        """Extra keys for fail_json beyond msg."""
        return {'request_id': self.request_id} if self.request_id else {}


class MobbOptionError(MobbError):
    """An option value is unusable; nothing was sent to Mobb."""


class MobbRequestError(MobbError):
    """Mobb could not be reached or did not answer with GraphQL JSON."""


class MobbUnknownOutcomeError(MobbRequestError):
    """A mutation may have reached Mobb, but its answer was lost or unreadable.

    Mobb may or may not have applied it; it was not retried. Read Mobb's state to find out.
    """


class MobbGraphQLError(MobbError):
    """Mobb answered with GraphQL errors."""

    def __init__(self, message, code=None, request_id=None):
        super().__init__(message, request_id)
        self.code = code


class MobbAccessDeniedError(MobbGraphQLError):
    """Mobb refused the API key (access-denied)."""


class MobbSchemaMismatchError(MobbGraphQLError):
    """Mobb rejected the collection's GraphQL document (validation-failed)."""


class MobbScmError(MobbError):
    """Mobb answered with an error member of a union result (BadScmCredentials, ...)."""

    def __init__(self, message, typename, request_id=None):
        super().__init__(message, request_id)
        self.typename = typename
