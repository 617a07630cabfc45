/**
 * The bench scripts' command lines. `--help` prints the script's own header comment (what it measures,
 * its usage and flags: one text, kept beside the code it describes); an unknown or malformed flag is
 * one line and the usage on standard error, exit code 2, not a stack trace.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The text of the first doc comment in a script, without its `*` margins. */
export function headerHelp(source: string): string {
  const block = /\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
}

/** The line(s) of a help text from "Usage:" to the next blank line. */
export function usageOf(help: string): string {
  const start = help.search(/^Usage:/m);
  if (start < 0) return '';
  return help.slice(start).split(/\n\s*\n/)[0]!.trim();
}

/** Exits with a usage error: the message, then the usage. */
export function usageError(scriptUrl: string, message: string): never {
  process.stderr.write(`${message}\n${usageOf(headerHelp(readFileSync(fileURLToPath(scriptUrl), 'utf8')))}\n`);
  process.exit(2);
}

/**
 * Parses the script's flags (`import.meta.url` names the script, whose header comment is its help).
 * Returns the values as node:util's parseArgs types them.
 */
export function benchArgs<T extends Options>(scriptUrl: string, options: T) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${headerHelp(readFileSync(fileURLToPath(scriptUrl), 'utf8'))}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return usageError(scriptUrl, (err as Error).message);
  }
}
