import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../config/byteSize';
import { NodeStatus } from '../status/nodeStatus';
import { askStatus, STATUS_SOCKET } from '../status/statusSocket';

export const STATUS_USAGE = `usage: gitfs-csi status [options]

Asks the node plugin running on this machine what it holds: its tree mounts, volumes, cache and
repository stores (over a socket in its state directory; it reads no mount). Run it on the node, or
with kubectl exec in the node plugin's container.

options:
  --state-dir <dir>   the node plugin's --state-dir (default /var/lib/gitfs-csi)
  --json              the whole answer as JSON, for scripts`;

const ASK_TIMEOUT_MS = 10_000;

/** `gitfs-csi status`: prints what the node plugin holds; returns the exit code. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${STATUS_USAGE}\n`);
    return 0;
  }
  const status = await askStatus(join(values['state-dir'] ?? '/var/lib/gitfs-csi', STATUS_SOCKET), ASK_TIMEOUT_MS);
  process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

/** The status as tables a person reads. */
export function formatStatus(status: NodeStatus): string {
  const lines = [`gitfs-csi ${status.version}, up ${duration(status.uptimeSeconds)}`, ''];
  lines.push(`TREE MOUNTS (${status.trees.length})`);
  lines.push(...table(['REPOSITORY', 'COMMIT', 'STATE', 'ENTRIES', 'VOLUMES', 'CACHED', 'AGE'], status.trees.map((tree) => [
    tree.repository,
    tree.commit.slice(0, 12),
    (tree.failure ? `failed: ${tree.failure}` : tree.phase) + (tree.mounted ? '' : ' (not mounted)'),
    tree.entries === undefined ? '-' : tree.entries.toLocaleString('en-US'),
    String(tree.volumes),
    tree.totalBytes === undefined ? '-' : `${formatBytes(tree.cachedBytes!)} of ${formatBytes(tree.totalBytes)}`,
    duration(tree.ageSeconds),
  ])));
  lines.push('', `VOLUMES (${status.volumes.length})`);
  lines.push(...table(['TARGET', 'POD', 'MODE', 'REPOSITORY', 'REF', 'COMMIT', 'STATE'], status.volumes.map((volume) => [
    volume.target,
    volume.pod ?? '-',
    volume.mode,
    volume.repository,
    volume.ref,
    volume.commit.slice(0, 12),
    volume.reason ? `${volume.state}: ${volume.reason}` : volume.state,
  ])));
  const { cache } = status;
  const reads = cache.readHits + cache.readMisses;
  lines.push('', `CACHE  ${formatBytes(cache.bytes)} of ${formatBytes(cache.budgetBytes)}, ${cache.blobs.toLocaleString('en-US')} blobs, file reads answered from it: ${
    reads === 0 ? 'none yet' : `${((100 * cache.readHits) / reads).toFixed(1)}% (${cache.readHits.toLocaleString('en-US')} of ${reads.toLocaleString('en-US')})`}`);
  lines.push('', `REPOSITORY STORES (${status.stores.length})`);
  lines.push(...table(['STORE', 'SIZE'], status.stores.map((store) => [store.name, formatBytes(store.bytes)])));
  return `${lines.join('\n')}\n`;
}

/** Left-aligned columns, two spaces apart; "(none)" for no rows. */
function table(header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['(none)'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  return [header, ...rows].map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  '));
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}
