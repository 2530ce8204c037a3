// Runs the built `chunked-upload` executable the way npm links it: dist/cli.js, by its shebang.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const bin = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).bin;

test('package.json bin points at dist/cli.js, which starts with a node shebang and is executable', () => {
  assert.equal(bin['chunked-upload'], './dist/cli.js');
  assert.ok(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n'));
  if (process.platform !== 'win32') accessSync(cli, constants.X_OK);
});

test('chunked-upload --help exits 0; bad arguments exit 2', () => {
  const run = (args) =>
    spawnSync(
      process.platform === 'win32' ? process.execPath : cli,
      process.platform === 'win32' ? [cli, ...args] : args,
      {
        encoding: 'utf8',
      },
    );
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: chunked-upload <file> <url>/);
  const bad = run(['only-one-argument']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /expected <file> and <url>/);
});
