/**
 * The docs stay navigable: every relative link in README.md and docs/*.md points to a file that
 * exists and, when it has a #anchor, to a heading (GitHub's slug) or an explicit <a id>/<a name> in
 * that file. The README stays a short front door (at most 250 lines), and docs/architecture.md keeps
 * the stable anchors #invariant-1 … #invariant-8 that code comments cite.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DOCS = join(ROOT, 'docs');
const README_MAX_LINES = 250;

const markdownFiles = (): string[] => [
  join(ROOT, 'README.md'),
  ...readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join(DOCS, name)),
];

/** The lines outside fenced code blocks (``` or ~~~), with inline code spans blanked out. */
function proseLines(text: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      lines.push('');
      continue;
    }
    if (marker) {
      fence = marker;
      lines.push('');
      continue;
    }
    lines.push(line.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length)));
  }
  return lines;
}

/** GitHub's heading slug (github-slugger): the rendered text, lower-cased, punctuation dropped, each space a hyphen. */
function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/`([^`]*)`/g, '$1') // code spans: their content
    .replace(/(\*\*|__|\*|~~)(.+?)\1/g, '$2') // emphasis markers
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** Every anchor a markdown file defines: heading slugs (with GitHub's -1, -2 for repeats) and explicit ids. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const raw = text.split(/\r?\n/);
  let fence: string | undefined;
  for (const line of raw) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (marker) {
      fence = marker;
      continue;
    }
    const heading = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+\s*)?$/.exec(line);
    if (heading) {
      const base = githubSlug(heading[1]!);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<a\s+[^>]*?(?:id|name)\s*=\s*["']([^"']+)["']/gi)) anchors.add(match[1]!);
  }
  return anchors;
}

interface Link {
  line: number;
  target: string;
}

/** Inline links and images `[text](target "title")` and reference definitions `[label]: target`. */
function linksOf(text: string): Link[] {
  const links: Link[] = [];
  proseLines(text).forEach((line, index) => {
    for (const match of line.matchAll(/!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+["'(][^)]*)?\)/g)) {
      links.push({ line: index + 1, target: match[1]!.replace(/^<|>$/g, '') });
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (definition) links.push({ line: index + 1, target: definition[1]!.replace(/^<|>$/g, '') });
  });
  return links;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');

function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  const where = (link: Link) => `${relative(ROOT, file)}:${link.line}: ${link.target}`;
  for (const link of linksOf(readFileSync(file, 'utf8'))) {
    if (isExternal(link.target)) continue;
    const hashAt = link.target.indexOf('#');
    const pathPart = hashAt === -1 ? link.target : link.target.slice(0, hashAt);
    const anchor = hashAt === -1 ? undefined : decodeURIComponent(link.target.slice(hashAt + 1));
    const targetFile = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
    if (!existsSync(targetFile)) {
      problems.push(`${where(link)} (no such file: ${relative(ROOT, targetFile)})`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!targetFile.endsWith('.md') || statSync(targetFile).isDirectory()) {
      problems.push(`${where(link)} (an anchor into a file that is not markdown)`);
      continue;
    }
    if (!anchorsOf(readFileSync(targetFile, 'utf8')).has(anchor)) {
      problems.push(`${where(link)} (no heading or anchor "#${anchor}" in ${relative(ROOT, targetFile)})`);
    }
  }
  return problems;
}

describe('the docs', () => {
  it('compute GitHub heading slugs', () => {
    expect(githubSlug('The local endpoints listen on 127.0.0.1 only')).toBe('the-local-endpoints-listen-on-127001-only');
    expect(githubSlug('The mapping (nsfwjs → model 7)')).toBe('the-mapping-nsfwjs--model-7');
    expect(githubSlug('Who may do what (IAM)')).toBe('who-may-do-what-iam');
    expect(githubSlug("One image's history")).toBe('one-images-history');
    expect(githubSlug('Invariant 1: every uploaded object ends in exactly one terminal state')).toBe(
      'invariant-1-every-uploaded-object-ends-in-exactly-one-terminal-state',
    );
    expect(githubSlug('`functions/store/` and the **store**')).toBe('functionsstore-and-the-store');
  });

  it('find links outside code and every kind of anchor', () => {
    const text = ['# A', '## A', '<a id="x-1"></a>', 'see [b](b.md#c) and `[no](code.md)`', '```', '[no](fenced.md)', '```', '[r]: r.md'].join('\n');
    expect(linksOf(text).map((link) => link.target)).toEqual(['b.md#c', 'r.md']);
    expect([...anchorsOf(text)]).toEqual(['a', 'a-1', 'x-1']);
  });

  it('have no relative link to a missing file or anchor', () => {
    const files = markdownFiles();
    expect(files.length).toBeGreaterThan(1);
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it(`keep the README at most ${README_MAX_LINES} lines, with the quick start`, () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const lines = readme.split('\n').length - (readme.endsWith('\n') ? 1 : 0);
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
  });

  it('have the pages the README promises, and the numbered invariants code comments cite', () => {
    for (const page of ['architecture', 'deploying', 'auditing', 'operating', 'local-runtime', 'reliability', 'security', 'performance', 'development']) {
      expect(existsSync(join(DOCS, `${page}.md`)), `docs/${page}.md`).toBe(true);
    }
    const architecture = readFileSync(join(DOCS, 'architecture.md'), 'utf8');
    const anchors = anchorsOf(architecture);
    for (let n = 1; n <= 8; n++) expect(anchors.has(`invariant-${n}`), `#invariant-${n}`).toBe(true);
    expect(architecture).toContain('functions/store/');
  });
});
