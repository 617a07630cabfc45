/**
 * HTML built by tagged templates that escape every interpolated value: keys, uploader ids, reasons
 * and LLM answers come from uploaders and models, so nothing reaches a page unescaped unless it is
 * markup this package wrote (raw()). Control characters, bidirectional overrides and line separators
 * are shown as visible escapes first (escapeControl, as on the terminal), so a key cannot reorder
 * what a reviewer reads.
 */
import { escapeControl } from '../output.ts';

const MARKUP = Symbol('markup');

/** Markup that is safe to insert as is (built by html`` or raw()). */
export interface Html {
  readonly [MARKUP]: string;
  toString(): string;
}

function markup(text: string): Html {
  return { [MARKUP]: text, toString: () => text };
}

/** Markup written by this package (never uploader or model text). */
export function raw(text: string): Html {
  return markup(text);
}

/** Text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  // Line breaks are harmless in HTML (and a reason typed on two lines keeps them); the rest is escaped.
  const visible = text.split('\n').map(escapeControl).join('\n');
  return visible.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: unknown): string {
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (typeof value === 'object' && MARKUP in (value as object)) return (value as Html)[MARKUP];
  return escapeHtml(String(value));
}

/** A template whose values are escaped (arrays joined, undefined/null/false left out, Html kept). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1]!;
  });
  return markup(out);
}
