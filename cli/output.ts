/** Terminal output: aligned tables, CSV, JSON lines, and a progress bar that only draws on a TTY. */

export type Row = Record<string, string | number | undefined>;

/** An aligned plain-text table; columns in the given order, headers upper-cased. */
export function renderTable(rows: Row[], columns: string[]): string {
  const cells = rows.map((row) => columns.map((column) => stringify(row[column])));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => displayWidth(line[i]!))));
  const line = (values: string[]) =>
    values
      .map((value, i) => (i === values.length - 1 ? value : value + ' '.repeat(widths[i]! - displayWidth(value))))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/** RFC 4180 CSV. */
export function renderCsv(rows: Row[], columns: string[]): string {
  const escape = (value: string) => (/[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
  return [columns.join(','), ...rows.map((row) => columns.map((c) => escape(stringify(row[c]))).join(','))].join('\n');
}

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
    const text = `${title} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${count}/${total} ${rate.toFixed(1)}/s ${label}`;
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

/** A usage or start-up error: printed without a stack trace, exit code 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}
