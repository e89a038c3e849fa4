/**
 * Event and task bodies: Outlook keeps them as HTML, the CRM as plain text. cxsync syncs the text and leaves the
 * HTML alone unless the text changed; this module is the conversion both ways.
 *
 * The text form keeps link targets: `<a href="U">T</a>` reads as `T <U>`, and as `U` alone when the link text is
 * its own target (a bare URL, or an address behind `mailto:`). Writing text back, `T <U>` and bare URLs become
 * anchors again, so a Teams join link ("Click here to join the meeting <https://teams.microsoft.com/l/…>") is
 * still a link after a CRM edit of the description.
 *
 * The round trip text → HTML → (Outlook) → text is exact for every normalised text (`test/unit/body.test.ts`,
 * property tests): otherwise a body cxsync wrote would read back as an Outlook edit. Lines map to `<div>`s,
 * blank lines to `<div><br></div>` (what Outlook on the web writes), and the spaces HTML would collapse (runs,
 * leading spaces) to `&nbsp;`; reading HTML, the non-breaking space is a space. Pure: no I/O.
 */

// ---- text -------------------------------------------------------------------------------------------

/**
 * Newlines as \n, non-breaking spaces as spaces, no trailing blanks on lines or at the end, at most one blank line
 * in a row: the form both sides' bodies are compared in. A non-breaking space is a plain space because HTML
 * gives no way to tell one written as `&nbsp;` from one Outlook inserted to keep spacing.
 */
export function normalizeText(s: string | null | undefined): string | undefined {
  if (typeof s !== 'string') return undefined;
  const t = s.replace(/\r\n?/g, '\n').replace(/\u00a0/g, ' ').replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
  return t === '' ? undefined : t;
}

// ---- HTML → text ------------------------------------------------------------------------------------

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', reg: '®', trade: '™', hellip: '…',
  mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”', bdquo: '„', bull: '•',
  middot: '·', euro: '€', pound: '£', yen: '¥', cent: '¢', sect: '§', para: '¶', deg: '°', plusmn: '±', times: '×',
  divide: '÷', laquo: '«', raquo: '»', iexcl: '¡', iquest: '¿', shy: '\u00ad', zwnj: '\u200c', zwj: '\u200d',
  ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009', auml: 'ä', ouml: 'ö', uuml: 'ü', Auml: 'Ä', Ouml: 'Ö', Uuml: 'Ü',
  szlig: 'ß', eacute: 'é', egrave: 'è', agrave: 'à', aacute: 'á', ccedil: 'ç', ntilde: 'ñ', oacute: 'ó', iacute: 'í',
  uacute: 'ú', ecirc: 'ê', acirc: 'â', ocirc: 'ô', rarr: '→', larr: '←', check: '✓',
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#[xX][0-9a-fA-F]+|#\d+|[a-zA-Z][a-zA-Z0-9]*);/g, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[e] ?? ENTITIES[e.toLowerCase()] ?? m;
  });
}

