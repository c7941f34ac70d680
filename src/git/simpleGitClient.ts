import { simpleGit, SimpleGit } from 'simple-git';
import { GitfsError } from '../errors/errors';
import { classifyGitFailure } from './gitFailure';
import { gitEnvironment } from './gitEnvironment';

/**
 * simple-git for short local one-shot commands (cat-file). It gets the same hardened git
 * configuration as every other git process, over a minimal environment: simple-git's guard
 * rightly refuses arbitrary inherited variables, and a local command needs none of them.
 * Remote commands go through gitProcess, which must inherit the node's ambient git setup.
 */
export function simpleGitFor(options: { baseDir: string; timeoutMs: number; gitDir?: string }): SimpleGit {
  const env = gitEnvironment(undefined, [], { PATH: process.env.PATH, HOME: process.env.HOME });
  // Named outright, like every other git process here: no discovery from the working directory.
  if (options.gitDir) env.GIT_DIR = options.gitDir;
  return simpleGit({
    baseDir: options.baseDir,
    // The guard admits only git variables named here: exactly the ones we set.
    allowEnvironment: Object.keys(env),
    timeout: { block: options.timeoutMs },
    unsafe: {
      allowUnsafeConfigEnvCount: true,
      allowUnsafeAskPass: true,
      allowUnsafeSshCommand: true,
      allowUnsafeHooksPath: true,
      allowUnsafeProtocolOverride: true,
    },
  }).env(env);
}

/** Maps a simple-git rejection to a typed error. */
export function simpleGitFailure(err: unknown, command: string, where: string): GitfsError {
  const message = err instanceof Error ? err.message : String(err);
  return classifyGitFailure(message, null, { repository: where, credentialsOffered: false, command });
}
