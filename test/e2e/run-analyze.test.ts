/**
 * Issue 13's "done when", as a user types it: `moderation run DIR --analyze labels,faces,text --json`
 * on real photographs records the analyses (the offline models behind the local Rekognition), and
 * `moderation audit --label Person` finds the photo with a person through the label index.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moderation, ROOT } from './cli.ts';

const work = mkdtempSync(join(tmpdir(), 'moderation-e2e-analyze-'));
const home = join(work, '.moderation');
const photos = join(work, 'photos');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('moderation run --analyze, then audit --label', () => {
  it('records labels, faces and text for each photo, and the label index finds the person', async () => {
    mkdirSync(photos);
    for (const name of ['astronaut.jpg', 'grass.jpg']) copyFileSync(join(ROOT, 'test/fixtures/photos', name), join(photos, name));

    const run = await moderation(['run', photos, '--analyze', 'labels,faces,text', '--json', '--home', home]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
    const byFile = Object.fromEntries(lines.slice(0, -1).map((l) => [String(l.key).split('/').pop(), l]));

    const astronaut = byFile['astronaut.jpg']!;
    expect(astronaut.status).toBe('APPROVED');
    expect(astronaut.analysis.labels.map((l: { name: string }) => l.name)).toContain('Person');
    expect(astronaut.analysis.faces).toHaveLength(1);
    expect(astronaut.analysis.faces[0].ageRange.low).toBeGreaterThanOrEqual(18);
    expect(astronaut.analysis.missing).toBeUndefined();
    // A lawn: no face, nobody; the analyses ran all the same (empty, not missing).
    const grass = byFile['grass.jpg']!;
    expect(grass.analysis.faces ?? []).toEqual([]);
    expect((grass.analysis.labels ?? []).map((l: { name: string }) => l.name)).not.toContain('Person');
    expect(grass.analysis.missing).toBeUndefined();

    const audit = await moderation(['audit', '--label', 'Person', '--format', 'json', '--home', home]);
    expect(audit.code, audit.stderr).toBe(0);
    const found = JSON.parse(audit.stdout) as { items: { key: string }[] };
    expect(found.items.map((item) => item.key)).toEqual([astronaut.key]);
  });
});
