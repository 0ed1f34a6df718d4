"""The words of a failed request (plugins/module_utils/transport.py), from the very exceptions that
requests and urllib3 raise and nest inside each other."""
from __future__ import annotations

import socket
import ssl

import pytest
import requests
import urllib3

from ansible_collections.mobb.scm.plugins.module_utils.transport import (
    SECRET_MASK,
    causes,
    one_line,
    root_cause,
    transport_reason,
)

HOST = 'gitlab.example.com'
URL_PATH = '/api/v4/user?private_token=glpat-abcdef123456'
REFUSED = 'Failed to establish a new connection: [Errno 111] Connection refused'
SSL_VERIFY = '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate'


def _pool():
    return urllib3.HTTPSConnectionPool(HOST, 443)


def _connection():
    return urllib3.connection.HTTPSConnection(HOST, 443)


def _refused():
    """What requests raises when nothing listens: ConnectionError(MaxRetryError(reason=NewConnectionError))."""
    new_connection = urllib3.exceptions.NewConnectionError(_connection(), REFUSED)
    max_retry = urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=new_connection)
    return requests.exceptions.ConnectionError(max_retry, request=None), max_retry, new_connection


def _reset():
    """What requests raises when the peer resets mid-request:
    ConnectionError(ProtocolError('Connection aborted.', ConnectionResetError))."""
    reset = ConnectionResetError(104, 'Connection reset by peer')
    protocol = urllib3.exceptions.ProtocolError('Connection aborted.', reset)
    return requests.exceptions.ConnectionError(protocol, request=None), protocol, reset


def _certificate_refused():
    """What requests raises for an untrusted certificate:
    SSLError(MaxRetryError(reason=urllib3 SSLError(SSLCertVerificationError)))."""
    verify = ssl.SSLCertVerificationError(1, SSL_VERIFY + ' (_ssl.c:1000)')
    # _ssl.c sets these on the errors it raises: a reason that is a string, not an exception.
    verify.reason = 'CERTIFICATE_VERIFY_FAILED'
    verify.library = 'SSL'
    urllib3_ssl = urllib3.exceptions.SSLError(verify)
    max_retry = urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=urllib3_ssl)
    return requests.exceptions.SSLError(max_retry, request=None), max_retry, urllib3_ssl, verify


# causes / root_cause

def test_causes_of_a_refused_connection_are_the_nesting_outermost_first():
    error, max_retry, new_connection = _refused()
    chain = causes(error)
    assert [type(cause) for cause in chain] == [
        requests.exceptions.ConnectionError,
        urllib3.exceptions.MaxRetryError,
        urllib3.exceptions.NewConnectionError,
    ]
    assert chain[0] is error and chain[1] is max_retry and chain[2] is new_connection
    assert root_cause(error) is new_connection


def test_causes_follow_the_first_exception_among_args_when_there_is_no_reason():
    error, protocol, reset = _reset()
    assert causes(error) == [error, protocol, reset]
    assert root_cause(error) is reset


def test_a_reason_that_is_not_an_exception_falls_back_to_args_and_ends_the_chain():
    error, max_retry, urllib3_ssl, verify = _certificate_refused()
    assert causes(error) == [error, max_retry, urllib3_ssl, verify]
    assert root_cause(error) is verify


def test_an_error_without_cause_is_its_own_root():
    error = urllib3.exceptions.ProtocolError()
    assert causes(error) == [error]
    assert root_cause(error) is error


def test_the_first_exception_among_several_args_is_followed():
    first = ConnectionResetError(104, 'Connection reset by peer')
    second = TimeoutError('timed out')
    error = urllib3.exceptions.ProtocolError('Connection aborted.', first, second)
    assert causes(error) == [error, first]


def test_an_error_that_is_its_own_reason_terminates():
    error = urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=None)
    error.reason = error
    assert causes(error) == [error]
    assert root_cause(error) is error


def test_an_error_whose_cause_leads_back_to_an_ancestor_terminates():
    inner = urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=None)
    middle = urllib3.exceptions.ProtocolError('Connection aborted.', inner)
    outer = requests.exceptions.ConnectionError(middle, request=None)
    inner.reason = outer
    assert causes(outer) == [outer, middle, inner]
    assert root_cause(outer) is inner


def test_an_error_listed_in_its_own_args_terminates():
    error = urllib3.exceptions.ProtocolError('Connection aborted.')
    error.args = ('Connection aborted.', error)
    assert causes(error) == [error]


# transport_reason

def test_reason_of_a_refused_connection_drops_the_connection_repr():
    error, _max_retry, _new_connection = _refused()
    assert transport_reason(error) == REFUSED


def test_reason_drops_an_object_repr_prefix_too():
    new_connection = urllib3.exceptions.NewConnectionError(object(), REFUSED)
    assert str(new_connection).startswith('<object object at 0x')
    error = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=new_connection), request=None)
    assert transport_reason(error) == REFUSED