// Elements that start and end a line of their own.
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'caption', 'center', 'dd', 'details', 'dialog', 'dir', 'div',
  'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header',
  'hr', 'html', 'legend', 'li', 'main', 'menu', 'nav', 'ol', 'p', 'pre', 'section', 'summary', 'table', 'tbody',
  'tfoot', 'thead', 'tr', 'ul',
]);
// HTML's own whitespace (not \s: a no-break space or U+2028 is text, not layout).
const HTML_SPACE = /[\t\n\f\r ]+/;
const TAG = /<!--[\s\S]*?(?:-->|$)|<![^>]*>|<\?[^>]*>|<(\/?)([a-zA-Z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;

function hrefOf(attrs: string): string | undefined {
  const m = /(?:^|[\s"'/])href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i.exec(attrs);
  if (!m) return undefined;
  const href = decodeEntities(m[1] ?? m[2] ?? m[3] ?? '').trim();
  // Links within the body itself, and scripts, are not targets anyone could follow from the CRM.
  if (href === '' || href.startsWith('#') || /^javascript:/i.test(href)) return undefined;
  return href;
}

/**
 * True when link text `t` already says where its link goes: the target itself (give or take a trailing slash),
 * the address behind a `mailto:`, or the host and path behind an `http(s)://` the text leaves out.
 */
export function sameTarget(text: string, href: string): boolean {
  const t = text.replace(/\/+$/, '');
  const u = href.replace(/\/+$/, '');
  if (t === '' || u === t) return u === t;
  if (u.toLowerCase() === `mailto:${t}`.toLowerCase()) return true;
  return !/^[a-z][a-z0-9+.-]*:/i.test(t) && (u === `http://${t}` || u === `https://${t}`);
}

/**
 * The text of an HTML body, link targets kept (`T <U>`). Blocks and `<br>` make lines, runs of HTML whitespace
 * collapse as a browser collapses them, table cells are separated by a tab. Not normalised: see `bodyText`.
 */
export function htmlToText(html: string): string {
  const src = html.replace(/<(script|style|head|title|xml)\b[\s\S]*?<\/\1\s*>/gi, '');
  let out = '';
  let line = '';
  let pending = false; // collapsed whitespace not yet written: only between two pieces of text on a line
  let pre = 0;
  const links: Array<{ start: number; href?: string }> = [];

  const write = (t: string) => {
    if (t === '') return;
    if (pending && line !== '') line += ' ';
    pending = false;
    line += t;
  };
  const newline = () => {
    out += `${line}\n`;
    line = '';
    pending = false;
  };
  const block = () => {
    if (line !== '') newline();
    pending = false;
  };
  const textChunk = (raw: string) => {
    if (pre > 0) {
      raw.replace(/\r\n?/g, '\n').split('\n').forEach((seg, i) => {
        if (i > 0) newline();
        write(decodeEntities(seg).replace(/\u00a0/g, ' '));
      });
      return;
    }
    raw.split(HTML_SPACE).forEach((part, i) => {
      if (i > 0 && line !== '') pending = true;
      write(decodeEntities(part).replace(/\u00a0/g, ' '));
    });
  };
  const closeLink = () => {
    const l = links.pop();
    if (!l?.href) return;
    const inner = (out + line).slice(l.start).replace(/\s+/g, ' ').trim();
    if (sameTarget(inner, l.href)) return;
    if (inner === '' || line === '') return write(`<${l.href}>`);
    // The target goes right after the text; whitespace that followed the text stays after it.
    const after = pending;
    line += ` <${l.href}>`;
    pending = after;
  };

  let at = 0;
  for (const m of src.matchAll(TAG)) {
    textChunk(src.slice(at, m.index));
    at = m.index + m[0].length;
    const name = m[2]?.toLowerCase();
    if (!name) continue; // comment, doctype, processing instruction
    const closing = m[1] === '/';
    if (name === 'br') newline();
    else if (name === 'a') {
      if (!closing) links.push({ start: (out + line).length + (pending && line !== '' ? 1 : 0), href: links.length ? undefined : hrefOf(m[3]) });
      else if (links.length) closeLink();
    } else if (name === 'td' || name === 'th') {
      if (!closing && line !== '') {
        line += '\t';
        pending = false;
      }
    } else if (BLOCK.has(name)) {
      block();
      if (name === 'pre') pre = Math.max(0, pre + (closing ? -1 : 1));
    }
  }
  textChunk(src.slice(at));
  while (links.length) closeLink();
  return out + line;
}

/** A Graph item body as the normalised text cxsync syncs (HTML converted, links kept). */
export function bodyText(body: { content?: string | null; contentType?: string | null } | null | undefined): string | undefined {
  if (!body?.content) return undefined;
  return normalizeText(String(body.contentType).toLowerCase() === 'html' ? htmlToText(body.content) : body.content);
}

// ---- text → HTML ------------------------------------------------------------------------------------

const SCHEME = String.raw`(?:[a-zA-Z][a-zA-Z0-9+.-]*:\/\/|(?:mailto|tel|sips?|callto|msteams):)`;
// `<U>` with a target, or a bare URL not glued to a word before it.
const LINK = new RegExp(String.raw`<(${SCHEME}[^\s<>]+)>|(?<![A-Za-z0-9])(${SCHEME}[^\s<>"]+)`, 'g');
// What ends the link text of a `T <U>`: a separator, or a sentence's punctuation followed by a space.
const TEXT_START = /(?:[|•·()[\]{}]|[.,:;!?](?=\s))\s*/g;

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * One piece of a line as HTML text: escaped, and with the whitespace HTML would collapse written so that it is
 * kept (`&nbsp;` for a space at the start of the line or after another space; tabs and form feeds as numbers).
 * `prev` is the character before the piece on the line ('' at its start).
 */
function plain(s: string, prev: string): string {
  let o = '';
  let before = prev;
  for (const c of s) {
    if (c === ' ') o += before === '' || before === ' ' ? '&nbsp;' : ' ';
    else if (c === '\t') o += '&#9;';
    else if (c === '\f') o += '&#12;';
    else o += escapeHtml(c);
    before = c;
  }
  return o;
}

/** A bare URL without the punctuation that ends the sentence around it (a `)` only when it closes nothing). */
function trimUrl(u: string): string {
  let url = u;
  for (;;) {
    const last = url[url.length - 1];
    if (/[.,;:!?'"]/.test(last)) url = url.slice(0, -1);
    else if (last === ')' && (url.match(/\(/g)?.length ?? 0) < (url.match(/\)/g)?.length ?? 0)) url = url.slice(0, -1);
    else if (last === ']' && (url.match(/\[/g)?.length ?? 0) < (url.match(/\]/g)?.length ?? 0)) url = url.slice(0, -1);
    else return url;
  }
}

function anchor(href: string, textHtml: string): string {
  return `<a href="${escapeHtml(href)}">${textHtml}</a>`;
}

function lineToHtml(line: string): string {
  let o = '';
  let last = 0;
  for (const m of line.matchAll(LINK)) {
    const at = m.index;
    if (at < last) continue;
    if (m[1] !== undefined) {
      const target = m[1];
      const seg = line.slice(last, at);
      // `T <U>`: the link text ends right before the one space; it starts after the last separator.
      if (/\S $/.test(seg)) {
        const head = seg.slice(0, -1);
        let from = 0;
        for (const d of head.matchAll(TEXT_START)) from = d.index + d[0].length;
        while (from < head.length && /\s/.test(head[from])) from++;
        const text = head.slice(from);
        if (text !== '' && !sameTarget(text.replace(/\s+/g, ' '), target)) {
          o += plain(head.slice(0, from), line[last - 1] ?? '');
          o += anchor(target, plain(text, line[last + from - 1] ?? ''));
          last = at + m[0].length;
          continue;
        }
      }
      // No link text: the brackets stay text around a link that shows its own target.
      o += plain(seg, line[last - 1] ?? '');
      o += `&lt;${anchor(target, escapeHtml(target))}&gt;`;
      last = at + m[0].length;
      continue;
    }
    const url = trimUrl(m[2]);
    if (!/[^:/]$/.test(url) || !new RegExp(`^${SCHEME}.`).test(url)) continue;
    o += plain(line.slice(last, at), line[last - 1] ?? '');
    o += anchor(url, plain(url, line[at - 1] ?? ''));
    last = at + url.length;
  }
  o += plain(line.slice(last), line[last - 1] ?? '');
  return o;
}

/**
 * The HTML body for a text (normalised first), as cxsync writes it to Outlook: one `<div>` per line, links as
 * anchors. Empty text gives ''.
 */
export function textToHtml(text: string | null | undefined): string {
  const t = normalizeText(text);
  if (t === undefined) return '';
  const lines = t.split('\n').map((l) => (l === '' ? '<div><br></div>' : `<div>${lineToHtml(l)}</div>`));
  return `<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n${lines.join('\r\n')}\r\n</body>\r\n</html>\r\n`;
}

/** The Graph body cxsync writes for a synced text. */
export function graphBody(text: string | null | undefined): { contentType: 'html'; content: string } {
  return { contentType: 'html', content: textToHtml(text) };
}
