// What every view shares: the connected session, the unlocked keys (memory only) and a way to
// show itself again after a change.
import type { Keys } from "./keys";
import type { Session } from "./session";

export interface App {
  readonly session: Session;
  keys: Keys | undefined;
  /** Renders the current view again (after a transaction, an unlock). */
  refresh(): void;
  /** Goes to another view. */
  go(view: string): void;
}

export interface View {
  readonly id: string;
  readonly title: string;
  render(app: App): Promise<HTMLElement>;
}
