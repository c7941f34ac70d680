const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * SIGINT and SIGTERM for a command that cleans up before it exits. The first asks it to stop;
 * later ones go to `repeated` (with how many have come) and never kill it half-way, as Node's
 * default for a signal without a listener would, leaving a dead mount behind. The listeners stay
 * until the process exits.
 */
export class StopSignals {
  readonly first: Promise<NodeJS.Signals>;
  private count = 0;

  constructor(repeated: (count: number) => void) {
    this.first = new Promise((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        this.count++;
        if (this.count === 1) resolve(signal);
        else repeated(this.count);
      };
      for (const signal of SIGNALS) process.on(signal, onSignal);
    });
  }

  get received(): boolean {
    return this.count > 0;
  }
}
