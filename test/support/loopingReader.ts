import { ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './nodeHarness';

/**
 * A reader in a process of its own: reads file after file of the volume (each one new to the
 * kernel, so every read reaches the FUSE server), compares it with the expected copy, and every
 * 200 files drops the kernel's caches so that lookups and reads keep coming. It reports every
 * error and the longest time one file took.
 */
const READER = `
const fs = require('node:fs');
const [volume, expected, listFile, stopFile] = process.argv.slice(1);
const files = fs.readFileSync(listFile, 'utf8').split('\\n').filter(Boolean);
let errors = 0, reads = 0, longest = 0, i = 0;
const samples = [];
while (!fs.existsSync(stopFile)) {
  const file = files[i++ % files.length];
  if (i % 200 === 0) fs.writeFileSync('/proc/sys/vm/drop_caches', '2');
  const started = Date.now();
  try {
    if (!fs.readFileSync(volume + '/' + file).equals(fs.readFileSync(expected + '/' + file))) { errors++; samples.push('differs: ' + file); }
  } catch (err) { errors++; samples.push(err.code + ': ' + file); }
  longest = Math.max(longest, Date.now() - started);
  reads++;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
}
process.stdout.write(JSON.stringify({ errors, reads, longest, samples: samples.slice(0, 5) }));
`;

export interface ReaderResult {
  errors: number;
  reads: number;
  /** The longest single read, in ms. */
  longest: number;
  samples: string[];
}

/** What a reader compares against: `git archive` of the commit under `dir`/archive, and its files' list. */
export async function readerExpectations(dir: string, bareDir: string, commit: string): Promise<{ expected: string; listFile: string }> {
  const expected = join(dir, 'archive');
  await mkdir(expected, { recursive: true });
  await run('sh', ['-c', `git --git-dir '${bareDir}' archive ${commit} | tar -x -C '${expected}'`]);
  const listFile = join(dir, 'files.txt');
  await writeFile(listFile, (await run('sh', ['-c', `cd '${expected}' && find . -type f | sort`])).stdout);
  return { expected, listFile };
}

/** A running reader of `volume` (files listed in `listFile`, relative, equal to those under `expected`). */
export class LoopingReader {
  private output = '';
  private readonly closed: Promise<unknown>;

  private constructor(private readonly child: ChildProcess, private readonly stopFile: string) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.closed = new Promise((resolve) => child.on('close', resolve));
  }

  static start(volume: string, expected: string, listFile: string, stopFile: string): LoopingReader {
    const child = spawn(process.execPath, ['-e', READER, volume, expected, listFile, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    return new LoopingReader(child, stopFile);
  }

  /** Asks the reader to stop and returns what it saw; a read that never returns (a lost request) fails after `timeoutMs`. */
  async finish(timeoutMs = 30_000): Promise<ReaderResult> {
    await writeFile(this.stopFile, '');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the reader is stuck: a request was lost')), timeoutMs)));
    try {
      await Promise.race([this.closed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    return JSON.parse(this.output) as ReaderResult;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
