# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the results of mobb.scm.gitlab_server_token into the role's results fact
(token_results), its set_stats data (token_stats) and the reports and metrics made from them."""

from __future__ import annotations

import datetime
import re

from ansible_collections.mobb.scm.plugins.module_utils.rotation_report import token_record

COLUMNS = ('Host', 'Token', 'Action', 'Token id', 'Expires', 'Days left', 'Next rotation', 'Mobb')


def token_results(registered, host):
    """The role's records from ``register`` of a loop over the action, each with its host."""
    return [token_record(result, host) for result in registered.get('results', [])]


def _results_of(host, hostvars, fleet):
    """The host's records: from ``fleet`` (a mobb.scm.gitlab_fleet_tokens result's hosts) when
    this run's fleet kept it, else its fact (None when it has none). The fleet's answer comes
    first: a fact cache kept across runs (AWX's, jsonfile) may still hold a former run's."""
    if fleet and host in fleet:
        return fleet[host].get('results')
    return hostvars[host].get('gitlab_token_rotation_results')


def token_stats(hosts, hostvars, fleet=None):
    """The set_stats data of ``hosts``: each host's results keyed by token label."""
    return {host: {record['label']: record for record in _results_of(host, hostvars, fleet) or []}
            for host in hosts}


def token_problems(results):
    """One line naming each token with a problem and what is wrong with it."""
    return ' | '.join('%s: %s' % (record['label'], '; '.join(record['problems']))
                      for record in results if record.get('problems'))


def token_report(hosts, hostvars, title, fleet=None):
    """One report over the results of ``hosts``; a host without results gets a row saying so."""
    rows = []
    for host in hosts:
        results = _results_of(host, hostvars, fleet)
        if results is None:
            rows.append(dict(host=host, label='-', action='failed', failed=True, changed=False, problems=[],
                             reasons=[], token_id=None, expires_at=None, days_left=None, next_rotation=None,
                             connected=None,
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
                                     row.get('expires_at') or '-', '-' if days is None else days,
                                     row.get('next_rotation') or '-', mobb)]


def _note(row):
    note = row.get('msg') or '; '.join(row.get('problems') or []) or (
        '; '.join(row.get('reasons') or []) if row.get('changed') else '')
    kept = ['token %s stays active until %s (retire_after_days)' % (entry['token_id'], entry['retire_on'])
            for entry in row.get('awaiting_retirement') or []]
    return '; '.join([note] + kept if note else kept)


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


# The OpenMetrics families token_metrics writes, in order: (name, unit, help). Every one is a
# gauge labelled by host, token (the result's label: type, owner and name, one per kept
# token) and token_type, except the run's own last success time, which has no labels.
METRIC_PREFIX = 'mobb_scm_'
_METRICS = (
    ('token_expiry_timestamp_seconds', 'seconds',
     'When the kept GitLab token expires: 00:00 UTC on its expires_at date, when GitLab stops accepting it.'),
    ('token_remaining_days', 'days',
     'Whole days until the kept token expires, as the role counts them (its days_left).'),
    ('token_next_rotation_timestamp_seconds', 'seconds',
     'When a run plans to replace the kept token: 00:00 UTC of the day its days left reach its threshold '
     '(rotate_before_days, rotate_at_fraction, spread_days); a past time means it is due.'),
    ('connected', None,
     '1 when Mobb reaches the GitLab server with the token it stores (its connection check), else 0.'),
    ('holds_managed_token', None,
     '1 when the token Mobb holds is the kept token (GitLab identified it), else 0: another token, a dead one, '
     'none, or unproven.'),
    ('token_last_update_timestamp_seconds', 'seconds',
     "When Mobb's stored token was last updated (Mobb's tokenLastUpdate): the last rotation that reached Mobb, "
     'or any other store of a token for this server.'),
    ('token_failed', None,
     '1 when this run could not keep (or check) the token; the report and the task result say why.'),
)
LAST_SUCCESS = 'last_success_timestamp_seconds'
_LAST_SUCCESS_HELP = ('When a run last ended with no token failed (this run, or the value the previous file '
                      'held when this run failed).')
_LAST_SUCCESS_LINE = re.compile(r'^%s%s(?:\{\})? +([0-9.eE+-]+)\s*$' % (METRIC_PREFIX, LAST_SUCCESS), re.M)


def _escape_label(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _epoch(text):
    """Seconds since the epoch of an ISO date (00:00 UTC) or time (naive: UTC); None if unreadable."""
    if not text:
        return None
    text = str(text).strip()
    try:
        if len(text) == 10:
            moment = datetime.datetime.strptime(text, '%Y-%m-%d')
        else:
            moment = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _token_values(row):
    """This row's value of each family in _METRICS (None: no sample)."""
    mobb_token = row.get('mobb_token') or {}
    identity = mobb_token.get('identity')
    connected = row.get('connected')
    return {
        'token_expiry_timestamp_seconds': _epoch(row.get('expires_at')),
        'token_remaining_days': row.get('days_left'),
        'token_next_rotation_timestamp_seconds': _epoch(row.get('next_rotation')),
        'connected': None if connected is None else bool(connected),
        'holds_managed_token': None if identity is None else identity == 'managed',
        'token_last_update_timestamp_seconds': _epoch(row.get('token_last_update')
                                                      or mobb_token.get('token_last_update')),
        'token_failed': bool(row.get('failed')),
    }


def token_metrics(report, previous=None):
    """``report`` (token_report's dict) as OpenMetrics text for node_exporter's textfile
    collector, which reads it as Prometheus text (``# UNIT`` and ``# EOF`` are comments there).

    Labels are the host, the token's label and its type: never a token id, value or
    fingerprint. ``previous`` is the file this one replaces (its text, or empty): when a
    token failed in this run, its last success time is carried over from it.
    """
    rows = report.get('tokens') or []
    families = []
    for name, unit, help_text in _METRICS:
        samples = []
        for row in rows:
            value = _token_values(row)[name]
            if value is None:
                continue
            labels = (('host', row.get('host')), ('token', row.get('label')), ('token_type', row.get('token_type')))
            samples.append('%s%s{%s} %s' % (METRIC_PREFIX, name, ','.join(
                '%s="%s"' % (key, _escape_label(label or '')) for key, label in labels), _number(value)))
        if samples:
            families.append((name, unit, help_text, samples))
    if not any(row.get('failed') for row in rows):
        last_success = _epoch(report.get('generated_at'))
    else:
        match = _LAST_SUCCESS_LINE.search(previous or '')
        last_success = float(match.group(1)) if match else None
    if last_success is not None:
        families.append((LAST_SUCCESS, 'seconds', _LAST_SUCCESS_HELP,
                         ['%s%s %s' % (METRIC_PREFIX, LAST_SUCCESS, _number(last_success))]))
    lines = []
    for name, unit, help_text, samples in families:
        lines.append('# TYPE %s%s gauge' % (METRIC_PREFIX, name))
        if unit:
            lines.append('# UNIT %s%s %s' % (METRIC_PREFIX, name, unit))
        lines.append('# HELP %s%s %s' % (METRIC_PREFIX, name, help_text))
        lines.extend(samples)
    lines.append('# EOF')
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
            'token_metrics': token_metrics,
        }
