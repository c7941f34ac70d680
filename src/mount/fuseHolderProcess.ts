import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitfsError } from '../errors/errors';
import { FuseHolder } from './fuseHolder';

/** How a node plugin finds the process that keeps its mounts alive. */
export type HolderMode = 'spawn' | 'external' | 'none';

const START_MS = 10_000;
/** A holder this plugin started leaves a minute after its last mount: nothing lingers on a node that stopped serving. */
const SPAWNED_IDLE_EXIT_MS = 60_000;

/**
 * The holder at `socket`: the one already there, or, with 'spawn', one started now as a process
 * of its own session (so that a signal to the plugin's group, or its death, leaves it running).
 * 'external' waits for one that someone else runs (a pod of its own on Kubernetes).
 */
export async function fuseHolderFor(mode: HolderMode, socket: string): Promise<FuseHolder | undefined> {
  if (mode === 'none') return undefined;
  const holder = new FuseHolder(socket);
  if (holder.alive()) return holder;
  if (mode === 'spawn') {
    const logFd = openSync(`${socket}.log`, 'a');
    try {
      const main = join(__dirname, '../cli/main.js');
      const child = spawn(process.execPath, [main, 'fuse-holder', '--socket', socket, '--exit-when-idle-ms', String(SPAWNED_IDLE_EXIT_MS)], {
        detached: true,
        stdio: ['ignore', 'ignore', logFd],
      });
      child.unref();
    } finally {
      closeSync(logFd);
    }
  }
  for (const deadline = Date.now() + START_MS; Date.now() < deadline; await sleep(20)) if (holder.alive()) return holder;
  throw new GitfsError('unavailable', `no FUSE holder answers at ${socket} after ${START_MS / 1000} s${mode === 'spawn' ? ` (see ${socket}.log)` : ''}`);
}
