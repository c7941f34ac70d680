import { execFile } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Runs a command to completion in a child process and returns its wall time in ms. */
export function timed(file: string, args: string[], options: { cwd?: string; shell?: boolean } = {}): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd, maxBuffer: 1 << 30, shell: options.shell }, (err, _out, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

export async function time<T>(work: () => Promise<T>): Promise<[number, T]> {
  const started = process.hrtime.bigint();
  const value = await work();
  return [Number(process.hrtime.bigint() - started) / 1e6, value];
}

/** The best of `runs` timings: the least disturbed by the other core's work. */
export async function best(runs: number, work: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, await work());
  return min;
}

let gcFunction: (() => void) | undefined;
export function collectGarbage(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

export interface Row {
  corpus: string;
  measure: string;
  ours: number;
  baseline: number;
  baselineName: string;
  unit: 'ms' | 'MB/s' | 'files/s' | 'B/entry';
  /** A ratio target: ours/baseline ≤ target for times, ≥ target for throughput. */
  target?: string;
}

export function ratio(row: Row): number {
  return row.ours / row.baseline;
}
