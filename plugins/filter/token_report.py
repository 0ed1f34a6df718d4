# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the results of mobb.scm.gitlab_server_token into the role's results and reports."""

from __future__ import annotations

import datetime

# What a result of the action keeps in the role's results (never a secret).
RECORD_KEYS = (
    'label', 'gitlab_url', 'scm_url', 'token_type', 'owner', 'token_name', 'rotation_method', 'action', 'outcome',
    'changed', 'check_mode', 'reasons', 'problems', 'token_id', 'expires_at', 'days_left', 'new_token_fingerprint',
    'previous_token_id', 'revoked_token_ids', 'duplicate_token_ids', 'connected', 'connection_status',
    'connection_message', 'brokered', 'token_last_update', 'mobb_token', 'failed', 'msg',
)
COLUMNS = ('Host', 'Token', 'Action', 'Token id', 'Expires', 'Days left', 'Mobb')


def token_results(registered, host):
    """The role's records from ``register`` of a loop over the action, each with its host."""
    records = []
    for result in registered.get('results', []):
        record = {key: result.get(key) for key in RECORD_KEYS}
        record['host'] = host
        if record['label'] is None:
            # The action did not run (its arguments were refused): keep Ansible's message.
            record.update(label='-', action='failed', outcome='invalid_settings', failed=True, changed=False,
                          reasons=[], problems=[], revoked_token_ids=[], msg=result.get('msg', 'failed'))
        records.append(record)
    return records


def token_stats(hosts, hostvars):
    """The set_stats data of ``hosts``: each host's results keyed by token label."""
    stats = {}
    for host in hosts:
        results = hostvars[host].get('gitlab_token_rotation_results') or []
        stats[host] = {record['label']: record for record in results}
    return stats


def token_problems(results):
    """One line naming each token with a problem and what is wrong with it."""
    return ' | '.join('%s: %s' % (record['label'], '; '.join(record['problems']))
                      for record in results if record.get('problems'))


def token_report(hosts, hostvars, title):
    """One report over the results of ``hosts``; a host without results gets a row saying so."""
    rows = []
    for host in hosts:
        results = hostvars[host].get('gitlab_token_rotation_results')
        if results is None:
            rows.append(dict(host=host, label='-', action='failed', failed=True, changed=False, problems=[],
                             reasons=[], token_id=None, expires_at=None, days_left=None, connected=None,
                             msg='%s: no result (the host failed before the role recorded one; see its error above)'
                             % host))
        else:
            rows.extend(results)
    actions = {}
    for row in rows:
        actions[row['action']] = actions.get(row['action'], 0) + 1
    return dict(
        title=title,
        generated_at=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        summary=dict(hosts=len(hosts), tokens=len(rows), actions=actions,
                     failed=sum(1 for row in rows if row.get('failed')),
                     with_problems=sum(1 for row in rows if row.get('problems')),
                     changed=sum(1 for row in rows if row.get('changed'))),
        tokens=rows,
    )


def _cells(row, disconnected):
    mobb = '-' if row.get('connected') is None else ('connected' if row['connected'] else disconnected)
    days = row.get('days_left')
    return [str(value) for value in (row['host'], row['label'], row['action'], row.get('token_id') or '-',
                                     row.get('expires_at') or '-', '-' if days is None else days, mobb)]


def _note(row):
    return row.get('msg') or '; '.join(row.get('problems') or []) or (
        '; '.join(row.get('reasons') or []) if row.get('changed') else '')


def _summary(report):
    return ', '.join('%s: %s' % item for item in report['summary']['actions'].items())


def token_report_text(report):
    table = [list(COLUMNS)] + [_cells(row, 'DISCONNECTED') for row in report['tokens']]
    widths = [max(len(cells[column]) for cells in table) for column in range(len(COLUMNS))]
    summary = report['summary']
    lines = ['%s - %d token(s) on %d host(s): %s' % (report['title'], summary['tokens'], summary['hosts'],
                                                     _summary(report))]
    lines += ['  '.join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in table]
    lines += ['- %s %s: %s' % (row['host'], row['label'], _note(row)) for row in report['tokens'] if _note(row)]
    return '\n'.join(lines)


def token_report_markdown(report):
    def escape(cell):
        return cell.replace('|', '\\|')

    lines = ['# %s' % report['title'], '',
             'Generated %s: %d token(s) on %d host(s);' % (report['generated_at'], report['summary']['tokens'],
                                                           report['summary']['hosts']),
             '%s.' % _summary(report), '',
             '| %s |' % ' | '.join(COLUMNS), '| %s |' % ' | '.join('---' for _column in COLUMNS)]
    lines += ['| %s |' % ' | '.join(escape(cell) for cell in _cells(row, '**disconnected**'))
              for row in report['tokens']]
    notes = ['- **%s** `%s`: %s' % (row['host'], row['label'], _note(row)) for row in report['tokens'] if _note(row)]
    if notes:
        lines += ['', '## Notes', ''] + notes
    return '\n'.join(lines) + '\n'


class FilterModule:

    def filters(self):
        return {
            'token_results': token_results,
            'token_stats': token_stats,
            'token_problems': token_problems,
            'token_report': token_report,
            'token_report_text': token_report_text,
            'token_report_markdown': token_report_markdown,
        }
