/**
 * The emulator's module layout (docs/ARCHITECTURE.md, "Graph emulator"): no import cycle among src/emulator/*.ts,
 * type-only imports included, and the router (graph.ts) depends on the resource handlers, never the reverse —
 * a handler reaches shared code (route-kit.ts, outlook-common.ts, the stores, errors, query, delta…) only, and
 * neither graph.ts nor another handler.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const DIR = path.resolve(__dirname, '../../src/emulator');
/** One module per Graph resource, each reached from graph.ts. */
const HANDLERS = ['contacts', 'categories', 'calendar', 'todo', 'mail'];

/** Relative imports of a module's source: `import … from './x'`, `export … from './x'`, `import './x'`. */
export function localImports(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out = new Set<string>();
  for (const m of code.matchAll(/^\s*(?:import|export)\b[^;'"]*?(?:\bfrom\s*)?['"](\.\/[^'"]+)['"]/gm)) out.add(m[1].slice(2).replace(/\.ts$/, ''));
  for (const m of code.matchAll(/\b(?:import|require)\s*\(\s*['"](\.\/[^'"]+)['"]\s*\)/g)) out.add(m[1].slice(2).replace(/\.ts$/, ''));
  return [...out].sort();
}

function emulatorGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of fs.readdirSync(DIR).filter((f) => f.endsWith('.ts')).sort()) {
    graph.set(f.replace(/\.ts$/, ''), localImports(fs.readFileSync(path.join(DIR, f), 'utf8')));
  }
  return graph;
}

/** Every cycle found by depth-first search, each as the path that closes it (a → b → … → a). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('emulator module imports', () => {
  it('the parser sees every relative import form, multi-line and type-only ones too, and skips comments', () => {
    const src = [
      '/** see ./graph */',
      "// import { x } from './commented';",
      "import crypto from 'node:crypto';",
      "import {\n  a,\n  type B,\n} from './multi';",
      "import type { C } from './typeonly';",
      "export type { D } from './reexport';",
      "import './side-effect';",
      "const lazy = () => import('./lazy');",
    ].join('\n');
    assert.deepEqual(localImports(src), ['lazy', 'multi', 'reexport', 'side-effect', 'typeonly']);
  });

  it('the cycle search finds a cycle, and only a cycle', () => {
    assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c', 'a']]);
    assert.deepEqual(cycles(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), []);
  });

  it('every import names an existing module of src/emulator', () => {
    const graph = emulatorGraph();
    const missing = [...graph].flatMap(([m, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${m} → ${d}`));
    assert.deepEqual(missing, []);
  });

  it('src/emulator/*.ts has no import cycle', () => {
    assert.deepEqual(cycles(emulatorGraph()).map((c) => c.join(' → ')), []);
  });

  it('the router imports every handler, and no handler imports the router or another handler', () => {
    const graph = emulatorGraph();
    for (const h of HANDLERS) assert.ok(graph.has(h), `${h}.ts exists`);
    assert.deepEqual(HANDLERS.filter((h) => !graph.get('graph')!.includes(h)), [], 'graph.ts imports each handler');
    const wrong = HANDLERS.flatMap((h) => graph.get(h)!.filter((d) => d === 'graph' || d === 'server' || HANDLERS.includes(d)).map((d) => `${h} → ${d}`));
    assert.deepEqual(wrong, []);
  });

  it('only the HTTP layer (server.ts) imports the router', () => {
    const importers = [...emulatorGraph()].filter(([, deps]) => deps.includes('graph')).map(([m]) => m);
    assert.deepEqual(importers, ['server']);
  });
});
