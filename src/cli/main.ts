#!/usr/bin/env node
import { redact } from '../log/redact';
import { controllerCommand, CONTROLLER_USAGE } from './controllerCommand';
import { describeFailure, mountCommand, MOUNT_USAGE } from './mountCommand';
import { nodeCommand, NODE_USAGE } from './nodeCommand';
import { fuseHolderCommand, FUSE_HOLDER_USAGE } from './fuseHolderCommand';
import { statusCommand, STATUS_USAGE } from './statusCommand';

const USAGE = `usage: gitfs-csi <command> [options]

commands:
  mount       mount a git repository (read-only or writable, with its .git) with lazily fetched contents
  node        serve the CSI node plugin (Identity + Node, optionally Controller)
  status      what the node plugin running here holds: tree mounts, volumes, cache, stores
  controller  serve the CSI controller plugin (Identity + Controller)
  fuse-holder keep a node's FUSE connections open across node plugin restarts

${MOUNT_USAGE}

${NODE_USAGE}

${CONTROLLER_USAGE}

${FUSE_HOLDER_USAGE}

${STATUS_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'mount':
      return mountCommand(rest);
    case 'node':
      return nodeCommand(rest);
    case 'controller':
      return controllerCommand(rest);
    case 'fuse-holder':
      return fuseHolderCommand(rest);
    case 'status':
      return statusCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`gitfs-csi: unknown command "${redact(command)}"\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${redact(describeFailure(err))}\n`);
    const badArguments = err && typeof err === 'object' && (('kind' in err && err.kind === 'invalid-argument') || ('code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')));
    process.exit(badArguments ? 2 : 1);
  },
);
