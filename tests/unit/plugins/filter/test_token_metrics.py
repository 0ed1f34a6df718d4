"""The token_metrics filter (plugins/filter/rotation_results.py), parsed as Prometheus parses it:
with prometheus_client's OpenMetrics parser, and with its Prometheus text parser (what
node_exporter's textfile collector reads)."""
from __future__ import annotations

import datetime

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_text_families

from ansible_collections.mobb.scm.plugins.filter.rotation_results import token_metrics

GENERATED = '2026-05-01T06:00:00Z'
GENERATED_EPOCH = datetime.datetime(2026, 5, 1, 6, tzinfo=datetime.timezone.utc).timestamp()
FINGERPRINT = '0123456789ab'


def row(host, label, token_type='personal', **fields):
    base = dict(host=host, label=label, token_type=token_type, action='none', failed=False, changed=False,
                token_id=41, expires_at='2026-05-31', days_left=30, connected=True,
                token_last_update='2026-04-30T12:00:00.000Z', new_token_fingerprint=FINGERPRINT,
                mobb_token=dict(identity='managed', fingerprint=FINGERPRINT, token_id=41,
                                token_last_update='2026-04-30T12:00:00.000Z'), msg='')
    base.update(fields)
    return base


def report(*rows):
    return dict(title='t', generated_at=GENERATED, summary={}, tokens=list(rows))


def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family):
    return {(s.labels.get('host'), s.labels.get('token')): s.value for s in family.samples}


def test_every_token_gets_each_gauge_with_units_help_and_eof():
    text = token_metrics(report(row('gl1', 'personal:alice/mobb-broker'),
                                row('gl2', 'project:team/app/mobb-broker', 'project', connected=False,
                                    days_left=3, expires_at='2026-05-04',
                                    mobb_token=dict(identity='other', token_id=9))))
    assert text.endswith('# EOF\n')
    parsed = families(text)
    assert set(parsed) == {'mobb_scm_token_expiry_timestamp_seconds', 'mobb_scm_token_remaining_days',
                           'mobb_scm_connected', 'mobb_scm_holds_managed_token',
                           'mobb_scm_token_last_update_timestamp_seconds', 'mobb_scm_token_failed',
                           'mobb_scm_last_success_timestamp_seconds'}
    assert all(family.type == 'gauge' and family.documentation for family in parsed.values())
    assert parsed['mobb_scm_token_expiry_timestamp_seconds'].unit == 'seconds'
    assert parsed['mobb_scm_token_remaining_days'].unit == 'days'
    one, two = ('gl1', 'personal:alice/mobb-broker'), ('gl2', 'project:team/app/mobb-broker')
    midnight = datetime.datetime(2026, 5, 31, tzinfo=datetime.timezone.utc).timestamp()
    assert samples(parsed['mobb_scm_token_expiry_timestamp_seconds']) == {
        one: midnight, two: midnight - 27 * 86400}
    assert samples(parsed['mobb_scm_token_remaining_days']) == {one: 30, two: 3}
    assert samples(parsed['mobb_scm_connected']) == {one: 1, two: 0}
    assert samples(parsed['mobb_scm_holds_managed_token']) == {one: 1, two: 0}
    assert samples(parsed['mobb_scm_token_failed']) == {one: 0, two: 0}
    updated = datetime.datetime(2026, 4, 30, 12, tzinfo=datetime.timezone.utc).timestamp()
    assert samples(parsed['mobb_scm_token_last_update_timestamp_seconds']) == {one: updated, two: updated}
    [success] = parsed['mobb_scm_last_success_timestamp_seconds'].samples
    assert success.labels == {} and success.value == GENERATED_EPOCH
    # Labels: host, token label and type only.
    assert {key for family in parsed.values() for s in family.samples for key in s.labels} == {
        'host', 'token', 'token_type'}


def test_the_planned_rotation_is_a_timestamp_per_token():
    text = token_metrics(report(row('gl1', 'a', next_rotation='2026-05-24'), row('gl2', 'b', next_rotation=None)))
    family = families(text)['mobb_scm_token_next_rotation_timestamp_seconds']
    assert family.unit == 'seconds' and family.documentation
    assert samples(family) == {('gl1', 'a'): datetime.datetime(2026, 5, 24, tzinfo=datetime.timezone.utc).timestamp()}


def test_the_same_text_is_valid_prometheus_text_for_node_exporter():
    text = token_metrics(report(row('gl1', 'personal:alice/mobb-broker')))
    parsed = {family.name: family for family in prometheus_text_families(text)}
    assert parsed['mobb_scm_connected'].samples[0].value == 1
    assert parsed['mobb_scm_token_expiry_timestamp_seconds'].type == 'gauge'


def test_no_token_id_or_fingerprint_appears():
    text = token_metrics(report(row('gl1', 'personal:alice/mobb-broker', token_id=987654)))
    assert '987654' not in text and FINGERPRINT not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert not {'token_id', 'id', 'fingerprint'} & set(sample.labels)


def test_unknowns_have_no_sample_rather_than_a_made_up_value():
    text = token_metrics(report(row('gl1', 'personal:alice/mobb-broker', expires_at=None, days_left=None,
                                    connected=None, token_last_update=None, mobb_token=None)))
    parsed = families(text)
    assert set(parsed) == {'mobb_scm_token_failed', 'mobb_scm_last_success_timestamp_seconds'}


def test_a_failed_run_carries_the_previous_success_time_over():
    first = token_metrics(report(row('gl1', 'a')))
    failed = report(row('gl1', 'a'), dict(host='gl2', label='-', action='failed', failed=True, msg='gl2: no result'))
    failed['generated_at'] = '2026-05-02T06:00:00Z'
    text = token_metrics(failed, first)
    parsed = families(text)
    assert parsed['mobb_scm_last_success_timestamp_seconds'].samples[0].value == GENERATED_EPOCH
    assert samples(parsed['mobb_scm_token_failed']) == {('gl1', 'a'): 0, ('gl2', '-'): 1}
    # No previous file: no success time is claimed.
    assert 'mobb_scm_last_success_timestamp_seconds' not in families(token_metrics(failed, ''))
    assert 'mobb_scm_last_success_timestamp_seconds' not in families(token_metrics(failed))


@pytest.mark.parametrize('label', ['a "quoted" name', 'back\\slash', 'new\nline'])
def test_label_values_are_escaped(label):
    parsed = families(token_metrics(report(row('gl1', label))))
    assert [s.labels['token'] for s in parsed['mobb_scm_connected'].samples] == [label]


def test_an_empty_report_is_still_a_valid_file():
    parsed = families(token_metrics(report()))
    assert set(parsed) == {'mobb_scm_last_success_timestamp_seconds'}
