import { spawn } from 'node:child_process';
import { buildTreeIndex } from '../src/tree/treeIndexBuilder';

/**
 * Run in a child process of its own (node --expose-gc): the resident memory a commit's
 * TreeIndex adds to a node process, per entry. Ten indexes are held at once so V8's fixed
 * heap growth (semi-spaces, pages) does not pass for per-entry cost. Prints JSON.
 */
async function main(): Promise<void> {
  const [gitDir, commit] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc!;
  const settle = async () => {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
  };
  await settle();
  const before = process.memoryUsage();
  const copies = 10;
  const indexes = [];
  for (let i = 0; i < copies; i++) {
    const child = spawn('git', ['--git-dir', gitDir, 'ls-tree', '-r', '-t', '-z', commit], { stdio: ['ignore', 'pipe', 'inherit'] });
    indexes.push(await buildTreeIndex(child.stdout, commit));
  }
  await settle();
  const after = process.memoryUsage();
  const entries = indexes[0].count * copies;
  process.stdout.write(
    `${JSON.stringify({
      entries: indexes[0].count,
      rssPerEntry: (after.rss - before.rss) / entries,
      heapPerEntry: (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / entries,
    })}\n`,
  );
}

void main();
