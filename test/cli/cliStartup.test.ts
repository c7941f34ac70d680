import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MAIN, runCli } from '../support/mountCli';
import { removeDir, tempDir } from '../support/repoFixtures';

let dir: string;
let hook: string;

before(async () => {
  dir = await tempDir('cli-startup');
  // Preloaded into the CLI: lists every module it loaded, as it exits.
  hook = join(dir, 'listModules.js');
  await writeFile(hook, "process.on('exit', () => process.stderr.write(`loaded: ${JSON.stringify(Object.keys(require.cache))}\\n`));\n");
});
after(async () => {
  await removeDir(dir);
});

async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const result = await runCli(args, { command: [process.execPath, '--require', hook, MAIN, ...args] });
  const line = result.stderr.split('\n').find((l) => l.startsWith('loaded: '));
  assert.ok(line, result.stderr);
  return JSON.parse(line.slice('loaded: '.length)) as string[];
}

test('gitfs-csi --version and mount load neither the CSI server (gRPC), the Kubernetes client nor prom-client; node does', async () => {
  const heavy = (modules: string[]) => modules.filter((m) => /node_modules\/(@grpc\/grpc-js|@kubernetes\/client-node|prom-client)\//.test(m)).map((m) => m.replace(/.*node_modules\/((@[^/]+\/)?[^/]+)\/.*/, '$1'));
  assert.deepEqual(heavy(await modulesLoadedBy(['--version'])), []);
  const mount = await modulesLoadedBy(['mount', '--bogus']);
  assert.ok(mount.some((m) => m.endsWith('mountCommand.js')), 'the mount command was loaded');
  assert.deepEqual(heavy(mount), []);
  const node = new Set(heavy(await modulesLoadedBy(['node', '--bogus'])));
  assert.ok(node.has('@grpc/grpc-js') && node.has('prom-client'), 'the check can fail');
});
