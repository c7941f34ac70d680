import { GitfsError, NotReady } from '../errors/errors';
import { withinDeadline } from './deadline';

export type GateState = 'pending' | 'ready' | 'failed';

/**
 * Holds file operations of a mount until its tree is published. It opens once with a value
 * or fails once with a reason; a wait is always bounded, so nothing hangs forever.
 */
export class ReadinessGate<T> {
  private state_: GateState = 'pending';
  private value_: T | undefined;
  private failure_: GitfsError | undefined;
  private readonly settled: Promise<void>;
  private settle!: () => void;

  constructor(readonly description: string) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  get state(): GateState {
    return this.state_;
  }

  /** Why the gate failed, for logs, stats and volume conditions. */
  get failure(): GitfsError | undefined {
    return this.failure_;
  }

  /** The published value, without waiting (undefined until ready). */
  get value(): T | undefined {
    return this.value_;
  }

  open(value: T): void {
    if (this.state_ !== 'pending') return;
    this.value_ = value;
    this.state_ = 'ready';
    this.settle();
  }

  fail(reason: GitfsError): void {
    if (this.state_ !== 'pending') return;
    this.failure_ = reason;
    this.state_ = 'failed';
    this.settle();
  }

  /** The value once the gate opens, or undefined once it fails; no deadline (and no timer). */
  async whenSettled(): Promise<T | undefined> {
    await this.settled;
    return this.value_;
  }

  /** Resolves with the value once ready; rejects with the failure, or NotReady after `timeoutMs`. */
  async wait(timeoutMs: number): Promise<T> {
    if (this.state_ === 'pending') {
      await withinDeadline(this.settled, timeoutMs, () => new NotReady(`${this.description} is not ready after ${timeoutMs} ms`));
    }
    if (this.state_ === 'failed') throw this.failure_!;
    return this.value_!;
  }
}
