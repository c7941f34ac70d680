import { parseArgs } from 'node:util';
import { controllerService } from '../csi/controllerService';
import { startCsiServer } from '../csi/csiServer';
import { identityService } from '../csi/identityService';
import { createLogger } from '../log/logger';
import { DEFAULT_DRIVER_NAME, DEFAULT_ENDPOINT, PACKAGE_VERSION } from './driverDefaults';
import { untilSignal } from './untilSignal';

export const CONTROLLER_USAGE = `usage: gitfs-csi controller [options]

Serves the CSI Identity and Controller services on a unix socket, for csi-provisioner.

options:
  --endpoint <unix:///path>   CSI socket (default ${DEFAULT_ENDPOINT})
  --driver-name <name>        CSI driver name (default ${DEFAULT_DRIVER_NAME})
  --allow-file                accept file:// repositories (tests and demos)
  --log-level <level>         pino level (default info)`;

/** `gitfs-csi controller`: runs until SIGINT/SIGTERM; returns the exit code. */
export async function controllerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      endpoint: { type: 'string' },
      'driver-name': { type: 'string' },
      'allow-file': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${CONTROLLER_USAGE}\n`);
    return 0;
  }
  const log = createLogger({ level: values['log-level'] }).child({ component: 'csi' });
  const driverName = values['driver-name'] ?? DEFAULT_DRIVER_NAME;
  const stopped = untilSignal();
  const server = await startCsiServer(values.endpoint ?? DEFAULT_ENDPOINT, {
    Identity: identityService({ driverName, version: PACKAGE_VERSION, controller: true, ready: async () => true }, log),
    Controller: controllerService({ allowFile: values['allow-file'] ?? false }, log),
  });
  log.info({ endpoint: server.socketPath, driverName, version: PACKAGE_VERSION }, 'controller serving');
  log.info({ signal: await stopped }, 'controller stopping');
  await server.stop();
  return 0;
}
