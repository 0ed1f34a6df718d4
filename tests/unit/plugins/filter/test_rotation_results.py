"""The role's results and reports (plugins/filter/rotation_results.py)."""
from __future__ import annotations

from ansible_collections.mobb.scm.plugins.filter.rotation_results import (
    token_problems,
    token_report,
    token_report_markdown,
    token_report_text,
    token_results,
    token_stats,
)


def record(label, action='none', **fields):
    base = dict(label=label, action=action, failed=action == 'failed', changed=action in ('created', 'rotated'),
                reasons=[], problems=[], token_id=7, expires_at='2027-01-30', days_left=30, connected=True, msg='')
    base.update(fields)
    return base


def test_results_keep_the_records_and_drop_what_ansible_added():
    registered = {'results': [
        dict(record('project:a/mobb'), ansible_loop_var='__i', __i=0, invocation={'x': 1}),
        {'failed': True, 'msg': 'Unsupported parameters for (mobb.scm.gitlab_server_token) module: bogus',
         '__i': 1},
    ]}
    results = token_results(registered, 'gl1')
    assert [r['label'] for r in results] == ['project:a/mobb', '-']
    assert all(r['host'] == 'gl1' for r in results)
    assert 'invocation' not in results[0] and 'ansible_loop_var' not in results[0]
    assert results[1]['failed'] and results[1]['outcome'] == 'invalid_settings'
    assert results[1]['msg'].startswith('Unsupported parameters')


def test_stats_key_every_host_by_token_label():
    hostvars = {'gl1': {'gitlab_token_rotation_results': [record('a'), record('b')]}, 'gl2': {}}
    assert token_stats(['gl1', 'gl2'], hostvars) == {'gl1': {'a': record('a'), 'b': record('b')}, 'gl2': {}}


def test_problems_name_each_token():
    results = [record('a', problems=['expires soon', 'Mobb disconnected']), record('b'), record('c', problems=['x'])]
    assert token_problems(results) == 'a: expires soon; Mobb disconnected | c: x'


def test_the_report_counts_and_shows_a_row_for_a_host_without_results():
    hostvars = {'gl1': {'gitlab_token_rotation_results': [
        dict(record('project:a/mobb', 'rotated', reasons=['token 3 expires soon'], next_rotation='2027-01-23'),
             host='gl1')]},
        'gl2': {}}
    report = token_report(['gl1', 'gl2'], hostvars, 'Tokens')
    assert report['summary'] == {'hosts': 2, 'tokens': 2, 'actions': {'rotated': 1, 'failed': 1}, 'failed': 1,
                                 'with_problems': 0, 'changed': 1}
    text = token_report_text(report).splitlines()
    assert text[0] == 'Tokens - 2 token(s) on 2 host(s): rotated: 1, failed: 1'
    assert text[1].split() == ['Host', 'Token', 'Action', 'Token', 'id', 'Expires', 'Days', 'left', 'Next',
                               'rotation', 'Mobb']
    assert text[2].split() == ['gl1', 'project:a/mobb', 'rotated', '7', '2027-01-30', '30', '2027-01-23', 'connected']
    assert text[3].split() == ['gl2', '-', 'failed', '-', '-', '-', '-', '-']
    assert text[4] == '- gl1 project:a/mobb: token 3 expires soon'
    assert text[5].startswith('- gl2 -: gl2: no result')
    markdown = token_report_markdown(report)
    assert '| gl1 | project:a/mobb | rotated | 7 | 2027-01-30 | 30 | 2027-01-23 | connected |' in markdown
    assert '## Notes' in markdown and markdown.endswith('\n')


def test_the_report_says_until_when_an_old_token_stays_active():
    waiting = [dict(token_id=41, expires_at='2027-01-05', retire_on='2027-01-02')]
    report = token_report(['h'], {'h': {'gitlab_token_rotation_results': [
        dict(record('a', 'rotated', reasons=['token 41 expires soon'], awaiting_retirement=waiting), host='h'),
        dict(record('b', awaiting_retirement=waiting), host='h')]}}, 'T')
    notes = token_report_text(report).splitlines()[-2:]
    assert notes == ['- h a: token 41 expires soon; token 41 stays active until 2027-01-02 (retire_after_days)',
                     '- h b: token 41 stays active until 2027-01-02 (retire_after_days)']


def test_markdown_escapes_pipes_and_marks_disconnection():
    report = token_report(['h'], {'h': {'gitlab_token_rotation_results': [
        dict(record('a|b', connected=False), host='h')]}}, 'T')
    assert '| h | a\\|b | none | 7 | 2027-01-30 | 30 | - | **disconnected** |' in token_report_markdown(report)
