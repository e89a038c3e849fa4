/**
 * Bodies (src/domain/body.ts): Outlook's HTML read as text with link targets kept, text written back as HTML with
 * its links as anchors, and the round trip text → HTML → (as Outlook returns it) → text exact, so that a body
 * cxsync wrote never reads back as an edit. Also: what an event or task update sends when the body did or did not
 * change.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bodyText, htmlToText, normalizeText, textToHtml } from '../../src/domain/body';
import { htmlToText as htmlToTextFromEvent, toGraphEvent, validateEvent, type EventRecord } from '../../src/domain/event';
import { toGraphTask, validateTask, type TaskRecord } from '../../src/domain/task';
import { changedProperties } from '../../src/domain/patch';
import { renderAttendeeLine, splitAttendeeBlock, withAttendeeBlock } from '../../src/domain/invitations';
import { JOIN, OPTIONS, TEAMS_BODY, TEAMS_TEXT } from '../helpers/bodies';

const html = (content: string) => bodyText({ contentType: 'html', content });
const hrefs = (h: string) => [...h.matchAll(/<a\b[^>]*\bhref="([^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"'));

/**
 * What Exchange may do to HTML it stores and returns: its own head, attributes on every block, self-closing
 * <br />, numeric or literal no-break spaces, line breaks and indentation between tags, > unescaped in text.
 */
