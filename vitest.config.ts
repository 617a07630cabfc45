import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Threads break esbuild bundling inside CDK tests and the tfjs WASM backend; forks do not.
    pool: 'forks',
    // Most files wait on child processes, sockets and emulators rather than compute: two forks on two
    // cores run the suite in ~350 s instead of ~500 s (vitest's default is one fork per core less one).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    setupFiles: ['test/setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
