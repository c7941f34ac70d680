import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_DRIVER_NAME = 'gitfs.csi.dev';
export const DEFAULT_ENDPOINT = 'unix:///csi/csi.sock';

/** The vendor version CSI reports: the package's own version (this file runs as dist/src/cli/). */
export const PACKAGE_VERSION: string = JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')).version;
