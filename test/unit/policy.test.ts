/**
 * The policy model (src/domain/policy.ts): defaults, partial documents merged over them, validation messages
 * that name the field and the allowed values, and what each option means for reconcile and scope.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILTIN_POLICY,
  crmScopeFor,
  logs,
  markingCategory,
  outOfScope,
  parsePolicy,
  reconcilePolicyFor,
  typePolicy,
  type Policy,
} from '../../src/domain/policy';

function valid(doc: unknown): Policy {
  const r = parsePolicy(doc);
  if (!r.ok) assert.fail(r.error);
  return r.value;
}
function invalid(doc: unknown): string {
  const r = parsePolicy(doc);
  assert.equal(r.ok, false, `expected ${JSON.stringify(doc)} to be refused`);
  return (r as { error: string }).error;
}

describe('policy: defaults', () => {
  it('the built-in default policy: two-way, CRM wins, keep updated, VContacts, category CRM (preset7), merge by email, guard on', () => {
    const p = BUILTIN_POLICY;
    const c = p.contact;
    assert.deepEqual(
      { enabled: c.enabled, direction: c.direction, conflict: c.conflict, deleteVsUpdate: c.deleteVsUpdate, filter: c.filter, folder: c.folder, excludePrivate: c.excludePrivate, excludeCategory: c.excludeCategory, mergeByEmail: c.mergeByEmail, contactClass: c.contactClass, syncWithoutCategory: c.syncWithoutCategory },
      { enabled: true, direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated', filter: 'owned', folder: 'VContacts', excludePrivate: true, excludeCategory: 'DoNotSync', mergeByEmail: true, contactClass: null, syncWithoutCategory: false },
    );
    assert.deepEqual(c.prevent, { crm: { create: false, update: false, delete: false }, exchange: { create: false, update: false, delete: false } });
    assert.deepEqual(p.category, { name: 'CRM', color: 'preset7' });
    assert.deepEqual(p.schedule, { intervalSeconds: null, activeHours: null });
    assert.equal(p.batchSize, null);
    assert.deepEqual(p.fieldLimits, { body: 'truncate' });
    assert.equal(p.logLevel, 'default');
    assert.deepEqual(p.massDeleteGuard, { enabled: true, minItems: 10, share: 0.9 });
    assert.equal(p.event.folder, 'VEvents');
    assert.deepEqual(p.event.window, { pastDays: 30, futureDays: 365 });
    assert.deepEqual(p.event.firstSync, { days: 14, recurring: true });
    assert.equal(p.task.folder, 'VTasks');
    assert.deepEqual(p.task.firstSync, { days: 14, open: true });
  });

  it('an empty document is the default policy', () => {
    assert.deepEqual(valid({}), BUILTIN_POLICY);
  });

  it('a partial document merges over the defaults, at any depth', () => {
    const p = valid({ contact: { direction: 'crm-to-exchange', prevent: { exchange: { delete: true } } }, schedule: { activeHours: { from: '08:00', to: '18:00' } } });
    assert.equal(p.contact.direction, 'crm-to-exchange');
    assert.equal(p.contact.conflict, 'crm-wins');
    assert.deepEqual(p.contact.prevent, { crm: { create: false, update: false, delete: false }, exchange: { create: false, update: false, delete: true } });
    assert.deepEqual(p.schedule.activeHours, { days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '08:00', to: '18:00', timeZone: null });
    assert.deepEqual(p.event, BUILTIN_POLICY.event);
  });

  it('null chooses the default folder, and turns the DoNotSync exclusion off', () => {
    const p = valid({ contact: { folder: null, excludeCategory: null } });
    assert.equal(p.contact.folder, null);
    assert.equal(p.contact.excludeCategory, null);
  });
});

describe('policy: validation names the field and what it accepts', () => {
  const cases: [string, unknown, string | RegExp][] = [
    ['direction', { contact: { direction: 'sideways' } }, 'contact.direction must be one of both, crm-to-exchange, exchange-to-crm (got "sideways")'],
    ['conflict rule', { contact: { conflict: 'crm' } }, 'contact.conflict must be one of crm-wins, exchange-wins, keep-both, newest-wins (got "crm")'],
    ['delete rule', { event: { deleteVsUpdate: 'x' } }, 'event.deleteVsUpdate must be one of crm-master, exchange-master, delete-wins, keep-updated (got "x")'],
    ['filter', { contact: { filter: 'mine' } }, 'contact.filter must be one of all, owned, workgroup, matching-crm, category (got "mine")'],
    ['workgroup for events', { event: { filter: 'workgroup' } }, 'event.filter "workgroup" is not available for events yet (the CRM event feed reads the items the user owns); use one of owned, category'],
    ['all for tasks', { task: { filter: 'all' } }, 'task.filter "all" is not available for tasks yet (the CRM task feed reads the items the user owns); use one of owned, category'],
    ['matching-crm for events', { event: { filter: 'matching-crm' } }, 'event.filter "matching-crm" is not available for events yet (events are not matched to CRM records yet); use one of owned, category'],
    ['category colour', { category: { name: 'CRM', color: 'blue' } }, /^category\.color must be one of preset0, preset1, .*preset24 \(got "blue"\)$/],
    ['empty category name', { category: { name: ' ', color: 'preset1' } }, 'category.name must not be empty (got " ")'],
    ['category missing its colour', { category: { name: 'CRM' } }, 'category.color is required'],
    ['boolean', { contact: { enabled: 'yes' } }, 'contact.enabled must be a boolean (got "yes")'],
    ['prevent flag', { task: { prevent: { crm: { delete: 1 } } } }, 'task.prevent.crm.delete must be a boolean (got 1)'],
    ['unknown field', { contact: { directon: 'both' } }, 'contact: unknown field "directon"'],
    ['unknown prevent side', { contact: { prevent: { outlook: {} } } }, 'contact.prevent: unknown field "outlook"'],
    ['unknown section', { calendar: {} }, 'unknown field "calendar"'],
    ['past window cap', { event: { window: { pastDays: 31 } } }, 'event.window.pastDays must be at most 30 (got 31)'],
    ['future window cap', { event: { window: { futureDays: 400 } } }, 'event.window.futureDays must be at most 365 (got 400)'],
    ['negative window', { event: { window: { pastDays: -1 } } }, 'event.window.pastDays must be at least 0 (got -1)'],
    ['interval', { schedule: { intervalSeconds: 1 } }, 'schedule.intervalSeconds must be at least 5 (got 1)'],
    ['interval type', { schedule: { intervalSeconds: '5m' } }, 'schedule.intervalSeconds must be a number (got "5m")'],
    ['batch size', { batchSize: 0 }, 'batchSize must be at least 1 (got 0)'],
    ['active hours time', { schedule: { activeHours: { from: '8am' } } }, 'schedule.activeHours.from must be a time HH:MM between 00:00 and 23:59 (got "8am")'],
    ['active hours day', { schedule: { activeHours: { days: ['monday'] } } }, /^schedule\.activeHours\.days\.0 must be one of sun, mon, tue, wed, thu, fri, sat/],
    ['no days', { schedule: { activeHours: { days: [] } } }, 'schedule.activeHours.days must name at least one day'],
    ['time zone', { schedule: { activeHours: { timeZone: 'Mars/Olympus' } } }, 'schedule.activeHours.timeZone must be an IANA time zone such as Europe/Berlin (got "Mars/Olympus")'],
    ['log level', { logLevel: 'debug' }, 'logLevel must be one of none, default, informational, verbose (got "debug")'],
    ['body rule', { fieldLimits: { body: 'drop' } }, 'fieldLimits.body must be one of truncate, skip (got "drop")'],
    ['guard share', { massDeleteGuard: { share: 2 } }, 'massDeleteGuard.share must be at most 1 (got 2)'],
    ['folder', { contact: { folder: '' } }, 'contact.folder must not be empty; use null for the default folder (got "")'],
    ['empty contact class', { contact: { contactClass: ' ' } }, 'contact.contactClass must not be empty (got " ")'],
    ['contact class too long', { contact: { contactClass: 'x'.repeat(101) } }, 'contact.contactClass must be at most 100 characters long'],
    ['contact class type', { contact: { contactClass: 7 } }, 'contact.contactClass must be a string (got 7)'],
  ];
  for (const [what, doc, message] of cases) {
    it(what, () => {
      const err = invalid(doc);
      if (typeof message === 'string') assert.equal(err, message);
      else assert.match(err, message);
      assert.doesNotMatch(err, /\n/, 'one line');
    });
  }

  it('task.statusMap: a custom table is accepted; unknown statuses and one-way entries are refused', () => {
    const map = { crmToExchange: { Open: 'notStarted', Completed: 'completed' }, exchangeToCrm: { notStarted: 'Open', completed: 'Completed' } };
    assert.deepEqual(valid({ task: { statusMap: map } }).task.statusMap, map);
    assert.equal(BUILTIN_POLICY.task.statusMap, null, 'null: Acumatica’s table');
    assert.match(invalid({ task: { statusMap: { crmToExchange: { Done: 'completed' }, exchangeToCrm: { completed: 'Completed' } } } }), /^task\.statusMap "Done" is not a CRM task status \(Draft, Open, /);
    assert.match(invalid({ task: { statusMap: { crmToExchange: { Open: 'notStarted' }, exchangeToCrm: {} } } }), /^task\.statusMap CRM Open becomes notStarted in Exchange, but notStarted does not map back to a CRM status$/);
    assert.equal(invalid({ task: { statusMap: { crmToExchange: {} } } }), 'task.statusMap.exchangeToCrm is required');
  });

  it('contacts accept the filters all and workgroup, and a contact class', () => {
    assert.equal(valid({ contact: { filter: 'all' } }).contact.filter, 'all');
    assert.equal(valid({ contact: { filter: 'workgroup' } }).contact.filter, 'workgroup');
    assert.equal(valid({ contact: { contactClass: ' Lead ' } }).contact.contactClass, 'Lead', 'trimmed');
    assert.equal(valid({ contact: { contactClass: null } }).contact.contactClass, null);
  });

  it('several problems are reported together, on one line', () => {
    assert.equal(invalid({ contact: { direction: 'x', enabled: 2 } }), 'contact.enabled must be a boolean (got 2); contact.direction must be one of both, crm-to-exchange, exchange-to-crm (got "x")');
  });

  it('a document that is not an object is refused with an example', () => {
    for (const doc of [null, [], 'both', 3]) assert.match(invalid(doc), /a policy must be a JSON object, e\.g\. \{"contact"/);
  });
});

describe('policy: what the options mean', () => {
  it('reconcilePolicyFor carries direction, rules, prevent flags, merge, match-only and the guard of the type', () => {
    const p = valid({ contact: { direction: 'exchange-to-crm', conflict: 'keep-both', deleteVsUpdate: 'delete-wins', prevent: { crm: { delete: true } }, mergeByEmail: false, filter: 'matching-crm' }, massDeleteGuard: { minItems: 3, share: 0.5 } });
    assert.deepEqual(reconcilePolicyFor(p, 'contact'), {
      direction: 'exchange-to-crm',
      conflict: 'keep-both',
      deleteVsUpdate: 'delete-wins',
      prevent: { crm: { create: false, update: false, delete: true }, exchange: { create: false, update: false, delete: false } },
      mergeByEmail: true, // matching-crm matches by email even with mergeByEmail off
      newExchangeItems: 'match-only',
      massDeleteGuard: { minItems: 3, share: 0.5 },
    });
    assert.equal(reconcilePolicyFor(valid({ massDeleteGuard: { enabled: false } }), 'contact').massDeleteGuard, undefined);
    assert.equal(reconcilePolicyFor(valid({ contact: { mergeByEmail: false } }), 'contact').mergeByEmail, false);
    assert.equal(reconcilePolicyFor(BUILTIN_POLICY, 'event').mergeByEmail, false, 'merge by email is a contact setting');
    assert.equal(reconcilePolicyFor(valid({ contact: { filter: 'matching-crm', mergeByEmail: false } }), 'contact').mergeByEmail, true, 'matching-crm matches by email');
  });

  it('crmScopeFor: the CRM feed reads all or the workgroup’s contacts with those filters, the user’s own otherwise', () => {
    for (const [filter, scope] of [['all', 'all'], ['workgroup', 'workgroup'], ['owned', 'owned'], ['category', 'owned'], ['matching-crm', 'owned']] as const) {
      assert.equal(crmScopeFor(valid({ contact: { filter } }), 'contact'), scope, filter);
    }
    assert.equal(crmScopeFor(BUILTIN_POLICY, 'event'), 'owned');
    assert.equal(crmScopeFor(valid({ task: { filter: 'category' } }), 'task'), 'owned');
  });

  it('typePolicy refuses an unknown record type', () => {
    assert.throws(() => typePolicy(BUILTIN_POLICY, 'email'), /no section for record type email/);
  });

  it('the marking category: the policy’s, a type’s own, or none with syncWithoutCategory', () => {
    assert.deepEqual(markingCategory(BUILTIN_POLICY, 'contact'), { name: 'CRM', color: 'preset7' });
    assert.deepEqual(markingCategory(valid({ contact: { category: { name: 'Sales', color: 'preset3' } } }), 'contact'), { name: 'Sales', color: 'preset3' });
    assert.equal(markingCategory(valid({ contact: { syncWithoutCategory: true } }), 'contact'), null);
  });

  it('log levels: errors always; warnings from default; info from informational; verbose only at verbose', () => {
    const at = (logLevel: string) => (['error', 'warn', 'info', 'verbose'] as const).filter((l) => logs(valid({ logLevel }), l));
    assert.deepEqual(at('none'), ['error']);
    assert.deepEqual(at('default'), ['error', 'warn']);
    assert.deepEqual(at('informational'), ['error', 'warn', 'info']);
    assert.deepEqual(at('verbose'), ['error', 'warn', 'info', 'verbose']);
  });
});

describe('policy: scope rules', () => {
  const now = new Date('2024-06-15T12:00:00Z');
  const ctx = { now, firstSync: false };
  const day = (n: number) => new Date(now.getTime() + n * 86_400_000).toISOString();

  it('excludePrivate: a private item on either side is excluded (unlinks a pair); off when the option is off', () => {
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { private: true }, ctx), { reason: 'private item (excludePrivate)', mapped: 'unlink' });
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'event', 'crm', { private: true }, ctx)?.mapped, 'unlink');
    assert.equal(outOfScope(valid({ event: { excludePrivate: false } }), 'event', 'exchange', { private: true }, ctx), undefined);
    assert.equal(outOfScope(BUILTIN_POLICY, 'contact', 'exchange', {}, ctx), undefined, 'unknown privacy (contacts have none) is not private');
  });

  it('excludeCategory: DoNotSync (any case) excludes; another name or null changes it', () => {
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'contact', 'exchange', { categories: ['Red', 'donotsync'] }, ctx), { reason: 'has the category DoNotSync (excludeCategory)', mapped: 'unlink' });
    assert.equal(outOfScope(valid({ contact: { excludeCategory: 'Private' } }), 'contact', 'exchange', { categories: ['DoNotSync'] }, ctx), undefined);
    assert.ok(outOfScope(valid({ contact: { excludeCategory: 'Private' } }), 'contact', 'exchange', { categories: ['private'] }, ctx));
    assert.equal(outOfScope(valid({ contact: { excludeCategory: null } }), 'contact', 'exchange', { categories: ['DoNotSync'] }, ctx), undefined);
  });

  it('filter category: Exchange items need the designating category (default: the marking category); CRM items are not filtered', () => {
    const p = valid({ contact: { filter: 'category' } });
    assert.deepEqual(outOfScope(p, 'contact', 'exchange', { categories: [] }, ctx), { reason: 'not in the category CRM (filter category)', mapped: 'sync' });
    assert.equal(outOfScope(p, 'contact', 'exchange', { categories: ['crm'] }, ctx), undefined);
    assert.equal(outOfScope(p, 'contact', 'crm', {}, ctx), undefined);
    const named = valid({ contact: { filter: 'category', filterCategory: 'Sync me' } });
    assert.ok(outOfScope(named, 'contact', 'exchange', { categories: ['CRM'] }, ctx));
    assert.equal(outOfScope(named, 'contact', 'exchange', { categories: ['Sync me'] }, ctx), undefined);
  });

  it('event window: ended more than pastDays ago or starting beyond futureDays is ignored; recurring series are kept', () => {
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-40), end: day(-31) }, ctx), { reason: 'ended more than 30 days ago (event window)', mapped: 'ignore' });
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-40), end: day(-29) }, ctx), undefined);
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'event', 'crm', { start: day(366), end: day(366) }, ctx)?.reason, 'starts more than 365 days ahead (event window)');
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-400), end: day(-399), recurring: true }, ctx), undefined);
    const narrow = valid({ event: { window: { pastDays: 7, futureDays: 30 } } });
    assert.ok(outOfScope(narrow, 'event', 'exchange', { start: day(-8), end: day(-8) }, ctx));
    assert.ok(outOfScope(narrow, 'event', 'exchange', { start: day(31), end: day(31) }, ctx));
    assert.equal(outOfScope(narrow, 'event', 'exchange', { start: day(29), end: day(29) }, ctx), undefined);
    assert.equal(outOfScope(BUILTIN_POLICY, 'contact', 'exchange', { start: day(-400) }, ctx), undefined, 'the window is an event setting');
  });

  it('first sync of events (as Sage): modified or ended in the last 14 days, or recurring', () => {
    const first = { now, firstSync: true };
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-20), end: day(-20), modifiedAt: day(-2) }, first), undefined, 'modified recently');
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-10), end: day(-10), modifiedAt: day(-60) }, first), undefined, 'ended recently');
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(5), end: day(5), modifiedAt: day(-60) }, first), undefined, 'upcoming');
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-25), end: day(-25), modifiedAt: day(-60), recurring: true }, first), undefined, 'recurring');
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-25), end: day(-25), modifiedAt: day(-60) }, first), { reason: 'first sync: not modified or ended in the last 14 days and not recurring', mapped: 'ignore' });
    assert.equal(outOfScope(BUILTIN_POLICY, 'event', 'exchange', { start: day(-25), end: day(-25), modifiedAt: day(-60) }, ctx), undefined, 'only on the first sync');
  });

  it('first sync of tasks (as Sage): modified in the last 14 days, or open', () => {
    const first = { now, firstSync: true };
    assert.equal(outOfScope(BUILTIN_POLICY, 'task', 'crm', { modifiedAt: day(-3), open: false }, first), undefined);
    assert.equal(outOfScope(BUILTIN_POLICY, 'task', 'crm', { modifiedAt: day(-90), open: true }, first), undefined);
    assert.deepEqual(outOfScope(BUILTIN_POLICY, 'task', 'exchange', { modifiedAt: day(-90), open: false }, first)?.reason, 'first sync: not modified in the last 14 days and not open');
    assert.ok(outOfScope(valid({ task: { firstSync: { open: false } } }), 'task', 'crm', { modifiedAt: day(-90), open: true }, first));
  });
});
