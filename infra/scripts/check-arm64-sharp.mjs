#!/usr/bin/env node
/**
 * Bundling check (NodejsFunction afterBundling hook): the asset directory must hold sharp with its
 * linux-arm64 native parts, built for AArch64 (ELF e_machine 183), whatever machine synthesized it.
 * Usage: node infra/scripts/check-arm64-sharp.mjs <asset directory>
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const EM_AARCH64 = 183;
const dir = process.argv[2];
if (!dir) {
  console.error('usage: check-arm64-sharp.mjs <asset directory>');
  process.exit(2);
}

function nativeFiles(packageDir, pattern) {
  const lib = path.join(dir, 'node_modules', packageDir, 'lib');
  if (!existsSync(lib)) return [];
  return readdirSync(lib).filter((name) => pattern.test(name)).map((name) => path.join(lib, name));
}

function isAarch64Elf(file) {
  const header = readFileSync(file).subarray(0, 20);
  return header.length === 20 && header.readUInt32BE(0) === 0x7f454c46 && header.readUInt16LE(18) === EM_AARCH64;
}

const problems = [];
if (!existsSync(path.join(dir, 'node_modules', 'sharp', 'package.json'))) problems.push('node_modules/sharp is missing');
for (const [pkg, pattern] of [
  ['@img/sharp-linux-arm64', /^sharp-linux-arm64.*\.node$/],
  ['@img/sharp-libvips-linux-arm64', /^libvips-cpp\.so/],
]) {
  const files = nativeFiles(pkg, pattern);
  if (files.length === 0) problems.push(`${pkg}: no ${pattern} in lib/`);
  for (const file of files) if (!isAarch64Elf(file)) problems.push(`${path.relative(dir, file)} is not an AArch64 ELF binary`);
}
if (problems.length) {
  console.error(`sharp is not ready for Lambda arm64 in ${dir}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
