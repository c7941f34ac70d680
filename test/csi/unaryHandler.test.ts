import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { loadCsiServices, loadProto } from '../../src/csi/csiProto';
import { unary } from '../../src/csi/unaryHandler';
import { UnixSocketServer } from '../../src/csi/unixSocketServer';
import { createLogger } from '../../src/log/logger';
import { removeDir, tempDir } from '../support/repoFixtures';
import { outcome } from '../support/csiPlugin';

let dir: string;
let server: UnixSocketServer;
let client: grpc.Client;
let logs = '';
const finished: string[] = [];

/** A NodeGetVolumeStats that takes 600 ms, served over a real unix socket; slow calls are reported after 150 ms. */
before(async () => {
  dir = await tempDir('unary');
  const sink = new Writable({ write: (chunk, _enc, done) => ((logs += chunk.toString()), done()) });
  const log = createLogger({ level: 'debug', destination: sink as unknown as pino.DestinationStream });
  const slow = unary('NodeGetVolumeStats', log, async (request: { volume_id: string }) => {
    await new Promise((resolve) => setTimeout(resolve, 600));
    finished.push(request.volume_id);
    return {};
  }, { slowCallMs: 150 });
  server = await UnixSocketServer.start(join(dir, 'csi.sock'), [[loadCsiServices().Node, { NodeGetVolumeStats: slow }]]);
  const csi = loadProto<{ csi: { v1: { Node: grpc.ServiceClientConstructor } } }>('csi.proto');
  client = new csi.csi.v1.Node(`unix://${join(dir, 'csi.sock')}`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  await server.stop();
  await removeDir(dir);
});

function stats(volumeId: string, timeoutMs: number): Promise<unknown> {
  const call = (client as unknown as Record<string, (req: object, options: grpc.CallOptions, cb: (err: unknown) => void) => void>).NodeGetVolumeStats;
  return new Promise((resolve, reject) =>
    call.call(client, { volume_id: volumeId, volume_path: '/var/lib/kubelet/pods/p/volumes/v' }, { deadline: Date.now() + timeoutMs }, (err) => (err ? reject(err) : resolve(undefined))),
  );
}

const lines = () => logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

test('a call that runs long is logged while it runs, with what it is about', async () => {
  await stats('vol-slow', 5_000);
  const running = lines().filter((l) => l.msg === 'call still running' && l.volumeId === 'vol-slow');
  assert.ok(running.length >= 2, `reported again while still running: ${logs}`);
  assert.equal(running[0].method, 'NodeGetVolumeStats');
  assert.equal(running[0].target, '/var/lib/kubelet/pods/p/volumes/v');
  const answered = lines().filter((l) => l.msg === 'call answered' && l.volumeId === 'vol-slow');
  assert.equal(answered.length, 1);
  // Once answered, the reports stop.
  const reports = running.length;
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(lines().filter((l) => l.msg === 'call still running' && l.volumeId === 'vol-slow').length, reports);
});

test('a caller that gives up is logged, and the work behind the call still finishes', async () => {
  assert.equal((await outcome(stats('vol-cancelled', 200))).code, 'DEADLINE_EXCEEDED');
  for (const deadline = Date.now() + 5_000; !finished.includes('vol-cancelled') && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(finished.includes('vol-cancelled'), 'the handler ran to the end');
  assert.ok(lines().some((l) => l.msg === 'the caller gave up on the call; its work goes on' && l.volumeId === 'vol-cancelled'), logs);
});
