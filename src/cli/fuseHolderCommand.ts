import { parseArgs } from 'node:util';
import pino from 'pino';
import { InvalidArgument } from '../errors/errors';
import { createLogger } from '../log/logger';
import { serveFuseHolder } from '../mount/fuseHolderServer';
import { integerOption } from './integerOption';

export const FUSE_HOLDER_USAGE = `usage: gitfs-csi fuse-holder --socket <path> [options]

Holds the /dev/fuse descriptors of a node's tree mounts, so that they outlive the node plugin:
a restarted or upgraded plugin takes them over and running pods never see their volume fail.
The node plugin starts one itself (--fuse-holder spawn); on Kubernetes it runs in a pod of its
own, which a plugin upgrade leaves alone.

options:
  --socket <path>             where servers reach it (the node plugin's --fuse-holder-socket)
  --exit-when-idle-ms <ms>    exit once nothing has been held this long (default 0: never)
  --log-level <level>         pino level (default info)`;

/** `gitfs-csi fuse-holder`: serves until killed (or idle); returns the exit code. */
export async function fuseHolderCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      socket: { type: 'string' },
      'exit-when-idle-ms': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${FUSE_HOLDER_USAGE}\n`);
    return 0;
  }
  if (!values.socket) throw new InvalidArgument('--socket', 'a path is required');
  const exitWhenIdleMs = integerOption(values['exit-when-idle-ms'], '--exit-when-idle-ms', 0, true);
  // The holder blocks in accept between calls: its log lines must be written as they are made.
  const log = createLogger({ level: values['log-level'], destination: pino.destination({ dest: 2, sync: true }) }).child({ component: 'fuse-holder' });
  serveFuseHolder({ socket: values.socket, exitWhenIdleMs }, log);
  return 0;
}
