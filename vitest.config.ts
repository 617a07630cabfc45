import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Threads break esbuild bundling inside CDK tests and the tfjs WASM backend; forks do not.
    pool: 'forks',
    setupFiles: ['test/setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