def test_reason_of_an_unresolved_host_keeps_the_host_and_the_resolver_words():
    resolution = urllib3.exceptions.NameResolutionError(
        'gitlab.invalid', _connection(), socket.gaierror(-2, 'Name or service not known'))
    error = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(_pool(), URL_PATH, reason=resolution), request=None)
    assert transport_reason(error) == "Failed to resolve 'gitlab.invalid' ([Errno -2] Name or service not known)"


def test_reason_of_a_reset_connection_is_the_socket_error():
    error, _protocol, _reset_error = _reset()
    assert transport_reason(error) == '[Errno 104] Connection reset by peer'


def test_reason_of_a_refused_certificate_drops_the_ssl_source_line():
    error, _max_retry, _urllib3_ssl, _verify = _certificate_refused()
    reason = transport_reason(error)
    assert reason == SSL_VERIFY
    assert '_ssl.c' not in reason


@pytest.mark.parametrize('error, name', [
    (urllib3.exceptions.ProtocolError(), 'ProtocolError'),
    (urllib3.exceptions.MaxRetryError(None, None, reason=urllib3.exceptions.ConnectTimeoutError()),
     'ConnectTimeoutError'),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(' \n\t '), request=None), 'ProtocolError'),
])
def test_reason_is_the_type_name_when_the_root_cause_has_no_words(error, name):
    assert transport_reason(error) == name


def test_reason_of_a_cycle_is_given():
    error = urllib3.exceptions.ProtocolError('Connection aborted.')
    error.args = ('Connection aborted.', error)
    assert transport_reason(error) == "('Connection aborted.', ProtocolError(...))"


def test_reason_is_on_one_line_and_redacted():
    words = 'peer said\n  bye at https://root:hunter22@%s/x?private_token=glpat-1234567' % HOST
    inner = urllib3.exceptions.ProtocolError(words)
    error = requests.exceptions.ConnectionError(inner, request=None)
    reason = transport_reason(error)
    assert reason == 'peer said bye at https://***@%s/x?private_token=***' % HOST
    assert 'hunter22' not in reason and 'glpat-1234567' not in reason


# one_line

def test_one_line_collapses_white_space_and_newlines():
    assert one_line('  Connection\n aborted:\t\tpeer \r\n reset  ') == 'Connection aborted: peer reset'


def test_one_line_takes_an_exception():
    assert one_line(ValueError('first\nsecond')) == 'first second'


def test_one_line_redacts_a_password_and_a_token_in_a_url():
    text = one_line('GET https://root:hunter22@%s/api/v4/user?private_token=glpat-abcdef123456 failed' % HOST)
    assert text == 'GET https://***@%s/api/v4/user?private_token=*** failed' % HOST
    assert 'hunter22' not in text and 'glpat-abcdef123456' not in text


def test_one_line_redacts_the_query_urllib3_names_by_its_path():
    error, max_retry, _new_connection = _refused()
    text = one_line(error)
    assert 'glpat-abcdef123456' not in text
    assert 'Max retries exceeded with url: /api/v4/user?private_token=***' in text
    assert one_line(max_retry) == text


def test_one_line_masks_each_secret():
    text = one_line('key mobb-key-0001 sent, token glpat-new-0002 read', secrets=['mobb-key-0001', 'glpat-new-0002'])
    assert text == 'key %s sent, token %s read' % (SECRET_MASK, SECRET_MASK)


@pytest.mark.parametrize('secrets', [
    ('abcdef', 'abcdef-123456'),
    ('abcdef-123456', 'abcdef'),
])
def test_one_line_masks_the_longest_secret_first(secrets):
    text = one_line('new abcdef-123456 old abcdef', secrets=secrets)
    assert text == 'new %s old %s' % (SECRET_MASK, SECRET_MASK)
    assert '123456' not in text


def test_one_line_ignores_none_and_empty_secrets():
    text = one_line('token s3cr3t-value sent', secrets=[None, '', 's3cr3t-value', None])
    assert text == 'token %s sent' % SECRET_MASK


def test_one_line_with_only_empty_secrets_leaves_the_text():
    assert one_line('nothing to hide', secrets=(None, '')) == 'nothing to hide'


def test_one_line_cuts_after_max_length_with_an_ellipsis():
    assert one_line('x' * 50, max_length=10) == 'x' * 10 + '...'


def test_one_line_does_not_cut_at_or_under_max_length():
    assert one_line('x' * 10, max_length=10) == 'x' * 10
    assert one_line('short', max_length=100) == 'short'
    assert one_line('y' * 500) == 'y' * 500


def test_one_line_cuts_after_collapsing_and_masking_so_no_part_of_a_secret_is_left():
    text = one_line('token\n\n supersecretvalue and more', secrets=['supersecretvalue'], max_length=10)
    assert text == 'token ****...'
    assert 'super' not in text


def test_secret_mask_is_a_fixed_mask():
    assert SECRET_MASK == '********'
    assert one_line('abc123', secrets=['abc123']) == SECRET_MASK
