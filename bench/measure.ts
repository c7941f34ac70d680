import { execFile } from 'node:child_process';

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

/** Runs a command and returns its standard output. */
export function output(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 1 << 26 }, (err, stdout, stderr) => (err ? reject(new Error(`${file}: ${stderr || err.message}`)) : resolve(stdout)));
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

/**
 * Medians of `runs` timings of two jobs taken in turn: for work whose cost depends on the host's
 * writeback of what ran before it, where a best-of-n of one job after the other picks a lucky run.
 */
export async function interleavedMedians(runs: number, first: () => Promise<number>, second: () => Promise<number>): Promise<[number, number]> {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(await first());
    b.push(await second());
  }
  const median = (values: number[]) => values.sort((x, y) => x - y)[values.length >> 1];
  return [median(a), median(b)];
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
