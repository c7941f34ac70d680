#!/usr/bin/env node
import { redact } from '../log/redact';
import { controllerCommand, CONTROLLER_USAGE } from './controllerCommand';
import { describeFailure, mountCommand, MOUNT_USAGE } from './mountCommand';
import { nodeCommand, NODE_USAGE } from './nodeCommand';
import { fuseHolderCommand, FUSE_HOLDER_USAGE } from './fuseHolderCommand';
import { statusCommand, STATUS_USAGE } from './statusCommand';
import { PACKAGE_VERSION } from './driverDefaults';

const USAGE = `usage: gitfs-csi <command> [options]

commands:
  mount       mount a git repository (read-only or writable, with its .git) with lazily fetched contents
  node        serve the CSI node plugin (Identity + Node, optionally Controller)
  status      what the node plugin running here holds: tree mounts, volumes, cache, stores
  version     print gitfs-csi's version (also --version)
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
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`gitfs-csi ${PACKAGE_VERSION}\n`);
      return 0;
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

const USAGES: Record<string, string> = { mount: MOUNT_USAGE, node: NODE_USAGE, controller: CONTROLLER_USAGE, 'fuse-holder': FUSE_HOLDER_USAGE, status: STATUS_USAGE };

/** Node's own words for a flag it could not parse, said plainly, with the command's usage after them. */
function describeBadFlags(command: string, err: Error & { code: string }): string {
  const unknown = /^Unknown option '([^']*)'/.exec(err.message);
  const what = unknown ? `unknown option ${unknown[1]}` : err.message.replace(/\.$/, '');
  return `gitfs-csi ${command}: ${what}\n\n${USAGES[command] ?? USAGE}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const parseError = err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`${redact(parseError ? describeBadFlags(process.argv[2], err as Error & { code: string }) : describeFailure(err))}\n`);
    const badArguments = parseError || (err && typeof err === 'object' && 'kind' in err && err.kind === 'invalid-argument');
    process.exit(badArguments ? 2 : 1);
  },
);
