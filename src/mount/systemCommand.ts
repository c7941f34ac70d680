import { execFile } from 'node:child_process';
import { GitfsError } from '../errors/errors';

/** Runs mount(8), umount(8) or fusermount3 asynchronously; never a synchronous child here. */
export function systemCommand(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new GitfsError('internal', `${file} ${args.join(' ')} failed: ${(stderr || err.message).trim()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}
