/** Terminal output: aligned tables, CSV, JSON lines, and a progress bar that only draws on a TTY. */
import { UserFacingError } from '../functions/lib/errors.ts';

export type Row = Record<string, string | number | undefined>;

/**
 * An aligned plain-text table; columns in the given order, headers upper-cased. Cells come from
 * uploaders (object keys, uploader ids) and models (reasons): control characters are shown escaped
 * (escapeControl), so a key cannot move the cursor, recolour, retitle or hide rows of the auditor's
 * terminal; widths are those of the escaped text.
 */
export function renderTable(rows: Row[], columns: string[]): string {
  const cells = rows.map((row) => columns.map((column) => escapeControl(stringify(row[column]))));
  const headers = columns.map((c) => escapeControl(c.toUpperCase()));
  const widths = headers.map((header, i) => Math.max(displayWidth(header), ...cells.map((line) => displayWidth(line[i]!))));
  const line = (values: string[]) =>
    values
      .map((value, i) => (i === values.length - 1 ? value : value + ' '.repeat(widths[i]! - displayWidth(value))))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/**
 * RFC 4180 CSV that is safe to open in a spreadsheet (OWASP, CSV injection): a text cell starting
 * with =, +, -, @, tab or carriage return would be read as a formula by Excel, LibreOffice or Google
 * Sheets, so it gets a leading single quote (shown as text, the rest unchanged). Numbers are left as
 * they are (-3 is a number, not a formula).
 */
export function renderCsv(rows: Row[], columns: string[]): string {
  const escape = (value: string) => (/[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
  const cell = (value: string | number | undefined) => escape(typeof value === 'string' ? neutraliseFormula(value) : stringify(value));
  return [columns.map((c) => escape(neutraliseFormula(c))).join(','), ...rows.map((row) => columns.map((c) => cell(row[c])).join(','))].join('\n');
}

/** A text cell a spreadsheet would take for a formula, prefixed with ' (OWASP CSV injection advice). */
export function neutraliseFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/**
 * Control characters shown as visible escapes (ESC as \u001b): C0 and C1 controls and DEL (ANSI/OSC
 * sequences, bells, carriage returns, newlines), and the Unicode line separators and bidirectional
 * overrides that reorder what an auditor reads. Text without them is unchanged.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A multi-line report for the terminal: each line's control characters escaped, the line breaks kept. */
export function escapeLines(text: string): string {
  return text.split('\n').map(escapeControl).join('\n');
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function stringify(value: string | number | undefined): string {
  return value === undefined ? '' : String(value);
}

function displayWidth(text: string): number {
  return [...text].length;
}

export interface Progress {
  tick(label?: string): void;
  done(): void;
}

/** A one-line progress bar on stderr when it is a TTY; silent otherwise (pipes, CI, --json). */
export function progressBar(total: number, title: string, enabled = Boolean(process.stderr.isTTY)): Progress {
  let count = 0;
  const started = Date.now();
  const draw = (label = '') => {
    if (!enabled) return;
    const width = 28;
    const filled = total ? Math.round((count / total) * width) : width;
    const rate = count / Math.max(0.001, (Date.now() - started) / 1000);
    const text = `${escapeControl(title)} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${count}/${total} ${rate.toFixed(1)}/s ${escapeControl(label)}`;
    process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
  };
  draw();
  return {
    tick(label) {
      count += 1;
      draw(label);
    },
    done() {
      if (enabled) process.stderr.write('\r\x1b[2K');
    },
  };
}

/** A usage or start-up error: printed on one line without a stack trace, exit code 1. */
export class UsageError extends UserFacingError {
  override name = 'UsageError';
}
