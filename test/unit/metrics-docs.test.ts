/**
 * The shipped Grafana dashboard and Prometheus alert rules (docs/) are valid documents and use only metrics a
 * worker exports: cxsync's registry (read here), Node.js process metrics, and the Temporal SDK metrics listed in
 * TEMPORAL_SDK_METRICS (test/integration/metrics.test.ts proves the SDK exports each). docs/OPERATIONS.md names
 * every cxsync metric, and the dashboard shows every one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { registry } from '../../src/activities/metrics';
import { TEMPORAL_SDK_METRICS } from '../../src/worker/metrics';

const docs = path.join(__dirname, '..', '..', 'docs');

// PromQL functions, aggregations and keywords: what is left in an expression after these are metric names.
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'histogram_quantile', 'clamp_min', 'clamp_max', 'clamp',
  'vector', 'scalar', 'absent', 'absent_over_time', 'abs', 'ceil', 'floor', 'round', 'time', 'label_replace',
  'avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'sort',
  'sort_desc', 'changes', 'resets', 'and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left',
  'group_right', 'offset',
]);

/** Metric names an expression selects (label matchers, ranges, grouping labels, strings and numbers removed). */
function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, ' ');
  return [...new Set((e.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? []).filter((w) => !PROMQL_WORDS.has(w)))];
}

function balanced(expr: string): boolean {
  const open: string[] = [];
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('({['.includes(ch)) open.push(ch);
    else if (ch in pairs && open.pop() !== pairs[ch]) return false;
  }
  return open.length === 0;
}

/** Every sample name a worker can export, histograms with their series suffixes. */
function exportedNames(): Set<string> {
  const withProcess = new Registry();
  collectDefaultMetrics({ register: withProcess });
  const out = new Set<string>(['up']); // written by Prometheus for every scrape target
  const add = (name: string, type: string) => {
    out.add(name);
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
  };
  for (const m of [...registry.getMetricsAsArray(), ...withProcess.getMetricsAsArray()]) add(m.name, String(m.type));
  for (const n of TEMPORAL_SDK_METRICS) add(n, n.endsWith('_seconds') ? 'histogram' : 'counter');
  return out;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
}

const dashboard = JSON.parse(fs.readFileSync(path.join(docs, 'grafana-dashboard.json'), 'utf8')) as {
  title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: Array<{ name: string; type: string; query: unknown }> };
};
const rules = parseYaml(fs.readFileSync(path.join(docs, 'prometheus-alerts.yml'), 'utf8')) as {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
};

describe('shipped Grafana dashboard and Prometheus alert rules', () => {
  it('metricNames picks the metric names out of PromQL', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.95, sum by (le, activity_type) (rate(temporal_x_seconds_bucket{task_queue=~"$q"}[$__rate_interval]))) / clamp_min(sum(up), 1e-9) or vector(0)'),
      ['temporal_x_seconds_bucket', 'up'],
    );
  });

  it('the dashboard is a Grafana dashboard model on a Prometheus datasource variable, its panels placed without overlap', () => {
    assert.equal(typeof dashboard.title, 'string');
    assert.match(dashboard.uid, /^[a-zA-Z0-9_-]{1,40}$/);
    assert.ok(dashboard.schemaVersion >= 30);
    const dsVar = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.ok(dsVar && dsVar.query === 'prometheus', 'a datasource variable of type prometheus');
    const ids = new Set<number>();
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
      ids.add(p.id);
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${p.title} fits the 24-column grid`);
      for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} does not overlap another panel`);
        cells.add(`${x},${y}`);
      }
      if (p.type === 'row') continue;
      assert.equal(p.datasource?.uid, `\${${dsVar!.name}}`, `${p.title} uses the datasource variable`);
      assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
      assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length, `${p.title}: refIds are unique`);
      for (const t of p.targets) assert.ok(balanced(t.expr), `${p.title}: ${t.expr} is balanced`);
    }
  });

  it('the alert rules are a Prometheus rule file with the alerts the issue asks for', () => {
    assert.ok(Array.isArray(rules.groups) && rules.groups.length > 0);
    const alerts = rules.groups.flatMap((g) => {
      assert.equal(typeof g.name, 'string');
      return g.rules;
    });
    for (const r of alerts) {
      assert.match(r.alert ?? '', /^[A-Z][A-Za-z0-9]+$/);
      assert.equal(typeof r.expr, 'string');
      assert.ok(balanced(r.expr), `${r.alert}: expression is balanced`);
      assert.match(r.for ?? '', /^\d+[smhd]$/, `${r.alert}: for is a duration`);
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity label`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
    }
    const find = (re: RegExp) => alerts.find((a) => re.test(a.expr));
    assert.ok(find(/cxsync_mailboxes\{state="needs-attention"\}\)? > 0/), 'needs-attention > 0');
    assert.ok(find(/cxsync_sync_lag_seconds\) > \d+/), 'lag above a threshold');
    assert.ok(find(/cxsync_cycles_total\{outcome="failed"\}.*\/.*cxsync_cycles_total/), 'cycle failure ratio');
    assert.ok(find(/cxsync_items_failed_total.*\/.*cxsync_items_written_total/s), 'item failure ratio');
  });

  it('every metric the dashboard and the alerts use is one a worker exports', () => {
    const known = exportedNames();
    const used = new Map<string, string>();
    for (const p of dashboard.panels) for (const t of p.targets ?? []) for (const n of metricNames(t.expr)) used.set(n, `panel "${p.title}"`);
    for (const g of rules.groups) for (const r of g.rules) for (const n of metricNames(r.expr)) used.set(n, `alert ${r.alert}`);
    assert.ok(used.size > 10);
    for (const [n, where] of used) assert.ok(known.has(n), `${n} (${where}) is exported by cxsync, Node.js or the Temporal SDK`);
  });

  it("the dashboard shows every cxsync metric, and docs/OPERATIONS.md names each", () => {
    const operations = fs.readFileSync(path.join(docs, 'OPERATIONS.md'), 'utf8');
    const shown = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    for (const m of registry.getMetricsAsArray()) {
      assert.ok(shown.has(m.name), `${m.name} is on the dashboard`);
      assert.ok(operations.includes(`\`${m.name}\``), `${m.name} is explained in docs/OPERATIONS.md`);
    }
    for (const n of TEMPORAL_SDK_METRICS) assert.ok(operations.includes(`\`${n}\``), `${n} is named in docs/OPERATIONS.md`);
  });
});