function asOutlookReturnsIt(h: string, variant: number): string {
  let o = h
    .replace('<head>', '<head>\r\n<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>')
    .replace('<body>', '<body dir="ltr">')
    .replace(/<div>/g, '<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, sans-serif; font-size: 12pt">')
    .replace(/<a href=("[^"]*")>/g, '<a href=$1 target="_blank" rel="noopener noreferrer" data-auth="NotApplicable">')
    .replace(/&gt;/g, '>');
  if (variant % 2) o = o.replace(/<br>/g, '<br />');
  if (variant % 3 === 1) o = o.replace(/&nbsp;/g, '&#160;');
  if (variant % 3 === 2) o = o.replace(/&nbsp;/g, '\u00a0');
  if (variant % 4 >= 2) o = o.replace(/(<\/div>|<br>|<br \/>)/g, '$1\r\n    ').replace(/(<div[^>]*>)/g, '\r\n  $1\r\n   ');
  return o;
}

describe('body: HTML read as text', () => {
  it('a Teams meeting body reads as its text with every link target, the join link exactly', () => {
    assert.equal(html(TEAMS_BODY), TEAMS_TEXT);
  });

  it('link text reads as "T <U>"; as "U" when the text is its own target (URL, mailto address, host without scheme)', () => {
    assert.equal(html('<p>See <a href="https://x.example/a?b=1&amp;c=2">the plan</a>, then reply.</p>'), 'See the plan <https://x.example/a?b=1&c=2>, then reply.');
    assert.equal(html('<a href="https://x.example/">https://x.example/</a>'), 'https://x.example/');
    assert.equal(html('<a href="https://x.example/">https://x.example</a>'), 'https://x.example');
    assert.equal(html('Mail <a href="mailto:Ann@Example.com">ann@example.com</a> now'), 'Mail ann@example.com now');
    assert.equal(html('<a href="http://www.example.com/">www.example.com</a>'), 'www.example.com');
    assert.equal(html('<a href="https://x.example/logo"><img src="cid:1"></a> Logo'), '<https://x.example/logo> Logo');
    assert.equal(html('<a name="top"></a><a href="#top">Back</a> <a href="javascript:void(0)">x</a>'), 'Back x', 'in-page links and scripts are no targets');
    assert.equal(html('<a href="https://a.example">A <b>bold</b> </a>next'), 'A bold <https://a.example> next');
  });

  it('paragraphs, line breaks, blank lines, no-break spaces and entities, as Outlook desktop and the web write them', () => {
    assert.equal(
      html('<p class=MsoNormal>Hello&nbsp;<b>team</b><o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Line&amp;two<br>three &#233; &#x41; &euro;</p>'),
      'Hello team\n\nLine&two\nthree é A €',
    );
    assert.equal(html('<div>a</div><div><br></div><div>b</div>'), 'a\n\nb');
    assert.equal(html('<div><div><div>nested</div></div>\r\n  <div>  twice   spaced  </div></div>'), 'nested\ntwice spaced');
    assert.equal(html('<table><tr><td>Room</td><td>4.12</td></tr><tr><td>Floor</td><td>4</td></tr></table>'), 'Room\t4.12\nFloor\t4');
    assert.equal(html('<!-- comment --><p>code:</p><pre>  kept\n    as is</pre>'), 'code:\n  kept\n    as is');
    assert.equal(bodyText({ contentType: 'text', content: 'plain <b>text</b>\r\n' }), 'plain <b>text</b>', 'a text body is not HTML');
    assert.equal(htmlToTextFromEvent('a &lt;b&gt;'), 'a <b>', 'event.ts still exports the conversion');
  });
});

describe('body: text written as HTML', () => {
  it('"T <U>" and bare URLs become anchors; the Teams join link is still an anchor with the same href', () => {
    const h = textToHtml(TEAMS_TEXT);
    assert.ok(h.includes(`<a href="${JOIN.replace(/&/g, '&amp;')}">Join the meeting now</a>`), h);
    assert.deepEqual(hrefs(h), [
      JOIN,
      'https://www.microsoft.com/en-us/microsoft-teams/download-app',
      'https://www.microsoft.com/microsoft-teams/join-a-meeting',
      'https://aka.ms/JoinTeamsMeeting',
      OPTIONS,
    ]);
    assert.ok(textToHtml('Download Teams <https://d.example> | Join on the web <https://w.example>').includes('<a href="https://d.example">Download Teams</a> | <a href="https://w.example">Join on the web</a>'));
    const bare = textToHtml('Docs: https://x.example/a_(b). Mail mailto:ann@example.com, call tel:+4930123');
    assert.deepEqual(hrefs(bare), ['https://x.example/a_(b)', 'mailto:ann@example.com', 'tel:+4930123']);
    assert.equal(html(bare), 'Docs: https://x.example/a_(b). Mail mailto:ann@example.com, call tel:+4930123');
  });

  it('escapes markup and keeps spacing, blank lines and angle brackets that are no link', () => {
    const t = 'a < b && c > d\n  indented  twice\n\n<not a link> "quoted"\ttab';
    const h = textToHtml(t);
    assert.ok(!h.includes('<not'), h);
    assert.equal(html(h), t);
    assert.equal(textToHtml(''), '');
    assert.equal(textToHtml('  \n '), '');
  });

  it('a text with no link text before <U> keeps its brackets, a link with them', () => {
    for (const t of ['<https://x.example>', 'see:  <https://x.example>', 'x.example <https://x.example>', 'https://a.example <https://b.example>', 'Ann@example.com <mailto:ann@example.com>']) {
      assert.equal(html(textToHtml(t)), t, t);
      assert.ok(hrefs(textToHtml(t)).length >= 1, t);
    }
  });

  it('the attendee line (src/domain/invitations.ts) survives text → HTML → text unchanged, and is still recognised', () => {
    const attendees = [{ email: 'ann@example.com', name: 'Ann Lee' }, { email: 'bob@example.org' }, { email: 'c@example.net', name: 'Smith, "CJ"' }];
    const line = renderAttendeeLine(attendees)!;
    const body = withAttendeeBlock(`Agenda\nJoin <${JOIN}>`, attendees);
    for (let v = 0; v < 12; v++) {
      const back = html(asOutlookReturnsIt(textToHtml(body), v));
      assert.equal(back, body);
      assert.ok(back!.split('\n').includes(line));
      assert.deepEqual(splitAttendeeBlock(back).attendees?.map((a) => a.email), attendees.map((a) => a.email));
    }
  });
});

// ---- properties -----------------------------------------------------------------------------------------

const URL = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.constantFrom(JOIN, OPTIONS, 'mailto:ann@example.com', 'tel:+49301234', 'https://x.example/a_(b)'),
);
const PIECE = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('Join', 'the', 'meeting', 'now', 'Room 4.12', 'Agenda', 'ünïcödé', '😀', 'x.example', 'Ann@example.com') },
  { weight: 6, arbitrary: fc.constantFrom(' ', ' ', '  ', '\t', '\u00a0', '\n', '\n\n', '\n\n\n', '\r\n', '\f', '\u2028', '\u3000') },
  { weight: 4, arbitrary: fc.constantFrom('<', '>', '&', '&amp;', '&nbsp;', '"', "'", '.', ':', ': ', '|', ' | ', '(', ')', '[', ']', ', ', '<b>', '</div>', '<br>') },
  { weight: 3, arbitrary: URL },
  { weight: 3, arbitrary: URL.map((u) => ` <${u}>`) },
  { weight: 2, arbitrary: URL.map((u) => `<${u}>`) },
  { weight: 1, arbitrary: fc.constant('Attendees (not invited by cxsync): Ann Lee <ann@example.com>, "Smith, CJ" <c@example.net>') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
const TEXT = fc.array(PIECE, { maxLength: 40 }).map((p) => p.join(''));

describe('body: round trip properties (fast-check)', () => {
  it('text → HTML → (as Outlook returns it) → text is the same text', () => {
    fc.assert(
      fc.property(TEXT, fc.nat(11), (raw, variant) => {
        const t = normalizeText(raw);
        assert.equal(html(textToHtml(t)), t);
        assert.equal(html(asOutlookReturnsIt(textToHtml(t), variant)), t);
      }),
      { numRuns: 1500 },
    );
  });

  it('any string, any Unicode: the round trip is exact', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (raw) => {
        const t = normalizeText(raw);
        assert.equal(html(textToHtml(t)), t);
      }),
      { numRuns: 1000 },
    );
  });

  // Outlook-like HTML: blocks, inline markup, line breaks, no-break spaces and links with text.
  const LINK_TEXT = fc.constantFrom('Join the meeting now', 'Click here', 'Meeting options', 'A', 'Learn  More', '');
  type Node = string;
  const { node } = fc.letrec<{ node: Node; inline: Node }>((tie) => ({
    inline: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom('Hello', 'team', ' ', '&nbsp;', '&amp;', '&lt;x&gt;', '\r\n  ', 'Meeting ID: 123', '|', ', ', '.'),
      fc.constant('<br>'),
      fc.tuple(fc.constantFrom('span', 'b', 'i', 'font'), fc.array(tie('inline'), { maxLength: 3 })).map(([t, c]) => `<${t} style="x">${c.join('')}</${t}>`),
    ),
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('inline'),
      fc.tuple(URL, LINK_TEXT).map(([u, t]) => `<a href="${u.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}" class="me-email-link">${t.replace(/  /g, ' &nbsp;')}</a>`),
      fc.tuple(fc.constantFrom('div', 'p', 'li'), fc.array(tie('node'), { maxLength: 4 })).map(([t, c]) => `<${t} class="MsoNormal">${c.join('')}</${t}>`),
    ),
  }));

  it('Outlook HTML → text → HTML → text: the text is stable and every link with text keeps its href', () => {
    fc.assert(
      fc.property(fc.array(node, { maxLength: 8 }), (nodes) => {
        const source = `<html><body>${nodes.join('\r\n')}</body></html>`;
        const t = html(source);
        const written = textToHtml(t);
        assert.equal(html(written), t);
        const kept = hrefs(written);
        for (const m of source.matchAll(/<a href="([^"]*)" class="me-email-link">((?:(?!<\/a>)[\s\S])*)<\/a>/g)) {
          const href = m[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&');
          const text = htmlToText(m[2]).replace(/\s+/g, ' ').trim();
          if (text !== '' && text !== href) assert.ok(kept.includes(href), `${href} lost from ${JSON.stringify(t)}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});

// ---- what an update sends ---------------------------------------------------------------------------------

function ok<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const MEETING: EventRecord = ok(
  validateEvent({ subject: 'Review', body: TEAMS_TEXT, location: 'Room 4.12', start: '2025-03-31T09:00:00', end: '2025-03-31T10:00:00', timeZone: 'Europe/Berlin' }),
);
const TASK: TaskRecord = ok(validateTask({ subject: 'Call back', body: `Notes <${JOIN}>`, status: 'notStarted' }));

describe('body: what an update sends', () => {
  it('events are written as HTML; an update of other fields sends no body and no location', () => {
    assert.equal(toGraphEvent(MEETING).body?.contentType, 'html');
    const renamed = { ...MEETING, subject: 'Review (moved)', start: '2025-03-31T11:00:00', end: '2025-03-31T12:00:00' };
    const patch = changedProperties(toGraphEvent(renamed), toGraphEvent(MEETING));
    assert.deepEqual(Object.keys(patch).sort(), ['end', 'start', 'subject']);
  });

  it('an event whose text changed sends HTML in which the join link is an anchor with the same href', () => {
    const edited = { ...MEETING, body: MEETING.body!.replace('Agenda: pricing for 2025', 'Agenda: pricing for 2026') };
    const patch = changedProperties(toGraphEvent(edited), toGraphEvent(MEETING));
    assert.deepEqual(Object.keys(patch), ['body']);
    assert.equal(patch.body!.contentType, 'html');
    assert.ok(hrefs(patch.body!.content!).includes(JOIN));
    assert.equal(html(patch.body!.content!), edited.body);
  });

  it('tasks: HTML bodies, sent only when the text changed', () => {
    assert.deepEqual(toGraphTask(TASK).body?.contentType, 'html');
    assert.deepEqual(Object.keys(changedProperties(toGraphTask({ ...TASK, subject: 'Call back today' }), toGraphTask(TASK))), ['title']);
    const p = changedProperties(toGraphTask({ ...TASK, body: `More notes <${JOIN}>` }), toGraphTask(TASK));
    assert.deepEqual(Object.keys(p), ['body']);
    assert.deepEqual(hrefs(p.body!.content!), [JOIN]);
  });

  it('a body cut at the limit reads back as it was written (no trailing blanks left by the cut)', () => {
    const long = `${'word '.repeat(7000)}`;
    const rec = ok(validateEvent({ subject: 's', body: long, start: '2025-03-31T09:00:00', end: '2025-03-31T10:00:00', timeZone: 'Europe/Berlin' }));
    assert.ok(rec.body!.length <= 32_000);
    assert.equal(html(textToHtml(rec.body)), rec.body);
  });
});
