import { spawn } from 'node:child_process';
import { TreeIndex } from '../src/tree/treeIndex';
import { buildTreeIndex } from '../src/tree/treeIndexBuilder';

/**
 * Run in a child process of its own (node --expose-gc): the resident memory a commit's
 * TreeIndex adds to a node process, per entry. Measured as a slope — memory after holding
 * 20 indexes minus after 10, over 10 indexes' entries — so V8's one-time growth (semi-spaces
 * of up to 16 MB, code, pages) does not pass for per-entry cost. Prints JSON.
 */
async function main(): Promise<void> {
  const [gitDir, commit] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc!;
  const settle = async () => {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
  };
  const indexes: TreeIndex[] = [];
  const hold = async (copies: number) => {
    for (let i = 0; i < copies; i++) {
      const child = spawn('git', ['--git-dir', gitDir, 'ls-tree', '-r', '-t', '-z', commit], { stdio: ['ignore', 'pipe', 'inherit'] });
      indexes.push(await buildTreeIndex(child.stdout, commit));
    }
    await settle();
    return process.memoryUsage();
  };
  const before = await hold(10);
  const after = await hold(10);
  const entries = indexes[0].count * 10;
  process.stdout.write(
    `${JSON.stringify({
      entries: indexes[0].count,
      rssPerEntry: (after.rss - before.rss) / entries,
      heapPerEntry: (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / entries,
    })}\n`,
  );
}

void main();
